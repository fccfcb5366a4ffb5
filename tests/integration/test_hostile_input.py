"""Hostile input through the real service: the committed corpus of nasty payloads, 10 MB
messages, tombstones, null keys and hypothesis-generated payloads, produced among a drifting
scenario. The service must keep running, dead-letter every bad message (reason header,
original bytes, source offset), give the good messages exactly the outputs of a clean
replay, and count all of it exactly in /metrics."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from driftline.events import DecodeLimits, decode_batch
from driftline.service.topics import DEAD_LETTER_MAX_MESSAGE_BYTES
from tests.integration.service_support import (
    Deployment,
    ServiceProcess,
    assert_outputs_equal,
    make_deployment,
    read_by_partition,
    read_topic,
    replay_reference,
    scenario_events,
    wait_committed,
)

pytestmark = pytest.mark.kafka

CORPUS = Path(__file__).parents[1] / "corpus"
TEN_MB = 10 * 1024 * 1024
INPUT_MAX_MESSAGE_BYTES = TEN_MB + 1024 * 1024
"""The input topic is raised to accept the 10 MB messages (broker default: 1 MiB)."""
HOSTILE_NAMES = ('q"uote', "back\\slash", "new\nline", '{le="0.5"}', "a b", "😀 ünï", "\x00\x1b")
WARMUP_EVENTS = 30
WINDOW_EVENTS = 500

Pair = tuple[bytes | None, bytes | None]
"""(key, value) of one produced message; ``None`` value: a tombstone."""


def _event(model: str, i: int, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"{model}-{i}",
        "model_id": model,
        "model_version": "1",
        "timestamp": 1_700_000_000 + i,
        "features": {"amount": 12.5, "country": "NL"},
        **fields,
    }


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def _mutated_event(draw: st.DrawFn) -> bytes:
    """A valid event with one thing broken: a field replaced, the bytes cut or flipped, or a
    non-finite literal spliced in."""
    base = _event("fuzz-h", draw(st.integers(0, 10**6)))
    how = draw(st.sampled_from(["replace", "drop", "truncate", "flip", "literal"]))
    if how == "replace":
        name = draw(st.sampled_from([*base, "prediction", "label"]))
        base[name] = draw(_JSON)
    elif how == "drop":
        del base[draw(st.sampled_from(sorted(base)))]
    data = orjson.dumps(base)
    if how == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    elif how == "literal":
        literal = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"]))
        data = data.replace(b"12.5", literal)
    return data


def hypothesis_payloads(count: int = 150) -> list[bytes]:
    """``count`` generated payloads, the same on every run (derandomized, no database)."""
    collected: list[bytes] = []

    @hypothesis_settings(
        max_examples=count,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(_mutated_event(), st.binary(max_size=300)))
    def collect(payload: bytes) -> None:
        collected.append(payload)

    collect()
    return collected


def generated_payloads() -> list[Pair]:
    """Payloads built here rather than committed: big ones, tombstones, null keys."""
    wide = {f"f{i}": i for i in range(10_001)}
    return [
        (b"credit-a", orjson.dumps(_event("credit-a", 1, features={"blob": "x" * TEN_MB}))),
        (None, b"\xff" * TEN_MB),
        (b"credit-b", b'{"event_id": "' + b"e" * (2 * 1024 * 1024) + b'"}'),
        (b"credit-a", None),  # tombstone: null_value, the dead letter's value null too
        (b"credit-a", b""),  # empty: invalid_json
        (b"credit-c", b""),
        (None, orjson.dumps(_event("fuzz-wide", 1, features=wide))),  # too_many_features
        (b"credit-b", b"[" * 100_000),
        (None, orjson.dumps(_event("credit-a", 2, timestamp=-62135596800))),
        (None, orjson.dumps(_event("credit-a", 3, timestamp="0000-01-01T00:00:00Z"))),
        (None, orjson.dumps(_event("credit-a", 4, timestamp=1e300))),
        (None, orjson.dumps(_event("credit-a", 5, features={"\u0085": 1, "__x": 2}))),
    ]


def valid_oddities() -> list[dict[str, Any]]:
    """Valid events that look hostile (their own models, so the scenario is untouched)."""
    wide = {f"f{i}": i for i in range(9_999)}
    events = [_event("fuzz-wide", 2, features=wide, prediction=0.5)]
    events.append(_event("fuzz-far", 1, timestamp="9999-12-31T23:59:59Z"))
    events.append(_event("fuzz-far", 2, timestamp=0))
    events.append(_event("fuzz-far", 3, timestamp=253402300799000))
    events.append(_event("fuzz-big", 1, features={"a": 2**64 - 1, "b": -(2**63), "c": 1e308}))
    # Monitored features whose names are not valid Prometheus label values as they are:
    # warm-up, then one full window, so their statistics are exported.
    for i in range(WARMUP_EVENTS + WINDOW_EVENTS + 1):
        features = {name: float((i * 7 + n) % 11) for n, name in enumerate(HOSTILE_NAMES)}
        events.append(_event("fuzz-names", i, features=features))
    return events


def hostile_stream() -> tuple[list[Pair], list[bytes]]:
    """Every message in production order, and the corpus/hypothesis payloads among them."""
    corpus = [path.read_bytes() for path in sorted(CORPUS.glob("*.json"))]
    fuzz = corpus + hypothesis_payloads()
    keys: list[bytes | None] = [None, b"credit-a", b"credit-b", b"credit-c", b"\x00\xff"]
    extra: list[Pair] = []
    limits = DecodeLimits()
    for i, payload in enumerate(fuzz):
        accepted = decode_batch([payload], limits).models
        # Valid payloads are good messages: keyed by their model, like every good event.
        key = accepted[0].model_id.encode() if accepted else keys[i % len(keys)]
        extra.append((key, payload))
    extra += generated_payloads()
    extra += [(e["model_id"].encode(), orjson.dumps(e)) for e in valid_oddities()]
    pairs: list[Pair] = list(scenario_events(4_000))
    step = len(pairs) // len(extra)
    for n, pair in enumerate(extra):
        pairs.insert(n * (step + 1) + 7, pair)
    return pairs, fuzz


async def _raise_max_message_bytes(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC,
            topic,
            configs={"max.message.bytes": str(INPUT_MAX_MESSAGE_BYTES)},
        )
        await admin.alter_configs([resource])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, pairs: list[Pair]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        enable_idempotence=True,
        max_request_size=INPUT_MAX_MESSAGE_BYTES,
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in pairs]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _metrics(service: ServiceProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
    _, body = service.get("/metrics")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def _deployment(tmp_path: Path, bootstrap: str) -> Deployment:
    deployment = make_deployment(
        tmp_path,
        bootstrap,
        f"hostile-{uuid.uuid4().hex[:10]}",
        warmup_events=WARMUP_EVENTS,
        window={"events": WINDOW_EVENTS},
    )
    kafka = deployment.settings.kafka
    asyncio.run(_raise_max_message_bytes(bootstrap, kafka.input_topics[0]))
    return deployment


def test_hostile_input_is_dead_lettered_and_changes_nothing_else(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    deployment = _deployment(tmp_path, kafka_bootstrap)
    kafka = deployment.settings.kafka
    pairs, fuzz = hostile_stream()
    assert len(fuzz) >= 200
    limits = DecodeLimits(
        max_payload_bytes=deployment.settings.decode.max_payload_bytes,
        max_features=deployment.settings.decode.max_features,
    )
    values = [value for _, value in pairs]
    alone = [
        [] if value is None else decode_batch([value], limits).dead_letters for value in values
    ]
    good = [v for v, dead in zip(values, alone, strict=True) if v is not None and not dead]
    bad = Counter(value for value, dead in zip(values, alone, strict=True) if dead or value is None)
    reason_of: dict[bytes | None, str] = {None: "null_value"}  # tombstones: before decoding
    reason_of.update({dead[0].payload: dead[0].reason.value for dead in alone if dead})
    expected_reasons = Counter(dead[0].reason.value for dead in alone if dead)
    expected_reasons["null_value"] = values.count(None)
    assert len(expected_reasons) >= 14, expected_reasons  # nearly every reason is exercised

    asyncio.run(_produce(kafka.bootstrap_servers, kafka.input_topics[0], pairs))
    service = ServiceProcess(deployment)
    try:
        service.wait_ready()
        wait_committed(deployment, len(pairs), timeout=150)
        metrics = _metrics(service)
        consumed = metrics["driftline_events_consumed_total"]
        assert consumed == [({"topic": kafka.input_topics[0]}, len(pairs))]
        dead_metric = {
            labels["reason"]: value for labels, value in metrics["driftline_dead_letters_total"]
        }
        assert dead_metric == dict(expected_reasons)
        exported = {
            labels["feature"]
            for labels, _ in metrics["driftline_drift_statistic"]
            if labels["model_id"] == "fuzz-names"
        }
        assert exported == set(HOSTILE_NAMES)
        assert service.get("/healthz")[0] == 200
        assert service.get("/v1/status")[0] == 200
    finally:
        assert service.terminate() == 0, service.output()
    assert "Traceback" not in service.output(), service.output()

    assert_outputs_equal(deployment, replay_reference(deployment, good))
    dead_letters = read_topic(deployment, kafka.dead_letter_topic)
    assert Counter(record.value for record in dead_letters) == bad
    inputs = read_by_partition(deployment, kafka.input_topics[0])
    keys: dict[bytes | None, set[bytes | None]] = {}
    for key, value in pairs:
        keys.setdefault(value, set()).add(key)
    for record in dead_letters:
        headers = record.headers
        assert headers["driftline.reason"].decode() == reason_of[record.value]
        assert headers["driftline.message"]
        assert headers["driftline.source.topic"] == kafka.input_topics[0].encode()
        partition = int(headers["driftline.source.partition"])
        offset = int(headers["driftline.source.offset"])
        assert inputs[partition][offset] == (b"" if record.value is None else record.value)
        assert record.key in keys[record.value]


def test_topics_create_sizes_the_dead_letter_topic_for_the_largest_record(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    deployment = make_deployment(tmp_path, kafka_bootstrap, f"size-{uuid.uuid4().hex[:10]}")

    async def configs() -> dict[str, str]:
        from driftline.service.topics import _configs

        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            return await _configs(admin, deployment.settings.kafka.dead_letter_topic)
        finally:
            await admin.close()

    actual = asyncio.run(configs())
    assert int(actual["max.message.bytes"]) == DEAD_LETTER_MAX_MESSAGE_BYTES

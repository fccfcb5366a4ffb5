"""`driftline run` with Kafka clients no one here wrote, through a real broker.

- Inputs compressed with every Kafka codec (gzip, snappy, lz4, zstd), produced by kcat
  (librdkafka, Debian's package) and by aiokafka, are all processed: the same outputs as
  `driftline replay` of the same events, no dead letters but the two planted below.
- Outputs compressed with ``kafka.compression_type`` (lz4 here) are read by kcat and aiokafka.
- Alerts and retrain requests are CloudEvents in the Kafka binding's structured mode: the
  Python CloudEvents SDK (``cloudevents``) recognises and parses every one of them.
- A null value (a tombstone) and an empty value are dead letters with different reasons,
  the null kept null.
- A batch the service cannot decode (lz4 with its codec library hidden from the service) is
  a dead letter naming the offsets it covers, and the service goes on past it.

What was not reproduced here: a batch corrupted on the broker's disk (a CRC mismatch). The
broker checks CRCs and codecs when records are produced, so no client can write one; the
unit tests (tests/service/test_undecodable_batches.py) feed the reader real batches with a
wrong CRC, undecodable gzip bytes, an unknown codec and an unreadable length instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiokafka.consumer.fetcher as aiokafka_fetcher
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from cloudevents.core.bindings.kafka import KafkaMessage, from_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.v1.sdk.converters.structured import is_structured

from driftline.cloudevents import ALERT_TYPE, RETRAIN_TYPE
from tests.integration.service_support import (
    Deployment,
    Record,
    ServiceProcess,
    make_deployment,
    read_topic,
    replay_reference,
    scenario_events,
    status_counts,
    wait_processed,
)

pytestmark = pytest.mark.kafka

CODECS = ("gzip", "snappy", "lz4", "zstd")
CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
CONTENT_TYPE = b"application/cloudevents+json; charset=UTF-8"


def _kcat() -> str:
    path = shutil.which("kcat")
    if path is None:
        pytest.fail("kcat is not installed (Debian package kcat)", pytrace=False)
    return path


def kcat_produce(
    bootstrap: str, topic: str, pairs: Sequence[tuple[bytes, bytes]], codec: str
) -> None:
    """Produce ``pairs`` with kcat (librdkafka), compressed with ``codec``. The murmur2
    partitioner is the Java client's (and aiokafka's): a key lands in the same partition
    whichever client produced it."""
    lines = b"".join(key + b"\t" + value + b"\n" for key, value in pairs)
    command = [_kcat(), "-P", "-b", bootstrap, "-t", topic, "-z", codec, "-K", "\t"]
    command += ["-X", "partitioner=murmur2_random", "-X", "linger.ms=20"]
    subprocess.run(command, input=lines, check=True, timeout=120, capture_output=True)


async def _aiokafka_produce(
    bootstrap: str, topic: str, pairs: Sequence[tuple[bytes, bytes | None]], codec: str | None
) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, compression_type=codec, linger_ms=20, enable_idempotence=True
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in pairs]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def aiokafka_produce(
    bootstrap: str, topic: str, pairs: Sequence[tuple[bytes, bytes | None]], codec: str | None
) -> None:
    asyncio.run(_aiokafka_produce(bootstrap, topic, pairs, codec))


@contextlib.contextmanager
def recording_codecs() -> Iterator[set[str]]:
    """The codecs of every record batch aiokafka's consumers fetch meanwhile."""
    real = aiokafka_fetcher.MemoryRecords
    seen: set[str] = set()

    def recording(data: bytes) -> Any:
        probe = real(data)
        while probe.has_next():
            batch = probe.next_batch()
            if batch is None:
                break
            seen.add(CODEC_NAMES[batch.compression_type])
        return real(data)

    aiokafka_fetcher.MemoryRecords = recording
    try:
        yield seen
    finally:
        aiokafka_fetcher.MemoryRecords = real


def kcat_read(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every record of ``topic`` as kcat's JSON (key, payload, headers as a flat list)."""
    command = [_kcat(), "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-J"]
    done = subprocess.run(command, check=True, timeout=120, capture_output=True)
    return [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]


@dataclass
class Run:
    deployment: Deployment
    values: list[bytes]
    """The events produced, in order (without the tombstone and the empty value)."""
    input_codecs: set[str]
    events: dict[str, int]
    dead_letters: dict[str, int]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Run:
    """One service run over events produced in every codec by kcat and aiokafka, plus a
    tombstone and an empty value; outputs compressed with lz4."""
    root = tmp_path_factory.mktemp("interop")
    deployment = make_deployment(
        root,
        kafka_bootstrap,
        f"interop-{uuid.uuid4().hex[:10]}",
        kafka={"compression_type": "lz4"},
        window={"events": 250},  # alerts and retrain requests from 2,000 events per model
    )
    topic = deployment.settings.kafka.input_topics[0]
    pairs = scenario_events(2_000)
    chunk = -(-len(pairs) // 8)
    chunks = [pairs[i : i + chunk] for i in range(0, len(pairs), chunk)]
    for codec, part in zip(CODECS, chunks[:4], strict=True):
        kcat_produce(kafka_bootstrap, topic, part, codec)
    for codec, part in zip(CODECS, chunks[4:], strict=True):
        aiokafka_produce(kafka_bootstrap, topic, part, codec)
    aiokafka_produce(kafka_bootstrap, topic, [(b"credit-a", None), (b"credit-a", b"")], None)
    with recording_codecs() as input_codecs:
        assert len(read_topic(deployment, topic)) == len(pairs) + 2
    service = ServiceProcess(deployment)
    try:
        service.wait_ready()
        wait_processed(deployment, [service], len(pairs) + 2, timeout=240)
        events, dead = status_counts(service)
    finally:
        code = service.terminate()
    assert code == 0, service.output()
    return Run(deployment, [v for _, v in pairs], set(input_codecs), events, dead)


def _outputs(run: Run, topic: str) -> list[Record]:
    return read_topic(run.deployment, topic)


def test_inputs_in_every_codec_from_kcat_and_aiokafka_are_all_processed(run: Run) -> None:
    assert run.input_codecs == {*CODECS, "none"}
    assert sum(run.events.values()) == len(run.values)
    assert run.dead_letters == {"null_value": 1, "invalid_json": 1}
    kafka = run.deployment.settings.kafka
    expected = replay_reference(run.deployment, run.values)
    assert expected["alerts"] and expected["retrain"], "the scenario must alert and retrain"
    alerts = {r.value for r in _outputs(run, kafka.alerts_topic)}
    retrain = {r.value for r in _outputs(run, kafka.retrain_topic)}
    assert alerts == set(expected["alerts"])
    assert retrain == set(expected["retrain"])


def test_outputs_are_compressed_as_configured_and_read_by_kcat_and_aiokafka(run: Run) -> None:
    kafka = run.deployment.settings.kafka
    bootstrap = kafka.bootstrap_servers
    for topic in (kafka.alerts_topic, kafka.retrain_topic, kafka.dead_letter_topic):
        with recording_codecs() as codecs:
            read = _outputs(run, topic)
        assert read and codecs == {"lz4"}, (topic, codecs)
        by_kcat = kcat_read(bootstrap, topic)
        assert sorted((m["payload"] or "").encode() for m in by_kcat) == sorted(
            r.value or b"" for r in read
        )
        assert len(by_kcat) == len(read)
    for message in kcat_read(bootstrap, kafka.alerts_topic):
        headers = message["headers"]
        assert headers[headers.index("content-type") + 1] == CONTENT_TYPE.decode()


def test_alerts_and_retrain_requests_parse_with_the_cloudevents_sdk(run: Run) -> None:
    kafka = run.deployment.settings.kafka
    for topic, event_type in (
        (kafka.alerts_topic, ALERT_TYPE),
        (kafka.retrain_topic, RETRAIN_TYPE),
    ):
        records = _outputs(run, topic)
        assert records
        for record in records:
            assert record.headers == {"content-type": CONTENT_TYPE}
            assert is_structured({k: v.decode() for k, v in record.headers.items()})
            message = KafkaMessage(headers=record.headers, key=record.key, value=record.value)
            event = from_structured(message, JSONFormat())
            sent = orjson.loads(record.value)
            assert event.get_specversion() == "1.0"
            assert event.get_type() == event_type
            assert event.get_id() == sent["id"]
            assert event.get_source() == sent["source"]
            assert event.get_subject() == sent["subject"]
            assert event.get_data() == sent["data"]
            assert event.get_extension("partitionkey") == record.key.decode()  # type: ignore[union-attr]


def test_a_tombstone_and_an_empty_value_are_different_dead_letters(run: Run) -> None:
    kafka = run.deployment.settings.kafka
    dead = _outputs(run, kafka.dead_letter_topic)
    found = sorted((r.headers["driftline.reason"], r.value) for r in dead)
    assert found == [(b"invalid_json", b""), (b"null_value", None)]
    for record in dead:
        assert "content-type" not in record.headers  # the input's bytes, not a CloudEvent
        assert record.key == b"credit-a"
        assert record.headers["driftline.source.topic"] == kafka.input_topics[0].encode()
        assert int(record.headers["driftline.source.offset"]) >= 0


def test_a_batch_the_service_cannot_decode_is_a_dead_letter_and_the_service_goes_on(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """The service runs without cramjam (aiokafka's snappy/lz4/zstd library): lz4 batches
    are poison to it, as every lz4 batch was before cramjam became a dependency."""
    deployment = make_deployment(tmp_path, kafka_bootstrap, f"poison-{uuid.uuid4().hex[:10]}")
    topic = deployment.settings.kafka.input_topics[0]
    hidden = tmp_path / "hide" / "cramjam"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("cramjam hidden by the test")\n')
    path = os.pathsep.join(p for p in (str(hidden.parent), os.environ.get("PYTHONPATH")) if p)
    pairs = scenario_events(300)
    before, poison, after = pairs[:300], pairs[300:600], pairs[600:]
    service = ServiceProcess(deployment, env={"PYTHONPATH": path})
    try:
        service.wait_ready()
        kcat_produce(kafka_bootstrap, topic, before, "gzip")
        kcat_produce(kafka_bootstrap, topic, poison, "lz4")
        kcat_produce(kafka_bootstrap, topic, after, "gzip")
        wait_processed(deployment, [service], len(pairs), timeout=120)
        events, dead_counts = status_counts(service)
        assert service.proc.poll() is None, service.output()
    finally:
        code = service.terminate()
    assert code == 0, service.output()
    assert sum(events.values()) == len(before) + len(after)
    dead = read_topic(deployment, deployment.settings.kafka.dead_letter_topic)
    assert dead and dead_counts == {"undecodable_record": len(dead)}
    covered = 0
    for record in dead:
        headers = record.headers
        assert headers["driftline.reason"] == b"undecodable_record"
        assert b"lz4" in headers["driftline.message"], headers
        assert record.value == b"" and record.key is None  # Kafka clients refuse both null
        first = int(headers["driftline.source.offset"])
        last = int(headers["driftline.source.last_offset"])
        covered += last - first + 1
    assert covered == len(poison)  # exactly the lz4 batches' records, nothing else

"""Ground truth through a real broker (issue 10): feedback events joined with the predictions
they label, on the input topic and on a separate feedback topic, across ``kill -9`` and
restarts, and a feedback topic that cannot be joined stopping ``driftline run`` at start.

The stream (as in ``tests/test_ground_truth.py``): per model a binary classifier scoring
x ~ N(0, 1) with p = sigmoid(2x), calibrated on its reference profile (which has
``__prediction__`` and ``__label__``); each prediction's label comes back as a feedback
event 30 s to 10 min (event time) later, keyed by ``model_id`` like the predictions. From
``CHANGE`` on the outcome flips for x > 0 (concept drift: the inputs stay put), so only the
model's performance can tell: a ``PerformanceDrift`` alert on ``__error__``. A few labels
are produced a minute *before* their prediction (producers racing), so early labels wait
in the join's buffer. Three models, one per input partition.
"""

from __future__ import annotations

import asyncio
import heapq
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import ProfileSource, build_profile, save_profile
from driftline.service.checkpoints import Head, read_state, select
from driftline.service.kafka_clients import make_consumer
from tests.integration.service_support import (
    Deployment,
    ServiceProcess,
    _partitions,
    _produce,
    _stop,
    assert_outputs_equal,
    dedup,
    make_deployment,
    read_topic,
    replay_with_counts,
    status_counts,
    wait_processed,
)

pytestmark = pytest.mark.kafka

PARTITIONS = 3
PREDICTIONS = 6_000
"""Predictions per model."""
CHANGE = 2_500
"""The prediction from which the world changes (concept drift)."""
RATE = 2.0
"""Predictions per second of event time, per model."""
START = 1_700_000_000.0
EARLY = 0.03
"""Share of labels produced 60 s (event time) before their prediction."""


def _models() -> list[str]:
    """One model id per input partition (the default partitioner: murmur2 of the key)."""
    partitioner = DefaultPartitioner()
    chosen: dict[int, str] = {}
    for i in range(1_000):
        name = f"gt-{i}"
        chosen.setdefault(partitioner(name.encode(), list(range(PARTITIONS)), []), name)
        if len(chosen) == PARTITIONS:
            return [chosen[p] for p in range(PARTITIONS)]
    raise AssertionError("no model ids for every partition")


MODELS = _models()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


def _write_profile(root: Path, model: str) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(size=20_000)
    p = _sigmoid(2 * x)
    y = (rng.random(x.size) < p).astype(int)
    profile = build_profile(
        {"x": x.tolist(), "__prediction__": p.tolist(), "__label__": y.tolist()},
        model_id=model,
        model_version="1",
        source=ProfileSource(kind="file", sha256="0" * 64),
    )
    path = root / f"{model}.profile.json"
    save_profile(profile, path)
    return path


@dataclass(frozen=True, order=False)
class Event:
    key: bytes
    value: bytes
    is_label: bool


def _model_stream(model: str, seed: int) -> list[tuple[float, int, Event]]:
    """(stream position in event time, tie-break, event) of one model."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=PREDICTIONS)
    p = _sigmoid(2 * x)
    truth = p.copy()
    flipped = (np.arange(PREDICTIONS) >= CHANGE) & (x > 0)
    truth[flipped] = 1 - p[flipped]
    y = (rng.random(PREDICTIONS) < truth).astype(int)
    times = START + np.arange(PREDICTIONS) / RATE
    delays = rng.uniform(30, 600, PREDICTIONS)
    early = rng.random(PREDICTIONS) < EARLY
    key = model.encode()
    events: list[tuple[float, int, Event]] = []
    for i in range(PREDICTIONS):
        base = {"event_id": f"{model}-{i}", "model_id": model, "model_version": "1"}
        prediction = {
            **base,
            "timestamp": float(times[i]),
            "features": {"x": float(x[i])},
            "prediction": float(p[i]),
        }
        events.append((float(times[i]), 2 * i, Event(key, orjson.dumps(prediction), False)))
        label_time = float(times[i] + delays[i])
        if label_time <= times[-1]:
            label = orjson.dumps({**base, "timestamp": label_time, "label": int(y[i])})
            produced_at = float(times[i]) - 60.0 if early[i] else label_time
            events.append((produced_at, 2 * i + 1, Event(key, label, True)))
    return events


def _stream() -> list[Event]:
    """Every model's predictions and labels, merged in order of production."""
    streams = [
        sorted((t, i, order, event) for t, order, event in _model_stream(model, seed=i))
        for i, model in enumerate(MODELS)
    ]
    return [event for _, _, _, event in heapq.merge(*streams)]


@pytest.fixture(scope="module")
def stream() -> list[Event]:
    return _stream()


def _labels_per_model(events: list[Event]) -> dict[str, int]:
    counts = dict.fromkeys(MODELS, 0)
    for event in events:
        if event.is_label:
            counts[event.key.decode()] += 1
    return counts


def _expected_join(events: list[Event]) -> dict[str, dict[str, int]]:
    """What the join must count per model once every event is processed, whatever the
    order: every label joined, the predictions whose label never came pending, nothing
    else (no label unmatched, duplicated, late or still waiting)."""
    return {
        model: {
            "feedback_events": labels,
            "joined": labels,
            "pending_now": PREDICTIONS - labels,
            "early_buffered_now": 0,
            "unmatched": 0,
            "duplicate": 0,
            "expired": 0,
            "late": 0,
        }
        for model, labels in _labels_per_model(events).items()
    }


def _model_setting(root: Path, model: str) -> dict[str, str]:
    return {"model_id": model, "reference_profile": str(_write_profile(root, model))}


def _deployment(
    tmp_path: Path, bootstrap: str, prefix: str, *, feedback_topic: bool = False
) -> Deployment:
    unique = f"gt-{prefix}-{uuid.uuid4().hex[:10]}"
    models = [_model_setting(tmp_path, m) for m in MODELS]
    kafka: dict[str, Any] = {"feedback_topics": [f"{unique}-feedback"]} if feedback_topic else {}
    return make_deployment(
        tmp_path, bootstrap, unique, partitions=PARTITIONS, models=models, kafka=kafka
    )


def _pairs(events: list[Event]) -> list[tuple[bytes, bytes]]:
    return [(e.key, e.value) for e in events]


def _produce_to(deployment: Deployment, topic: str, events: list[Event]) -> None:
    """Keyed by model_id, with the default partitioner (the predictions' one)."""
    asyncio.run(_produce(deployment.settings.kafka.bootstrap_servers, topic, _pairs(events)))


@dataclass
class Checkpointed:
    """An input partition's newest consistent checkpoint, restored into a pipeline."""

    head: Head
    pipeline: Pipeline


async def _read_checkpoints(deployment: Deployment) -> dict[int, Checkpointed]:
    kafka = deployment.settings.kafka
    reader = make_consumer(kafka, group=False)
    await reader.start()
    try:
        tps = await _partitions(kafka.bootstrap_servers, kafka.state_topic)
        found = await read_state(reader, tps, kafka.group_id)
    finally:
        await _stop(reader)
    out: dict[int, Checkpointed] = {}
    for tp, records in found.items():
        restored = select(records)
        if restored is None:
            continue
        assert restored.head is not None
        pipeline = Pipeline(build_plan(deployment.settings))
        pipeline.restore_parts(restored.head_state, restored.versions)
        out[tp.partition] = Checkpointed(restored.head, pipeline)
    return out


def checkpoints(deployment: Deployment) -> dict[int, Checkpointed]:
    return asyncio.run(_read_checkpoints(deployment))


def _join_counts(found: dict[int, Checkpointed]) -> dict[str, dict[str, int]]:
    """The join's counts per model, from the checkpointed state (the ground-truth status
    of /v1/status is not exposed on this branch)."""
    out: dict[str, dict[str, int]] = {}
    for checkpointed in found.values():
        for (model, _), version in checkpointed.pipeline.versions.items():
            assert version is not None and version.ground_truth is not None, model
            status = version.ground_truth.status()
            assert model not in out, f"{model} in two partitions"
            out[model] = {k: status[k] for k in _expected_join([])[MODELS[0]]}
    return out


async def _offsets(deployment: Deployment, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """The group's committed offsets and the end offsets of ``topic``, per partition."""
    kafka = deployment.settings.kafka
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=kafka.group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = await _partitions(kafka.bootstrap_servers, topic)
        ends = await consumer.end_offsets(tps)
        committed = {tp.partition: (await consumer.committed(tp) or 0) for tp in tps}
        return committed, {tp.partition: ends[tp] for tp in tps}
    finally:
        await _stop(consumer)


def offsets(deployment: Deployment, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    return asyncio.run(_offsets(deployment, topic))


def _wait_all_committed(
    deployment: Deployment, service: ServiceProcess, topics: list[str], timeout: float = 240
) -> None:
    """Until the group's committed offsets reached the end of every partition of ``topics``
    (a commit follows the acknowledged checkpoint that covers it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.proc.poll() is not None:
            raise AssertionError(f"service exited:\n{service.output()}")
        if all(c == e for c, e in (offsets(deployment, t) for t in topics)):
            return
        time.sleep(0.5)
    progress = {t: offsets(deployment, t) for t in topics}
    raise AssertionError(f"not everything committed in {timeout} s: {progress}")


def _alerts(deployment: Deployment) -> list[dict[str, Any]]:
    topic = deployment.settings.kafka.alerts_topic
    return [orjson.loads(v) for v in dedup(r.value for r in read_topic(deployment, topic))]


def _firing_performance(alerts: list[dict[str, Any]]) -> set[str]:
    return {
        a["data"]["fingerprint"]
        for a in alerts
        if a["data"]["status"] == "firing"
        and a["data"]["labels"]["alertname"] == "PerformanceDrift"
    }


def _assert_performance_drift_per_model(alerts: list[dict[str, Any]]) -> None:
    fired = {
        a["data"]["labels"]["model_id"]
        for a in alerts
        if a["data"]["status"] == "firing"
        and a["data"]["labels"]["alertname"] == "PerformanceDrift"
        and a["data"]["labels"]["feature"] == "__error__"
    }
    assert fired == set(MODELS), alerts


def _assert_no_dead_letters(deployment: Deployment) -> None:
    dead = read_topic(deployment, deployment.settings.kafka.dead_letter_topic)
    assert [r.value for r in dead] == []


def test_feedback_on_the_input_topic_joins_and_equals_replay(
    tmp_path: Path, kafka_bootstrap: str, stream: list[Event]
) -> None:
    deployment = _deployment(tmp_path, kafka_bootstrap, "input")
    values = [e.value for e in stream]
    expected = replay_with_counts(deployment, values)
    assert expected.outputs["dead"] == []
    produce_at = time.monotonic()
    _produce_to(deployment, deployment.settings.kafka.input_topics[0], stream)
    service = ServiceProcess(deployment)
    try:
        wait_processed(deployment, [service], len(stream), timeout=240)
        assert status_counts(service) == (expected.events, expected.dead_letters)
        assert service.metric("driftline_dead_letters_total") == 0
        assert service.metric("driftline_events_consumed_total") == len(stream)
    finally:
        assert service.terminate() == 0, service.output()
    print(f"feedback on the input topic: {time.monotonic() - produce_at:.1f} s")
    _assert_no_dead_letters(deployment)
    assert_outputs_equal(deployment, expected.outputs)
    _assert_performance_drift_per_model(_alerts(deployment))
    assert _join_counts(checkpoints(deployment)) == _expected_join(stream)


def _split(events: list[Event], share: float) -> tuple[list[Event], list[Event]]:
    cut = int(len(events) * share)
    return events[:cut], events[cut:]


def test_kill_9_with_predictions_pending_and_early_labels_waiting_loses_nothing(
    tmp_path: Path, kafka_bootstrap: str, stream: list[Event]
) -> None:
    """The first owner processes 60% of the stream (checkpointed: predictions wait for
    their labels, early labels for their predictions), then is killed with ``kill -9``
    while the rest arrives; the second resumes from the checkpoint. Outputs, deduplicated
    by id, equal replay's; the join lost and double-counted nothing. (The ground-truth
    counters are not in /v1/status on this branch: they are read from the checkpointed
    state, the status's pipeline counters are compared with replay's.)"""
    deployment = _deployment(tmp_path, kafka_bootstrap, "kill")
    values = [e.value for e in stream]
    expected = replay_with_counts(deployment, values)
    first_part, rest = _split(stream, 0.6)
    topic = deployment.settings.kafka.input_topics[0]
    _produce_to(deployment, topic, first_part)
    first = ServiceProcess(deployment, "first")
    wait_processed(deployment, [first], len(first_part), timeout=240)
    _produce_to(deployment, topic, rest)
    first.kill()
    taken = checkpoints(deployment)
    resumed = {p: c.head.next_offset for p, c in taken.items()}
    assert sum(resumed.values()) >= len(first_part)
    waiting = [
        v.ground_truth.status()
        for c in taken.values()
        for v in c.pipeline.versions.values()
        if v is not None and v.ground_truth is not None
    ]
    assert len(waiting) == len(MODELS)
    assert all(s["pending_now"] > 0 for s in waiting), waiting
    assert sum(s["early_buffered_now"] for s in waiting) > 0, waiting
    second = ServiceProcess(deployment, "second")
    try:
        wait_processed(deployment, [second], len(stream), timeout=240)
        assert status_counts(second) == (expected.events, expected.dead_letters)
    finally:
        assert second.terminate() == 0, second.output()
    for partition, offset in resumed.items():
        assert f"{topic}[{partition}]: restored checkpoint" in second.output()
        assert f"resuming at offset {offset}" in second.output()
    _assert_no_dead_letters(deployment)
    assert_outputs_equal(deployment, expected.outputs)
    _assert_performance_drift_per_model(_alerts(deployment))
    assert _join_counts(checkpoints(deployment)) == _expected_join(stream)


def test_feedback_topic_joins_commits_and_resumes_from_the_checkpoint(
    tmp_path: Path, kafka_bootstrap: str, stream: list[Event]
) -> None:
    """Predictions on the input topic, labels on ``kafka.feedback_topics`` (same partition
    count, keyed by model_id, same partitioner). How predictions and labels interleave now
    depends on fetch timing (labels are often processed before their prediction), so the
    outputs may legitimately differ from a replay of the single stream: label-drift windows
    of the joined labels and the exact windows of the performance detectors follow the join
    order. What must hold whatever the order: every label joined exactly once (join counts
    from the checkpointed state: joined == labels produced, nothing unmatched — a label on
    the wrong partition would be — nor duplicated after the restart, nothing waiting), the
    same PerformanceDrift alerts firing (fingerprints: model, detector, metric, severity)
    and the same models asked to retrain as replay's, no dead letter; both topics' offsets
    committed; the restart resuming both from the checkpoint's offsets."""
    deployment = _deployment(tmp_path, kafka_bootstrap, "topic", feedback_topic=True)
    kafka = deployment.settings.kafka
    [input_topic], [feedback_topic] = kafka.input_topics, kafka.feedback_topics
    expected = replay_with_counts(deployment, [e.value for e in stream])
    first_part, rest = _split(stream, 0.6)

    def produce_both(events: list[Event]) -> None:
        _produce_to(deployment, input_topic, [e for e in events if not e.is_label])
        _produce_to(deployment, feedback_topic, [e for e in events if e.is_label])

    produce_both(first_part)
    first = ServiceProcess(deployment, "first")
    _wait_all_committed(deployment, first, [input_topic, feedback_topic])
    produce_both(rest)
    first.kill()
    taken = checkpoints(deployment)
    assert set(taken) == set(range(PARTITIONS))
    for partition, checkpointed in taken.items():
        assert [(t, p) for t, p, _ in checkpointed.head.feedback_offsets] == [
            (feedback_topic, partition)
        ]
    second = ServiceProcess(deployment, "second")
    try:
        _wait_all_committed(deployment, second, [input_topic, feedback_topic])
        assert status_counts(second) == (expected.events, expected.dead_letters)
        status = orjson.loads(second.get("/v1/status")[1])
        _, feedback_ends = offsets(deployment, feedback_topic)
        joined = {
            (f["topic"], f["partition"]): f["next_offset"]
            for p in status["partitions"]
            for f in p["feedback_partitions"]
        }
        assert joined == {(feedback_topic, p): n for p, n in feedback_ends.items()}
    finally:
        assert second.terminate() == 0, second.output()
    log = second.output()
    for partition, checkpointed in taken.items():
        assert f"{input_topic}[{partition}]: restored checkpoint" in log
        assert f"resuming at offset {checkpointed.head.next_offset}" in log
        [(_, _, offset)] = checkpointed.head.feedback_offsets
        assert (
            f"{feedback_topic}[{partition}]: feedback joined to {input_topic}[{partition}], "
            f"resuming at offset {offset} (checkpoint)"
        ) in log
    for topic in (input_topic, feedback_topic):
        committed, ends = offsets(deployment, topic)
        assert committed == ends and sum(ends.values()) > 0, topic
    final = checkpoints(deployment)
    _, feedback_ends = offsets(deployment, feedback_topic)
    assert {p: c.head.feedback_offsets[0][2] for p, c in final.items()} == feedback_ends
    assert _join_counts(final) == _expected_join(stream)
    _assert_no_dead_letters(deployment)
    alerts = _alerts(deployment)
    _assert_performance_drift_per_model(alerts)
    replayed = [orjson.loads(a) for a in expected.outputs["alerts"]]
    assert _firing_performance(alerts) == _firing_performance(replayed)
    retrain = read_topic(deployment, kafka.retrain_topic)
    subjects = {orjson.loads(r.value)["subject"] for r in retrain}
    assert subjects == {orjson.loads(r)["subject"] for r in expected.outputs["retrain"]}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=ServiceProcess.child_env(),
    )


async def _create(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, n, 1) for t, n in topics.items()])
    finally:
        await admin.close()


def test_a_feedback_topic_partitioned_unlike_the_input_topic_stops_run_at_start(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """Labels join predictions of the same partition number: a feedback topic with another
    partition count cannot be joined. ``run`` exits 1 naming both topics, ``topics create``
    reports the difference and fails; ``config check`` (offline) cannot know partition
    counts and accepts the file; a feedback topic that ``topics create`` makes gets the
    input topic's partition count, not ``kafka.partitions``."""
    unique = f"gt-count-{uuid.uuid4().hex[:10]}"
    feedback = f"{unique}-feedback"
    asyncio.run(_create(kafka_bootstrap, {feedback: 2}))
    models = [_model_setting(tmp_path, MODELS[0])]
    deployment = make_deployment(
        tmp_path,
        kafka_bootstrap,
        unique,
        partitions=PARTITIONS,
        models=models,
        kafka={"feedback_topics": [feedback]},
    )
    config = str(deployment.config)
    [input_topic] = deployment.settings.kafka.input_topics

    run = _cli("run", "--config", config)
    assert run.returncode == 1, run.stdout + run.stderr
    problem = re.sub(r"\s+", " ", run.stderr)
    assert (
        f"feedback topic '{feedback}' has 2 partitions and input topic '{input_topic}' 3" in problem
    ), problem
    assert "driftline topics create" in problem

    created = _cli("topics", "create", "--config", config)
    assert created.returncode == 1, created.stdout + created.stderr
    report = re.sub(r"\s+", " ", created.stderr)
    assert f"differs: feedback topic '{feedback}' has 2 partitions and input topic" in report
    assert "`driftline run` refuses to start" in report

    checked = _cli("config", "check", "--config", config)
    assert checked.returncode == 0, checked.stderr

    # Input topic with 2 partitions, kafka.partitions 3: the new feedback topic gets 2.
    other = f"{unique}-other"
    asyncio.run(_create(kafka_bootstrap, {f"{other}-in": 2}))
    raw = {**deployment.raw, "kafka": {**deployment.raw["kafka"]}}
    raw["kafka"].update(
        input_topics=[f"{other}-in"], feedback_topics=[f"{other}-feedback"], group_id=other
    )
    second = tmp_path / "other.yaml"
    second.write_text(orjson.dumps(raw).decode())  # JSON is YAML
    made = _cli("topics", "create", "--config", str(second))
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"created {other}-feedback (2 partitions)" in re.sub(r"\s+", " ", made.stderr)
    assert asyncio.run(_partitions(kafka_bootstrap, f"{other}-feedback")) == [
        TopicPartition(f"{other}-feedback", p) for p in range(2)
    ]

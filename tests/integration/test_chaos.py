"""Chaos against a real broker: kill -9 loops, a broker outage, a rebalance storm and an
output topic that disappears. After each, every input event is counted exactly once in the
checkpointed state and the deduplicated outputs equal `driftline replay`'s.

Scale: the crash loop streams the issue's 200,000 events (``DRIFTLINE_CHAOS_EVENTS``
overrides it, e.g. 60000 for a quicker run); the other tests use 12,000-36,000 events,
enough for drift alerts in every model and for the faults to land mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from driftline.localkafka import LocalKafka
from tests.integration.service_support import (
    MODELS,
    Deployment,
    ServiceProcess,
    StreamProducer,
    assert_outputs_equal,
    committed_offsets,
    first_alert_offsets,
    make_deployment,
    produce,
    read_by_partition,
    read_topic,
    replay_with_counts,
    scenario_events,
    service_status,
    status_counts,
    status_next_offsets,
    wait_processed,
)

pytestmark = pytest.mark.kafka

CRASH_LOOP_EVENTS = int(os.environ.get("DRIFTLINE_CHAOS_EVENTS", "200000"))

BAD = [
    b'{"event_id": "bad-1", "model_id": "credit-a"',
    b"[1, 2, 3]",
    b'{"event_id": "bad-3", "model_id": "credit-b", "model_version": "1", '
    b'"timestamp": "2024-01-01T00:00:00Z", "features": {"amount": [1]}}',
    b"\xff\xfe not utf-8",
]


def _events(per_model: int) -> list[tuple[bytes, bytes]]:
    """Three models keyed by model_id, drifting mid-stream, with a few bad events."""
    pairs = scenario_events(per_model)
    step = len(pairs) // (len(BAD) + 1)
    for i, bad in enumerate(BAD):
        pairs.insert((i + 1) * step, (b"credit-a", bad))
    return pairs


def _deployment(tmp_path: Path, bootstrap: str) -> Deployment:
    return make_deployment(tmp_path, bootstrap, f"chaos-{uuid.uuid4().hex[:10]}")


def _assert_counted_once(
    expected_events: dict[str, int], expected_dead: dict[str, int], *services: ServiceProcess
) -> None:
    events, dead = status_counts(*services)
    assert (events, dead) == (expected_events, expected_dead)
    assert sum(events.values()) + sum(dead.values()) == sum(expected_events.values()) + len(BAD)


def test_crash_loop_counts_every_event_once(tmp_path: Path, kafka_bootstrap: str) -> None:
    deployment = _deployment(tmp_path, kafka_bootstrap)
    pairs = _events(CRASH_LOOP_EVENTS // len(MODELS))
    values = [v for _, v in pairs]
    expected = replay_with_counts(deployment, values)
    assert expected.events == {f"{m}/1": CRASH_LOOP_EVENTS // len(MODELS) for m in MODELS}
    assert sum(expected.dead_letters.values()) == len(BAD)
    kafka = deployment.settings.kafka
    stream = StreamProducer(
        kafka.bootstrap_servers, kafka.input_topics[0], pairs, chunk=4_000, pause=0.5
    )
    rng = random.Random(20_240_601)
    kill_points = sorted(rng.uniform(0.1, 0.85) * len(pairs) for _ in range(3))
    produced_at_kills: list[int] = []
    service = ServiceProcess(deployment, "run-0")
    try:
        for run, point in enumerate(kill_points, start=1):
            wait_processed_at_least(service, int(point))
            time.sleep(rng.uniform(0.0, 0.5))
            service.kill()
            produced_at_kills.append(stream.produced)
            service = ServiceProcess(deployment, f"run-{run}")
        stream.join()
        assert produced_at_kills[0] < len(pairs), "the first crash must come mid-stream"
        wait_processed(deployment, [service], len(pairs), timeout=240)
        _assert_counted_once(expected.events, expected.dead_letters, service)
    finally:
        assert service.terminate() == 0, service.output()
    assert_outputs_equal(deployment, expected.outputs)
    # The counts come back from the checkpoints alone (no event is left to process).
    again = ServiceProcess(deployment, "after")
    try:
        again.wait_ready()
        deadline = time.monotonic() + 60
        while len(service_partitions(again)) < kafka.partitions and time.monotonic() < deadline:
            time.sleep(0.2)
        _assert_counted_once(expected.events, expected.dead_letters, again)
    finally:
        assert again.terminate() == 0, again.output()


def wait_processed_at_least(service: ServiceProcess, events: int, timeout: float = 180) -> None:
    """Until the service's partitions' next offsets sum to ``events`` or more."""
    deadline = time.monotonic() + timeout
    while status_next_offsets(service) < events:
        if service.proc.poll() is not None:
            raise AssertionError(f"service exited:\n{service.output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"service did not reach offset total {events}")
        time.sleep(0.2)


def service_partitions(service: ServiceProcess) -> list[int]:
    return [p["partition"] for p in service_status(service)["partitions"]]


def test_broker_outage_not_ready_then_reconnects(tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path / "kafka")  # its own broker: the session's stays up
    broker.start()
    try:
        deployment = _deployment(tmp_path, broker.bootstrap)
        pairs = _events(12_000)
        expected = replay_with_counts(deployment, [v for _, v in pairs])
        produce(deployment, pairs)
        service = ServiceProcess(deployment)
        try:
            service.wait_ready()
            wait_processed_at_least(service, len(pairs) // 10)
            outage_started = time.monotonic()
            broker.stop()
            assert status_next_offsets(service) < len(pairs), "the outage must come mid-stream"
            assert _wait_not_ready(service, timeout=15), f"still ready:\n{service.output()}"
            assert service.metric("driftline_ready") == 0
            time.sleep(max(0.0, 20 - (time.monotonic() - outage_started)))
            assert service.proc.poll() is None, f"service died:\n{service.output()}"
            assert service.get("/readyz")[0] == 503
            assert service.get("/healthz")[0] == 200
            broker.start()  # same data dir and port
            service.wait_ready(timeout=120)
            assert service.metric("driftline_ready") == 1
            wait_processed(deployment, [service], len(pairs), timeout=180)
            _assert_counted_once(expected.events, expected.dead_letters, service)
            assert "Kafka unreachable" in service.output()
        finally:
            assert service.terminate() == 0, service.output()
        assert_outputs_equal(deployment, expected.outputs)
    finally:
        broker.stop()


def _wait_not_ready(service: ServiceProcess, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.get("/readyz")[0] == 503:
            return True
        time.sleep(0.2)
    return False


def test_rebalance_storm_loses_nothing(tmp_path: Path, kafka_bootstrap: str) -> None:
    deployment = _deployment(tmp_path, kafka_bootstrap)
    pairs = _events(12_000)
    values = [v for _, v in pairs]
    expected = replay_with_counts(deployment, values)
    kafka = deployment.settings.kafka
    one = ServiceProcess(deployment, "one")
    one.wait_ready()
    stream = StreamProducer(
        kafka.bootstrap_servers, kafka.input_topics[0], pairs, chunk=600, pause=0.5
    )
    others: list[ServiceProcess] = []
    try:
        wait_processed_at_least(one, len(pairs) // 8)
        two = ServiceProcess(deployment, "two")
        others.append(two)
        two.wait_ready()
        time.sleep(2)
        three = ServiceProcess(deployment, "three")
        others.append(three)
        three.wait_ready()
        time.sleep(2)
        # The member holding more of the stream dies (its partitions move after the
        # session timeout, from their last checkpoints); the other leaves cleanly.
        busy, calm = sorted((two, three), key=status_next_offsets, reverse=True)
        assert status_next_offsets(busy) > 0
        busy.kill()
        others.remove(busy)
        time.sleep(3)
        assert calm.terminate() == 0, calm.output()
        others.remove(calm)
        assert stream.produced < len(pairs), "the storm must happen mid-stream"
        stream.join()
        wait_processed(deployment, [one], len(pairs), timeout=240)
        _assert_counted_once(expected.events, expected.dead_letters, one)
    finally:
        for other in others:
            other.kill()
        assert one.terminate() == 0, one.output()
    assert_outputs_equal(deployment, expected.outputs)


def test_alerts_topic_gone_holds_offsets_back(tmp_path: Path, kafka_bootstrap: str) -> None:
    deployment = _deployment(tmp_path, kafka_bootstrap)
    kafka = deployment.settings.kafka
    pairs = _events(5_000)
    values = [v for _, v in pairs]
    expected = replay_with_counts(deployment, values)
    # Up to 40 % of the stream: before the drift (at 50 %), so (almost) no alerts yet.
    first = int(len(pairs) * 0.4)
    produce(deployment, pairs[:first])
    service = ServiceProcess(deployment)
    try:
        service.wait_ready()
        wait_processed(deployment, [service], first, timeout=120)
        before = [r.value for r in read_topic(deployment, kafka.alerts_topic)]
        _alter_topic(deployment, kafka.alerts_topic, delete=True)
        produce(deployment, pairs[first:])
        # The batch that makes the first alert cannot be acknowledged: offsets stop there.
        by_partition = read_by_partition(deployment, kafka.input_topics[0])
        limits = {p: first_alert_offsets(deployment, v) for p, v in by_partition.items()}
        assert any(limit is not None for limit in limits.values()), limits
        time.sleep(4)
        held = committed_offsets(deployment)
        time.sleep(5)
        assert committed_offsets(deployment) == held
        for partition, limit in limits.items():
            if limit is not None:
                assert held[partition] <= limit, (partition, held, limits)
        assert service.proc.poll() is None, service.output()
        assert sum(held.values()) < len(pairs)
        _alter_topic(deployment, kafka.alerts_topic, delete=False)
        wait_processed(deployment, [service], len(pairs), timeout=180)
        _assert_counted_once(expected.events, expected.dead_letters, service)
        assert "not acknowledged" in service.output()
    finally:
        assert service.terminate() == 0, service.output()
    assert_outputs_equal(deployment, expected.outputs, alerts_read=before)


def _alter_topic(deployment: Deployment, topic: str, *, delete: bool) -> None:
    async def run() -> None:
        kafka = deployment.settings.kafka
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
        await admin.start()
        try:
            if delete:
                await admin.delete_topics([topic])
                while topic in await admin.list_topics():
                    await asyncio.sleep(0.2)
                return
            deadline = time.monotonic() + 60
            while True:  # the deletion may still be finishing
                try:
                    await admin.create_topics([NewTopic(topic, kafka.partitions, 1)])
                    return
                except TopicAlreadyExistsError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.5)
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    asyncio.run(run())

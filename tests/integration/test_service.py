"""`driftline run` against a real broker: same outputs as `driftline replay`, nothing lost
across SIGTERM, kill -9 and a second instance joining the group."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson
import pytest

from tests.integration.service_support import (
    Deployment,
    ServiceProcess,
    by_key_order,
    dedup,
    make_deployment,
    produce,
    read_topic,
    replay_reference,
    scenario_events,
    wait_committed,
)

pytestmark = pytest.mark.kafka

BAD = [
    b'{"event_id": "bad-1", "model_id": "credit-a"',
    b"[1, 2, 3]",
    b'{"event_id": "bad-3", "model_id": "credit-b", "model_version": "1", '
    b'"timestamp": "2024-01-01T00:00:00Z", "features": {"amount": [1]}}',
    b"\xff\xfe not utf-8",
]


def _events_with_bad(per_model: int) -> list[tuple[bytes, bytes]]:
    pairs = scenario_events(per_model)
    for i, bad in enumerate(BAD):
        pairs.insert(1_000 + i * 3_001, (b"credit-a", bad))
    return pairs


def _deployment(tmp_path: Path, bootstrap: str) -> Deployment:
    return make_deployment(tmp_path, bootstrap, f"it-{uuid.uuid4().hex[:10]}")


def _assert_same_as_replay(deployment: Deployment, values: list[bytes]) -> None:
    kafka = deployment.settings.kafka
    expected = replay_reference(deployment, values)
    alerts = dedup(r.value for r in read_topic(deployment, kafka.alerts_topic))
    retrain = dedup(r.value for r in read_topic(deployment, kafka.retrain_topic))
    assert expected["alerts"], "the scenario must produce alerts"
    assert sorted(alerts) == sorted(expected["alerts"])
    assert by_key_order(alerts, "fingerprint") == by_key_order(expected["alerts"], "fingerprint")
    assert sorted(retrain) == sorted(expected["retrain"])
    assert by_key_order(retrain, "subject") == by_key_order(expected["retrain"], "subject")


def test_outputs_equal_replay_and_dead_letters_carry_headers(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    deployment = _deployment(tmp_path, kafka_bootstrap)
    pairs = _events_with_bad(4_000)
    produce(deployment, pairs)
    service = ServiceProcess(deployment)
    try:
        service.wait_ready()
        wait_committed(deployment, len(pairs))
        assert service.metric("driftline_events_consumed_total") == len(pairs)
        assert service.metric("driftline_dead_letters_total") == len(BAD)
        status, body = service.get("/v1/status")
        assert status == 200
        models = {m["model_id"] for m in orjson.loads(body)["models"]}
        assert models == {"credit-a", "credit-b", "credit-c"}
        assert service.get("/healthz")[0] == 200
        assert service.metric("driftline_drift_statistic") > 0
    finally:
        assert service.terminate() == 0, service.output()
    _assert_same_as_replay(deployment, [v for _, v in pairs])

    kafka = deployment.settings.kafka
    dead = read_topic(deployment, kafka.dead_letter_topic)
    assert sorted(r.value for r in dead) == sorted(BAD)
    for record in dead:
        headers = record.headers
        assert headers["driftline.source.topic"] == kafka.input_topics[0].encode()
        assert headers["driftline.reason"] in {
            b"invalid_json",
            b"not_an_object",
            b"invalid_feature_value",
            b"invalid_utf8",
        }
        assert int(headers["driftline.source.offset"]) >= 0
        assert int(headers["driftline.source.partition"]) in range(3)
        assert headers["driftline.message"]


@pytest.mark.parametrize("stop", ["sigterm", "kill9"])
def test_restart_mid_stream_loses_nothing(tmp_path: Path, kafka_bootstrap: str, stop: str) -> None:
    deployment = _deployment(tmp_path, kafka_bootstrap)
    pairs = _events_with_bad(5_000)
    produce(deployment, pairs)
    first = ServiceProcess(deployment, "first")
    first.wait_ready()
    first.wait_consumed(len(pairs) // 3)
    if stop == "sigterm":
        assert first.terminate() == 0, first.output()
    else:
        first.kill()
    second = ServiceProcess(deployment, "second")
    try:
        wait_committed(deployment, len(pairs))
    finally:
        assert second.terminate() == 0, second.output()
    _assert_same_as_replay(deployment, [v for _, v in pairs])


def test_two_instances_split_partitions(tmp_path: Path, kafka_bootstrap: str) -> None:
    deployment = _deployment(tmp_path, kafka_bootstrap)
    pairs = _events_with_bad(4_000)
    one = ServiceProcess(deployment, "one")
    two = ServiceProcess(deployment, "two")
    try:
        one.wait_ready()
        two.wait_ready()
        time.sleep(2)  # let the group settle with both members
        produce(deployment, pairs)
        wait_committed(deployment, len(pairs))
        owned = [
            {p["partition"] for p in orjson.loads(s.get("/v1/status")[1])["partitions"]}
            for s in (one, two)
        ]
        assert all(owned) and not owned[0] & owned[1], owned
        assert owned[0] | owned[1] == {0, 1, 2}
    finally:
        assert one.terminate() == 0, one.output()
        assert two.terminate() == 0, two.output()
    _assert_same_as_replay(deployment, [v for _, v in pairs])

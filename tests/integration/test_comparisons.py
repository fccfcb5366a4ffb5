"""Champion vs challenger through a real broker (issue 11): the service's comparison events on
``kafka.comparisons_topic`` equal ``replay``'s, across ``kill -9`` and a restart from the
checkpoint (the comparison's state lives in its champion's keyed version record), and
``/v1/status`` and ``/metrics`` show the final verdict.

The stream is the core test's (``tests/comparisons/test_pipeline_comparisons.py``): one
model, two versions scoring every request (shadow mode, same ``request_id``), the
challenger better; each prediction's label comes back as a feedback event 30 s to 10 min
later (event time), keyed by ``model_id`` like the predictions.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import save_profile
from tests.comparisons.test_pipeline_comparisons import _profile, stream
from tests.integration.service_support import (
    Deployment,
    ServiceProcess,
    _produce,
    dedup,
    make_deployment,
    read_topic,
    service_status,
    wait_processed,
)

pytestmark = pytest.mark.kafka

REQUESTS = 8_000


def _deployment(tmp_path: Path, bootstrap: str) -> Deployment:
    profile = tmp_path / "m.profile.json"
    save_profile(_profile(), profile)
    unique = f"cmp-{tmp_path.name[-12:]}"
    return make_deployment(
        tmp_path,
        bootstrap,
        unique,
        partitions=2,
        models=[{"model_id": "m", "reference_profile": str(profile)}],
        comparisons=[{"model_id": "m", "champion": "1", "challenger": "2"}],
        kafka={"comparisons_topic": f"{unique}-comparisons"},
    )


def _replayed(deployment: Deployment, values: list[bytes]) -> list[bytes]:
    pipeline = Pipeline(build_plan(deployment.settings))
    found: list[bytes] = []
    for start in range(0, len(values), 1000):
        found += [c.to_json() for c in pipeline.process(values[start : start + 1000]).comparisons]
    return found


def _produce_all(deployment: Deployment, values: list[bytes]) -> None:
    kafka = deployment.settings.kafka
    pairs = [(b"m", value) for value in values]
    asyncio.run(_produce(kafka.bootstrap_servers, kafka.input_topics[0], pairs))


def _verdicts(values: list[bytes]) -> list[str]:
    return [orjson.loads(v)["data"]["verdict"] for v in values]


def test_comparison_events_survive_kill_9_and_equal_replay(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    deployment = _deployment(tmp_path, kafka_bootstrap)
    values = stream(REQUESTS, shadow=True)
    expected = _replayed(deployment, values)
    assert _verdicts(expected)[-1] == "challenger_better", _verdicts(expected)
    cut = len(values) * 2 // 5
    _produce_all(deployment, values[:cut])
    first = ServiceProcess(deployment, "first")
    wait_processed(deployment, [first], cut, timeout=240)
    _produce_all(deployment, values[cut:])
    first.kill()
    second = ServiceProcess(deployment, "second")
    try:
        wait_processed(deployment, [second], len(values), timeout=240)
        status: dict[str, Any] = service_status(second)
        [comparison] = status["comparisons"]
        assert comparison["verdict"] == "challenger_better", comparison
        assert comparison["paired"] == comparison["pairs"] > 0
        assert comparison["difference"]["lower"] > 0, comparison
        labels = '{challenger="2",champion="1",model_id="m",verdict="challenger_better"}'
        assert second.metric(f"driftline_comparison_verdict{labels}") == 1.0
    finally:
        assert second.terminate() == 0, second.output()
    assert "restored checkpoint" in second.output()
    topic = deployment.settings.kafka.comparisons_topic
    records = read_topic(deployment, topic)
    assert {r.key for r in records} == {b"m"}
    assert all(
        r.headers.get("content-type", b"").startswith(b"application/cloudevents+json")
        for r in records
    )
    assert dedup(r.value for r in records) == expected

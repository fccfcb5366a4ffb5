"""Ground truth through the whole core: feedback events joined with predictions, model
performance measured, PerformanceDrift alerts and retrain requests (issue 10).

The stream: a binary classifier scoring x ~ N(0, 1) with p = sigmoid(2x), calibrated on
the reference; its labels come back as feedback events 30 s to 10 min (event time) after
the prediction, interleaved with later predictions. From ``CHANGE`` on the world changes
(concept drift: the inputs stay the same, the outcome no longer follows p), so only the
model's performance can tell.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
import orjson
import pytest

from driftline.config import parse_settings
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import ProfileSource, ReferenceProfile, build_profile

RATE = 10.0
"""Predictions per second of event time."""
START = 1_700_000_000.0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    result: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return result


def _profile() -> ReferenceProfile:
    rng = np.random.default_rng(1)
    x = rng.normal(size=20_000)
    p = _sigmoid(2 * x)
    y = (rng.random(x.size) < p).astype(int)
    return build_profile(
        {"x": x.tolist(), "__prediction__": p.tolist(), "__label__": y.tolist()},
        model_id="m",
        model_version="1",
        source=ProfileSource(kind="file", sha256="0" * 64),
    )


def _stream(predictions: int, change: int | None, seed: int = 7) -> list[bytes]:
    """Predictions at RATE per second, each one's label as a feedback event 30 s to 10 min
    later (event time), merged in event-time order (labels of predictions made before the
    end only); after ``change`` the outcome is the opposite of what the model learned for
    half of the inputs (x > 0)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=predictions)
    p = _sigmoid(2 * x)
    truth = p.copy()
    if change is not None:
        flipped = np.arange(predictions) >= change
        truth[flipped & (x > 0)] = 1 - p[flipped & (x > 0)]
    y = (rng.random(predictions) < truth).astype(int)
    times = START + np.arange(predictions) / RATE
    delays = rng.uniform(30, 600, predictions)
    events: list[tuple[float, int, dict[str, Any]]] = []
    for i in range(predictions):
        base = {"event_id": f"e{i}", "model_id": "m", "model_version": "1"}
        prediction = {
            **base,
            "timestamp": float(times[i]),
            "features": {"x": float(x[i])},
            "prediction": float(p[i]),
        }
        events.append((float(times[i]), 2 * i, prediction))
        label_time = float(times[i] + delays[i])
        if label_time <= times[-1]:
            events.append(
                (label_time, 2 * i + 1, {**base, "timestamp": label_time, "label": int(y[i])})
            )
    ordered = heapq.nsmallest(len(events), events)
    return [orjson.dumps(e, option=orjson.OPT_SERIALIZE_NUMPY) for _, _, e in ordered]


def _pipeline() -> Pipeline:
    settings = parse_settings({"models": [{"model_id": "m"}]})
    return Pipeline(build_plan(settings, {0: _profile()}))


def _run(pipeline: Pipeline, events: list[bytes], batch: int) -> list[bytes]:
    """The alerts, then the retrain requests, each in stream order (as on their two topics:
    how a batch's two lists interleave depends on the batch)."""
    alerts: list[bytes] = []
    requests: list[bytes] = []
    for start in range(0, len(events), batch):
        result = pipeline.process(events[start : start + batch])
        assert result.dead_letters == []
        alerts += [a.to_json() for a in result.alerts]
        requests += [r.to_json() for r in result.retrain_requests]
    return alerts + requests


@pytest.fixture(scope="module")
def drifting() -> list[bytes]:
    return _stream(40_000, change=20_000)


def test_concept_drift_is_alerted_as_performance_drift_only_after_the_change(
    drifting: list[bytes],
) -> None:
    pipeline = _pipeline()
    outputs = [orjson.loads(o) for o in _run(pipeline, drifting, 1_000)]
    alerts = [o["data"] for o in outputs if o["type"] == "io.driftline.alert.v1"]
    performance = [a for a in alerts if a["labels"]["alertname"] == "PerformanceDrift"]
    assert performance, alerts
    first = performance[0]
    assert first["status"] == "firing" and first["labels"]["feature"] == "__error__"
    # It fires after the change: its window holds pairs of predictions made after it.
    change_time = START + 20_000 / RATE
    assert orjson.loads(orjson.dumps(first))["window"]["end"] > _iso(change_time)
    # Concept drift: the inputs did not move, so no input feature alerts.
    assert not [a for a in alerts if a["labels"]["feature"] == "x"]
    # The best reason to retrain: a request with that reason.
    requests = [o["data"] for o in outputs if o["type"] == "io.driftline.retrain.requested.v1"]
    assert [r["reason"]["code"] for r in requests][:1] == ["performance_drift"]
    # Every label event was counted, none became a dead letter.
    labels = sum(1 for e in drifting if b'"label"' in e)
    assert pipeline.counters.feedback[("m", "1")] == labels
    assert pipeline.counters.events[("m", "1")] == 40_000
    status = pipeline.versions[("m", "1")].ground_truth.status()  # type: ignore[union-attr]
    assert status["joined"] == labels and status["unmatched"] == 0
    assert status["early_buffered_now"] == 0
    assert status["duplicate"] == status["late"] == status["expired"] == 0
    assert 30 <= status["label_delay_seconds"]["p50"] <= 600


def _iso(seconds: float) -> str:
    from driftline.cloudevents import format_time

    return format_time(seconds)


def test_a_stationary_model_raises_no_performance_alert() -> None:
    outputs = [orjson.loads(o) for o in _run(_pipeline(), _stream(30_000, change=None), 1_000)]
    names = {o["data"]["labels"]["alertname"] for o in outputs if "labels" in o["data"]}
    assert "PerformanceDrift" not in names and "EstimatedPerformanceDrift" not in names


@pytest.mark.parametrize("batch", [337, 2_500])
def test_outputs_do_not_depend_on_batches_nor_on_a_restore(
    drifting: list[bytes], batch: int
) -> None:
    whole = _run(_pipeline(), drifting, 1_000)
    assert _run(_pipeline(), drifting, batch) == whole
    cut = 23_456  # predictions pending, early labels waiting, windows half full
    first = _pipeline()
    before = _run(first, drifting[:cut], batch)
    second = _pipeline()
    assert second.restore(first.to_state()).alerts == []
    assert before + _run(second, drifting[cut:], batch) == whole
    assert second.to_state() == _replayed_state(drifting)


def _replayed_state(events: list[bytes]) -> bytes:
    pipeline = _pipeline()
    _run(pipeline, events, 1_000)
    return pipeline.to_state()


def test_feedback_of_unknown_versions_is_counted_not_dead_lettered() -> None:
    pipeline = _pipeline()
    label = orjson.dumps(
        {"event_id": "x", "model_id": "ghost", "model_version": "9", "timestamp": START, "label": 1}
    )
    result = pipeline.process([label, label])
    assert result.dead_letters == [] and pipeline.counters.feedback_unknown == 2
    restored = _pipeline()
    restored.restore(pipeline.to_state())
    assert restored.counters.feedback_unknown == 2


def test_a_profile_of_training_data_without_predictions_still_gets_ground_truth(
    drifting: list[bytes],
) -> None:
    """Profiles built from training data seldom have the prediction: it is learned from
    the first live events, then ground truth starts (its reference: the first joined
    pairs) and the concept drift is still found."""
    rng = np.random.default_rng(1)
    profile = build_profile(
        {"x": rng.normal(size=5_000).tolist()},
        model_id="m",
        model_version="1",
        source=ProfileSource(kind="file", sha256="0" * 64),
    )
    settings = parse_settings({"warmup_events": 2_000, "models": [{"model_id": "m"}]})
    pipeline = Pipeline(build_plan(settings, {0: profile}))
    outputs = [orjson.loads(o) for o in _run(pipeline, drifting, 1_000)]
    version = pipeline.versions[("m", "1")]
    assert version is not None and version.ground_truth is not None
    assert version.ground_truth.spec.task.value == "binary"
    names = [o["data"]["labels"]["alertname"] for o in outputs if "labels" in o["data"]]
    assert "PerformanceDrift" in names


def test_every_message_is_counted_once(drifting: list[bytes]) -> None:
    """Predictions, feedback, feedback of unknown versions, ignored models' events and
    their feedback, and dead letters add up to the messages."""
    settings = parse_settings({"unconfigured_models": "ignore", "models": [{"model_id": "m"}]})
    pipeline = Pipeline(build_plan(settings, {0: _profile()}))
    other = [e.replace(b'"model_id":"m"', b'"model_id":"other"') for e in drifting[:3_000]]
    ghost = [
        orjson.dumps(
            {
                "event_id": "g",
                "model_id": "ghost",
                "model_version": "1",
                "timestamp": START,
                "label": 0,
            }
        )
    ]
    messages = [*drifting[:20_000], *other, *ghost, b"not json"]
    for start in range(0, len(messages), 777):
        pipeline.process(messages[start : start + 777])
    c = pipeline.counters
    total = (
        sum(c.events.values())
        + sum(c.ignored.values())
        + sum(c.feedback.values())
        + c.feedback_unknown
        + sum(c.dead_letters.values())
    )
    assert total == len(messages)
    assert c.ignored[("other", "1")] == 3_000 and c.feedback_unknown == 1


@pytest.mark.parametrize("batch", [1, 7, 250, 100_000])
def test_labels_read_before_any_prediction_of_their_version_wait_and_join(batch: int) -> None:
    """Feedback read from its own topic ahead of the predictions (found through Kafka:
    before, labels of a configured version that had no prediction yet were counted as
    unknown, and labels ahead of a new version's first prediction in the same batch were
    dropped): they wait as early labels, whatever the split into batches."""
    events = _stream(3_000, change=None)
    labels = [e for e in events if b'"label"' in e]
    predictions = [e for e in events if b'"label"' not in e]
    pipeline = _pipeline()
    outputs = _run(pipeline, labels + predictions, batch)
    status = pipeline.versions[("m", "1")].ground_truth.status()  # type: ignore[union-attr]
    assert status["joined"] == len(labels) > 0
    assert status["unmatched"] == 0 and status["early_buffered_now"] == 0
    assert pipeline.counters.feedback_unknown == 0
    assert outputs == _run(_pipeline(), labels + predictions, 1_000)


def test_before_its_first_label_a_version_remembers_few_predictions() -> None:
    """A version that gets no labels holds at most PENDING_BEFORE_FIRST_LABEL predictions
    (memory and checkpoint stay small); labels read a little behind their predictions still
    join, and from the first label on the join has its configured limits."""
    from driftline.ground_truth import PENDING_BEFORE_FIRST_LABEL

    events = _stream(30_000, change=None)
    predictions = [e for e in events if b'"label"' not in e]
    labels = [e for e in events if b'"label"' in e]
    pipeline = _pipeline()
    _run(pipeline, predictions, 1_000)
    truth = pipeline.versions[("m", "1")].ground_truth  # type: ignore[union-attr]
    assert truth is not None
    status = truth.status()
    assert status["pending_now"] == PENDING_BEFORE_FIRST_LABEL
    assert status["expired"] == len(predictions) - PENDING_BEFORE_FIRST_LABEL
    assert truth.join.memory_bytes() < 32 * PENDING_BEFORE_FIRST_LABEL * 1.5
    recent = {
        f"e{i}" for i in range(len(predictions) - PENDING_BEFORE_FIRST_LABEL, len(predictions))
    }
    late = [e for e in labels if orjson.loads(e)["event_id"] in recent]
    _run(pipeline, late, 1_000)
    assert truth.status()["joined"] == len(late) > 0
    assert truth.join.limits.max_pending == pipeline.plan.labels.max_pending

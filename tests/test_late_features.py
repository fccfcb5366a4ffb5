"""Columns the reference profile lacks learn their reference from live events (issue 10,
section 4, defect 1): a profile built from training data has no ``__prediction__``, and
prediction drift used to go unseen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from driftline.config import parse_settings
from driftline.events import PREDICTION_FEATURE
from driftline.pipeline import Pipeline, PipelineOutput
from driftline.planning import build_plan
from driftline.profile import ProfileSource, ReferenceProfile, build_profile
from tests.stream_support import event_stream, reference_columns

M1 = ("m", "1")
WARMUP = 1_000
CONFIG: dict[str, Any] = {
    "warmup_events": WARMUP,
    "window": {"events": 500},
    "models": [{"model_id": "m"}],
}


def _profile(**extra: list[Any]) -> ReferenceProfile:
    """The stream's features; no ``__prediction__`` unless given in ``extra``."""
    columns: dict[str, list[Any]] = {**reference_columns(20_000), **extra}
    return build_profile(
        columns, model_id="m", model_version="1", source=ProfileSource("file", "0" * 64)
    )


PROFILE = _profile()


def _scores(n: int, seed: int, shift_from: int | None = None) -> list[float]:
    """Predicted probabilities; from event ``shift_from`` on the model scores higher."""
    z = np.random.default_rng(seed).normal(size=n)
    if shift_from is not None:
        z[shift_from:] += 1.0
    return np.round(1.0 / (1.0 + np.exp(-z)), 6).tolist()


def _with_predictions(
    n: int, shift_from: int | None = None, every: int = 1, first: int = 0
) -> list[bytes]:
    """The stream with a ``prediction`` in every ``every``-th event from event ``first``."""
    scores = _scores(n, 7, shift_from)
    events = []
    for i, raw in enumerate(event_stream(n)):
        event = orjson.loads(raw)
        if i >= first and (i - first) % every == 0:
            event["prediction"] = scores[i]
        events.append(orjson.dumps(event))
    return events


def _run(pipeline: Pipeline, events: list[bytes], batch: int = 1000) -> PipelineOutput:
    total = PipelineOutput()
    for i in range(0, len(events), batch):
        out = pipeline.process(events[i : i + batch])
        total.alerts.extend(out.alerts)
        total.retrain_requests.extend(out.retrain_requests)
        total.learning_started.extend(out.learning_started)
    return total


def _pipeline(config: dict[str, Any] = CONFIG, profile: ReferenceProfile = PROFILE) -> Pipeline:
    return Pipeline(build_plan(parse_settings(config), {0: profile}))


def _subjects(output: PipelineOutput) -> list[str]:
    return [f"{a.event['subject']} {a.status}" for a in output.alerts]


def test_prediction_drift_is_seen_without_predictions_in_the_profile() -> None:
    assert PREDICTION_FEATURE not in PROFILE.features
    pipeline = _pipeline()
    output = _run(pipeline, _with_predictions(12_000, shift_from=6_000))
    firing = [a for a in output.alerts if a.status == "firing"]
    assert {a.event["subject"] for a in firing} == {"m/1/__prediction__"}
    assert "PredictionDrift" in {a.event["data"]["labels"]["alertname"] for a in firing}
    shifted = "2025-06-15T15:07:40"  # event 6,000
    assert min(a.event["data"]["window"]["start"] for a in firing) >= shifted
    monitor = pipeline.monitors()[M1]
    assert PREDICTION_FEATURE in monitor.windows
    [notice] = output.learning_started  # once
    assert (notice.feature, notice.profile_id, notice.warmup_events) == (
        PREDICTION_FEATURE,
        PROFILE.profile_id,
        WARMUP,
    )
    assert "exclude" in notice.message()


def test_a_stationary_prediction_raises_no_alert() -> None:
    output = _run(_pipeline(), _with_predictions(12_000))
    assert _subjects(output) == []


def test_learning_covers_warmup_events_then_monitoring_starts_at_the_next_window() -> None:
    pipeline = _pipeline()
    events = _with_predictions(3_000)
    _run(pipeline, events[:700])
    monitor = pipeline.monitors()[M1]
    [progress] = pipeline.snapshot().versions[0].learning_features
    assert (progress.feature, progress.events, progress.warmup_events) == (
        PREDICTION_FEATURE,
        700,
        WARMUP,
    )
    _run(pipeline, events[700:1_200])  # learned at event 1,000; the window at 1,000 closes
    assert PREDICTION_FEATURE in monitor.windows
    assert pipeline.snapshot().versions[0].learning_features == ()
    learned = monitor.late.monitored[PREDICTION_FEATURE]
    assert learned.count + learned.missing_count == WARMUP


def test_rows_without_the_column_count_as_missing_from_its_first_value() -> None:
    pipeline = _pipeline()
    _run(pipeline, [b for i, b in enumerate(_with_predictions(2_000, every=4)) if i >= 3])
    learned = pipeline.monitors()[M1].late.monitored[PREDICTION_FEATURE]
    assert (learned.count, learned.missing_count) == (250, 750)  # from event 4 on: 1 in 4


def test_exclude_still_turns_it_off() -> None:
    config = {
        **CONFIG,
        "models": [{"model_id": "m", "features": {"__prediction__": {"exclude": True}}}],
    }
    pipeline = _pipeline(config)
    output = _run(pipeline, _with_predictions(12_000, shift_from=6_000))
    assert _subjects(output) == [] and output.learning_started == []
    monitor = pipeline.monitors()[M1]
    assert PREDICTION_FEATURE not in monitor.windows and not monitor.late


def test_a_profile_with_every_live_feature_learns_nothing() -> None:
    profile = _profile(__prediction__=_scores(20_000, 8))
    pipeline = _pipeline(profile=profile)
    output = _run(pipeline, _with_predictions(12_000, shift_from=6_000))
    assert output.learning_started == [] and not pipeline.monitors()[M1].late
    assert b"late_features" not in pipeline.to_state()  # states keep their bytes
    assert any("__prediction__" in s for s in _subjects(output))


def test_columns_new_after_warmup_are_learned_too() -> None:
    config = {"warmup_events": WARMUP, "window": {"events": 500}}
    pipeline = Pipeline(build_plan(parse_settings(config), {}))
    events = _with_predictions(4_000)
    _run(pipeline, [orjson.dumps({**orjson.loads(e), "prediction": None}) for e in events[:1_500]])
    _run(pipeline, events[1_500:])
    monitor = pipeline.monitors()[M1]
    assert monitor.profile is not None and monitor.profile.source.kind == "warmup"
    assert PREDICTION_FEATURE not in monitor.profile.features
    assert PREDICTION_FEATURE in monitor.windows


def test_the_learned_columns_are_capped_like_the_warmup() -> None:
    # 4 columns of at most 1,000 values each: 4 columns (the 6 features are the profile's).
    config = {**CONFIG, "limits": {"max_warmup_values": 4_000}}
    events = [
        orjson.dumps({**orjson.loads(e), "features": {**orjson.loads(e)["features"], **extra}})
        for e, extra in zip(
            event_stream(1_000),
            [{f"new{k}": float(k) for k in range(6) if k <= i % 7} for i in range(1_000)],
            strict=True,
        )
    ]
    pipeline = _pipeline(config)
    output = _run(pipeline, events, batch=97)
    assert [n.feature for n in output.learning_started] == ["new0", "new1", "new2", "new3"]
    assert len(pipeline.monitors()[M1].late) == 4


Outputs = tuple[list[bytes], list[bytes], list[bytes]]


def _outputs(pipeline: Pipeline, events: list[bytes], cuts: Sequence[int] = ()) -> Outputs:
    """Alerts, findings and the columns that started learning, over batches cut at
    ``cuts`` (each in stream order: a batch holds them in this order)."""
    alerts: list[bytes] = []
    findings: list[bytes] = []
    notices: list[bytes] = []
    for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True):
        result = pipeline.process(events[a:b])
        alerts.extend(x.to_json() for x in result.alerts)
        findings.extend(
            orjson.dumps([f.feature, f.detector, f.sequence, f.value]) for f in result.findings
        )
        notices.extend(orjson.dumps([n.feature, n.model_id]) for n in result.learning_started)
    return alerts, findings, notices


def _state(pipeline: Pipeline) -> Any:
    """The state as data (a restored alert's event keeps its keys in another order)."""
    return orjson.loads(pipeline.to_state())


STREAM = _with_predictions(4_000, shift_from=2_000, every=2, first=451)
SMALL: dict[str, Any] = {**CONFIG, "warmup_events": 300, "window": {"events": 400}}
WHOLE = _pipeline(SMALL)
WHOLE_OUTPUT = _outputs(WHOLE, STREAM)
WHOLE_STATE = _state(WHOLE)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, len(STREAM) - 1), max_size=12, unique=True))
@example([420])  # the column's first value (event 451) is not a batch's first event
@example([451, 752, 1_100])  # learning starts and ends on a batch's first row
def test_any_batch_split_gives_the_same_outputs_and_state(cuts: list[int]) -> None:
    assert any(b"PredictionDrift" in x for x in WHOLE_OUTPUT[0])
    assert any(b"__prediction__" in x for x in WHOLE_OUTPUT[1])
    pipeline = _pipeline(SMALL)
    assert _outputs(pipeline, STREAM, sorted(cuts)) == WHOLE_OUTPUT
    assert _state(pipeline) == WHOLE_STATE


@settings(max_examples=15, deadline=None)
@given(st.integers(1, len(STREAM) - 1))
@example(420)
@example(751)
def test_state_round_trip_at_any_cut_continues_exactly(cut: int) -> None:
    first = _pipeline(SMALL)
    head = _outputs(first, STREAM[:cut])
    restored = _pipeline(SMALL)
    assert restored.restore(first.to_state()).alerts == []
    assert _state(restored) == _state(first)
    tail = _outputs(restored, STREAM[cut:])
    assert tuple(h + t for h, t in zip(head, tail, strict=True)) == WHOLE_OUTPUT
    assert _state(restored) == WHOLE_STATE


def _drifted_prediction() -> Pipeline:
    """A pipeline whose learned ``__prediction__`` reference has alerts firing."""
    pipeline = _pipeline()
    _run(pipeline, _with_predictions(12_000, shift_from=6_000))
    version = pipeline.versions[M1]
    assert version is not None
    assert {a.event["subject"] for a in version.alerts.firing()} == {"m/1/__prediction__"}
    return pipeline


def test_a_profile_that_now_has_the_column_replaces_the_learned_reference() -> None:
    before = _drifted_prediction()
    version = before.versions[M1]
    assert version is not None
    firing = version.alerts.firing()
    profile = _profile(__prediction__=_scores(20_000, 8))
    after = _pipeline(profile=profile)
    output = after.restore(before.to_state())
    assert [a.fingerprint for a in output.alerts] == [a.fingerprint for a in firing]
    assert {a.status for a in output.alerts} == {"resolved"}
    reason = output.alerts[0].event["data"]["annotations"]["resolved_reason"]
    assert "reference profile changed" in reason
    monitor = after.monitors()[M1]
    assert not monitor.late and monitor.profile == profile
    assert PREDICTION_FEATURE in monitor.windows  # on the configured reference now


def test_excluding_a_learned_column_resets_the_version() -> None:
    before = _drifted_prediction()
    config = {
        **CONFIG,
        "models": [{"model_id": "m", "features": {"__prediction__": {"exclude": True}}}],
    }
    after = _pipeline(config)
    output = after.restore(before.to_state())
    assert output.alerts and {a.status for a in output.alerts} == {"resolved"}
    assert not after.monitors()[M1].late


def test_excluding_a_column_still_learning_just_forgets_it() -> None:
    before = _pipeline()
    _run(before, _with_predictions(600))
    assert before.monitors()[M1].late.learning
    config = {
        **CONFIG,
        "models": [{"model_id": "m", "features": {"__prediction__": {"exclude": True}}}],
    }
    after = _pipeline(config)
    assert after.restore(before.to_state()).alerts == []
    assert not after.monitors()[M1].late


def test_learning_state_is_bounded_independently_of_warmup_events() -> None:
    sizes = []
    for warmup in (2_000, 20_000):
        config = {**CONFIG, "warmup_events": warmup}
        pipeline = _pipeline(config)
        _run(pipeline, _with_predictions(1_900))
        assert pipeline.monitors()[M1].late.learning
        sizes.append(len(pipeline.to_state()))
    assert sizes[1] == sizes[0]

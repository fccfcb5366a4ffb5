"""``__label__`` is not monitored by the feature monitor (issue 10, section 4, defect 2).

A profile built from data with a ``__label__`` column used to make every prediction event
without an inline label count as a missing label: a critical ``quality_missing`` alert on
``__label__`` within a few windows, for every such model. Labels arrive as feedback; label
drift is computed on the joined labels by the performance monitor, not here.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest

import driftline.monitor as monitor_module
import driftline.pipeline as pipeline_module
from driftline.config import parse_settings
from driftline.events import LABEL_FEATURE, Scalar
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import ProfileSource, ReferenceProfile, build_profile
from tests.stream_support import event_stream, reference_columns

CONFIGURED = {"models": [{"model_id": "m"}]}


def _profile_with_labels() -> ReferenceProfile:
    columns = reference_columns(20_000)
    labels: list[Scalar] = (np.random.default_rng(5).random(20_000) < 0.3).astype(int).tolist()
    columns[LABEL_FEATURE] = labels
    return build_profile(
        columns, model_id="m", model_version="1", source=ProfileSource(kind="file", sha256="0" * 64)
    )


def _alerts(pipeline: Pipeline, events: list[bytes]) -> list[dict[str, object]]:
    alerts = []
    for i in range(0, len(events), 1000):
        alerts.extend(
            orjson.loads(a.to_json()) for a in pipeline.process(events[i : i + 1000]).alerts
        )
    return alerts


def test_prediction_events_without_a_label_raise_no_label_alert() -> None:
    profile = _profile_with_labels()
    assert LABEL_FEATURE in profile.features  # the profile keeps it (performance needs it)
    pipeline = Pipeline(build_plan(parse_settings(CONFIGURED), {0: profile}))
    alerts = _alerts(pipeline, event_stream(10_000))  # stationary, no label in any event
    assert [a["subject"] for a in alerts] == []
    monitor = pipeline.monitors()[("m", "1")]
    assert LABEL_FEATURE not in monitor.windows
    assert all(feature != LABEL_FEATURE for feature, _ in monitor.monitored())
    assert monitor.profile is not None and LABEL_FEATURE in monitor.profile.features


def test_inline_labels_are_not_monitored_either() -> None:
    """Not even a distribution test: label drift belongs to the joined labels."""
    events = [
        orjson.dumps({**orjson.loads(e), "label": 1}) for e in event_stream(5_000)
    ]  # every label 1: far from the reference's 30 %
    pipeline = Pipeline(build_plan(parse_settings(CONFIGURED), {0: _profile_with_labels()}))
    assert _alerts(pipeline, events) == []
    assert not any(f.feature == LABEL_FEATURE for f in pipeline.process(events[:1]).findings)


def test_a_warmup_keeps_the_label_in_the_learned_profile_but_does_not_monitor_it() -> None:
    events = [
        orjson.dumps({**orjson.loads(e), "label": i % 2}) for i, e in enumerate(event_stream(3_000))
    ]
    pipeline = Pipeline(build_plan(parse_settings({"warmup_events": 1_000}), {}))
    for i in range(0, len(events), 500):
        pipeline.process(events[i : i + 500])
    monitor = pipeline.monitors()[("m", "1")]
    assert monitor.profile is not None and LABEL_FEATURE in monitor.profile.features
    assert LABEL_FEATURE not in monitor.windows
    assert "x_normal" in monitor.windows


def test_an_older_state_with_a_label_window_drops_it_and_resolves_its_alerts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """States written before this fix hold a ``__label__`` window (and, as the defect goes,
    its firing ``quality_missing`` alert): restoring drops only that, the other features
    continue."""
    profile = _profile_with_labels()
    events = event_stream(8_000)
    with monkeypatch.context() as patch:  # the old behaviour: __label__ monitored
        patch.setattr(monitor_module, "LABEL_FEATURE", "__no_such_column__")
        patch.setattr(pipeline_module, "LABEL_FEATURE", "__no_such_column__")
        old = Pipeline(build_plan(parse_settings(CONFIGURED), {0: profile}))
        assert _alerts(old, events[:4_000])
        version = old.versions[("m", "1")]
        assert version is not None
        [firing] = version.alerts.firing()
        assert firing.event["subject"] == "m/1/__label__"
        state = old.to_state()
    new = Pipeline(build_plan(parse_settings(CONFIGURED), {0: profile}))
    output = new.restore(state)
    [resolved] = output.alerts
    assert resolved.fingerprint == firing.fingerprint and resolved.status == "resolved"
    assert (
        "__label__ is no longer monitored"
        in resolved.event["data"]["annotations"]["resolved_reason"]
    )
    monitor = new.monitors()[("m", "1")]
    assert LABEL_FEATURE not in monitor.windows
    kept = orjson.loads(state)["versions"][0]["state"]["monitor"]["features"]
    assert {n: w.to_state() for n, w in monitor.windows.items()} == {
        n: w for n, w in kept.items() if n != LABEL_FEATURE
    }
    assert ("m", "1") in new.take_changed()  # the dropped window is checkpointed away
    assert _alerts(new, events[4_000:]) == []

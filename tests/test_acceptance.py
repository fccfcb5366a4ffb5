"""The alerting promises of the defaults, measured on controlled streams.

* Stationary data drawn from the reference: no alert in 10^6 events per feature.
* A 1-sd mean shift, a doubled standard deviation at the same mean, a 25-point rise of one
  category's share and a missing rate going from 1% to 25% each fire an alert on that
  feature within 20,000 events (at 100 events/s), and on no other feature.
"""

from __future__ import annotations

import pytest

from driftline.config import parse_settings
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.policy.alerts import Alert
from driftline.profile import ProfileSource, build_profile
from tests.stream_support import FEATURES, Drift, event_stream, reference_columns

DRIFT_START = 20_000
DETECTION_BUDGET = 20_000


def _pipeline() -> Pipeline:
    profile = build_profile(
        reference_columns(100_000),
        model_id="m",
        model_version="1",
        source=ProfileSource(kind="file", sha256="0" * 64),
    )
    settings = parse_settings({"models": [{"model_id": "m"}]})
    return Pipeline(build_plan(settings, {0: profile}))


def _run(pipeline: Pipeline, total: int, drift: Drift | None) -> list[Alert]:
    alerts: list[Alert] = []
    chunk = 50_000
    for first in range(0, total, chunk):
        events = event_stream(min(chunk, total - first), drift=drift, first=first)
        for i in range(0, len(events), 1000):
            alerts.extend(pipeline.process(events[i : i + 1000]).alerts)
    return alerts


@pytest.mark.slow
def test_no_alert_in_a_million_stationary_events() -> None:
    pipeline = _pipeline()
    alerts = _run(pipeline, 1_000_000, None)
    assert sum(pipeline.counters.events.values()) == 1_000_000
    assert len(pipeline.monitors()[("m", "1")].windows) == len(FEATURES)
    assert [a.event["data"]["annotations"]["summary"] for a in alerts] == []


@pytest.mark.parametrize(
    "drift",
    [
        Drift("x_normal", "mean_shift", DRIFT_START),
        Drift("x_normal", "scale", DRIFT_START),
        Drift("cat", "category_surge", DRIFT_START),
        Drift("x_lognormal", "missing_surge", DRIFT_START),
    ],
    ids=lambda d: d.kind,
)
def test_each_kind_of_change_fires_on_its_feature_only(drift: Drift) -> None:
    pipeline = _pipeline()
    alerts = _run(pipeline, DRIFT_START + DETECTION_BUDGET, drift)
    firing = [a for a in alerts if a.status == "firing"]
    assert firing, f"no alert within {DETECTION_BUDGET:,} events of a {drift.kind}"
    assert {a.feature for a in alerts} == {drift.feature}
    first = min(a.event["data"]["evidence"]["sequence"] for a in firing)
    assert DRIFT_START < first <= DRIFT_START + DETECTION_BUDGET

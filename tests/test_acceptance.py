"""The alerting promises of the defaults, measured on controlled streams.

* Stationary data drawn from the reference: no alert in 10^6 events per feature.
* A 1-sd mean shift, a doubled standard deviation at the same mean, a 25-point rise of one
  category's share and a missing rate going from 1% to 25% each fire an alert on that
  feature within 1,000 events (the first window after the change, which starts at a window
  boundary here; ``load_tests/bench_alert_delay.py`` measures unaligned change points),
  and on no other feature. With the three-window rule (``alerts.critical_fire_after: 3``)
  the first alert comes 3,000 events after the change, which this budget rejects.
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
DETECTION_BUDGET = 1_000


def _pipeline(alerts: dict[str, int] | None = None) -> Pipeline:
    profile = build_profile(
        reference_columns(100_000),
        model_id="m",
        model_version="1",
        source=ProfileSource(kind="file", sha256="0" * 64),
    )
    settings = parse_settings({"models": [{"model_id": "m"}], "alerts": alerts or {}})
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


CHANGES = [
    Drift("x_normal", "mean_shift", DRIFT_START),
    Drift("x_normal", "scale", DRIFT_START),
    Drift("cat", "category_surge", DRIFT_START),
    Drift("x_lognormal", "missing_surge", DRIFT_START),
]


def _first_alert(alerts: list[Alert], drift: Drift) -> int:
    """The stream position of the first firing alert; every alert is on the drifted feature."""
    firing = [a for a in alerts if a.status == "firing"]
    assert firing, f"no alert after a {drift.kind}"
    assert {a.feature for a in alerts} == {drift.feature}
    return min(a.event["data"]["evidence"]["sequence"] for a in firing)


@pytest.mark.parametrize("drift", CHANGES, ids=lambda d: d.kind)
def test_each_kind_of_change_fires_on_its_feature_only(drift: Drift) -> None:
    alerts = _run(_pipeline(), DRIFT_START + DETECTION_BUDGET, drift)
    first = _first_alert(alerts, drift)
    assert DRIFT_START < first <= DRIFT_START + DETECTION_BUDGET


@pytest.mark.parametrize("drift", CHANGES, ids=lambda d: d.kind)
def test_the_three_window_rule_misses_the_budget(drift: Drift) -> None:
    """The budget tells the rules apart: every alert after three windows comes 3,000
    events after the change."""
    alerts = _run(_pipeline({"critical_fire_after": 3}), DRIFT_START + 3 * 1_000, drift)
    assert _first_alert(alerts, drift) == DRIFT_START + 3 * 1_000 > DRIFT_START + DETECTION_BUDGET

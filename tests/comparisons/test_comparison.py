"""One comparison fed outcomes directly: pairing, verdict events, status, state."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.comparisons import Comparison, ComparisonSettings
from driftline.ground_truth import Outcomes
from driftline.performance.task import Task, TaskSpec

BINARY = TaskSpec(Task.BINARY, "class")
START = 1_700_000_000.0


@dataclass(frozen=True)
class Row:
    side: int
    kind: str  # "prediction" or "pair"
    event_id: str
    request: str | None
    value: float  # prediction code, or loss
    time: float


def stream(
    rng: np.random.Generator,
    requests: int,
    rates: tuple[float, float],
    *,
    shadow: bool,
    label_delay: float = 30.0,
) -> list[Row]:
    """Predictions at 1/s (both versions per request in shadow mode, one otherwise), each
    outcome ``label_delay`` s later, merged in event-time order."""
    rows: list[tuple[float, int, Row]] = []
    for i in range(requests):
        sides = (0, 1) if shadow else (int(rng.integers(2)),)
        for side in sides:
            event_id = f"{side}-{i}"
            request = f"r{i}" if shadow else None
            t = START + i
            error = float(rng.random() < rates[side])
            rows.append((t, len(rows), Row(side, "prediction", event_id, request, error, t)))
            done = t + label_delay * rng.random()
            rows.append((done, len(rows), Row(side, "pair", event_id, request, error, done)))
    return [row for _, _, row in sorted(rows)]


def outcomes(
    rows: list[Row], side: int, spec: TaskSpec = BINARY, label_range: float | None = None
) -> Outcomes | None:
    """The rows (a batch) of ``side`` as ground truth would give them."""
    mine = [(i, r) for i, r in enumerate(rows) if r.side == side]
    if not mine:
        return None
    predictions = [(i, r) for i, r in mine if r.kind == "prediction"]
    pairs = [(i, r) for i, r in mine if r.kind == "pair"]
    out = Outcomes(
        spec=spec,
        label_range=label_range,
        prediction_indices=np.array([i for i, _ in predictions], dtype=np.int64),
        prediction_ids=[r.event_id for _, r in predictions],
        request_ids=[r.request for _, r in predictions],
        prediction_codes=np.array([r.value for _, r in predictions]),
        prediction_times=np.array([r.time for _, r in predictions]),
    )
    out.pair_indices = np.array([i for i, _ in pairs], dtype=np.int64)
    out.pair_ids = [r.event_id for _, r in pairs]
    out.losses = np.array([r.value for _, r in pairs])
    out.pair_prediction_times = np.array([r.time - 1.0 for _, r in pairs])
    out.completion_times = np.array([r.time for _, r in pairs])
    return out


def run(
    comparison: Comparison, rows: list[Row], cuts: list[int], restore: bool = False
) -> tuple[list[bytes], dict[str, Any], Comparison]:
    events: list[bytes] = []
    bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(rows))), len(rows)]
    for a, b in itertools.pairwise(bounds):
        batch = rows[a:b]
        for _, event in comparison.observe(outcomes(batch, 0), outcomes(batch, 1)):
            events.append(event.to_json())
        if restore:
            saved = orjson.loads(orjson.dumps(comparison.to_state()))
            comparison = Comparison(comparison.settings, comparison.source)
            comparison.restore(saved)
    return events, comparison.to_state(), comparison


def _settings(**options: Any) -> ComparisonSettings:
    return ComparisonSettings(model_id="m", champion="1", challenger="2", **options)


@pytest.mark.parametrize("shadow", [True, False])
def test_a_better_challenger_gets_one_verdict_event(shadow: bool) -> None:
    rows = stream(np.random.default_rng(1), 12_000, (0.3, 0.15), shadow=shadow)
    events, _, comparison = run(Comparison(_settings(), "/driftline/test"), rows, [])
    assert len(events) == 1
    event = orjson.loads(events[0])
    assert event["type"] == "io.driftline.comparison.v1"
    assert event["subject"] == "m/1/2"
    data = event["data"]
    assert data["verdict"] == "challenger_better"
    assert data["previous_verdict"] == "insufficient_data"
    assert data["difference"]["lower"] > 0 and data["difference"]["definition"] == (
        "champion - challenger"
    )
    assert data["champion_metric"] > data["challenger_metric"]
    assert (data["paired"] > 0) is shadow and (data["unpaired"] > 0) is not shadow
    status = comparison.status()
    assert status["verdict"] == "challenger_better" and status["started"]
    assert status["pairs"] > data["pairs"]
    if shadow:
        # all but the first request: its champion prediction came before the challenger's first
        assert status["predictions"]["agreement"]["requests"] == 11_999


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 3_999), max_size=8), st.booleans(), st.booleans())
def test_events_and_state_do_not_depend_on_batches_nor_restores(
    cuts: list[int], shadow: bool, restore: bool
) -> None:
    rows = stream(np.random.default_rng(5), 2_000, (0.3, 0.1), shadow=shadow)
    small = _settings(min_pairs=20, max_waiting=50, max_wait_seconds=20.0)
    whole = run(Comparison(small, "/s"), rows, [])
    assert whole[0]  # a verdict was reached: the test compares something
    split = run(Comparison(small, "/s"), rows, cuts, restore)
    assert split[0] == whole[0] and split[1] == whole[1]


def test_waiting_outcomes_are_bounded_and_counted() -> None:
    # One version only: every outcome waits for a counterpart that never comes.
    rows = stream(np.random.default_rng(2), 500, (0.2, 0.2), shadow=True)
    rows = [rows[1], *(r for r in rows if r.side == 0)]  # a challenger prediction starts it
    comparison = Comparison(_settings(max_waiting=10), "/s")
    run(comparison, rows, [])
    status = comparison.status()
    assert status["waiting"] <= 10
    assert status["waiting"] + status["expired"] > 400


def test_equal_versions_verdict_no_difference_with_a_loose_min_effect() -> None:
    rows = stream(np.random.default_rng(3), 20_000, (0.2, 0.2), shadow=True)
    events, _, _ = run(Comparison(_settings(min_effect=0.05), "/s"), rows, [])
    assert [orjson.loads(e)["data"]["verdict"] for e in events] == ["no_difference"]


def test_ids_are_deterministic_and_name_the_pair_verdict_and_position() -> None:
    rows = stream(np.random.default_rng(1), 6_000, (0.3, 0.1), shadow=True)
    first = run(Comparison(_settings(), "/s"), rows, [])[0]
    again = run(Comparison(_settings(), "/s"), rows, [1_000, 3_333])[0]
    assert first == again
    other = run(
        Comparison(ComparisonSettings(model_id="m", champion="1", challenger="3"), "/s"),
        rows,
        [],
    )[0]
    assert orjson.loads(first[0])["id"] != orjson.loads(other[0])["id"]


def test_a_state_saved_with_other_settings_is_not_continued() -> None:
    rows = stream(np.random.default_rng(1), 3_000, (0.3, 0.1), shadow=True)
    _, state, _ = run(Comparison(_settings(), "/s"), rows, [])
    assert Comparison(_settings(), "/s").fits(state)
    assert not Comparison(_settings(alpha=0.01), "/s").fits(state)


REGRESSION = TaskSpec(Task.REGRESSION, "value")


def _regression_rows() -> list[Row]:
    """Absolute errors: the champion's ~|N(0, 2)|, the challenger's ~|N(0, 1)|."""
    rng = np.random.default_rng(4)
    rows = stream(rng, 4_000, (0.5, 0.5), shadow=True)
    scale = {0: 2.0, 1: 1.0}
    return [
        Row(r.side, r.kind, r.event_id, r.request, abs(rng.normal(0, scale[r.side])), r.time)
        for r in rows
    ]


def _observe_regression(comparison: Comparison, label_range: float | None) -> list[Any]:
    rows = _regression_rows()
    found = comparison.observe(
        outcomes(rows, 0, REGRESSION, label_range), outcomes(rows, 1, REGRESSION, label_range)
    )
    return [event.event["data"] for _, event in found]


def test_regression_compares_clipped_absolute_errors() -> None:
    comparison = Comparison(_settings(), "/s")
    (data,) = _observe_regression(comparison, label_range=8.0)
    assert data["metric"] == "mae" and data["loss_bound"] == 8.0
    assert data["verdict"] == "challenger_better"
    assert data["predictions"]["distance"]["name"] == "standardized_mean_difference"
    assert "mean_absolute_difference" in data["predictions"]["agreement"]
    # Without a label range from the profile, the bound must be configured.
    unbounded = Comparison(_settings(), "/s")
    assert _observe_regression(unbounded, label_range=None) == []
    status = unbounded.status()
    assert not status["started"] and "loss_bound" in status["reason"]
    assert _observe_regression(Comparison(_settings(loss_bound=5.0), "/s"), None)


def test_versions_of_different_tasks_are_not_compared() -> None:
    rows = stream(np.random.default_rng(1), 300, (0.3, 0.1), shadow=True)
    comparison = Comparison(_settings(), "/s")
    assert comparison.observe(outcomes(rows, 0), outcomes(rows, 1, REGRESSION)) == []
    assert "tasks differ" in comparison.status()["reason"]
    restored = Comparison(_settings(), "/s")
    restored.restore(orjson.loads(orjson.dumps(comparison.to_state())))
    assert restored.to_state() == comparison.to_state()

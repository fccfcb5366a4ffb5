"""Tests of the synthetic traffic generator (driftline.demo.scenario)."""

from __future__ import annotations

import csv
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from driftline.demo.scenario import (
    BLOCK_SIZE,
    CREDIT_SCORING_MODEL,
    BooleanFeature,
    CategoricalFeature,
    Drift,
    NumericFeature,
    Scenario,
    SyntheticModel,
    credit_scoring_scenario,
    event_columns,
    event_lines,
    reference_moments,
    reference_rows,
    wide_numeric_scenario,
    write_events,
    write_reference_csv,
    write_reference_jsonl,
)
from driftline.events import LABEL_FEATURE, PREDICTION_FEATURE, Scalar

Columns = dict[str, list[Scalar]]

RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CREDIT_FEATURES = [spec.name for spec in CREDIT_SCORING_MODEL.features]
N = 20_000  # drifted events in the statistical checks


def numbers(column: Sequence[object]) -> np.ndarray:
    return np.array([v for v in column if v is not None], dtype=np.float64)


def share(column: Sequence[object], value: object) -> float:
    present = [v for v in column if v is not None]
    return sum(v == value for v in present) / len(present)


def missing_rate(column: Sequence[object]) -> float:
    return sum(v is None for v in column) / len(column)


# --------------------------------------------------------------------------- reproducibility


def test_same_scenario_gives_byte_identical_lines() -> None:
    scenario = credit_scoring_scenario(events=3000, seed=7, labels=True)
    first = list(event_lines(scenario))
    assert first == list(event_lines(credit_scoring_scenario(events=3000, seed=7, labels=True)))
    assert len(first) == 3000


def test_different_seeds_give_different_values() -> None:
    a = event_columns(credit_scoring_scenario(events=500, seed=1, drifts=()))
    b = event_columns(credit_scoring_scenario(events=500, seed=2, drifts=()))
    assert a["amount"] != b["amount"]
    assert a["country"] != b["country"]


def test_any_range_of_the_stream_equals_the_slice_of_the_whole() -> None:
    scenario = credit_scoring_scenario(events=2 * BLOCK_SIZE + 100, seed=3)
    whole = list(event_lines(scenario))
    for start, stop in [
        (0, 1),
        (5, 17),
        (BLOCK_SIZE - 3, BLOCK_SIZE + 4),
        (BLOCK_SIZE, len(whole)),
    ]:
        assert list(event_lines(scenario, start, stop)) == whole[start:stop]
    # A longer stream starts with exactly the events of a shorter one.
    longer = list(event_lines(replace(scenario, events=len(whole) + 50)))
    assert longer[: len(whole)] == whole


def test_empty_stream_and_reference(tmp_path: Path) -> None:
    scenario = credit_scoring_scenario(events=0)
    assert list(event_lines(scenario)) == []
    assert write_events(scenario, tmp_path / "none.jsonl") == 0
    assert (tmp_path / "none.jsonl").read_bytes() == b""
    assert event_columns(scenario)["amount"] == []
    assert reference_rows(scenario, 0)["country"] == []


def test_write_events_writes_the_lines(tmp_path: Path) -> None:
    scenario = credit_scoring_scenario(events=1234, seed=5)
    path = tmp_path / "events.jsonl"
    assert write_events(scenario, path) == 1234
    data = path.read_bytes()
    assert data == b"".join(line + b"\n" for line in event_lines(scenario))


# --------------------------------------------------------------------------- contract


def test_lines_are_prediction_events_of_the_v1_contract() -> None:
    scenario = credit_scoring_scenario(events=2000, seed=11)
    lines = list(event_lines(scenario))
    ids = set()
    for index, line in enumerate(lines):
        assert b"\n" not in line
        event = orjson.loads(line)
        assert isinstance(event, dict)
        assert orjson.dumps(event) == line  # compact, canonical orjson serialisation
        assert list(event) == [
            "event_id",
            "model_id",
            "model_version",
            "timestamp",
            "features",
            "prediction",
        ]
        assert event["event_id"] == f"credit-scoring-11-{index}"
        ids.add(event["event_id"])
        assert event["model_id"] == "credit-scoring"
        assert isinstance(event["model_version"], str)
        assert RFC3339_MS.match(event["timestamp"])
        features = event["features"]
        assert list(features) == CREDIT_FEATURES
        for value in features.values():
            assert value is None or isinstance(value, (int, float, str, bool))
        assert isinstance(event["prediction"], float | int)
        assert 0.0 <= event["prediction"] <= 1.0
    assert len(ids) == len(lines)


def test_feature_types_follow_the_model() -> None:
    columns = event_columns(credit_scoring_scenario(events=5000, seed=2, drifts=()))
    for name in ("income", "age", "credit_score", "num_accounts"):
        values = [v for v in columns[name] if v is not None]
        assert all(type(v) is int for v in values), name
    assert all(type(v) is float for v in columns["amount"])
    assert all(0.0 <= v <= 1.0 for v in numbers(columns["debt_ratio"]))
    assert all(300 <= v <= 850 for v in numbers(columns["credit_score"]))
    assert numbers(columns["num_accounts"]).min() >= 0
    assert len(set(columns["num_accounts"])) < 20  # small discrete counts
    assert set(columns["country"]) == {"US", "GB", "DE", "FR", "ES", "IT", "NL", "BR"}
    assert set(columns["employment"]) == {
        "employed",
        "self_employed",
        "unemployed",
        "retired",
        None,
    }
    assert set(columns["has_mortgage"]) == {True, False}


def test_features_are_drawn_independently() -> None:
    columns = event_columns(credit_scoring_scenario(events=N, seed=13, drifts=()))
    age, score = np.array(columns["age"], float), np.array(columns["credit_score"], float)
    assert abs(np.corrcoef(age, score)[0, 1]) < 0.04
    us = [
        c == "web" for c, k in zip(columns["channel"], columns["country"], strict=True) if k == "US"
    ]
    assert np.mean(us) == pytest.approx(share(columns["channel"], "web"), abs=0.03)
    both_missing = sum(
        i is None and e is None
        for i, e in zip(columns["income"], columns["employment"], strict=True)
    )
    assert both_missing < 0.2 * columns["income"].count(None)


def test_baseline_missing_rate_is_about_one_percent() -> None:
    columns = event_columns(credit_scoring_scenario(events=N, seed=4, drifts=()))
    assert missing_rate(columns["income"]) == pytest.approx(0.01, abs=0.003)
    assert missing_rate(columns["employment"]) == pytest.approx(0.01, abs=0.003)
    assert missing_rate(columns["amount"]) == 0.0


def test_labels_and_no_prediction() -> None:
    scenario = credit_scoring_scenario(events=4000, seed=1, drifts=(), labels=True)
    events = [orjson.loads(line) for line in event_lines(scenario)]
    assert {e["label"] for e in events} == {0, 1}
    predictions = np.array([e["prediction"] for e in events])
    labels = np.array([e["label"] for e in events])
    # Labels are drawn from the model's probability: calibrated on average.
    assert labels.mean() == pytest.approx(predictions.mean(), abs=0.03)
    silent = replace(scenario, prediction=False, labels=False)
    for line in event_lines(silent, 0, 10):
        assert set(orjson.loads(line)) == {
            "event_id",
            "model_id",
            "model_version",
            "timestamp",
            "features",
        }


# --------------------------------------------------------------------------- time


@pytest.mark.parametrize("rate", [20.0, 3.0, 1000.0, 2500.0])
def test_timestamps_are_monotone_at_the_rate(rate: float) -> None:
    scenario = credit_scoring_scenario(events=3000, rate=rate, start_time=1_717_171_717.25)
    stamps = [orjson.loads(line)["timestamp"] for line in event_lines(scenario)]
    seconds = np.array([datetime.fromisoformat(s).timestamp() for s in stamps])
    assert seconds[0] == 1_717_171_717.25
    assert np.all(np.diff(seconds) >= 0)
    expected = 1_717_171_717.25 + np.arange(3000) / rate
    assert np.max(np.abs(seconds - expected)) <= 0.0005 + 1e-6
    assert scenario.event_time(2999) == pytest.approx(seconds[-1], abs=1e-6)


def test_epoch_timestamp_formats() -> None:
    ms = wide_numeric_scenario(events=100, rate=400.0, timestamp_format="epoch_ms")
    stamps = [orjson.loads(line)["timestamp"] for line in event_lines(ms)]
    assert all(type(s) is int for s in stamps)
    assert stamps[0] == 1_704_067_200_000
    assert stamps[1] - stamps[0] in (2, 3) and stamps[4] - stamps[0] == 10
    seconds = replace(ms, timestamp_format="epoch_s")
    stamps_s = [orjson.loads(line)["timestamp"] for line in event_lines(seconds)]
    assert stamps_s == pytest.approx([s / 1000 for s in stamps], abs=1e-9)


# --------------------------------------------------------------------------- drift isolation

DRIFT_START = BLOCK_SIZE + 37  # inside the second generation block
DRIFTS = [
    Drift("amount", "mean_shift", start=DRIFT_START, magnitude=1.0),
    Drift("credit_score", "scale", start=DRIFT_START, magnitude=1.8),
    Drift("country", "category_surge", start=DRIFT_START, magnitude=0.25, category="BR"),
    Drift("has_mortgage", "category_surge", start=DRIFT_START, magnitude=0.3, category="true"),
    Drift("income", "missing_surge", start=DRIFT_START, magnitude=0.4),
]


@pytest.mark.parametrize("drift", DRIFTS, ids=lambda d: f"{d.kind}-{d.feature}")
def test_drift_changes_only_its_feature_from_start(drift: Drift) -> None:
    baseline = credit_scoring_scenario(events=2 * BLOCK_SIZE, seed=9, drifts=())
    drifted = event_columns(replace(baseline, drifts=(drift,)))
    clean = event_columns(baseline)
    for name in CREDIT_FEATURES:
        if name != drift.feature:
            assert drifted[name] == clean[name], name
    before, after = drifted[drift.feature][: drift.start], drifted[drift.feature][drift.start :]
    assert before == clean[drift.feature][: drift.start]
    clean_after = clean[drift.feature][drift.start :]
    changed = sum(a != b for a, b in zip(after, clean_after, strict=True))
    assert changed > 0.1 * len(after)
    if drift.kind == "mean_shift":
        assert changed == len(after)  # an upward shift of `amount` moves every value
    if drift.kind == "missing_surge":
        # Values that stay present are the very values of the baseline.
        pairs = [(a, b) for a, b in zip(after, clean_after, strict=True) if a is not None]
        assert all(a == b for a, b in pairs if b is not None)
    # The prediction follows the features: unchanged before the drift.
    assert drifted[PREDICTION_FEATURE][: drift.start] == clean[PREDICTION_FEATURE][: drift.start]


def test_drift_after_the_end_changes_nothing() -> None:
    baseline = credit_scoring_scenario(events=1000, seed=1, drifts=())
    late = replace(baseline, drifts=(Drift("amount", "mean_shift", start=1000, magnitude=3.0),))
    assert list(event_lines(late)) == list(event_lines(baseline))


# --------------------------------------------------------------------------- magnitudes


def drifted_and_reference(drift: Drift, *, seed: int = 21) -> tuple[Columns, Columns]:
    scenario = credit_scoring_scenario(events=drift.start + N, seed=seed, drifts=(drift,))
    after = {k: v[drift.start :] for k, v in event_columns(scenario).items()}
    return after, reference_rows(scenario, N)


def test_mean_shift_moves_the_mean_by_reference_stds() -> None:
    drift = Drift("amount", "mean_shift", start=1000, magnitude=1.0)
    after, reference = drifted_and_reference(drift)
    ref = numbers(reference["amount"])
    shift = (numbers(after["amount"]).mean() - ref.mean()) / ref.std()
    assert shift == pytest.approx(1.0, abs=0.06)
    # The scale stays (a shift, not a stretch).
    assert numbers(after["amount"]).std() == pytest.approx(ref.std(), rel=0.08)


def test_mean_shift_on_a_discrete_feature_keeps_it_discrete() -> None:
    drift = Drift("num_accounts", "mean_shift", start=500, magnitude=0.5)
    after, reference = drifted_and_reference(drift)
    values = after["num_accounts"]
    assert all(type(v) is int and v >= 0 for v in values)
    ref = numbers(reference["num_accounts"])
    shift = (numbers(values).mean() - ref.mean()) / ref.std()
    assert shift == pytest.approx(0.5, abs=0.04)  # stochastic rounding keeps the mean


def test_scale_multiplies_the_std_and_keeps_the_mean() -> None:
    scenario = wide_numeric_scenario(
        features=4, events=500 + N, seed=2, drifts=(Drift("f01", "scale", 500, 2.0),)
    )
    columns = event_columns(scenario)
    reference = reference_rows(scenario, N)
    after = numbers(columns["f01"][500:])
    ref = numbers(reference["f01"])
    assert after.std() / ref.std() == pytest.approx(2.0, rel=0.04)
    assert (after.mean() - ref.mean()) / ref.std() == pytest.approx(0.0, abs=0.05)


def test_category_surge_adds_share_and_scales_the_others() -> None:
    drift = Drift("country", "category_surge", start=300, magnitude=0.2, category="BR")
    after, reference = drifted_and_reference(drift)
    assert share(reference["country"], "BR") == pytest.approx(0.04, abs=0.006)
    assert share(after["country"], "BR") == pytest.approx(0.24, abs=0.015)
    factor = (1 - 0.24) / (1 - 0.04)
    assert share(after["country"], "US") == pytest.approx(0.38 * factor, abs=0.015)
    assert share(after["country"], "GB") == pytest.approx(0.16 * factor, abs=0.012)


def test_category_surge_of_a_new_category() -> None:
    drift = Drift("channel", "category_surge", start=0, magnitude=0.1, category="kiosk")
    after, reference = drifted_and_reference(drift)
    assert "kiosk" not in reference["channel"]
    assert share(after["channel"], "kiosk") == pytest.approx(0.1, abs=0.01)
    assert share(after["channel"], "web") == pytest.approx(0.45 * 0.9, abs=0.015)


def test_boolean_surge() -> None:
    drift = Drift("has_mortgage", "category_surge", start=0, magnitude=-0.2, category="true")
    after, _ = drifted_and_reference(drift)
    assert share(after["has_mortgage"], True) == pytest.approx(0.16, abs=0.012)


def test_missing_surge_sets_the_missing_rate() -> None:
    drift = Drift("income", "missing_surge", start=2000, magnitude=0.3)
    scenario = credit_scoring_scenario(events=2000 + N, seed=5, drifts=(drift,))
    income = event_columns(scenario)["income"]
    assert missing_rate(income[:2000]) == pytest.approx(0.01, abs=0.006)
    assert missing_rate(income[2000:]) == pytest.approx(0.3, abs=0.015)


def test_prediction_drift_follows_feature_drift() -> None:
    # A lower credit score raises the predicted default probability.
    drift = Drift("credit_score", "mean_shift", start=1000, magnitude=-1.5)
    scenario = credit_scoring_scenario(events=1000 + N, seed=8, drifts=(drift,))
    predictions = event_columns(scenario)[PREDICTION_FEATURE]
    clean = event_columns(scenario.without_drift())[PREDICTION_FEATURE]
    assert np.mean(predictions[1000:]) > np.mean(clean[1000:]) + 0.05  # type: ignore[arg-type]


def test_composed_drifts_apply_in_start_order() -> None:
    drifts = (
        Drift("country", "category_surge", start=500, magnitude=0.3, category="BR"),
        Drift("country", "category_surge", start=100, magnitude=0.2, category="NL"),
        Drift("amount", "mean_shift", start=100, magnitude=1.0),
        Drift("amount", "mean_shift", start=500, magnitude=1.0),
    )
    scenario = credit_scoring_scenario(events=500 + N, seed=3, drifts=drifts)
    columns = event_columns(scenario)
    clean = event_columns(scenario.without_drift())
    amount = CREDIT_SCORING_MODEL.feature("amount")
    assert isinstance(amount, NumericFeature)
    _, std = reference_moments(amount)
    delta = np.array(columns["amount"]) - np.array(clean["amount"])
    assert np.allclose(delta[:100], 0.0)
    assert np.allclose(delta[100:500], std, atol=0.011)
    assert np.allclose(delta[500:], 2 * std, atol=0.011)
    after = columns["country"][500:]
    # NL first takes 0.25, then BR goes 0.04 * 0.75 -> 0.33 and NL is scaled by 0.67 / 0.97.
    assert share(after, "BR") == pytest.approx(0.33, abs=0.015)
    assert share(after, "NL") == pytest.approx(0.25 * 0.67 / 0.97, abs=0.015)


# --------------------------------------------------------------------------- reference data


def test_reference_rows_have_the_schema_and_no_drift() -> None:
    scenario = credit_scoring_scenario(events=5000, seed=6)  # default incident at 2500
    assert scenario.drifts
    rows = reference_rows(scenario, 8000)
    assert list(rows) == [*CREDIT_FEATURES, PREDICTION_FEATURE]
    assert all(len(column) == 8000 for column in rows.values())
    assert rows == reference_rows(scenario.without_drift(), 8000)
    assert share(rows["country"], "BR") == pytest.approx(0.04, abs=0.008)
    # Its own random stream: not a copy of the traffic.
    traffic = event_columns(scenario.without_drift())
    assert rows["amount"][:5000] != traffic["amount"]
    longer = reference_rows(scenario, 10_000)
    assert {name: column[:8000] for name, column in longer.items()} == rows


def test_reference_rows_match_the_drift_free_traffic() -> None:
    scenario = credit_scoring_scenario(events=N, seed=12, drifts=())
    traffic, rows = event_columns(scenario), reference_rows(scenario, N)
    for name in ("amount", "credit_score", "debt_ratio", PREDICTION_FEATURE):
        ref = numbers(rows[name])
        assert numbers(traffic[name]).mean() == pytest.approx(ref.mean(), abs=0.04 * ref.std())
    assert missing_rate(rows["income"]) == pytest.approx(0.01, abs=0.003)


def test_reference_columns_can_be_renamed_or_left_out() -> None:
    scenario = credit_scoring_scenario(events=10, labels=True)
    assert list(reference_rows(scenario, 5))[-2:] == [PREDICTION_FEATURE, LABEL_FEATURE]
    renamed = reference_rows(scenario, 5, prediction_column="score", label_column=None)
    assert list(renamed) == [*CREDIT_FEATURES, "score"]
    with pytest.raises(ValueError, match="twice"):
        reference_rows(scenario, 5, prediction_column="amount")


def test_reference_csv(tmp_path: Path) -> None:
    scenario = credit_scoring_scenario(events=10, seed=3)
    path = tmp_path / "reference.csv"
    write_reference_csv(scenario, 3000, path)
    rows = reference_rows(scenario, 3000)
    with open(path, newline="", encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert len(read) == 3000
    assert list(read[0]) == list(rows)
    for k, record in enumerate(read):
        for name, cell in record.items():
            value = rows[name][k]
            if value is None:
                assert cell == ""
            elif isinstance(value, bool):
                assert cell == ("true" if value else "false")
            elif isinstance(value, float):
                assert float(cell) == value
            else:
                assert cell == str(value)
    assert any(record["income"] == "" for record in read)


def test_reference_jsonl(tmp_path: Path) -> None:
    scenario = credit_scoring_scenario(events=10, seed=3)
    path = tmp_path / "reference.jsonl"
    write_reference_jsonl(scenario, 1500, path)
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    rows = reference_rows(scenario, 1500)
    assert records == [
        dict(zip(rows, values, strict=True)) for values in zip(*rows.values(), strict=True)
    ]


# --------------------------------------------------------------------------- wide numeric


def test_wide_numeric_scenario() -> None:
    scenario = wide_numeric_scenario(features=20, events=5000, seed=1)
    columns = event_columns(scenario)
    names = [f"f{k:02d}" for k in range(20)]
    assert list(columns) == [*names, PREDICTION_FEATURE]
    means = [numbers(columns[name]).mean() for name in names]
    stds = [numbers(columns[name]).std() for name in names]
    assert len({round(m) for m in means}) > 5 and len({round(s) for s in stds}) > 3
    event = orjson.loads(next(event_lines(scenario)))
    assert type(event["timestamp"]) is int
    assert "prediction" in event
    quiet = wide_numeric_scenario(features=120, events=3, prediction=False)
    event = orjson.loads(next(event_lines(quiet)))
    assert "prediction" not in event
    assert list(event["features"])[:2] == ["f000", "f001"] and len(event["features"]) == 120


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("drift", "message"),
    [
        (Drift("salary", "mean_shift", 0, 1.0), "unknown feature"),
        (Drift("country", "mean_shift", 0, 1.0), "numeric"),
        (Drift("amount", "category_surge", 0, 0.1, category="x"), "categorical"),
        (Drift("country", "category_surge", 0, 0.7, category="US"), "outside"),
        (Drift("has_mortgage", "category_surge", 0, 0.1, category="yes"), "boolean"),
    ],
)
def test_invalid_drifts_for_the_model(drift: Drift, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        credit_scoring_scenario(events=10, drifts=(drift,))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "tilt", "magnitude": 1.0},
        {"kind": "mean_shift", "magnitude": 1.0, "start": -1},
        {"kind": "mean_shift", "magnitude": math.nan},
        {"kind": "category_surge", "magnitude": 0.1},
        {"kind": "mean_shift", "magnitude": 0.1, "category": "x"},
        {"kind": "scale", "magnitude": -1.0},
        {"kind": "missing_surge", "magnitude": 1.5},
    ],
)
def test_invalid_drift(kwargs: dict[str, Any]) -> None:
    kwargs = {"feature": "amount", "start": 0, **kwargs}
    with pytest.raises(ValueError):
        Drift(**kwargs)


def test_invalid_scenarios_and_models() -> None:
    base = credit_scoring_scenario(events=10)
    for change in ({"events": -1}, {"seed": -1}, {"rate": 0.0}, {"start_time": math.inf}):
        with pytest.raises(ValueError):
            replace(base, **change)
    with pytest.raises(ValueError):
        replace(base, timestamp_format="iso")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        list(event_lines(base, 5, 11))
    with pytest.raises(ValueError):
        NumericFeature("x", "normal", (0.0, -1.0))
    with pytest.raises(ValueError):
        NumericFeature("x", "poisson", (1.0, 2.0))
    with pytest.raises(ValueError):
        CategoricalFeature("c", ("a", "b"), (0.5, 0.6))
    with pytest.raises(ValueError):
        BooleanFeature("__b", 0.5)
    with pytest.raises(ValueError):
        SyntheticModel(features=(BooleanFeature("b", 0.5), BooleanFeature("b", 0.2)))


def test_custom_model() -> None:
    model = SyntheticModel(
        features=(
            NumericFeature("latency_ms", "lognormal", (3.0, 0.4), lower=0.0, decimals=1),
            CategoricalFeature("tier", ("gold", "silver"), (0.3, 0.7), weights=(0.5, 0.0)),
        ),
        intercept=0.2,
    )
    scenario = Scenario("m", "7", events=200, seed=4, start_time=0.0, rate=10.0, model=model)
    events = [orjson.loads(line) for line in event_lines(scenario)]
    assert events[0]["timestamp"] == "1970-01-01T00:00:00.000Z"
    assert events[-1]["timestamp"] == "1970-01-01T00:00:19.900Z"
    assert {e["features"]["tier"] for e in events} == {"gold", "silver"}
    # Without noise the score is a function of the features: one score per tier and latency.
    scores: dict[tuple[str, float], set[float]] = {}
    for e in events:
        key = (e["features"]["tier"], e["features"]["latency_ms"])
        scores.setdefault(key, set()).add(e["prediction"])
    assert all(len(values) == 1 for values in scores.values())
    gold = [e["prediction"] for e in events if e["features"]["tier"] == "gold"]
    silver = [e["prediction"] for e in events if e["features"]["tier"] == "silver"]
    assert np.mean(gold) > np.mean(silver)
    counts = Counter(e["features"]["tier"] for e in events)
    assert counts["gold"] + counts["silver"] == 200

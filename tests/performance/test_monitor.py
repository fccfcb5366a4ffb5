"""PerformanceMonitor: split invariance, exact state continuation, river-identical error
stream detectors, alert names, label drift, warm-up and CBPE findings."""

from __future__ import annotations

import itertools

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from river import drift as river_drift

from driftline.findings import Finding
from driftline.performance.calibration import Calibration
from driftline.performance.monitor import PerformanceMonitor, PerformanceSettings
from driftline.performance.reference import ReferencePerformance
from driftline.performance.task import Task, TaskSpec
from driftline.profile import ProfileSource, build_profile
from tests.performance.support import (
    BINARY,
    BINARY_PROBABILITY,
    REGRESSION,
    JoinedPairs,
    alerts_of,
    binary_classes,
    delayed,
    reference_of,
    regression_values,
)

SMALL = PerformanceSettings(window_pairs=50, warmup_pairs=40, prediction_window=30)


def _stream(seed: int, n: int = 600) -> JoinedPairs:
    rng = np.random.default_rng(seed)
    p0, y0 = binary_classes(n // 2, 0.3, rng)
    p1, y1 = binary_classes(n - n // 2, 0.6, rng)
    pairs = delayed(np.concatenate([p0, p1]), np.concatenate([y0, y1]), rng)
    prediction = pairs.prediction.copy()
    prediction[::37] = np.nan  # invalid pairs are counted and skipped
    return JoinedPairs(
        prediction, pairs.label, pairs.prediction_time, pairs.label_time, pairs.completed_at
    )


def _label_profile():  # type: ignore[no-untyped-def]
    profile = build_profile(
        {"__label__": [True, False] * 50}, model_id="m", model_version="1",
        source=ProfileSource("file", "0" * 64),
    )  # fmt: skip
    return profile.features["__label__"]


def _observe(monitor: PerformanceMonitor, pairs: JoinedPairs, cuts: list[int]) -> list:  # type: ignore[type-arg]
    out = []
    bounds = [0, *sorted(set(cuts)), len(pairs)]
    for start, stop in itertools.pairwise(bounds):
        out.extend(monitor.observe_pairs(pairs.slice(start, stop), model_id="m", model_version="1"))
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 3), st.lists(st.integers(0, 600), max_size=6), st.integers(0, 600))
def test_any_split_and_any_state_cut_give_the_same_findings(
    seed: int, cuts: list[int], cut: int
) -> None:
    pairs = _stream(seed)
    label = _label_profile()
    whole = PerformanceMonitor(BINARY, None, SMALL, label)
    expected = _observe(whole, pairs, [])
    assert expected and whole.invalid_pairs == 17
    split = PerformanceMonitor(BINARY, None, SMALL, label)
    first = _observe(split, pairs.slice(0, cut), [c for c in cuts if c < cut])
    state = orjson.loads(orjson.dumps(split.to_state()))
    resumed = PerformanceMonitor.from_state(state, BINARY, SMALL, label)
    rest = _observe(resumed, pairs.slice(cut, len(pairs)), [c - cut for c in cuts if c > cut])
    assert first + rest == expected
    assert resumed.to_state() == whole.to_state()
    assert resumed.metrics() == whole.metrics()


def test_error_stream_detectors_equal_river() -> None:
    rng = np.random.default_rng(7)
    p0, y0 = binary_classes(20_000, 0.2, rng)
    p1, y1 = binary_classes(20_000, 0.5, rng)
    p2, y2 = binary_classes(20_000, 0.1, rng)  # a fall: ADWIN sees it, it is not a rise
    prediction, label = np.concatenate([p0, p1, p2]), np.concatenate([y0, y1, y2])
    pairs = JoinedPairs(
        prediction, label, np.arange(60_000.0), np.arange(60_000.0) + 60,
        np.arange(1, 60_001, dtype=np.int64),
    )  # fmt: skip
    monitor = PerformanceMonitor(BINARY, reference_of(BINARY, p0, y0), PerformanceSettings())
    findings = [f for _, f in _observe(monitor, pairs, [12_345, 40_001])]
    errors = (prediction != label).astype(float).tolist()
    river_adwin, adwin_all, adwin_rises = river_drift.ADWIN(), [], []
    ph = river_drift.PageHinkley(min_instances=30, delta=0.03, threshold=50.0, alpha=1.0, mode="up")
    ph_hits = []
    for i, e in enumerate(errors):
        before = river_adwin.estimation
        river_adwin.update(e)
        if river_adwin.drift_detected:
            adwin_all.append(i + 1)
            if river_adwin.estimation > before:
                adwin_rises.append(i + 1)
        ph.update(e)
        if ph.drift_detected:
            ph_hits.append(i + 1)

    def hits(name: str) -> list[int]:
        return [
            p for f in findings if f.detector == name for p in f.evidence["detection_positions"]
        ]

    assert adwin_rises and len(adwin_all) > len(adwin_rises)  # both directions occurred
    assert hits("adwin") == adwin_rises
    assert ph_hits and hits("page_hinkley") == ph_hits


def test_one_detection_breaches_detection_windows_windows_and_alerts_are_named() -> None:
    rng = np.random.default_rng(3)
    p0, y0 = binary_classes(20_000, 0.33, rng)
    p1, y1 = binary_classes(20_000, 0.45, rng)
    pairs = delayed(np.concatenate([p0, p1]), np.concatenate([y0, y1]), rng)
    monitor = PerformanceMonitor(BINARY, reference_of(BINARY, p0, y0), PerformanceSettings())
    findings = _observe(monitor, pairs, [])
    values = [f.value for _, f in findings if f.detector == "page_hinkley"]
    first = next(i for i, v in enumerate(values) if v > 0)
    assert values[first : first + 3] == [1.0, 1.0, 1.0] and values[first + 3] == 0.0
    alerts = alerts_of(findings)
    names = {(a.labels["alertname"], a.detector) for a in alerts}
    assert {("PerformanceDrift", "error_rate"), ("PerformanceDrift", "page_hinkley")} <= names
    alert = next(a for a in alerts if a.detector == "error_rate")
    evidence = alert.event["data"]["evidence"]
    assert evidence["reference"] < evidence["current"] and evidence["pairs"] == 1000
    assert 30 <= evidence["label_delay_p50_seconds"] <= evidence["label_delay_p95_seconds"] <= 600
    assert "error rate" in alert.event["data"]["annotations"]["description"]


def test_label_drift_findings_on_the_label() -> None:
    rng = np.random.default_rng(4)
    label = (rng.random(3000) < 0.9).astype(float)  # the reference is 50/50
    pairs = delayed(label.copy(), label, rng)
    monitor = PerformanceMonitor(
        BINARY, reference_of(BINARY, label, label), PerformanceSettings(), _label_profile()
    )
    findings = [f for _, f in _observe(monitor, pairs, [])]
    psi = [f for f in findings if f.feature == "__label__"]
    assert len(psi) == 3 and all(f.detector == "psi" and f.value > 0.25 for f in psi)
    assert {a.labels["alertname"] for a in alerts_of([(0, f) for f in psi])} == {"LabelDrift"}


def test_warmup_learns_the_reference_and_a_calibration() -> None:
    rng = np.random.default_rng(5)
    probability = rng.random(1500)
    label = (rng.random(1500) < probability).astype(float)
    monitor = PerformanceMonitor(BINARY_PROBABILITY, None, PerformanceSettings())
    positions = np.arange(1, 1501, dtype=np.int64)
    assert (
        monitor.observe_predictions(
            probability, positions * 1.0, positions, model_id="m", model_version="1"
        )
        == []
    )
    monitor.observe_pairs(delayed(probability, label, rng), model_id="m", model_version="1")
    reference = monitor.metrics()["reference"]
    assert abs(reference["error_rate"] - 0.25) < 0.05
    assert abs(reference["expected_error_rate"] - reference["error_rate"]) < 0.02
    assert monitor.reference is not None and monitor.reference.pairs == 1000
    found = monitor.observe_predictions(
        probability, positions * 1.0, positions, model_id="m", model_version="1"
    )
    assert len(found) == 1
    position, finding = found[0]
    assert position == 1000 and finding.feature == "__estimated_error__"
    assert round(monitor.metrics()["estimated"]["error_rate"], 6) == finding.evidence["current"]


def test_estimated_drift_alert_name() -> None:
    reference = ReferencePerformance(
        BINARY_PROBABILITY, {"error_rate": 0.1, "expected_error_rate": 0.1}, 5000,
        Calibration((0.0, 1.0), (0.0, 1.0)),
    )  # fmt: skip
    monitor = PerformanceMonitor(BINARY_PROBABILITY, reference, PerformanceSettings())
    uncertain = np.full(5000, 0.6)  # expected error 0.4
    positions = np.arange(1, 5001, dtype=np.int64)
    found = monitor.observe_predictions(
        uncertain, positions * 1.0, positions, model_id="m", model_version="1"
    )
    assert [round(f.value, 6) for _, f in found] == [0.3] * 5
    alerts = alerts_of(found)
    assert alerts[0].labels["alertname"] == "EstimatedPerformanceDrift"
    assert alerts[0].severity == "critical"


def test_regression_mae_finding() -> None:
    rng = np.random.default_rng(6)
    p0, y0 = regression_values(10_000, 5.0, rng)
    p1, y1 = regression_values(3000, 7.0, rng)
    monitor = PerformanceMonitor(
        REGRESSION, reference_of(REGRESSION, p0, y0), PerformanceSettings()
    )
    findings = [
        f for _, f in monitor.observe_pairs(delayed(p1, y1, rng), model_id="m", model_version="1")
    ]
    mae = [f for f in findings if f.detector == "mae"]
    assert len(mae) == 3 and all(f.value > 5 for f in mae)
    assert abs(mae[0].evidence["relative_change"] - 0.4) < 0.1
    assert isinstance(mae[0], Finding) and mae[0].feature == "__error__"


def test_a_reference_of_another_task_is_refused() -> None:
    reference = ReferencePerformance(TaskSpec(Task.REGRESSION, "value"), {"mae": 1.0}, 10, None)
    try:
        PerformanceMonitor(BINARY, reference, PerformanceSettings())
    except ValueError as exc:
        assert "regression" in str(exc)
    else:
        raise AssertionError("expected a ValueError")


def test_performance_detectors_are_in_the_catalog_for_thresholds_and_texts() -> None:
    from driftline.detectors.catalog import DETECTORS, describe_statistic
    from driftline.performance.detectors import PERFORMANCE_DETECTORS, PERFORMANCE_STATISTICS
    from driftline.plan import ThresholdTable

    for detector in PERFORMANCE_DETECTORS:
        assert DETECTORS[detector.name] is detector and not detector.kinds
    for detector in PERFORMANCE_STATISTICS:
        assert describe_statistic(detector.statistic) == (detector.display_name, detector.meaning)
    table = ThresholdTable()
    assert table("__error__", "error_rate").level(3.5) == "warning"
    assert table("__error__", "adwin").level(1.0) == "warning"
    assert table("__estimated_error__", "estimated_error_rate").level(0.07) == "critical"

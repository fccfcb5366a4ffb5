"""The contract every registered detector passes (river's ``checks`` style).

Adding a detector to :mod:`driftline.detectors.catalog` runs it through all of these: its
registration and defaults, an empty window, the batched close of numeric windows, the state
round-trip of stream detectors, and the feature kinds it applies to.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from driftline.config import _check_detector_names
from driftline.detectors.base import Detector, Statistic
from driftline.detectors.catalog import (
    DEFAULT_DETECTORS,
    DETECTORS,
    FEATURE_DETECTORS,
    STREAM_DETECTORS,
    describe_statistic,
)
from driftline.detectors.feature_window import (
    CategoryWindow,
    NumericWindow,
    feature_window,
    numeric_batches,
)
from driftline.detectors.stream import StreamDetections
from driftline.features import boolean_column, category_column, numeric_column
from driftline.profile import FeatureKind, FeatureProfile, ProfileSource, build_profile

KINDS = tuple(FeatureKind)
DETECTOR_CLASSES = list(FEATURE_DETECTORS)
STREAM_PARAMETERS: dict[str, dict[str, Any]] = {
    "adwin": {"delta": 0.05, "clock": 4},
    "page_hinkley": {"threshold": 5.0},
}

pytestmark = pytest.mark.parametrize(
    "detector", DETECTOR_CLASSES, ids=[d.name for d in DETECTOR_CLASSES]
)


def _profiles(seed: int = 0) -> dict[FeatureKind, FeatureProfile]:
    rng = np.random.default_rng(seed)
    numeric = rng.normal(10.0, 2.0, 2_000)
    numeric[rng.uniform(size=numeric.size) < 0.05] = np.nan
    columns: dict[str, list[Any]] = {
        "x": [None if math.isnan(v) else float(v) for v in numeric],
        "c": rng.choice(["a", "b", "c", "d"], 2_000, p=[0.4, 0.3, 0.2, 0.1]).tolist(),
        "b": rng.choice([True, False], 2_000).tolist(),
    }
    profile = build_profile(
        columns,
        model_id="m",
        model_version="1",
        source=ProfileSource(kind="file", sha256="0" * 64),
        top_k=3,
    )
    features = profile.features
    return {f.kind: f for f in (features["x"], features["c"], features["b"])}


PROFILES = _profiles()


def _window(kind: FeatureKind, names: tuple[str, ...]) -> NumericWindow | CategoryWindow:
    return feature_window(
        PROFILES[kind], names, STREAM_PARAMETERS["adwin"], STREAM_PARAMETERS["page_hinkley"]
    )


def _fill(window: NumericWindow | CategoryWindow, seed: int, rows: int, first: int) -> None:
    """Add ``rows`` shifted events, some missing or of the wrong type."""
    rng = np.random.default_rng(seed)
    raw: list[Any]
    if isinstance(window, NumericWindow):
        values = rng.normal(11.0 + seed % 3, 3.0, rows)
        raw = [None if v < 6 else "n/a" if v > 17 else float(v) for v in values]
        window.update(numeric_column(raw, rows), 0, rows, first)
    elif window.kind is FeatureKind.BOOLEAN:
        raw = rng.choice([True, False, None, "yes"], rows, p=[0.7, 0.2, 0.05, 0.05]).tolist()
        window.update(boolean_column(raw, rows), 0, rows, first)
    else:
        raw = rng.choice(["a", "b", "e", "f", None], rows).tolist()
        window.update(category_column(raw, rows), 0, rows, first)


def test_is_registered_under_its_name_with_a_unique_statistic(detector: type[Detector]) -> None:
    assert DETECTORS[detector.name] is detector
    assert detector.name.isidentifier()
    others = [d.statistic for d in DETECTOR_CLASSES if d is not detector]
    assert detector.statistic not in others
    assert detector.kinds and detector.kinds <= set(KINDS)


def test_default_thresholds_agree_with_the_direction(detector: type[Detector]) -> None:
    assert detector.direction in ("above", "below")
    assert detector.warning is not None and math.isfinite(detector.warning)
    if detector.critical is not None:
        if detector.direction == "above":
            assert detector.warning < detector.critical
        else:
            assert detector.warning > detector.critical


def test_display_name_and_meaning_are_looked_up_by_statistic(detector: type[Detector]) -> None:
    assert detector.display_name and detector.meaning.endswith(".")
    assert describe_statistic(detector.statistic) == (detector.display_name, detector.meaning)
    assert describe_statistic(detector.statistic.upper())[0] == detector.display_name


def test_an_empty_window_gives_a_finite_value_on_no_values(detector: type[Detector]) -> None:
    for kind in detector.kinds:
        [statistic] = _window(kind, (detector.name,)).evaluate(0)
        assert (statistic.detector, statistic.statistic) == (detector.name, detector.statistic)
        assert statistic.sample_size == 0
        assert math.isfinite(statistic.value)
        json.dumps(statistic.evidence)  # evidence is JSON-ready


@pytest.mark.parametrize("kind", KINDS, ids=[k.value for k in KINDS])
def test_applies_only_to_its_declared_kinds(detector: type[Detector], kind: FeatureKind) -> None:
    window = _window(kind, (detector.name,))
    _fill(window, 1, 500, 1)
    if kind in detector.kinds:
        assert _check_detector_names((detector.name,), kind) == (detector.name,)
        [statistic] = window.evaluate(500)
        assert isinstance(statistic, Statistic)
        assert statistic.sample_size > 0
        assert math.isfinite(statistic.value)
        return
    with pytest.raises(ValueError, match="does not apply"):
        _check_detector_names((detector.name,), kind)
    if kind is FeatureKind.NUMERIC or not detector.kinds & {
        FeatureKind.CATEGORICAL,
        FeatureKind.BOOLEAN,
    }:
        # no window of this kind's shape can evaluate it
        with pytest.raises(ValueError, match="does not apply"):
            window.evaluate(500)


def test_evaluate_dispatches_on_the_sample(detector: type[Detector]) -> None:
    """``evaluate`` equals the kind's own method, for every declared kind."""
    for kind in detector.kinds:
        window = _window(kind, (detector.name,))
        _fill(window, 2, 300, 1)
        [expected] = window.evaluate(300)
        [instance] = window.detectors
        assert instance.evaluate(window.sample(300)) == expected
        assert expected.detector == detector.name


def test_batched_close_equals_closing_one_window_alone(detector: type[Detector]) -> None:
    if FeatureKind.NUMERIC not in detector.kinds:  # only numeric windows are batched
        assert numeric_batches([_window(k, (detector.name,)) for k in detector.kinds]) == []
        return
    # the batch needs a detector that compares coarse bins; psi is one
    names = (detector.name,) if detector.uses_coarse_bins else (detector.name, "psi")
    windows = [_window(FeatureKind.NUMERIC, names) for _ in range(4)]
    alone = [_window(FeatureKind.NUMERIC, names) for _ in range(4)]
    for seed, (window, twin) in enumerate(zip(windows, alone, strict=True)):
        size = (0, 1, 300, 1_000)[seed]
        _fill(window, seed, size, 1)
        _fill(twin, seed, size, 1)
    [batch] = numeric_batches(windows)
    for window, twin, coarse in zip(windows, alone, batch.evaluate(), strict=True):
        batched = window.evaluate(1_000, coarse)
        assert batched == twin.evaluate(1_000)
        assert batched[0].detector == detector.name


def test_stream_state_round_trip_continues_identically(detector: type[Detector]) -> None:
    if not issubclass(detector, StreamDetections):
        assert detector not in STREAM_DETECTORS
        assert not isinstance(detector.create({}), StreamDetections)
        return
    assert detector in STREAM_DETECTORS
    original = _window(FeatureKind.NUMERIC, (detector.name,))
    assert isinstance(original, NumericWindow)
    detections = 0
    for step in range(6):
        _fill(original, 10 + step, 400, 1 + 400 * step)
        if step == 2:
            state = json.loads(json.dumps(original.to_state()))
            restored = _window(FeatureKind.NUMERIC, (detector.name,))
            restored.restore(state)
            assert restored.to_state() == original.to_state()
        elif step > 2:
            _fill(restored, 10 + step, 400, 1 + 400 * step)
            [expected] = original.evaluate(400)
            assert restored.evaluate(400) == [expected]
            assert restored.to_state() == original.to_state()
            detections += int(expected.value)
            original.reset()
            restored.reset()
    assert detections > 0, "the stream must produce detections, or this test proves nothing"


def test_defaults_name_registered_detectors_of_their_kind(detector: type[Detector]) -> None:
    for kind, names in DEFAULT_DETECTORS.items():
        if detector.name in names:
            assert kind in detector.kinds


def test_unknown_statistic_is_shown_as_it_is(detector: type[Detector]) -> None:
    assert describe_statistic(f"{detector.statistic}_custom") == (
        f"{detector.statistic}_custom",
        None,
    )

"""Isotonic calibration (PAV) against scipy and brute force; CBPE's expected error rate."""

from __future__ import annotations

import itertools
import math

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import isotonic_regression

from driftline.performance.calibration import (
    Calibration,
    expected_error_rate,
    fit_calibration,
    isotonic_fit,
)


def test_pav_known_result() -> None:
    # the textbook example: violators pooled into their mean
    fitted = isotonic_fit(np.arange(6.0), np.array([1.0, 3.0, 2.0, 4.0, 3.5, 5.0]))
    np.testing.assert_allclose(fitted, [1.0, 2.5, 2.5, 3.75, 3.75, 5.0])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0.1, 10)), min_size=1, max_size=40))
def test_pav_equals_scipy(points: list[tuple[float, float]]) -> None:
    y = np.array([p for p, _ in points])
    w = np.array([w for _, w in points])
    ours = isotonic_fit(np.arange(y.size, dtype=float), y, w)
    np.testing.assert_allclose(ours, isotonic_regression(y, weights=w).x, atol=1e-9)


def test_pav_equals_brute_force_on_a_grid() -> None:
    # every non-decreasing function on 4 points with values on a 0.1 grid: none is better
    y = np.array([0.9, 0.1, 0.6, 0.3])
    fitted = isotonic_fit(np.arange(4.0), y)
    best = min(
        sum((a - b) ** 2 for a, b in zip(f, y, strict=True))
        for f in itertools.combinations_with_replacement(np.round(np.arange(0, 1.01, 0.1), 1), 4)
    )
    assert float(np.sum((fitted - y) ** 2)) <= best + 1e-12


def test_calibration_map_breakpoints_and_round_trip() -> None:
    p = np.array([0.1, 0.1, 0.2, 0.3, 0.4, 0.8, 0.9])
    y = np.array([0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    calibration = fit_calibration(p, y)
    assert calibration is not None
    # blocks: {0.1: 0.5, 0.2+0.3: 0 -> pooled with 0.1 to 1/4 over 0.1..0.3}, then 1.0
    assert calibration.x == (0.1, 0.3, 0.4, 0.9)
    assert calibration.y == (0.25, 0.25, 1.0, 1.0)
    np.testing.assert_allclose(calibration(np.array([0.0, 0.2, 0.35, 1.0])), [0.25, 0.25, 0.625, 1])
    restored = Calibration.from_dict(orjson.loads(orjson.dumps(calibration.to_dict())))
    assert restored == calibration
    assert fit_calibration(np.array([0.5, 0.5]), np.array([0.0, 1.0])) is None
    assert fit_calibration(np.array([0.2, 0.5]), np.array([1.0, 1.0])) is None


def test_expected_error_rate_by_hand() -> None:
    calibration = Calibration((0.0, 1.0), (0.0, 1.0))  # perfectly calibrated
    estimate, n = expected_error_rate(np.array([0.9, 0.2, 0.5, np.nan]), 0.5, calibration)
    assert n == 3 and math.isclose(estimate, (0.1 + 0.2 + 0.5) / 3)

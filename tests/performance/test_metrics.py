"""Metrics against hand-computed values and a plain-Python brute force."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.performance.metrics import (
    multiclass_probability_metrics,
    pair_errors,
    window_metrics,
)
from driftline.performance.task import Task, TaskSpec

BINARY = TaskSpec(Task.BINARY, "probability", decision_threshold=0.5)


def test_binary_probability_by_hand() -> None:
    p = np.array([0.9, 0.2, 0.6, 0.4, np.nan])
    y = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    m = window_metrics(BINARY, p, y)
    # predicted 1, 0, 1, 0: wrong on the 3rd and 4th; the NaN pair is left out
    assert m["error_rate"] == 0.5 and m["accuracy"] == 0.5
    assert m["recall.1"] == 0.5 and m["recall.0"] == 0.5
    expected_log_loss = -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.4)) / 4
    assert math.isclose(m["log_loss"], expected_log_loss)
    assert math.isclose(m["brier"], (0.01 + 0.04 + 0.36 + 0.36) / 4)
    np.testing.assert_array_equal(pair_errors(BINARY, p, y), [0, 0, 1, 1, np.nan])


def test_threshold_is_inclusive_and_log_loss_is_clipped() -> None:
    spec = TaskSpec(Task.BINARY, "probability", decision_threshold=0.3)
    m = window_metrics(spec, np.array([0.3, 0.0]), np.array([1.0, 1.0]))
    assert m["error_rate"] == 0.5  # 0.3 >= 0.3 predicts positive; 0.0 does not
    assert math.isclose(m["log_loss"], (-math.log(0.3) - math.log(1e-15)) / 2)


def test_regression_by_hand() -> None:
    spec = TaskSpec(Task.REGRESSION, "value")
    m = window_metrics(spec, np.array([3.0, 1.0, 4.0]), np.array([1.0, 1.0, 5.0]))
    assert m["mae"] == 1.0
    assert math.isclose(m["rmse"], math.sqrt(5 / 3))
    assert math.isclose(m["bias"], 1 / 3)
    assert math.isclose(m["abs_error_std"], float(np.std([2.0, 0.0, 1.0])))


def test_multiclass_probability_vectors_by_hand() -> None:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6], [np.nan, 1.0, np.nan]])
    labels = np.array([0.0, 1.0, 1.0])
    m = multiclass_probability_metrics(probabilities, labels)
    assert math.isclose(m["log_loss"], (-math.log(0.7) - math.log(0.2) - math.log(1 - 1e-15)) / 3)
    brier = ((0.09 + 0.04 + 0.01) + (0.04 + 0.64 + 0.36) + 0.0) / 3
    assert math.isclose(m["brier"], brier)


codes = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60)


@settings(max_examples=100, deadline=None)
@given(codes)
def test_multiclass_recall_and_error_equal_brute_force(pairs: list[tuple[int, int]]) -> None:
    spec = TaskSpec(Task.MULTICLASS, "class", classes=("a", "b", "c", "d"))
    predicted = np.array([p for p, _ in pairs], dtype=float)
    labels = np.array([y for _, y in pairs], dtype=float)
    m = window_metrics(spec, predicted, labels)
    assert m["error_rate"] == sum(p != y for p, y in pairs) / len(pairs)
    for k, name in enumerate(spec.classes):
        of_class = [(p, y) for p, y in pairs if y == k]
        if of_class:
            assert m[f"recall.{name}"] == sum(p == y for p, y in of_class) / len(of_class)
        else:
            assert f"recall.{name}" not in m


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=1, max_size=50))
def test_regression_equals_brute_force(pairs: list[tuple[float, float]]) -> None:
    spec = TaskSpec(Task.REGRESSION, "value")
    m = window_metrics(spec, np.array([p for p, _ in pairs]), np.array([y for _, y in pairs]))
    n = len(pairs)
    assert math.isclose(m["mae"], sum(abs(p - y) for p, y in pairs) / n, abs_tol=1e-9)
    assert math.isclose(m["bias"], sum(p - y for p, y in pairs) / n, abs_tol=1e-9)
    rmse = math.sqrt(sum((p - y) ** 2 for p, y in pairs) / n)
    assert math.isclose(m["rmse"], rmse, rel_tol=1e-9, abs_tol=1e-9)

"""Task inference rules, ambiguity, and the encoders (NaN for what does not fit)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftline.performance.profile_task import infer_task
from driftline.performance.task import (
    Task,
    TaskInferenceError,
    TaskSpec,
    encode_labels,
    encode_prediction_columns,
    encode_predictions,
    infer_task_from_columns,
)
from driftline.profile import ProfileSource, build_profile


def _infer(labels, predictions, task=None):  # type: ignore[no-untyped-def]
    columns = {"__label__": labels}
    if isinstance(predictions, dict):
        columns.update({f"__prediction__.{k}": v for k, v in predictions.items()})
    else:
        columns["__prediction__"] = predictions
    return infer_task_from_columns(columns, task)


def test_binary_rules() -> None:
    assert _infer([0, 1, 1], [0.2, 0.9, 0.6]) == TaskSpec(Task.BINARY, "probability")
    assert _infer([True, False], [0.2, 0.9]) == TaskSpec(Task.BINARY, "probability")
    assert _infer([0, 1], [1, 0]) == TaskSpec(Task.BINARY, "class")
    assert _infer([0, 1], [True, False]) == TaskSpec(Task.BINARY, "class")
    assert _infer([0, 1], {"0": [0.3, 0.6], "1": [0.7, 0.4]}) == TaskSpec(
        Task.BINARY, "probability"
    )
    assert _infer([True, None], {"false": [0.3, None], "true": [0.7, None]}).task is Task.BINARY


def test_multiclass_and_regression_rules() -> None:
    spec = _infer(["cat", "dog"], ["dog", "bird"])
    assert spec == TaskSpec(Task.MULTICLASS, "class", classes=("bird", "cat", "dog"))
    spec = _infer(["a", "b"], {"a": [0.1, 0.5], "b": [0.6, 0.2], "c": [0.3, 0.3]})
    assert spec == TaskSpec(Task.MULTICLASS, "probability", classes=("a", "b", "c"))
    assert _infer([1.5, 3.0, 2.2], [1.4, 2.9, 2.0]) == TaskSpec(Task.REGRESSION, "value")


@pytest.mark.parametrize(
    ("labels", "predictions"),
    [
        ([0, 1, 1], [2.5, -1.0, 0.3]),  # 0/1 labels, scores outside [0, 1]
        ([0, 1, 2], [0, 2, 2]),  # integer labels and predictions among them
        (["a", "b"], [0.5, 0.1]),  # string labels, numeric predictions
    ],
)
def test_ambiguous_data_asks_for_the_task(labels, predictions) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TaskInferenceError, match="task"):
        _infer(labels, predictions)


def test_the_configured_task_decides_the_ambiguous_cases() -> None:
    assert _infer([0, 1, 2], [0, 2, 2], Task.MULTICLASS).classes == ("0", "1", "2")
    assert _infer([0, 1, 2], [0, 2, 2], Task.REGRESSION).task is Task.REGRESSION
    assert _infer([0, 1, 1], [2.5, -1.0, 0.3], Task.REGRESSION).task is Task.REGRESSION
    with pytest.raises(TaskInferenceError):
        _infer(["a", "b"], [0.1, 0.2], Task.REGRESSION)


def test_no_label_or_no_prediction_means_no_task() -> None:
    assert infer_task_from_columns({"x": [1.0], "__label__": [1]}) is None
    assert infer_task_from_columns({"__prediction__": [0.5]}) is None
    assert infer_task_from_columns({"__label__": [None], "__prediction__": [0.5]}) is None


def test_encoders_give_nan_for_values_that_do_not_fit() -> None:
    binary = TaskSpec(Task.BINARY, "probability")
    codes = encode_predictions(binary, [0.2, 1.5, "x", None, {"1": 0.8, "0": 0.2}, math.nan])
    np.testing.assert_array_equal(codes, [0.2, np.nan, np.nan, np.nan, 0.8, np.nan])
    labels = encode_labels(binary, [1, 0, True, 2, "1", None, 0.0])
    np.testing.assert_array_equal(labels, [1, 0, 1, np.nan, np.nan, np.nan, 0])
    multi = TaskSpec(Task.MULTICLASS, "probability", classes=("a", "b", "c"))
    codes = encode_predictions(
        multi, [{"a": 0.2, "b": 0.5, "c": 0.3}, {"a": 0.5, "b": 0.5}, {"a": 1.2}, {}]
    )
    np.testing.assert_array_equal(codes, [1, 0, np.nan, np.nan])
    np.testing.assert_array_equal(encode_labels(multi, ["c", "z", 3]), [2, np.nan, np.nan])
    regression = TaskSpec(Task.REGRESSION, "value")
    np.testing.assert_array_equal(
        encode_prediction_columns(regression, {"__prediction__": [1, 2.5, True, "a"]}, 4),
        [1.0, 2.5, np.nan, np.nan],
    )


def test_infer_from_a_profile_uses_its_performance_section() -> None:
    columns = {
        "x": [1.0, 2.0, 3.0, 4.0],
        "__label__": [0, 1, 1, 0],
        "__prediction__": [0.1, 0.8, 0.4, 0.3],
    }
    profile = build_profile(
        columns, model_id="m", model_version="1", source=ProfileSource("file", "0" * 64)
    )
    assert infer_task(profile, decision_threshold=0.3) == TaskSpec(
        Task.BINARY, "probability", decision_threshold=0.3
    )
    with pytest.raises(TaskInferenceError):
        infer_task(profile, Task.REGRESSION)
    bare = build_profile(
        {"x": [1.0]}, model_id="m", model_version="1", source=ProfileSource("file", "0" * 64)
    )
    assert infer_task(bare) is None
    assert infer_task(None) is None

"""A model version's reference performance, stored in its reference profile.

``driftline profile build`` on data with ``__prediction__`` (or ``__prediction__.<class>``)
and ``__label__`` records the ``performance`` section of the profile::

    "performance": {"calibration": {"x": [...], "y": [...]} | null,
                    "metrics": {"accuracy": 0.67, "brier": 0.21, "error_rate": 0.33, ...},
                    "pairs": 10000,
                    "task": {"classes": [], "decision_threshold": 0.5,
                             "prediction_kind": "probability", "task": "binary"}}

``pairs`` counts the rows where both the prediction and the label are valid for the task;
``metrics`` are :func:`driftline.performance.metrics.window_metrics` over them (plus, for
multiclass probabilities, the log loss and Brier score of the full vectors, and with a
calibration ``expected_error_rate``: CBPE's estimate on the reference itself, the baseline
of the estimated performance); the calibration
map (binary probabilities only, see :mod:`driftline.performance.calibration`) is what CBPE
needs. Profiles without predictions and labels have no such section, and keep the bytes and
``profile_id`` they had before it existed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftline.events import LABEL_FEATURE, Scalar
from driftline.performance.calibration import Calibration, expected_error_rate, fit_calibration
from driftline.performance.metrics import multiclass_probability_metrics, window_metrics
from driftline.performance.task import (
    Task,
    TaskSpec,
    class_probabilities,
    encode_labels,
    encode_prediction_columns,
    infer_task_from_columns,
)

__all__ = ["ReferencePerformance", "ReferencePerformanceError", "build_reference_performance"]


class ReferencePerformanceError(ValueError):
    """Invalid ``performance`` section; ``key`` is the path of the offending key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ReferencePerformance:
    task: TaskSpec
    metrics: dict[str, float]
    pairs: int
    """Rows with a valid prediction and label."""
    calibration: Calibration | None
    """Isotonic map of the binary probabilities (``None`` for other tasks, or when it
    cannot be fitted)."""

    def to_dict(self) -> dict[str, Any]:
        spec = self.task
        return {
            "task": {
                "task": spec.task.value,
                "prediction_kind": spec.prediction_kind,
                "decision_threshold": spec.decision_threshold,
                "classes": list(spec.classes),
            },
            "metrics": dict(sorted(self.metrics.items())),
            "pairs": self.pairs,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any, key: str = "performance") -> ReferencePerformance:
        """Validate and rebuild; :class:`ReferencePerformanceError` names the key path."""
        obj = _object(data, key, {"task", "metrics", "pairs", "calibration"})
        task_key = f"{key}.task"
        raw_task = _object(
            obj["task"], task_key, {"task", "prediction_kind", "decision_threshold", "classes"}
        )
        task_value = raw_task["task"]
        if task_value not in [t.value for t in Task]:
            raise ReferencePerformanceError(
                f"{task_key}.task", f"expected one of {[t.value for t in Task]}, got {task_value!r}"
            )
        classes = raw_task["classes"]
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise ReferencePerformanceError(f"{task_key}.classes", "expected a list of strings")
        threshold = raw_task["decision_threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ReferencePerformanceError(
                f"{task_key}.decision_threshold", f"expected a number, got {threshold!r}"
            )
        try:
            spec = TaskSpec(
                Task(task_value), raw_task["prediction_kind"], float(threshold), tuple(classes)
            )
        except ValueError as exc:
            raise ReferencePerformanceError(task_key, str(exc)) from None
        raw_metrics = obj["metrics"]
        if not isinstance(raw_metrics, dict):
            raise ReferencePerformanceError(f"{key}.metrics", "expected an object")
        metrics: dict[str, float] = {}
        for name, value in raw_metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ReferencePerformanceError(
                    f"{key}.metrics.{name}", f"expected a number, got {value!r}"
                )
            if not math.isfinite(value):
                raise ReferencePerformanceError(f"{key}.metrics.{name}", "expected a finite number")
            metrics[name] = float(value)
        pairs = obj["pairs"]
        if isinstance(pairs, bool) or not isinstance(pairs, int) or pairs < 1:
            raise ReferencePerformanceError(
                f"{key}.pairs", f"expected a positive integer, got {pairs!r}"
            )
        calibration = None
        if obj["calibration"] is not None:
            try:
                calibration = Calibration.from_dict(obj["calibration"])
            except ValueError as exc:
                raise ReferencePerformanceError(f"{key}.calibration", str(exc)) from None
            if not spec.has_probabilities:
                raise ReferencePerformanceError(
                    f"{key}.calibration", "only binary probability tasks have a calibration"
                )
        return cls(spec, metrics, pairs, calibration)


def _object(value: Any, key: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ReferencePerformanceError(key, f"expected an object, got {value!r:.60}")
    for name in sorted(keys):
        if name not in value:
            raise ReferencePerformanceError(f"{key}.{name}", "missing")
    extra = sorted(set(value) - keys)
    if extra:
        raise ReferencePerformanceError(f"{key}.{extra[0]}", "unknown key")
    return value


def build_reference_performance(
    columns: Mapping[str, Sequence[Scalar]],
    *,
    task: Task | None = None,
    decision_threshold: float = 0.5,
) -> ReferencePerformance | None:
    """The reference performance of reference data (columns as
    :func:`driftline.profile.build_profile` takes them); ``None`` when the data has no
    prediction or label column, or no row where both are valid for the task.

    Raises :class:`driftline.performance.task.TaskInferenceError` when the task is
    ambiguous and not given.
    """
    spec = infer_task_from_columns(columns, task, decision_threshold)
    if spec is None:
        return None
    rows = len(columns[LABEL_FEATURE])
    predictions = encode_prediction_columns(spec, columns, rows)
    labels = encode_labels(spec, columns[LABEL_FEATURE])
    metrics = window_metrics(spec, predictions, labels)
    if not metrics:
        return None
    pairs = int(np.count_nonzero(~(np.isnan(predictions) | np.isnan(labels))))
    if spec.task is Task.MULTICLASS and spec.prediction_kind == "probability":
        metrics.update(
            multiclass_probability_metrics(class_probabilities(spec, columns, rows), labels)
        )
    calibration = fit_calibration(predictions, labels) if spec.has_probabilities else None
    if calibration is not None:
        keep = ~np.isnan(labels)
        expected, _ = expected_error_rate(predictions[keep], spec.decision_threshold, calibration)
        metrics["expected_error_rate"] = expected
    return ReferencePerformance(spec, metrics, pairs, calibration)

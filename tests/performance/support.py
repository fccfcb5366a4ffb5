"""Synthetic joined-pair streams for the performance tests.

``JoinedPairs`` mirrors Room A's ``driftline.labels.JoinedPairs`` (same fields, same
meaning), so these tests do not depend on the label join.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from driftline.findings import Finding
from driftline.performance.monitor import PerformanceMonitor
from driftline.performance.reference import ReferencePerformance
from driftline.performance.task import Task, TaskSpec
from driftline.plan import ThresholdTable
from driftline.policy.alerts import Alert, AlertPolicy, AlertSettings

BINARY = TaskSpec(Task.BINARY, "class")
BINARY_PROBABILITY = TaskSpec(Task.BINARY, "probability")
REGRESSION = TaskSpec(Task.REGRESSION, "value")


@dataclass(frozen=True, slots=True)
class JoinedPairs:
    prediction: npt.NDArray[np.float64]
    label: npt.NDArray[np.float64]
    prediction_time: npt.NDArray[np.float64]
    label_time: npt.NDArray[np.float64]
    completed_at: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.prediction.size)

    def slice(self, start: int, stop: int) -> JoinedPairs:
        return JoinedPairs(
            self.prediction[start:stop],
            self.label[start:stop],
            self.prediction_time[start:stop],
            self.label_time[start:stop],
            self.completed_at[start:stop],
        )


def delayed(
    prediction: npt.NDArray[np.float64],
    label: npt.NDArray[np.float64],
    rng: np.random.Generator,
    first: int = 0,
) -> JoinedPairs:
    """Pairs of predictions made one per second whose labels arrive 30 s to 10 min later."""
    n = prediction.size
    t = 1.7e9 + first + np.arange(n, dtype=np.float64)
    label_time = t + rng.uniform(30.0, 600.0, n)
    order = np.argsort(label_time, kind="stable")
    return JoinedPairs(
        prediction[order],
        label[order],
        t[order],
        label_time[order],
        2 * (first + np.arange(n, dtype=np.int64)) + 2,
    )


def binary_classes(
    n: int, error_rate: float, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Class predictions and labels with the given error rate."""
    label = (rng.random(n) < 0.5).astype(np.float64)
    wrong = rng.random(n) < error_rate
    return np.where(wrong, 1.0 - label, label), label


def regression_values(
    n: int, scale: float, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Predictions and labels with Gaussian errors of standard deviation ``scale``."""
    label = rng.normal(100.0, 20.0, n)
    return label + rng.normal(0.0, scale, n), label


def reference_of(spec: TaskSpec, prediction, label) -> ReferencePerformance:  # type: ignore[no-untyped-def]
    from driftline.performance.metrics import window_metrics

    metrics = window_metrics(spec, prediction, label)
    return ReferencePerformance(spec, metrics, int(prediction.size), None)


def policy() -> AlertPolicy:
    return AlertPolicy(source="/test", settings=AlertSettings(), thresholds=ThresholdTable())


def run(
    monitor: PerformanceMonitor, pairs: JoinedPairs, chunk: int = 5000
) -> list[tuple[int, Finding]]:
    out: list[tuple[int, Finding]] = []
    for start in range(0, len(pairs), chunk):
        out.extend(
            monitor.observe_pairs(
                pairs.slice(start, start + chunk), model_id="m", model_version="1"
            )
        )
    return out


def alerts_of(findings: list[tuple[int, Finding]]) -> list[Alert]:
    alerting = policy()
    return [alert for _, f in findings for alert in alerting.observe(f)]

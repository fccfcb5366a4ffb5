"""Settings of one champion / challenger comparison (config key ``comparisons[]``)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from driftline.performance.task import Task
from driftline.settings_base import StrictSettings

__all__ = ["METRIC_TASKS", "ComparisonSettings", "Metric", "check_comparisons"]

Metric = Literal["error_rate", "mae"]

METRIC_TASKS: dict[str, frozenset[Task]] = {
    "error_rate": frozenset({Task.BINARY, Task.MULTICLASS}),
    "mae": frozenset({Task.REGRESSION}),
}
"""The tasks each metric can measure."""


class ComparisonSettings(StrictSettings):
    """One champion / challenger pair of versions of one model (README, "Champion vs
    challenger")."""

    model_id: str = Field(min_length=1)
    champion: str = Field(min_length=1)
    """The version in production."""
    challenger: str = Field(min_length=1)
    """The candidate version."""
    metric: Metric | None = None
    """The loss compared: ``error_rate`` (classifiers) or ``mae`` (regression); by default
    the task's primary metric."""
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    """The chance that the confidence interval ever misses the true difference (so that a
    ``*_better`` verdict is ever given between equally good versions) is at most this."""
    min_effect: float = Field(0.01, ge=0.0, allow_inf_nan=False)
    """Differences within +- this (the metric's unit: 0.01 = one point of error rate) count
    as no difference: verdict ``no_difference`` once the interval lies inside."""
    min_pairs: int = Field(100, ge=1)
    """Compared pairs before any verdict other than ``insufficient_data``."""
    loss_bound: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    """``mae`` only: absolute errors are clipped to this (the interval needs bounded
    losses); by default the range (max - min) of the reference profile's labels."""
    pair_by_request_id: bool = True
    """Pair the two versions' outcomes of the same ``request_id`` (shadow traffic). Set
    ``false`` when requests go to one version each (split traffic) but carry ids."""
    max_waiting: int = Field(10_000, ge=1, le=1_000_000)
    """Outcomes (and, without labels, predictions) of one version waiting for their
    counterpart of the other, at most."""
    max_wait_seconds: float = Field(3_600.0, gt=0.0, allow_inf_nan=False)
    """Event time an outcome waits for its counterpart before it is dropped (counted)."""
    max_pending_requests: int = Field(100_000, ge=1, le=10_000_000)
    """Predictions per version whose ``request_id`` is remembered until their label joins
    (16 bytes each, in memory and in the checkpoint)."""

    @field_validator("champion", "challenger", mode="before")
    @classmethod
    def _version_as_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _distinct_versions(self) -> Self:
        if self.champion == self.challenger:
            raise ValueError(
                f"challenger: the same version as the champion ({self.champion!r}); "
                "compare two different versions"
            )
        return self

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model_id, self.champion, self.challenger)

    def metric_for(self, task: Task) -> Metric:
        """The metric compared for ``task`` (configured, else the task's primary)."""
        if self.metric is not None:
            return self.metric
        return "mae" if task is Task.REGRESSION else "error_rate"


def check_comparisons(comparisons: tuple[ComparisonSettings, ...]) -> None:
    """No pair twice (in either order); ``ValueError`` naming ``comparisons.<i>``."""
    seen: dict[tuple[str, frozenset[str]], int] = {}
    for i, comparison in enumerate(comparisons):
        key = (comparison.model_id, frozenset((comparison.champion, comparison.challenger)))
        if key in seen:
            raise ValueError(
                f"comparisons.{i}: model {comparison.model_id!r} versions "
                f"{comparison.champion!r} and {comparison.challenger!r} are compared by "
                f"comparisons.{seen[key]} already"
            )
        seen[key] = i

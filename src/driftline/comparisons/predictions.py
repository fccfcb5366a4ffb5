"""How the two versions' predictions compare, without labels: reported, never a verdict.

**Agreement** (paired by ``request_id``, matched as outcomes are:
:class:`~driftline.comparisons.pairing.WaitingRoom`): for classifiers the share of requests
on which both versions predict the same class (a binary probability predicts the positive
class at or above its version's ``decision_threshold``); for regression the mean absolute
difference of the two predictions.

**Distance** between the two versions' prediction distributions, over the same span: the
predictions read since the comparison started (both versions had ground truth).
Classifiers: the total variation distance (half the L1 distance, in [0, 1]) between the
shares of predicted classes, or of ten equal-width probability bins for binary
probabilities. Regression: the standardized mean difference
``(mean_champion - mean_challenger) / sqrt((var_champion + var_challenger) / 2)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from driftline.comparisons.pairing import CHALLENGER, CHAMPION, WaitingRoom
from driftline.performance.metrics import predicted_classes
from driftline.performance.task import Task, TaskSpec

__all__ = ["PREDICTION_BINS", "PredictionComparison"]

PREDICTION_BINS = 10
"""Equal-width bins of a binary probability, for the distance."""

Floats = npt.NDArray[np.float64]


class PredictionComparison:
    """Agreement and distance of two versions' predictions (module docstring)."""

    __slots__ = (
        "agreements",
        "compared",
        "counts",
        "difference_sum",
        "moments",
        "room",
        "span",
        "specs",
    )

    def __init__(self, specs: tuple[TaskSpec, TaskSpec], room: WaitingRoom) -> None:
        self.specs = specs
        self.room = room
        self.compared = 0
        """Requests both versions predicted."""
        self.agreements = 0
        """Of those, how many with the same predicted class (classifiers)."""
        self.difference_sum = 0.0
        """Sum of |champion - challenger| over them (regression)."""
        bins = self._bins()
        self.counts = [[0] * bins, [0] * bins]
        """Per side, predictions per class / probability bin (classifiers)."""
        self.moments = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
        """Per side, count, sum and sum of squares of the predictions (regression)."""
        self.span: list[float] | None = None
        """First and last event time of the predictions the distance covers."""

    @property
    def regression(self) -> bool:
        return self.specs[CHAMPION].task is Task.REGRESSION

    def _bins(self) -> int:
        spec = self.specs[CHAMPION]
        if spec.task is Task.REGRESSION:
            return 0
        return PREDICTION_BINS if spec.has_probabilities else len(spec.class_names)

    def prepare(self, side: int, codes: Floats) -> tuple[Floats, npt.NDArray[np.int64]]:
        """Per prediction code of ``side`` (:mod:`driftline.performance.task`): the value
        agreement compares (the predicted class; regression: the prediction; NaN if
        invalid) and its bin for the distance (classes, or probability bins)."""
        spec = self.specs[side]
        if spec.task is Task.REGRESSION:
            return codes, np.zeros(codes.size, dtype=np.int64)
        classes = predicted_classes(spec, codes)
        valid = ~np.isnan(codes)
        bins = np.zeros(codes.size, dtype=np.int64)
        if spec.has_probabilities:
            bins[valid] = np.minimum((codes[valid] * PREDICTION_BINS).astype(np.int64), 9)
        else:
            bins[valid] = classes[valid].astype(np.int64)
        return classes, bins

    def update(
        self,
        sides: npt.NDArray[np.int64],
        values: Floats,
        bins: npt.NDArray[np.int64],
        times: Floats,
        requests: Sequence[int | None],
        watermarks: Sequence[float],
    ) -> None:
        """Consume predictions of both versions in stream order (:meth:`prepare`'s values
        and bins, event times, request id hashes, the comparison's watermark at each)."""
        valid = ~np.isnan(values)
        if valid.any():
            spans = times[valid]
            low, high = float(spans.min()), float(spans.max())
            self.span = [low, high] if self.span is None else [
                min(self.span[0], low), max(self.span[1], high)
            ]  # fmt: skip
        for side in (CHAMPION, CHALLENGER):
            mine = valid & (sides == side)
            if self.regression:
                x = values[mine]
                moments = self.moments[side]
                moments[0] += float(x.size)
                moments[1] = float(np.cumsum(np.concatenate(([moments[1]], x)))[-1])
                moments[2] = float(np.cumsum(np.concatenate(([moments[2]], x * x)))[-1])
            else:
                added = np.bincount(bins[mine], minlength=len(self.counts[side]))
                self.counts[side] = [
                    a + int(b) for a, b in zip(self.counts[side], added, strict=True)
                ]
        for j in np.flatnonzero(valid).tolist():
            request = requests[j]
            if request is not None:
                self._agree(
                    int(sides[j]), request, float(values[j]), float(times[j]), watermarks[j]
                )

    def _agree(self, side: int, request: int, value: float, time: float, watermark: float) -> None:
        found = self.room.match(side, request, value, time, watermark)
        if found is None:
            return
        self.compared += 1
        if self.regression:
            self.difference_sum += abs(value - found[0])
        else:
            self.agreements += int(value == found[0])

    def report(self) -> dict[str, Any]:
        """Agreement and distance, JSON-ready (``None`` where nothing was compared)."""
        regression = self.regression
        agreement: dict[str, Any] = {"requests": self.compared}
        if regression:
            agreement["mean_absolute_difference"] = (
                self.difference_sum / self.compared if self.compared else None
            )
        else:
            agreement["rate"] = self.agreements / self.compared if self.compared else None
        return {
            "agreement": agreement,
            "distance": self._distance(regression),
            "predictions": [int(sum(c)) for c in self.counts]
            if not regression
            else [int(m[0]) for m in self.moments],
        }

    def _distance(self, regression: bool) -> dict[str, Any]:
        if regression:
            (n0, s0, q0), (n1, s1, q1) = self.moments
            value = None
            if n0 > 0 and n1 > 0:
                m0, m1 = s0 / n0, s1 / n1
                pooled = (max(q0 / n0 - m0 * m0, 0.0) + max(q1 / n1 - m1 * m1, 0.0)) / 2
                value = (m0 - m1) / math.sqrt(pooled) if pooled > 0 else None
            return {"name": "standardized_mean_difference", "value": value}
        totals = [sum(c) for c in self.counts]
        value = None
        if all(totals):
            shares = [
                np.array(c, dtype=np.float64) / t for c, t in zip(self.counts, totals, strict=True)
            ]
            value = float(0.5 * np.abs(shares[0] - shares[1]).sum())
        return {"name": "total_variation", "value": value}

    def to_state(self) -> dict[str, Any]:
        return {
            "compared": self.compared,
            "agreements": self.agreements,
            "difference_sum": self.difference_sum,
            "counts": [list(c) for c in self.counts],
            "moments": [list(m) for m in self.moments],
            "span": self.span,
            "room": self.room.to_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.compared = int(state["compared"])
        self.agreements = int(state["agreements"])
        self.difference_sum = float(state["difference_sum"])
        self.counts = [[int(v) for v in c] for c in state["counts"]]
        self.moments = [[float(v) for v in m] for m in state["moments"]]
        self.span = None if state["span"] is None else [float(v) for v in state["span"]]
        self.room.restore(state["room"])

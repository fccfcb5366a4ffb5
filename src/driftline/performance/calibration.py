"""Isotonic calibration of binary probabilities, and the expected error rate it gives (CBPE).

**Calibration** (:func:`fit_calibration`): isotonic regression of the reference labels
(0/1) on the reference probabilities, by pool-adjacent-violators (PAV): the non-decreasing
step function ``f`` minimising ``sum (y_i - f(p_i))^2``. Pairs with equal probabilities are
pooled first (their mean label, weighted by count). The map is stored as breakpoints: the
first and last probability of each PAV block with the block's value, so ``f`` is constant on
a block and linear between blocks (the convention of scikit-learn's ``IsotonicRegression``
and so of NannyML's CBPE); probabilities below the first or above the last breakpoint get
the end values (clipped). JSON round trip: :meth:`Calibration.to_dict` /
:meth:`Calibration.from_dict`.

**Expected error rate** (:func:`expected_error_rate`): with calibrated probability
``q = f(p)`` that the label is positive, a prediction of the positive class
(``p >= threshold``) is wrong with probability ``1 - q``, one of the negative class with
probability ``q``. The mean over a window estimates its error rate without labels:
NannyML's confidence-based performance estimation (CBPE) for accuracy. It holds while
``P(label | probability)`` is what it was on the reference (covariate shift: the inputs, and
so the probabilities, may move); under concept drift (the same inputs now mean another
outcome) the estimate stays where the model believes it is and cannot see the change.

Multiclass probability objects are not estimated: CBPE for them needs one calibration per
class and the full probability vector per prediction, which the join does not keep (see
:mod:`driftline.performance.task`). Regression has no CBPE.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Calibration", "expected_error_rate", "fit_calibration", "isotonic_fit"]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Calibration:
    """A non-decreasing piecewise-linear map [0, 1] -> [0, 1] given by its breakpoints."""

    x: tuple[float, ...]
    """Probabilities, non-decreasing (a value appears at most twice: a jump)."""
    y: tuple[float, ...]
    """Calibrated probabilities at ``x``, non-decreasing."""

    def __post_init__(self) -> None:
        if not self.x or len(self.x) != len(self.y):
            raise ValueError("a calibration needs as many x as y breakpoints, at least one")
        for name, values in (("x", self.x), ("y", self.y)):
            if any(not (math.isfinite(v) and 0.0 <= v <= 1.0) for v in values):
                raise ValueError(f"calibration {name} values must be in [0, 1]")
            if any(b < a for a, b in itertools.pairwise(values)):
                raise ValueError(f"calibration {name} values must be non-decreasing")

    def __call__(self, probabilities: Array) -> Array:
        """Calibrated probabilities (NaN stays NaN)."""
        return np.interp(probabilities, self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        """Rebuild from :meth:`to_dict`; ``ValueError`` when the data is not a valid map."""
        if not isinstance(data, dict) or set(data) != {"x", "y"}:
            raise ValueError("expected an object with exactly the keys 'x' and 'y'")
        values = []
        for key in ("x", "y"):
            raw = data[key]
            if not isinstance(raw, list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in raw
            ):
                raise ValueError(f"{key}: expected a list of numbers")
            values.append(tuple(float(v) for v in raw))
        return cls(values[0], values[1])


def isotonic_fit(x: Array, y: Array, weights: Array | None = None) -> Array:
    """Pool-adjacent-violators: the non-decreasing ``f`` minimising
    ``sum w_i (y_i - f_i)^2`` over points already sorted by ``x`` (ties in ``x`` are not
    pooled here). Returns ``f`` at each point."""
    n = y.size
    w = np.ones(n) if weights is None else weights.astype(np.float64)
    # blocks as a stack: value, weight, number of points
    values: list[float] = []
    block_weights: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(y.tolist(), w.tolist(), strict=True):
        values.append(value)
        block_weights.append(weight)
        sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            merged_weight = block_weights[-2] + block_weights[-1]
            merged = (
                values[-2] * block_weights[-2] + values[-1] * block_weights[-1]
            ) / merged_weight
            size = sizes[-2] + sizes[-1]
            del values[-1], block_weights[-1], sizes[-1]
            values[-1], block_weights[-1], sizes[-1] = merged, merged_weight, size
    return np.repeat(np.array(values, dtype=np.float64), sizes)


def fit_calibration(probabilities: Array, labels: Array) -> Calibration | None:
    """The isotonic map of labels (0/1 codes) on probabilities, from the pairs where both
    are present; ``None`` when fewer than two distinct probabilities remain (no map to
    interpolate) or the labels are all one class."""
    keep = ~(np.isnan(probabilities) | np.isnan(labels))
    p, y = probabilities[keep], labels[keep]
    if p.size == 0 or np.all(y == y[0]):
        return None
    unique, inverse, counts = np.unique(p, return_inverse=True, return_counts=True)
    if unique.size < 2:
        return None
    means = np.bincount(inverse, weights=y) / counts
    fitted = isotonic_fit(unique, means, counts.astype(np.float64))
    xs: list[float] = []
    ys: list[float] = []
    start = 0
    for end in range(1, fitted.size + 1):
        if end == fitted.size or fitted[end] != fitted[start]:
            level = float(min(max(fitted[start], 0.0), 1.0))
            xs.append(float(unique[start]))
            ys.append(level)
            if end - 1 > start:
                xs.append(float(unique[end - 1]))
                ys.append(level)
            start = end
    return Calibration(tuple(xs), tuple(ys))


def expected_error_rate(
    probabilities: Array, threshold: float, calibration: Calibration
) -> tuple[float, int]:
    """CBPE's expected error rate of a window of binary probabilities (NaN ones left out),
    and how many probabilities it used; ``(nan, 0)`` for none."""
    p = probabilities[~np.isnan(probabilities)]
    if p.size == 0:
        return math.nan, 0
    q = calibration(p)
    wrong = np.where(p >= threshold, 1.0 - q, q)
    return float(np.mean(wrong)), int(p.size)

"""A confidence sequence for the mean of bounded values: an interval valid at every moment
under continuous monitoring.

Implemented: the *predictable plug-in empirical-Bernstein* confidence sequence (PrPl-EB) of
Waudby-Smith & Ramdas, "Estimating means of bounded random variables by betting", JRSS B
86(1), 2024 (arXiv 2010.09686, Theorem 2). For values ``X_1, X_2, ...`` in ``[0, 1]`` with
the same conditional mean ``mu`` given the past (``E[X_i | X_1..X_{i-1}] = mu``; i.i.d. is a
special case), after ``t`` values::

    mu_hat_t  = (1/2 + sum_{i<=t} X_i) / (t + 1)
    var_hat_t = (1/4 + sum_{i<=t} (X_i - mu_hat_i)^2) / (t + 1)
    lambda_t  = min(sqrt(2 log(2/alpha) / (var_hat_{t-1} t log(1 + t))), 1/2)
    v_t       = 4 (X_t - mu_hat_{t-1})^2,   psi(l) = (-log(1 - l) - l) / 4
    C_t       = sum lambda_i X_i / sum lambda_i
                +- (log(2/alpha) + sum v_i psi(lambda_i)) / sum lambda_i

and ``P(exists t: mu not in C_t) <= alpha``: the chance that the interval *ever* misses the
mean, however long one watches, is at most ``alpha``. The running intersection of the
``C_t`` keeps that guarantee; :class:`MeanConfidenceSequence` reports it (clipped to
``[0, 1]``), so the interval only shrinks. Its width adapts to the variance (empirical
Bernstein): near-equal paired losses give a narrow interval fast.

Assumptions the guarantee rests on: the values are in ``[0, 1]`` (callers map their
bounded values there) and their conditional mean does not change over the stream. If the
mean drifts, the interval estimates no fixed quantity and its guarantee no longer applies.

Exactness: values are consumed in order; every running sum is a sequential
``numpy.cumsum`` seeded with the carried sum, so any split of the values into
:meth:`MeanConfidenceSequence.update` calls gives bit-identical intervals.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["LAMBDA_CAP", "MeanConfidenceSequence"]

Floats = npt.NDArray[np.float64]

LAMBDA_CAP = 0.5
"""The largest bet ``lambda`` (the paper's ``c``; 1/2 or 3/4 are its suggestions)."""


class MeanConfidenceSequence:
    """PrPl-EB confidence sequence for the mean of ``[0, 1]`` values (module docstring)."""

    __slots__ = (
        "alpha",
        "count",
        "lower",
        "sum_bet",
        "sum_bet_value",
        "sum_penalty",
        "sum_squares",
        "sum_values",
        "upper",
    )

    def __init__(self, alpha: float) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        self.alpha = alpha
        self.count = 0
        self.sum_values = 0.0
        """sum X_i"""
        self.sum_squares = 0.0
        """sum (X_i - mu_hat_i)^2"""
        self.sum_bet = 0.0
        """sum lambda_i"""
        self.sum_bet_value = 0.0
        """sum lambda_i X_i"""
        self.sum_penalty = 0.0
        """sum v_i psi(lambda_i)"""
        self.lower = 0.0
        self.upper = 1.0

    def update(self, values: Floats) -> tuple[Floats, Floats]:
        """Consume ``values`` (each in ``[0, 1]``, in order); return the interval (running
        intersection) after each of them."""
        x = np.asarray(values, dtype=np.float64)
        m = x.size
        if m == 0:
            return np.zeros(0), np.zeros(0)
        if not (np.all(x >= 0.0) and np.all(x <= 1.0)):
            raise ValueError("values must be in [0, 1]")
        log_term = math.log(2.0 / self.alpha)
        t = np.arange(self.count + 1, self.count + m + 1, dtype=np.float64)
        sums = np.cumsum(np.concatenate(([self.sum_values], x)))
        mean_before = (0.5 + sums[:-1]) / t
        mean_after = (0.5 + sums[1:]) / (t + 1.0)
        squares = np.cumsum(np.concatenate(([self.sum_squares], (x - mean_after) ** 2)))
        variance_before = (0.25 + squares[:-1]) / t
        bets = np.minimum(np.sqrt(2.0 * log_term / (variance_before * t * np.log1p(t))), LAMBDA_CAP)
        penalties = 4.0 * (x - mean_before) ** 2 * ((-np.log1p(-bets) - bets) / 4.0)
        sum_bet = np.cumsum(np.concatenate(([self.sum_bet], bets)))[1:]
        sum_bet_value = np.cumsum(np.concatenate(([self.sum_bet_value], bets * x)))[1:]
        sum_penalty = np.cumsum(np.concatenate(([self.sum_penalty], penalties)))[1:]
        center = sum_bet_value / sum_bet
        radius = (log_term + sum_penalty) / sum_bet
        lower = np.maximum.accumulate(np.concatenate(([self.lower], center - radius)))[1:]
        upper = np.minimum.accumulate(np.concatenate(([self.upper], center + radius)))[1:]
        self.count += m
        self.sum_values = float(sums[-1])
        self.sum_squares = float(squares[-1])
        self.sum_bet = float(sum_bet[-1])
        self.sum_bet_value = float(sum_bet_value[-1])
        self.sum_penalty = float(sum_penalty[-1])
        self.lower = float(lower[-1])
        self.upper = float(upper[-1])
        return lower, upper

    def to_state(self) -> list[Any]:
        """The running sums and interval (floats round-trip exactly through JSON)."""
        return [
            self.count,
            self.sum_values,
            self.sum_squares,
            self.sum_bet,
            self.sum_bet_value,
            self.sum_penalty,
            self.lower,
            self.upper,
        ]

    @classmethod
    def from_state(cls, state: list[Any], alpha: float) -> MeanConfidenceSequence:
        sequence = cls(alpha)
        count, *sums = state
        sequence.count = int(count)
        (
            sequence.sum_values,
            sequence.sum_squares,
            sequence.sum_bet,
            sequence.sum_bet_value,
            sequence.sum_penalty,
            sequence.lower,
            sequence.upper,
        ) = (float(v) for v in sums)
        return sequence

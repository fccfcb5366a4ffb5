"""Windowed detectors: one statistic comparing a closed window with the reference profile.

Each class is one detector; :mod:`driftline.detectors.catalog` registers them. Numeric
windows are compared on the reference's bins (:mod:`driftline.detectors.reference`),
categorical and boolean windows on the reference's top-K categories plus "other".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from driftline.detectors.base import (
    CategorySample,
    Detector,
    NumericSample,
    Statistic,
    WindowSample,
)
from driftline.detectors.distribution import (
    chi_square_p_value,
    jensen_shannon,
    ks_binned,
    psi,
    wasserstein_binned,
)
from driftline.detectors.reference import CoarseWindow, Counts, NumericReference, shares
from driftline.profile import FeatureKind

NUMERIC = FeatureKind.NUMERIC
CATEGORICAL = FeatureKind.CATEGORICAL
BOOLEAN = FeatureKind.BOOLEAN
ALL_KINDS = frozenset({NUMERIC, CATEGORICAL, BOOLEAN})
DISCRETE_KINDS = frozenset({CATEGORICAL, BOOLEAN})


def _r(x: float) -> float:
    return round(float(x), 6)


def _coarse_evidence(reference: NumericReference, coarse: CoarseWindow) -> dict[str, Any]:
    return {
        "bin_edges": reference.coarse_edges_rounded,
        "reference_shares": reference.coarse_shares,
        "window_shares": coarse.shares,
    }


def _compare_categories(
    detector: Detector,
    sample: CategorySample,
    statistic: Callable[[Counts, Counts], float],
) -> Statistic:
    """``statistic`` of the window's category counts against the reference's, with the
    categories that moved most as evidence."""
    ref, win = sample.reference_counts, sample.counts
    evidence = _category_evidence(sample.categories, ref, win)
    return detector.result(statistic(ref, win), sample.total, evidence)


def _category_evidence(categories: list[str], ref: Counts, win: Counts) -> dict[str, Any]:
    """The five categories whose share moved most (``"__other__"`` = outside the top-K)."""
    names = [*categories, "__other__"]
    r = np.array(shares(ref))
    w = np.array(shares(win))
    order = sorted(range(len(names)), key=lambda i: (-abs(w[i] - r[i]), names[i]))[:5]
    return {
        "top_changes": [
            {"category": names[i], "reference_share": float(r[i]), "window_share": float(w[i])}
            for i in order
        ]
    }


class PSI(Detector):
    """Population stability index of the window vs the reference bins."""

    name = "psi"
    statistic = "psi"
    display_name = "PSI"
    meaning = (
        "PSI (population stability index) measures how far the binned distribution moved "
        "from the reference profile; 0.1 to 0.25 is usually read as a moderate and above "
        "0.25 as a major shift."
    )
    kinds = ALL_KINDS
    warning = 0.1
    critical = 0.25
    uses_coarse_bins = True

    def evaluate_numeric(self, sample: NumericSample) -> Statistic:
        coarse = sample.coarse
        return self.result(coarse.psi, sample.total, _coarse_evidence(sample.reference, coarse))

    def evaluate_categories(self, sample: CategorySample) -> Statistic:
        return _compare_categories(self, sample, psi)


class JensenShannon(Detector):
    """Jensen-Shannon distance (base 2) of the window vs the reference bins."""

    name = "jensen_shannon"
    statistic = "jensen_shannon_distance"
    display_name = "Jensen-Shannon distance"
    meaning = (
        "The Jensen-Shannon distance between the window's and the reference distribution "
        "runs from 0 (identical) to 1 (no overlap)."
    )
    kinds = ALL_KINDS
    warning = 0.1
    critical = 0.2
    uses_coarse_bins = True

    def evaluate_numeric(self, sample: NumericSample) -> Statistic:
        coarse, ref = sample.coarse, sample.reference
        value = jensen_shannon(ref.coarse_counts, coarse.counts)
        return self.result(value, sample.total, _coarse_evidence(ref, coarse))

    def evaluate_categories(self, sample: CategorySample) -> Statistic:
        return _compare_categories(self, sample, jensen_shannon)


class KolmogorovSmirnov(Detector):
    """Kolmogorov-Smirnov statistic on the reference's percentile edges."""

    name = "ks"
    statistic = "ks_statistic"
    display_name = "KS statistic"
    meaning = (
        "The KS statistic is the largest gap between the window's and the reference "
        "cumulative distributions (0 to 1)."
    )
    kinds = frozenset({NUMERIC})
    warning = 0.1
    critical = 0.2

    def evaluate_numeric(self, sample: NumericSample) -> Statistic:
        ref = sample.reference
        return self.result(ks_binned(ref.fine_counts, ref.fine(sample.counts)), sample.total, {})


class Wasserstein(Detector):
    """Wasserstein-1 distance divided by the reference standard deviation."""

    name = "wasserstein"
    statistic = "wasserstein_normed"
    display_name = "Wasserstein distance (normalised)"
    meaning = (
        "The normalised Wasserstein distance is how far, on average, values moved from the "
        "reference distribution, in units of the reference spread."
    )
    kinds = frozenset({NUMERIC})
    warning = 0.1
    critical = 0.2

    def evaluate_numeric(self, sample: NumericSample) -> Statistic:
        ref, n = sample.reference, sample.total
        if not ref.fine_edges.size:
            return self.result(0.0, n, {})
        low = min(ref.minimum, sample.minimum) if n else ref.minimum
        high = max(ref.maximum, sample.maximum) if n else ref.maximum
        value = wasserstein_binned(
            ref.fine_edges,
            ref.fine_counts,
            ref.fine(sample.counts),
            low=low,
            high=high,
            scale=ref.std,
        )
        return self.result(value, n, {})


class ChiSquare(Detector):
    """Chi-square goodness-of-fit p-value of the window counts."""

    name = "chi_square"
    statistic = "chi_square_p_value"
    display_name = "chi-square p-value"
    meaning = (
        "A small chi-square p-value means the window's category frequencies are unlikely "
        "under the reference frequencies."
    )
    kinds = DISCRETE_KINDS
    warning = 1e-6
    critical = 1e-12
    direction = "below"

    def evaluate_categories(self, sample: CategorySample) -> Statistic:
        return _compare_categories(self, sample, chi_square_p_value)


class QualityMissing(Detector):
    """Window missing rate minus the reference missing rate (sample size: the events)."""

    name = "quality_missing"
    statistic = "missing_rate_increase"
    display_name = "missing-value rate increase"
    meaning = "It is the share of missing values above the reference missing rate."
    kinds = ALL_KINDS
    warning = 0.05
    critical = 0.15

    def evaluate_numeric(self, sample: WindowSample) -> Statistic:
        rows, reference_rate = sample.rows, sample.reference_missing_rate
        rate = sample.missing / rows if rows else 0.0
        evidence = {"missing_rate": _r(rate), "reference_missing_rate": _r(reference_rate)}
        return self.result(rate - reference_rate, rows, evidence)

    evaluate_categories = evaluate_numeric  # the same counters for every kind


class QualityOutOfRange(Detector):
    """Share of values outside the reference [min, max]."""

    name = "quality_out_of_range"
    statistic = "out_of_range_rate"
    display_name = "out-of-range rate"
    meaning = "It is the share of values outside the reference minimum-maximum range."
    kinds = frozenset({NUMERIC})
    warning = 0.02
    critical = 0.1

    def evaluate_numeric(self, sample: NumericSample) -> Statistic:
        n, below, above, ref = sample.total, sample.below, sample.above, sample.reference
        evidence = {
            "below_min": below,
            "above_max": above,
            "reference_min": ref.minimum,
            "reference_max": ref.maximum,
        }
        return self.result((below + above) / n if n else 0.0, n, evidence)


class QualityUnseenCategory(Detector):
    """Share of categories outside the reference top-K, minus the reference's share."""

    name = "quality_unseen_category"
    statistic = "unseen_category_rate_increase"
    display_name = "unseen-category rate increase"
    meaning = (
        "It is the share of values in categories outside the reference profile's top-K, "
        "above the reference's own share of such values."
    )
    kinds = DISCRETE_KINDS
    warning = 0.05
    critical = 0.15

    def evaluate_categories(self, sample: CategorySample) -> Statistic:
        n = sample.total
        rate = sample.other / n if n else 0.0
        evidence = {
            "unseen_rate": _r(rate),
            "reference_unseen_rate": _r(sample.reference_other_rate),
            "examples": dict(list(sample.unseen.items())[:5]),
        }
        return self.result(rate - sample.reference_other_rate, n, evidence)


class QualityType(Detector):
    """Share of non-null values of the wrong type (sample size: all non-null values)."""

    name = "quality_type"
    statistic = "type_violation_rate"
    display_name = "wrong-type rate"
    meaning = "It is the share of values whose type differs from the reference type."
    kinds = frozenset({NUMERIC, BOOLEAN})
    warning = 0.01
    critical = 0.05

    def evaluate_numeric(self, sample: WindowSample) -> Statistic:
        size = sample.total + sample.violations
        value = sample.violations / size if size else 0.0
        return self.result(value, size, {"violations": sample.violations})

    evaluate_categories = evaluate_numeric  # the same counters for every kind

"""The detectors a feature can be monitored with: names, applicable kinds, default thresholds.

This table is the single source of truth for config validation, defaults and docs.

Why these defaults (see README, "Detectors"):

* Numeric features: **PSI** on the reference's decile bins. It is an effect size, so it does
  not grow more sensitive as traffic grows (p-value tests do, and page on harmless shifts);
  each decile bin holds ~10% of the reference, so PSI's log never meets an empty reference
  bin; it reacts to location *and* scale changes (a doubled standard deviation at the same
  mean gives PSI ~0.5, which mean detectors such as ADWIN never see); and its 0.1 / 0.25
  thresholds are the long-standing convention of credit-risk model monitoring.
* Categorical and boolean features: **Jensen-Shannon distance** (base 2, in [0, 1]) on the
  top-K categories plus "other". It is bounded and needs no smoothing when a category is
  absent from the window or from the reference, which is common with long-tailed
  categories; 0.1 is Evidently's default threshold for it.
* Data quality on every feature: missing-rate rise over the reference's rate; for numeric
  features the share of values outside the reference's [min, max] and the share of values
  of the wrong type; for categorical features the rise in the share of categories outside
  the reference's top-K ("unseen").

Under stationary data drawn from the reference these statistics stay far below their
thresholds for 1,000-event windows (PSI ~0.01, JS ~0.04), and an alert needs three
breaching windows in a row (``alerts.fire_after``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from driftline.profile import FeatureKind

Direction = Literal["above", "below"]

NUMERIC = FeatureKind.NUMERIC
CATEGORICAL = FeatureKind.CATEGORICAL
BOOLEAN = FeatureKind.BOOLEAN


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    name: str
    statistic: str
    kinds: frozenset[FeatureKind]
    warning: float | None
    critical: float | None
    direction: Direction = "above"
    description: str = ""


_ALL = frozenset({NUMERIC, CATEGORICAL, BOOLEAN})
_DISCRETE = frozenset({CATEGORICAL, BOOLEAN})

DETECTORS: dict[str, DetectorSpec] = {
    spec.name: spec
    for spec in (
        DetectorSpec(
            "psi",
            "psi",
            _ALL,
            0.1,
            0.25,
            description="population stability index of the window vs the reference bins",
        ),
        DetectorSpec(
            "jensen_shannon",
            "jensen_shannon_distance",
            _ALL,
            0.1,
            0.2,
            description="Jensen-Shannon distance (base 2) of window vs reference bins",
        ),
        DetectorSpec(
            "ks",
            "ks_statistic",
            frozenset({NUMERIC}),
            0.1,
            0.2,
            description="Kolmogorov-Smirnov statistic on the reference's percentile edges",
        ),
        DetectorSpec(
            "wasserstein",
            "wasserstein_normed",
            frozenset({NUMERIC}),
            0.1,
            0.2,
            description="Wasserstein-1 distance divided by the reference standard deviation",
        ),
        DetectorSpec(
            "chi_square",
            "chi_square_p_value",
            _DISCRETE,
            1e-6,
            1e-12,
            direction="below",
            description="chi-square goodness-of-fit p-value of the window counts",
        ),
        DetectorSpec(
            "quality_missing",
            "missing_rate_increase",
            _ALL,
            0.05,
            0.15,
            description="window missing rate minus the reference missing rate",
        ),
        DetectorSpec(
            "quality_out_of_range",
            "out_of_range_rate",
            frozenset({NUMERIC}),
            0.02,
            0.1,
            description="share of values outside the reference [min, max]",
        ),
        DetectorSpec(
            "quality_unseen_category",
            "unseen_category_rate_increase",
            _DISCRETE,
            0.05,
            0.15,
            description="share of categories outside the reference top-K, minus the reference's",
        ),
        DetectorSpec(
            "quality_type",
            "type_violation_rate",
            frozenset({NUMERIC, BOOLEAN}),
            0.01,
            0.05,
            description="share of non-null values of the wrong type",
        ),
        DetectorSpec(
            "adwin",
            "adwin_detections",
            frozenset({NUMERIC}),
            0.0,
            None,
            description="ADWIN (river-identical) change detections in the window",
        ),
        DetectorSpec(
            "page_hinkley",
            "page_hinkley_detections",
            frozenset({NUMERIC}),
            0.0,
            None,
            description="Page-Hinkley (river-identical) change detections in the window",
        ),
    )
}

STREAM_DETECTORS = frozenset({"adwin", "page_hinkley"})

DEFAULT_DETECTORS: dict[FeatureKind, tuple[str, ...]] = {
    NUMERIC: ("psi", "quality_missing", "quality_out_of_range", "quality_type"),
    CATEGORICAL: ("jensen_shannon", "quality_missing", "quality_unseen_category"),
    BOOLEAN: ("jensen_shannon", "quality_missing", "quality_type"),
}

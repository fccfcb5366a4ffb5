"""The registry of detectors: every detector class, by name, and the defaults per kind.

Each detector is one class (:mod:`driftline.detectors.windowed`,
:mod:`driftline.detectors.stream`) that carries its statistic, applicable kinds, default
thresholds, direction and alert text; this registry is the single source of truth for config
validation, defaults, alert texts and docs. Adding a detector is adding its class here.

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
thresholds for 1,000-event windows (PSI ~0.01, JS ~0.04). A window beyond a critical
threshold fires a critical alert at once (``alerts.critical_fire_after``, 1); one between
the warning and the critical threshold needs three such windows in a row
(``alerts.fire_after``). :mod:`driftline.policy.alerts` explains why the critical
thresholds are safe to act on at once.
"""

from __future__ import annotations

from driftline.detectors.base import Detector
from driftline.detectors.stream import AdwinDetections, PageHinkleyDetections, StreamDetections
from driftline.detectors.windowed import (
    PSI,
    ChiSquare,
    JensenShannon,
    KolmogorovSmirnov,
    QualityMissing,
    QualityOutOfRange,
    QualityType,
    QualityUnseenCategory,
    Wasserstein,
)
from driftline.performance.detectors import PERFORMANCE_DETECTORS, PERFORMANCE_STATISTICS
from driftline.profile import FeatureKind

__all__ = [
    "DEFAULT_DETECTORS",
    "DETECTORS",
    "FEATURE_DETECTORS",
    "STREAM_DETECTORS",
    "describe_statistic",
]

FEATURE_DETECTORS: tuple[type[Detector], ...] = (
    PSI,
    JensenShannon,
    KolmogorovSmirnov,
    Wasserstein,
    ChiSquare,
    QualityMissing,
    QualityOutOfRange,
    QualityUnseenCategory,
    QualityType,
    AdwinDetections,
    PageHinkleyDetections,
)
"""The detectors that run on features' windows."""

DETECTORS: dict[str, type[Detector]] = {
    detector.name: detector for detector in (*FEATURE_DETECTORS, *PERFORMANCE_DETECTORS)
}
"""Every detector class by its name (the name configs and findings use). The performance
detectors (:mod:`driftline.performance.detectors`) apply to no feature kind: they are here
for their thresholds and alert texts."""

STREAM_DETECTORS: tuple[type[StreamDetections], ...] = tuple(
    detector for detector in DETECTORS.values() if issubclass(detector, StreamDetections)
)
"""The stateful detectors that run across windows, in registry order."""

_BY_STATISTIC: dict[str, type[Detector]] = {
    d.statistic: d for d in (*DETECTORS.values(), *PERFORMANCE_STATISTICS)
}

DEFAULT_DETECTORS: dict[FeatureKind, tuple[str, ...]] = {
    FeatureKind.NUMERIC: ("psi", "quality_missing", "quality_out_of_range", "quality_type"),
    FeatureKind.CATEGORICAL: ("jensen_shannon", "quality_missing", "quality_unseen_category"),
    FeatureKind.BOOLEAN: ("jensen_shannon", "quality_missing", "quality_type"),
}


def describe_statistic(statistic: str) -> tuple[str, str | None]:
    """A statistic's display name and the sentence that explains it in an alert.

    Names are matched case-insensitively; an unknown statistic is shown as it is, with no
    meaning.

    >>> describe_statistic("psi")[0], describe_statistic("my_stat")
    ('PSI', ('my_stat', None))
    """
    detector = _BY_STATISTIC.get(statistic.lower())
    if detector is None:
        return statistic, None
    return detector.display_name, detector.meaning

"""The catalog entries of the performance detectors: names, statistics, default thresholds
and alert texts, for the alert policy (:class:`driftline.plan.ThresholdTable` reads
thresholds by detector name from :data:`driftline.detectors.catalog.DETECTORS`).

Their values are computed by :class:`driftline.performance.monitor.PerformanceMonitor`, not
by :meth:`Detector.evaluate`: they apply to no feature kind, so no feature can be given one.

Why these defaults (with windows of 1,000 joined pairs, ``alerts.fire_after`` 3 and
``alerts.critical_fire_after`` 1):

- ``error_rate``, ``log_loss``, ``mae``: a one-sided z statistic of the window's metric
  against the reference's (:mod:`driftline.performance.significance`); warning above 3,
  critical above 6. Under a stationary model a window breaches 3 with probability ~0.0013,
  three windows in a row ~2.4e-9: no warning alert in 10^6 pairs (1,000 windows). A
  critical window fires at once, so the critical threshold is where one window is no
  likelier than those three: P(z > 6) ~1e-9 (at 5 it would be 2.9e-7, a hundred times
  the warning rule's rate). The right tail of the log-loss z is no heavier than the
  normal's: a window's mean and standard deviation rise together, so a skewed loss
  deflates large z. A binary error rate rising 0.33 -> 0.40 gives z ~4.5 per window
  (reference of 10,000 pairs): a warning alert after the 3 or 4 windows that follow the
  change; an MAE rising 20% z ~8: a critical alert on the first or second.
- ``adwin``, ``page_hinkley`` on ``__error__``: the rises of the error stream that ADWIN
  and Page-Hinkley (``mode="up"``) detected in the last ``detection_windows`` windows
  (3): one detection keeps the value above 0 for three windows, which fires an alert with
  ``fire_after`` 3 and resolves three windows later. They share the names, and so the
  thresholds (warning above 0), of the feature stream detectors.
- ``estimated_error_rate`` on ``__estimated_error__``: the CBPE estimate's rise over the
  reference's expected error rate, in absolute points (warning 0.03, critical 0.06). The
  estimate averages the model's own calibrated confidence, whose window noise is small
  (~0.005 for 1,000 predictions), so a rise in points is the readable threshold there.
"""

from __future__ import annotations

from driftline.detectors.base import Detector

__all__ = [
    "ERROR_FEATURE",
    "ESTIMATED_ERROR_FEATURE",
    "PERFORMANCE_DETECTORS",
    "PERFORMANCE_STATISTICS",
    "AdwinErrorIncreases",
    "ErrorRateIncrease",
    "EstimatedErrorRateIncrease",
    "LogLossIncrease",
    "MaeIncrease",
    "PageHinkleyErrorIncreases",
]

ERROR_FEATURE = "__error__"
"""The feature name of realized performance findings (from joined labels)."""
ESTIMATED_ERROR_FEATURE = "__estimated_error__"
"""The feature name of estimated performance findings (CBPE, before labels arrive)."""


class _PerformanceDetector(Detector):
    kinds = frozenset()


class ErrorRateIncrease(_PerformanceDetector):
    name = "error_rate"
    statistic = "error_rate_increase_z"
    display_name = "error-rate rise (z)"
    meaning = (
        "It is how many standard errors the window's error rate (share of wrong predictions "
        "among joined labels) is above the reference error rate (two-proportion z test); "
        "the evidence has both rates."
    )
    warning = 3.0
    critical = 6.0


class LogLossIncrease(_PerformanceDetector):
    name = "log_loss"
    statistic = "log_loss_increase_z"
    display_name = "log-loss rise (z)"
    meaning = (
        "It is how many standard errors the window's mean log loss of the predicted "
        "probabilities is above the reference's; the evidence has both."
    )
    warning = 3.0
    critical = 6.0


class MaeIncrease(_PerformanceDetector):
    name = "mae"
    statistic = "mae_increase_z"
    display_name = "MAE rise (z)"
    meaning = (
        "It is how many standard errors the window's mean absolute error is above the "
        "reference MAE; the evidence has both and the relative rise."
    )
    warning = 3.0
    critical = 6.0


class EstimatedErrorRateIncrease(_PerformanceDetector):
    name = "estimated_error_rate"
    statistic = "estimated_error_rate_increase"
    display_name = "estimated error-rate rise"
    meaning = (
        "It is the rise of the error rate estimated from the model's calibrated "
        "probabilities (CBPE, no labels needed) over the reference's, in absolute points; it "
        "sees covariate shift, not concept drift."
    )
    warning = 0.03
    critical = 0.06


class AdwinErrorIncreases(_PerformanceDetector):
    """Display entry of ``adwin`` findings on ``__error__`` (thresholds: ``adwin``'s)."""

    name = "adwin"
    statistic = "adwin_error_increases"
    display_name = "ADWIN error-rate rises"
    meaning = (
        "It counts the rises of the model's error that ADWIN detected on the joined labels "
        "in the last windows."
    )
    warning = 0.0
    critical = None


class PageHinkleyErrorIncreases(_PerformanceDetector):
    """Display entry of ``page_hinkley`` findings on ``__error__``."""

    name = "page_hinkley"
    statistic = "page_hinkley_error_increases"
    display_name = "Page-Hinkley error-rate rises"
    meaning = (
        "It counts the rises of the model's error that Page-Hinkley detected on the joined "
        "labels in the last windows."
    )
    warning = 0.0
    critical = None


PERFORMANCE_DETECTORS: tuple[type[Detector], ...] = (
    ErrorRateIncrease,
    LogLossIncrease,
    MaeIncrease,
    EstimatedErrorRateIncrease,
)
"""The performance detectors with names of their own (registered in the catalog)."""

PERFORMANCE_STATISTICS: tuple[type[Detector], ...] = (
    *PERFORMANCE_DETECTORS,
    AdwinErrorIncreases,
    PageHinkleyErrorIncreases,
)
"""Every performance statistic's display entry (for alert texts)."""

"""The drift report as plain data: what the page shows, assembled from the pipeline's view.

:func:`version_report` turns one monitored version's
:class:`~driftline.snapshot.VersionView` (profile, thresholds, firing alerts, the last
closed window's distributions) and its :class:`~driftline.report.history.VersionHistory`
(statistics per closed window, alert episodes) into a :class:`VersionReport`;
:func:`drift_report` puts versions together under one summary ordered by severity. Nothing
here renders, reads a file or a clock: :mod:`driftline.report.html` draws what this says.

A version's page is a list of sections (prediction, features); a new kind of section (model
performance, once ground truth arrives) is a new field of :class:`VersionReport` and a new
renderer in :mod:`driftline.report.html`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

import numpy as np

from driftline.detectors.catalog import describe_statistic
from driftline.detectors.closed_window import (
    CategoryDistribution,
    ClosedWindow,
    NumericDistribution,
)
from driftline.events import PREDICTION_FEATURE
from driftline.findings import Finding
from driftline.ground_truth import GROUND_TRUTH_FEATURES
from driftline.pipeline import Pipeline
from driftline.plan import ModelKey
from driftline.policy.alerts import Alert, Thresholds, is_prediction_feature
from driftline.report.history import Episode, StatisticPoint, VersionHistory
from driftline.snapshot import VersionView

#: Inner bins of a numeric histogram at most (the reference's percentile bins, merged).
HISTOGRAM_BINS = 20


class VersionHistorySource(Protocol):
    """Where a version's recorded history comes from (a FindingHistory)."""

    def of(self, key: ModelKey) -> VersionHistory: ...


class Status(IntEnum):
    """How bad a statistic is, worst first (the order of the summary)."""

    FIRING_CRITICAL = 0
    FIRING_WARNING = 1
    CRITICAL = 2
    """Beyond the critical threshold in the latest window, not (yet) an alert."""
    WARNING = 3
    OK = 4
    NO_DATA = 5

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Status.FIRING_CRITICAL: "firing: critical",
    Status.FIRING_WARNING: "firing: warning",
    Status.CRITICAL: "critical level",
    Status.WARNING: "warning level",
    Status.OK: "ok",
    Status.NO_DATA: "no data",
}


@dataclass(frozen=True, slots=True)
class Histogram:
    """A numeric feature's reference and current densities on the same bins."""

    lower: tuple[float, ...]
    """Lower bound of each bin."""
    upper: tuple[float, ...]
    reference_density: tuple[float, ...]
    """Share of the reference's values in the bin divided by the bin's width."""
    current_density: tuple[float, ...]
    reference_shares: tuple[float, ...]
    current_shares: tuple[float, ...]
    below_share: float
    """Share of the current values below the reference minimum."""
    above_share: float
    current_values: int
    """Non-missing values in the current window."""
    view: tuple[float, float]
    """The x range to show: the reference's range, cut at its 1st / 99th percentile where
    its tail is long (longer than a fifth of the percentiles' range)."""
    beyond_view: float
    """Share of the current values outside :attr:`view`."""


@dataclass(frozen=True, slots=True)
class CategoryBars:
    """A categorical feature's reference and current shares, per category."""

    categories: tuple[str, ...]
    """The reference's top-K categories, then ``"(other)"`` when either side has others."""
    reference_shares: tuple[float, ...]
    current_shares: tuple[float, ...]
    unseen: tuple[tuple[str, int], ...]
    """Categories of the current window outside the reference's top-K (a sample), counted."""
    current_values: int


@dataclass(frozen=True, slots=True)
class Distribution:
    """Reference vs the last closed window of one feature."""

    chart: Histogram | CategoryBars
    reference_missing_rate: float
    current_missing_rate: float
    window_start: float
    window_end: float
    window_events: int


@dataclass(frozen=True, slots=True)
class DetectorSeries:
    """One detector's statistic of one feature over time."""

    detector: str
    statistic: str
    display_name: str
    thresholds: Thresholds
    points: tuple[StatisticPoint, ...]
    """Oldest window first (the last ``report.history_windows``)."""
    episodes: tuple[Episode, ...]
    latest: Finding | None
    status: Status
    firing: Alert | None

    @property
    def score(self) -> float:
        """How far the latest value is beyond the warning (else critical) threshold; 0 without
        a value or a threshold. For ordering within a status."""
        if self.latest is None:
            return 0.0
        threshold = self.thresholds.warning
        if threshold is None:
            threshold = self.thresholds.critical
        if threshold is None:
            return 0.0
        value = self.latest.value
        numerator, denominator = (
            (value, threshold) if self.thresholds.direction == "above" else (threshold, value)
        )
        if denominator > 0:
            return numerator / denominator
        return math.inf if numerator > denominator else 0.0


@dataclass(frozen=True, slots=True)
class FeatureReport:
    name: str
    kind: str
    distribution: Distribution | None
    """``None`` until a window closed (after a start or a restore)."""
    series: tuple[DetectorSeries, ...]
    """Worst status first, then by detector name."""

    @property
    def status(self) -> Status:
        return min((s.status for s in self.series), default=Status.NO_DATA)

    @property
    def is_prediction(self) -> bool:
        return is_prediction_feature(self.name)


@dataclass(frozen=True, slots=True)
class SummaryRow:
    model_id: str
    model_version: str
    feature: str
    series: DetectorSeries


@dataclass(frozen=True, slots=True)
class VersionReport:
    model_id: str
    model_version: str
    events: int
    warming_up: bool
    profile_id: str | None
    quarantined: str | None
    prediction: tuple[FeatureReport, ...]
    """``__prediction__`` (and its class columns), monitored like the features."""
    features: tuple[FeatureReport, ...]
    """The model's inputs, worst status first, then by name."""
    performance: tuple[FeatureReport, ...] = ()
    """Ground truth's statistics: realized (``__error__``) and estimated
    (``__estimated_error__``) performance and label drift (``__label__``)."""
    performance_status: Mapping[str, Any] | None = None
    """The version's ground truth (join counts, label delays, metrics); see
    ``VersionSnapshot.performance``."""

    @property
    def anchor(self) -> str:
        """A fragment id for the version's section."""
        return "v-" + "".join(
            c if c.isalnum() else "-" for c in f"{self.model_id}-{self.model_version}"
        )


@dataclass(frozen=True, slots=True)
class DriftReport:
    versions: tuple[VersionReport, ...]
    summary: tuple[SummaryRow, ...]
    """Every (version, feature, detector), worst first: firing critical alerts, firing
    warnings, then latest values beyond critical, beyond warning, the rest."""


def drift_report(versions: Iterable[VersionReport]) -> DriftReport:
    """The versions (sorted by model and version) under one summary ordered by severity."""
    ordered = tuple(sorted(versions, key=lambda v: (v.model_id, v.model_version)))
    rows = [
        SummaryRow(v.model_id, v.model_version, f.name, s)
        for v in ordered
        for f in (*v.prediction, *v.performance, *v.features)
        for s in f.series
    ]
    rows.sort(
        key=lambda r: (
            r.series.status,
            -r.series.score,
            r.model_id,
            r.model_version,
            r.feature,
            r.series.detector,
        )
    )
    return DriftReport(ordered, tuple(rows))


def version_report(view: VersionView, history: VersionHistory) -> VersionReport:
    """One version's report from the pipeline's view of it and its recorded history."""
    snapshot = view.version
    firing = {(a.feature, a.detector): a for a in snapshot.firing}
    latest = {(f.feature, f.detector): f for f in view.latest}
    pairs: dict[str, list[str]] = {}
    for feature, detector in sorted(view.thresholds):
        pairs.setdefault(feature, []).append(detector)
    features = []
    for feature, detectors in pairs.items():
        series = [
            _series(
                detector,
                view.thresholds[(feature, detector)],
                history,
                (feature, detector),
                latest.get((feature, detector)),
                firing.get((feature, detector)),
            )
            for detector in detectors
        ]
        series.sort(key=lambda s: (s.status, s.detector))
        kind = view.kinds.get(feature)
        features.append(
            FeatureReport(
                name=feature,
                kind="" if kind is None else kind.value,
                distribution=_distribution(view.last_window, feature),
                series=tuple(series),
            )
        )
    features.sort(key=lambda f: (f.status, f.name))
    return VersionReport(
        model_id=snapshot.model_id,
        model_version=snapshot.model_version,
        events=snapshot.events,
        warming_up=snapshot.warming_up,
        profile_id=snapshot.profile_id,
        quarantined=view.quarantined,
        prediction=tuple(
            sorted(
                (f for f in features if f.is_prediction),
                key=lambda f: (f.name != PREDICTION_FEATURE, f.name),
            )
        ),
        features=tuple(
            f for f in features if not f.is_prediction and f.name not in GROUND_TRUTH_FEATURES
        ),
        performance=tuple(f for f in features if f.name in GROUND_TRUTH_FEATURES),
        performance_status=snapshot.performance,
    )


def _series(
    detector: str,
    thresholds: Thresholds,
    history: VersionHistory,
    pair: tuple[str, str],
    latest: Finding | None,
    firing: Alert | None,
) -> DetectorSeries:
    episodes = list(history.episodes.get(pair, ()))
    if firing is not None and not any(
        e.fingerprint == firing.fingerprint and e.ends_at is None for e in episodes
    ):
        # Firing since before this process recorded anything (restored from a checkpoint).
        episodes.append(Episode.opened_by(firing))
    statistic = history.statistics.get(pair) or (latest.statistic if latest else detector)
    return DetectorSeries(
        detector=detector,
        statistic=statistic,
        display_name=describe_statistic(statistic)[0],
        thresholds=thresholds,
        points=history.series.get(pair, ()),
        episodes=tuple(episodes),
        latest=latest,
        status=_status(thresholds, latest, firing),
        firing=firing,
    )


def _status(thresholds: Thresholds, latest: Finding | None, firing: Alert | None) -> Status:
    if firing is not None:
        return Status.FIRING_CRITICAL if firing.severity == "critical" else Status.FIRING_WARNING
    if latest is None or not math.isfinite(latest.value):
        return Status.NO_DATA
    level = thresholds.level(latest.value)
    if level == "critical":
        return Status.CRITICAL
    if level == "warning":
        return Status.WARNING
    return Status.OK


def _distribution(window: ClosedWindow | None, feature: str) -> Distribution | None:
    if window is None or feature not in window.features:
        return None
    data = window.features[feature]
    chart: Histogram | CategoryBars = (
        histogram(data) if isinstance(data, NumericDistribution) else category_bars(data)
    )
    rows = data.rows
    return Distribution(
        chart=chart,
        reference_missing_rate=data.reference_missing_rate,
        current_missing_rate=data.missing / rows if rows else 0.0,
        window_start=window.start,
        window_end=window.end,
        window_events=window.events,
    )


def histogram(data: NumericDistribution, bins: int = HISTOGRAM_BINS) -> Histogram:
    """Reference and current densities on the reference's percentile bins, merged into at
    most ``bins`` bins of about equal reference mass (sums of counts: exact).

    Widths below 1/200 of the reference range count as that much, so a bin around a spike
    (many equal values) stays a tall bar rather than an infinite one.
    """
    edges = data.edges
    inner_reference = data.reference[1:-1]
    inner_current = data.current[1:-1]
    size = len(inner_reference)  # bins between edges[0] (the minimum) and edges[-1]
    group = max(1, math.ceil(size / bins))
    starts = list(range(0, size, group))
    reference = np.add.reduceat(inner_reference, starts)
    current = np.add.reduceat(inner_current, starts)
    lower = edges[starts]
    upper = np.append(edges[starts[1:]], edges[-1])
    span = float(edges[-1] - edges[0])
    widths = np.maximum(upper - lower, span / 200 if span > 0 else 1.0)
    reference_total = max(int(data.reference.sum()), 1)
    current_total = int(data.current.sum())
    reference_shares = reference / reference_total
    current_shares = current / max(current_total, 1)
    low, high = float(edges[0]), float(edges[-1])
    beyond = 0
    if len(edges) >= 4:
        p1, p99 = float(edges[1]), float(edges[-2])
        middle = p99 - p1
        if middle > 0 and p1 - low > middle / 5:
            low = p1
            beyond += int(data.current[:2].sum())
        if middle > 0 and high - p99 > middle / 5:
            high = p99
            beyond += int(data.current[-2:].sum())
    return Histogram(
        lower=tuple(lower.tolist()),
        upper=tuple(upper.tolist()),
        reference_density=tuple((reference_shares / widths).tolist()),
        current_density=tuple((current_shares / widths).tolist()),
        reference_shares=tuple(reference_shares.tolist()),
        current_shares=tuple(current_shares.tolist()),
        below_share=int(data.current[0]) / max(current_total, 1),
        above_share=int(data.current[-1]) / max(current_total, 1),
        current_values=current_total,
        view=(low, high),
        beyond_view=beyond / max(current_total, 1),
    )


def category_bars(data: CategoryDistribution) -> CategoryBars:
    """Shares of each top-K category (and of the others) in the reference and the window."""
    reference_total = max(int(data.reference.sum()), 1)
    current_total = int(data.current.sum())
    names: Sequence[str] = data.categories
    reference = data.reference
    current = data.current
    if reference[-1] == 0 and current[-1] == 0:
        reference, current = reference[:-1], current[:-1]
    else:
        names = (*names, "(other)")
    return CategoryBars(
        categories=tuple(names),
        reference_shares=tuple((reference / reference_total).tolist()),
        current_shares=tuple((current / max(current_total, 1)).tolist()),
        unseen=tuple(data.unseen.items()),
        current_values=current_total,
    )


def pipeline_reports(pipeline: Pipeline, history: VersionHistorySource) -> list[VersionReport]:
    """The report of every version ``pipeline`` monitors, in order of appearance."""
    reports = []
    for key in list(pipeline.versions):
        view = pipeline.version_view(key)
        if view is not None:
            reports.append(version_report(view, history.of(key)))
    return reports

"""A read-only view of a :class:`~driftline.pipeline.Pipeline`, for status pages and metrics.

:meth:`Pipeline.snapshot` copies what observers read (which model versions are monitored,
their latest findings and firing alerts, the running totals) into frozen values, so that
the service's HTTP API and Prometheus collector never walk the core's internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from driftline.detectors.closed_window import ClosedWindow
from driftline.findings import Finding
from driftline.late_features import LearningProgress
from driftline.plan import ModelKey
from driftline.policy.alerts import Alert, Thresholds
from driftline.profile import FeatureKind, ReferenceProfile

"""(model_id, model_version)."""


@dataclass(frozen=True, slots=True)
class VersionSnapshot:
    """One monitored model version."""

    model_id: str
    model_version: str
    warming_up: bool
    """True until the version has a reference profile (configured, or learned from warm-up)."""
    events: int
    """Events its monitor has processed."""
    profile_id: str | None
    monitored_features: tuple[str, ...]
    """Names of the monitored columns (features, ``__prediction__``, ...), sorted."""
    learning_features: tuple[LearningProgress, ...]
    """Columns the reference profile lacks that are learning their reference from live
    events (not monitored yet), in the order they started."""
    firing: tuple[Alert, ...]
    """The ``firing`` event of every alert currently firing, ordered by alert key."""
    performance: dict[str, Any] | None = None
    """Ground truth (:meth:`driftline.ground_truth.GroundTruth.status`: task, join counts,
    label delays, reference / realized / estimated metrics); ``None`` until it starts,
    then ``{"started": False, "reason": ...}`` while it cannot."""

    @property
    def key(self) -> ModelKey:
        return (self.model_id, self.model_version)


@dataclass(frozen=True, slots=True)
class PipelineSnapshot:
    """The monitored versions of one pipeline, their latest findings and running totals."""

    versions: tuple[VersionSnapshot, ...]
    """Monitored versions (ignored, unconfigured ones are left out), in order of appearance."""
    findings: Mapping[ModelKey, tuple[Finding, ...]]
    """The latest finding per (feature, detector), sorted by them, per model version."""
    events: Mapping[ModelKey, int]
    """Events processed per model version since the pipeline's first event (restored with
    its state)."""
    dead_letters: Mapping[str, int]
    """Dead letters per reason since the pipeline's first event."""
    comparisons: tuple[dict[str, Any], ...] = ()
    """Every configured champion / challenger comparison as this pipeline sees it
    (:meth:`driftline.comparisons.Comparison.status`), in configuration order."""


@dataclass(frozen=True, slots=True)
class VersionView:
    """What a drift report shows of one monitored model version (:meth:`Pipeline.version_view
    <driftline.pipeline.Pipeline.version_view>`), beyond its :class:`VersionSnapshot`."""

    version: VersionSnapshot
    profile: ReferenceProfile | None
    """The reference (configured or learned); ``None`` while warming up."""
    kinds: Mapping[str, FeatureKind]
    """Kind of every monitored feature."""
    thresholds: Mapping[tuple[str, str], Thresholds]
    """The thresholds of every monitored (feature, detector)."""
    latest: tuple[Finding, ...]
    """The latest finding per (feature, detector), sorted by them."""
    last_window: ClosedWindow | None
    """Each feature's distribution in the last closed window (``None`` before the first
    close after a start or restore)."""
    quarantined: str | None
    """The internal error that stopped the version, if one did."""

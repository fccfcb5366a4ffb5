"""The resolved plan the core runs: what to monitor, how, and with which reference.

The shell builds a :class:`Plan` from the settings and the profile files
(:func:`driftline.planning.build_plan`); the core (:class:`driftline.pipeline.Pipeline`)
receives it and never sees Kafka or HTTP settings nor reads a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from driftline.comparisons.settings import ComparisonSettings
from driftline.detectors.catalog import DETECTORS
from driftline.events import DecodeLimits
from driftline.labels.join import JoinLimits
from driftline.labels.settings import LabelSettings
from driftline.monitor import MonitorPlan
from driftline.performance.monitor import PerformanceSettings
from driftline.performance.task import Task
from driftline.policy.alerts import AlertSettings, Thresholds
from driftline.policy.retrain import RetrainSettings
from driftline.profile import ReferenceProfile

ModelKey = tuple[str, str]

ThresholdOverrides = Mapping[str, Mapping[str, float | None]]
"""detector name -> the thresholds a config layer sets (``warning`` and/or ``critical``)."""


class ThresholdTable:
    """Thresholds of one model version by precedence: feature > model > top level > the
    detector's default. Each layer sets only the severities it names."""

    def __init__(
        self,
        layers: tuple[ThresholdOverrides, ...] = (),
        features: Mapping[str, ThresholdOverrides] | None = None,
    ) -> None:
        self.layers = layers
        self.features: Mapping[str, ThresholdOverrides] = features or {}
        self.cache: dict[tuple[str, str], Thresholds] = {}

    def __call__(self, feature: str, detector: str) -> Thresholds:
        key = (feature, detector)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        spec = DETECTORS[detector]
        values: dict[str, float | None] = {"warning": spec.warning, "critical": spec.critical}
        feature_layer = self.features.get(feature)
        for layer in (*self.layers, *(() if feature_layer is None else (feature_layer,))):
            values.update(layer.get(detector, {}))
        result = Thresholds(
            warning=values["warning"], critical=values["critical"], direction=spec.direction
        )
        self.cache[key] = result
        return result


@dataclass(frozen=True, slots=True)
class VersionPlan:
    """How the versions matched by one config entry (or the defaults) are monitored."""

    monitor: MonitorPlan
    thresholds: ThresholdTable
    profile: ReferenceProfile | None
    """The configured reference; ``None``: learned from the version's first events."""
    task: Task | None = None
    """The configured task; ``None``: inferred from the reference profile."""
    decision_threshold: float = 0.5


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One ``models`` entry: the versions it matches and their plan."""

    model_id: str
    model_version: str | None
    """Only this version; ``None``: every version of the model."""
    plan: VersionPlan


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the core needs, resolved and validated."""

    source: str
    """CloudEvents ``source`` of every output event."""
    decode: DecodeLimits
    max_model_versions: int
    warmup_columns: int
    """Most columns one version's warm-up holds."""
    alerts: AlertSettings
    retrain: RetrainSettings
    unconfigured: VersionPlan
    """Plan of versions no entry matches (the top-level settings)."""
    ignore_unconfigured: bool
    """Versions no entry matches are only counted, not monitored."""
    entries: tuple[ModelEntry, ...] = field(default=())
    labels: JoinLimits = field(default_factory=lambda: LabelSettings().limits())
    """Bounds of each version's label join."""
    performance: PerformanceSettings = field(default_factory=PerformanceSettings)
    comparisons: tuple[ComparisonSettings, ...] = ()
    """Champion / challenger pairs (:mod:`driftline.comparisons`)."""

    def for_version(self, key: ModelKey) -> VersionPlan | None:
        """The plan of a model version: its exact entry, else its model's first
        version-less entry, else :attr:`unconfigured` (``None`` when those are ignored)."""
        fallback = None
        for entry in self.entries:
            if entry.model_id != key[0]:
                continue
            if entry.model_version == key[1]:
                return entry.plan
            if entry.model_version is None and fallback is None:
                fallback = entry.plan
        if fallback is not None:
            return fallback
        return None if self.ignore_unconfigured else self.unconfigured

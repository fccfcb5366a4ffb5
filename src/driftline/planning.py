"""Settings and profile files -> the core's :class:`~driftline.plan.Plan` (shell side).

Everything the core will use is built here, once, at start-up, so a bad combination is a
:class:`~driftline.config.ConfigError` naming the key rather than a crash while processing.
"""

from __future__ import annotations

from collections.abc import Mapping

from driftline.config import ConfigError, ModelSettings, Settings, Threshold
from driftline.detectors.catalog import DETECTORS
from driftline.monitor import MonitorPlan
from driftline.plan import ModelEntry, Plan, ThresholdOverrides, ThresholdTable, VersionPlan
from driftline.profile import ProfileError, ReferenceProfile, load_profile


def load_profiles(settings: Settings) -> dict[int, ReferenceProfile]:
    """Every configured reference profile, by index into ``settings.models``."""
    profiles: dict[int, ReferenceProfile] = {}
    for i, entry in enumerate(settings.models):
        if entry.reference_profile is None:
            continue
        key = f"models.{i}.reference_profile"
        try:
            profile = load_profile(entry.reference_profile)
        except (ProfileError, OSError) as exc:
            raise ConfigError(f"{key}: {exc}") from None
        if profile.model_id != entry.model_id:
            raise ConfigError(
                f"{key}: profile {entry.reference_profile} is for model "
                f"{profile.model_id!r}, not {entry.model_id!r}"
            )
        profiles[i] = profile
    return profiles


def build_plan(settings: Settings, profiles: Mapping[int, ReferenceProfile] | None = None) -> Plan:
    """The plan of ``settings``; ``profiles`` (by index into ``settings.models``) are
    loaded from the configured files when not given."""
    if profiles is None:
        profiles = load_profiles(settings)
    entries = tuple(
        ModelEntry(
            model_id=entry.model_id,
            model_version=entry.model_version,
            plan=_version_plan(settings, entry, profiles.get(i)),
        )
        for i, entry in enumerate(settings.models)
    )
    unconfigured = _version_plan(settings, None, None)
    _check_thresholds(unconfigured.thresholds, "")
    for i, entry in enumerate(entries):
        _check_thresholds(entry.plan.thresholds, f"models.{i}.")
    return Plan(
        source=settings.source,
        decode=settings.decode,
        max_model_versions=settings.limits.max_model_versions,
        warmup_columns=max(1, settings.limits.max_warmup_values // settings.warmup_events),
        alerts=settings.alerts,
        retrain=settings.retrain,
        unconfigured=unconfigured,
        ignore_unconfigured=settings.unconfigured_models == "ignore",
        entries=entries,
    )


def _version_plan(
    settings: Settings, entry: ModelSettings | None, profile: ReferenceProfile | None
) -> VersionPlan:
    return VersionPlan(
        monitor=_monitor_plan(settings, entry),
        thresholds=_threshold_table(settings, entry),
        profile=profile,
    )


def _monitor_plan(settings: Settings, entry: ModelSettings | None) -> MonitorPlan:
    detectors = dict(settings.detectors)
    features = {} if entry is None else entry.features
    if entry is not None and entry.detectors is not None:
        detectors.update(entry.detectors)
    window = settings.window
    return MonitorPlan(
        window_events=window.events,
        window_seconds=window.duration_seconds,
        warmup_events=settings.warmup_events,
        top_k_categories=settings.top_k_categories,
        detectors=detectors,
        feature_detectors={
            name: f.detectors for name, f in features.items() if f.detectors is not None
        },
        excluded=frozenset(name for name, f in features.items() if f.exclude),
        adwin=settings.adwin.model_dump(),
        page_hinkley=settings.page_hinkley.model_dump(),
    )


def _overrides(thresholds: Mapping[str, Threshold]) -> ThresholdOverrides:
    """Only the severities a layer sets (an explicit ``null`` disables one)."""
    return {name: t.model_dump(exclude_unset=True) for name, t in thresholds.items()}


def _threshold_table(settings: Settings, entry: ModelSettings | None) -> ThresholdTable:
    layers = [_overrides(settings.thresholds)]
    features: dict[str, ThresholdOverrides] = {}
    if entry is not None:
        layers.append(_overrides(entry.thresholds))
        features = {name: _overrides(f.thresholds) for name, f in entry.features.items()}
    return ThresholdTable(tuple(layers), features)


def _check_thresholds(table: ThresholdTable, prefix: str) -> None:
    """Resolve every threshold a config layer touches, so that an invalid combination (a
    warning beyond its critical, say) stops start-up naming the most specific key."""
    features: list[str | None] = [None, *table.features]
    for feature in features:
        for detector in DETECTORS:
            try:
                table(feature or "", detector)
            except ValueError as exc:
                layer = table.features.get(feature or "", {})
                if feature is not None and detector in layer:
                    key = f"{prefix}features.{feature}.thresholds.{detector}"
                elif prefix and detector in table.layers[-1]:
                    key = f"{prefix}thresholds.{detector}"
                else:
                    key = f"thresholds.{detector}"
                raise ConfigError(f"{key}: {exc}") from None

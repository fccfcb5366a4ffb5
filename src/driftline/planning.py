"""Settings and profile files -> the core's :class:`~driftline.plan.Plan` (shell side).

Everything the core will use is built here, once, at start-up, so a bad combination is a
:class:`~driftline.config.ConfigError` naming the key rather than a crash while processing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftline.comparisons.settings import METRIC_TASKS
from driftline.config import ConfigError, ModelSettings, Settings, Threshold
from driftline.detectors.catalog import DETECTORS
from driftline.monitor import ModelMonitor, MonitorPlan
from driftline.performance.detectors import PERFORMANCE_STATISTICS
from driftline.performance.profile_task import infer_task
from driftline.performance.task import Task, TaskInferenceError
from driftline.plan import ModelEntry, Plan, ThresholdOverrides, ThresholdTable, VersionPlan
from driftline.policy.alerts import AlertPolicy
from driftline.policy.retrain import RetrainPolicy
from driftline.profile import FeatureKind, ProfileError, ReferenceProfile, load_profile


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
    _check_detectors(None, unconfigured, "")
    for i, entry in enumerate(entries):
        _check_thresholds(entry.plan.thresholds, f"models.{i}.")
        _check_detectors(settings.models[i], entry.plan, f"models.{i}.")
    _check_policies(settings, [unconfigured, *(e.plan for e in entries)])
    _check_performance(settings)
    for i, entry in enumerate(entries):
        _check_task(entry.plan, f"models.{i}.task")
    plan = Plan(
        source=settings.source,
        decode=settings.decode,
        max_model_versions=settings.limits.max_model_versions,
        warmup_columns=_warmup_columns(settings),
        alerts=settings.alerts,
        retrain=settings.retrain,
        unconfigured=unconfigured,
        ignore_unconfigured=settings.unconfigured_models == "ignore",
        entries=entries,
        labels=settings.labels.limits(),
        performance=settings.performance,
        comparisons=settings.comparisons,
    )
    _check_comparisons(plan)
    return plan


def _version_plan(
    settings: Settings, entry: ModelSettings | None, profile: ReferenceProfile | None
) -> VersionPlan:
    return VersionPlan(
        monitor=_monitor_plan(settings, entry),
        thresholds=_threshold_table(settings, entry),
        profile=profile,
        task=None if entry is None else entry.task,
        decision_threshold=0.5 if entry is None else entry.decision_threshold,
    )


def _warmup_columns(settings: Settings) -> int:
    """Most columns one version's warm-up (or learning from live events) holds: each holds
    at most ``min(warmup_events, max(warmup_sample_values, warmup_max_categories))`` values,
    ``limits.max_warmup_values`` in all."""
    column_values = min(
        settings.warmup_events, max(settings.warmup_sample_values, settings.warmup_max_categories)
    )
    return max(1, settings.limits.max_warmup_values // column_values)


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
        warmup_sample_values=settings.warmup_sample_values,
        warmup_max_categories=settings.warmup_max_categories,
        max_late_features=_warmup_columns(settings),
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


def _detector_parameters(plan: MonitorPlan) -> dict[str, dict[str, Any]]:
    """The configured parameters of the detectors that take some, by detector name."""
    return {"adwin": plan.adwin, "page_hinkley": plan.page_hinkley}


def _create_detector(name: str, plan: MonitorPlan, key: str) -> None:
    """Build detector ``name`` as the monitor will; a parameter its constructor rejects is
    a ConfigError naming the parameter's key (``adwin.max_buckets``), else ``key``."""
    parameters = _detector_parameters(plan).get(name, {})
    try:
        DETECTORS[name].create(parameters)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        first = message.split(" ", 1)[0]
        where = f"{name}.{first}" if first in parameters else key
        raise ConfigError(f"{where}: {message}") from None


def _check_detectors(entry: ModelSettings | None, plan: VersionPlan, prefix: str) -> None:
    """Build every detector the plan names, for every kind it is configured for, and, with a
    configured profile, the monitor itself (every feature's window with its detectors)."""
    monitor = plan.monitor
    for kind, names in monitor.detectors.items():
        key = f"{prefix}detectors.{kind.value}"
        if entry is None or entry.detectors is None or kind not in entry.detectors:
            key = f"detectors.{kind.value}"
        for name in names:
            if kind not in DETECTORS[name].kinds:
                raise ConfigError(f"{key}: detector {name!r} does not apply to {kind} features")
            _create_detector(name, monitor, key)
    profile = plan.profile
    for feature, names in monitor.feature_detectors.items():
        key = f"{prefix}features.{feature}.detectors"
        for name in names:
            if not DETECTORS[name].kinds:
                raise ConfigError(
                    f"{key}: {name!r} measures model performance, not a feature "
                    "(see performance.detectors)"
                )
            _create_detector(name, monitor, key)
        feature_kind = _feature_kind(profile, feature)
        if feature_kind is None:
            continue
        wrong = [name for name in names if feature_kind not in DETECTORS[name].kinds]
        if wrong:
            raise ConfigError(
                f"{key}: detector {wrong[0]!r} does not apply to {feature_kind.value} features "
                f"({feature!r} is {feature_kind.value} in the reference profile)"
            )
    if profile is not None and entry is not None:
        try:
            ModelMonitor(entry.model_id, entry.model_version or "*", monitor, profile)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{prefix}reference_profile: cannot monitor it: {exc}") from None


def _feature_kind(profile: ReferenceProfile | None, feature: str) -> FeatureKind | None:
    if profile is None or feature not in profile.features:
        return None
    return profile.features[feature].kind


def _check_performance(settings: Settings) -> None:
    """``performance.detectors`` names performance detectors only."""
    known = {d.name for d in PERFORMANCE_STATISTICS}
    for name in settings.performance.detectors:
        if name not in known:
            raise ConfigError(
                f"performance.detectors: unknown detector {name!r} "
                f"(known: {', '.join(sorted(known))})"
            )


def _check_comparisons(plan: Plan) -> None:
    """Each compared version is monitored; where the tasks are known (configured, or from
    a configured profile) they are the same and the metric fits them."""
    for i, comparison in enumerate(plan.comparisons):
        tasks: list[Task] = []
        for role in ("champion", "challenger"):
            key = (comparison.model_id, getattr(comparison, role))
            version_plan = plan.for_version(key)
            if version_plan is None:
                raise ConfigError(
                    f"comparisons.{i}.{role}: model {key[0]!r} version {key[1]!r} is not "
                    "monitored (no models entry, and unconfigured_models is ignore)"
                )
            spec = infer_task(
                version_plan.profile, version_plan.task, version_plan.decision_threshold
            )
            if spec is None and version_plan.task is not None:
                tasks.append(version_plan.task)
            elif spec is not None:
                tasks.append(spec.task)
        if len(tasks) == 2 and tasks[0] is not tasks[1]:
            raise ConfigError(
                f"comparisons.{i}.challenger: its task ({tasks[1]}) is not the champion's "
                f"({tasks[0]})"
            )
        if tasks and comparison.metric is not None:
            fits = METRIC_TASKS[comparison.metric]
            if tasks[0] not in fits:
                raise ConfigError(
                    f"comparisons.{i}.metric: {comparison.metric!r} does not measure a "
                    f"{tasks[0]} model (it measures {', '.join(sorted(fits))})"
                )


def _check_task(plan: VersionPlan, key: str) -> None:
    """The task of a version with a configured profile can be known (configured, or
    inferred without ambiguity from the profile)."""
    try:
        infer_task(plan.profile, plan.task, plan.decision_threshold)
    except TaskInferenceError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _check_policies(settings: Settings, plans: list[VersionPlan]) -> None:
    """Build the alert and retrain policies of every plan as the pipeline will."""
    for plan in plans:
        try:
            AlertPolicy(
                source=settings.source, settings=settings.alerts, thresholds=plan.thresholds
            )
            RetrainPolicy(
                source=settings.source, model_id="", model_version="", settings=settings.retrain
            )
        except (ValueError, TypeError) as exc:  # pragma: no cover - pydantic checks them
            raise ConfigError(f"alerts / retrain: {exc}") from None

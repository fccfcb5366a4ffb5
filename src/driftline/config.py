"""Settings: one YAML file, validated, with documented defaults for everything.

A config that names only ``model_id`` and ``reference_profile`` per model works. Unknown keys
are errors (typos must not be silently ignored); every error names the offending key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from driftline.detectors.catalog import DEFAULT_DETECTORS, DETECTORS
from driftline.profile import FeatureKind


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DecodeSettings(_Strict):
    max_payload_bytes: int = Field(1024 * 1024, gt=0)
    """Messages larger than this are dead-lettered as ``payload_too_large``."""
    max_features: int = Field(10_000, gt=0)
    """Events with more features (plus prediction classes) are ``too_many_features``."""


class WindowSettings(_Strict):
    """Tumbling windows, by event count (default 1,000) or by event-time duration."""

    events: int | None = Field(None, gt=0)
    duration_seconds: float | None = Field(None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _default_size(cls, data: Any) -> Any:
        unset = isinstance(data, dict) and data.get("events") is None
        if unset and data.get("duration_seconds") is None:
            return {**data, "events": 1000}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.events is not None and self.duration_seconds is not None:
            raise ValueError("set either `events` or `duration_seconds`, not both")
        return self


class Threshold(_Strict):
    warning: float | None = None
    critical: float | None = None


class AdwinSettings(_Strict):
    """river's ``ADWIN`` parameters (same defaults)."""

    delta: float = Field(0.002, gt=0, lt=1)
    clock: int = Field(32, gt=0)
    max_buckets: int = Field(5, gt=0)
    min_window_length: int = Field(5, gt=0)
    grace_period: int = Field(10, gt=0)


class PageHinkleySettings(_Strict):
    """river's ``PageHinkley`` parameters (same defaults)."""

    min_instances: int = Field(30, gt=0)
    delta: float = 0.005
    threshold: float = Field(50.0, gt=0)
    alpha: float = Field(1 - 0.0001, gt=0, le=1)
    mode: Literal["up", "down", "both"] = "both"


class AlertSettings(_Strict):
    fire_after: int = Field(3, gt=0)
    """Consecutive breaching windows needed to fire."""
    resolve_after: int = Field(3, gt=0)
    """Consecutive clean windows needed to resolve."""
    cooldown_seconds: float = Field(600.0, ge=0)
    """Event time after a resolve before the same alert may fire again."""
    min_samples: int = Field(200, gt=0)
    """Windows with fewer (non-missing) values are not evaluated."""
    runbook_url: str | None = None
    """Added to every alert as the ``runbook_url`` annotation when set."""


class RetrainSettings(_Strict):
    on_critical: bool = True
    min_drifted_features: int | None = Field(3, gt=0)
    min_drifted_share: float | None = Field(0.5, gt=0, le=1)
    on_prediction_drift: bool = True
    data_quality_triggers: bool = False
    """Whether data-quality alerts count: off, so a broken pipeline is not retrained on."""
    cooldown_seconds: float = Field(3600.0, ge=0)


DetectorSets = dict[FeatureKind, tuple[str, ...]]


def _check_detector_names(names: tuple[str, ...], kind: FeatureKind | None) -> tuple[str, ...]:
    for name in names:
        spec = DETECTORS.get(name)
        if spec is None:
            known = ", ".join(sorted(DETECTORS))
            raise ValueError(f"unknown detector {name!r} (known: {known})")
        if kind is not None and kind not in spec.kinds:
            raise ValueError(f"detector {name!r} does not apply to {kind.value} features")
    if len(set(names)) != len(names):
        raise ValueError("a detector is listed twice")
    return names


def _check_thresholds(thresholds: dict[str, Threshold]) -> dict[str, Threshold]:
    for name in thresholds:
        if name not in DETECTORS:
            raise ValueError(f"thresholds for unknown detector {name!r}")
    return thresholds


class FeatureSettings(_Strict):
    """Per-feature overrides inside a model entry."""

    exclude: bool = False
    detectors: tuple[str, ...] | None = None
    thresholds: dict[str, Threshold] = Field(default_factory=dict)

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if v is None else _check_detector_names(v, None)

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, Threshold]) -> dict[str, Threshold]:
        return _check_thresholds(v)


class ModelSettings(_Strict):
    model_id: str = Field(min_length=1)
    model_version: str | None = None
    """Only this version uses the entry; by default every version of the model does."""
    reference_profile: Path | None = None
    """Profile JSON; without one each version learns its reference from its first events."""
    detectors: DetectorSets | None = None
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    features: dict[str, FeatureSettings] = Field(default_factory=dict)

    @field_validator("model_version", mode="before")
    @classmethod
    def _version_as_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, v: DetectorSets | None) -> DetectorSets | None:
        if v is not None:
            for kind, names in v.items():
                _check_detector_names(names, kind)
        return v

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, Threshold]) -> dict[str, Threshold]:
        return _check_thresholds(v)


class Settings(_Strict):
    deployment: str = Field("driftline", min_length=1)
    """Name of this deployment; alerts carry ``source: /driftline/<deployment>``."""
    decode: DecodeSettings = DecodeSettings()
    window: WindowSettings = WindowSettings()
    warmup_events: int = Field(10_000, gt=0)
    """Without a profile, a model version's first N events become its reference."""
    top_k_categories: int = Field(20, gt=0)
    """Categories kept per feature in profiles learned by warm-up."""
    unconfigured_models: Literal["warmup", "ignore"] = "warmup"
    """Events of models without an entry: monitor them after warm-up, or only count them."""
    detectors: DetectorSets = Field(default_factory=lambda: dict(DEFAULT_DETECTORS))
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    adwin: AdwinSettings = AdwinSettings()
    page_hinkley: PageHinkleySettings = PageHinkleySettings()
    alerts: AlertSettings = AlertSettings()
    retrain: RetrainSettings = RetrainSettings()
    models: tuple[ModelSettings, ...] = ()

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, v: DetectorSets) -> DetectorSets:
        for kind, names in v.items():
            _check_detector_names(names, kind)
        return {**DEFAULT_DETECTORS, **v}

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, Threshold]) -> dict[str, Threshold]:
        return _check_thresholds(v)

    @model_validator(mode="after")
    def _unique_models(self) -> Self:
        seen: set[tuple[str, str | None]] = set()
        for i, model in enumerate(self.models):
            key = (model.model_id, model.model_version)
            if key in seen:
                raise ValueError(f"models.{i}: duplicate entry for model_id {model.model_id!r}")
            seen.add(key)
        return self

    @property
    def source(self) -> str:
        """CloudEvents ``source`` of every event this deployment emits."""
        return f"/driftline/{self.deployment}"


def _format_error(origin: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{origin}: {key}: {message}")
    return "\n".join(lines)


def parse_settings(data: Any, *, origin: str = "config", base_dir: Path | None = None) -> Settings:
    """Validate a parsed config mapping; relative profile paths resolve against ``base_dir``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of keys to values")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(origin, exc)) from None
    if base_dir is None:
        return settings
    models = tuple(
        m.model_copy(update={"reference_profile": base_dir / m.reference_profile})
        if m.reference_profile is not None and not m.reference_profile.is_absolute()
        else m
        for m in settings.models
    )
    return settings.model_copy(update={"models": models})


def load_settings(path: Path) -> Settings:
    """Read and validate a YAML config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_settings(data, origin=str(path), base_dir=path.parent)

"""Settings: one YAML file, validated, with documented defaults for everything.

A config that names only ``model_id`` and ``reference_profile`` per model works. Unknown keys
are errors (typos must not be silently ignored); every error names the offending key.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from driftline.alertmanager.settings import AlertmanagerSettings
from driftline.comparisons.settings import ComparisonSettings, check_comparisons
from driftline.detectors.catalog import DEFAULT_DETECTORS, DETECTORS
from driftline.events import DecodeLimits
from driftline.labels.settings import LabelSettings
from driftline.performance.monitor import PerformanceSettings
from driftline.performance.task import Task
from driftline.policy.alerts import AlertSettings
from driftline.policy.retrain import RetrainSettings
from driftline.profile import FeatureKind
from driftline.settings_base import StrictSettings


class ConfigError(ValueError):
    """The configuration is invalid; the message names the file and the key."""


_Strict = StrictSettings


class LimitsSettings(_Strict):
    """Bounds on what one pipeline (one input partition in the service) holds in memory."""

    max_model_versions: int = Field(1_000, gt=0)
    """Model versions tracked per pipeline; events of further versions are dead letters
    (``too_many_models``)."""
    max_warmup_values: int = Field(10_000_000, gt=0)
    """Values one version's warm-up may hold. A warm-up column holds at most
    ``min(warmup_events, max(warmup_sample_values, warmup_max_categories))`` values, so the
    columns are capped at this divided by that; events bringing further names are
    ``too_many_warmup_features``."""


class WindowSettings(_Strict):
    """Tumbling windows, by event count (default 1,000) or by event-time duration."""

    events: int | None = Field(None, gt=0)
    duration_seconds: float | None = Field(None, ge=0.001, allow_inf_nan=False)
    """Event-time window length, at least 1 ms (finite: a window must end)."""

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


_I32_MAX = 2**31 - 1


class AdwinSettings(_Strict):
    """river's ``ADWIN`` parameters (same defaults; the ranges of
    :class:`driftline.detectors.adwin.ADWIN`)."""

    delta: float = Field(0.002, gt=0, lt=1)
    clock: int = Field(32, gt=0, le=_I32_MAX)
    max_buckets: int = Field(5, ge=2, le=2**32 - 2)
    min_window_length: int = Field(5, gt=0, le=_I32_MAX)
    grace_period: int = Field(10, gt=0, le=_I32_MAX)


class PageHinkleySettings(_Strict):
    """river's ``PageHinkley`` parameters (same defaults; the ranges of
    :class:`driftline.detectors.page_hinkley.PageHinkley`)."""

    min_instances: int = Field(30, gt=0, lt=2**63)
    delta: float = Field(0.005, ge=0, allow_inf_nan=False)
    threshold: float = Field(50.0, gt=0, allow_inf_nan=False)
    alpha: float = Field(1 - 0.0001, gt=0, le=1)
    mode: Literal["up", "down", "both"] = "both"


class KafkaSecurity(_Strict):
    """Passed to the Kafka clients as they are; secrets are masked in every dump and log."""

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_password: SecretStr | None = None
    ssl_check_hostname: bool = True

    @model_validator(mode="after")
    def _sasl_complete(self) -> Self:
        if self.security_protocol.startswith("SASL"):
            if self.sasl_mechanism is None:
                raise ValueError(f"sasl_mechanism is required with {self.security_protocol}")
            if self.sasl_username is None or self.sasl_password is None:
                raise ValueError("sasl_username and sasl_password are required with SASL")
        return self


class KafkaSettings(_Strict):
    bootstrap_servers: str = "127.0.0.1:9092"
    """Comma-separated host:port list."""
    group_id: str = Field("driftline", min_length=1)
    input_topics: tuple[str, ...] = Field(("driftline.predictions",), min_length=1)
    feedback_topics: tuple[str, ...] = ()
    """Topics of feedback events (labels), partitioned like the input topic: partition p of
    each joins partition p of the input topic (one input topic then). Empty: feedback
    travels on the input topics, keyed by ``model_id`` like the predictions."""
    alerts_topic: str = Field("driftline.alerts", min_length=1)
    retrain_topic: str = Field("driftline.retrain-requests", min_length=1)
    comparisons_topic: str = Field("driftline.comparisons", min_length=1)
    """Champion / challenger verdict changes (``io.driftline.comparison.v1``)."""
    dead_letter_topic: str = Field("driftline.dead-letters", min_length=1)
    state_topic: str = Field("driftline.state", min_length=1)
    client_id: str = "driftline"
    max_batch_records: int = Field(5000, gt=0)
    """Most records taken from Kafka per batch (whole record batches: up to one more)."""
    partitions: int = Field(6, gt=0)
    """Partitions of the topics ``driftline topics create`` creates."""
    replication_factor: int | None = Field(None, gt=0)
    """Replication factor of created topics; default: 3, or the broker count if smaller."""
    compression_type: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "none"
    """Codec of driftline's own output records (alerts, retrain requests, dead letters,
    state). ``none`` by default: state records are zlib-compressed already, alerts and
    retrain requests are few and small, and uncompressed records are readable by every
    client whatever codec libraries it has. Inputs may use any codec whatever this is."""
    security: KafkaSecurity = KafkaSecurity()

    @model_validator(mode="after")
    def _feedback_joinable(self) -> Self:
        if self.feedback_topics:
            if len(self.input_topics) != 1:
                raise ValueError(
                    "feedback_topics needs exactly one input topic (partition p of a feedback "
                    f"topic joins partition p of the input topic); input_topics has "
                    f"{len(self.input_topics)}"
                )
            shared = set(self.feedback_topics) & set(self.input_topics)
            if shared:
                raise ValueError(
                    f"feedback_topics: {sorted(shared)[0]!r} is an input topic already "
                    "(feedback on the input topic needs no feedback_topics)"
                )
            if len(set(self.feedback_topics)) != len(self.feedback_topics):
                raise ValueError("feedback_topics: a topic is listed twice")
        return self


class CheckpointSettings(_Strict):
    """Detector state is checkpointed per input partition when either limit is reached, and
    on partition revoke and shutdown."""

    interval_seconds: float = Field(10.0, gt=0)
    interval_events: int = Field(100_000, gt=0)


class HttpSettings(_Strict):
    host: str = "127.0.0.1"
    """Loopback by default; set 0.0.0.0 to expose metrics to a remote Prometheus."""
    port: int = Field(8000, ge=0, le=65535)
    """0 picks a free port (tests)."""
    token: SecretStr | None = None
    """Bearer token required by every endpoint but ``/healthz`` and ``/metrics`` when set."""

    @field_validator("token")
    @classmethod
    def _token_not_empty(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().strip():
            raise ValueError("must not be empty (leave it out to turn authentication off)")
        return v


class ReportSettings(_Strict):
    """The drift report (``driftline report``, ``GET /v1/report/...``)."""

    history_windows: int = Field(500, gt=0, le=100_000)
    """Closed windows of statistics kept per (model version, feature, detector), newest
    first; older ones drop out of the report (bounds the service's memory)."""


class LoggingSettings(_Strict):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_lines: bool = False


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


def _kind_names(names: tuple[str, ...], kind: FeatureKind) -> None:
    """Like :func:`_check_detector_names`; the error starts with the kind, which
    :func:`_format_error` moves into the key (``detectors.categorical: ...``)."""
    try:
        _check_detector_names(names, kind)
    except ValueError as exc:
        raise ValueError(f"{kind.value}: {exc}") from None


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
    task: Task | None = None
    """``binary``, ``multiclass`` or ``regression``; by default inferred from the reference
    profile (see README, "Model performance")."""
    decision_threshold: float = Field(0.5, gt=0, lt=1)
    """A binary classifier's probability at or above which it predicts the positive class."""

    @field_validator("model_version", mode="before")
    @classmethod
    def _version_as_text(cls, v: object) -> object:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, v: DetectorSets | None) -> DetectorSets | None:
        if v is not None:
            for kind, names in v.items():
                _kind_names(names, kind)
        return v

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, Threshold]) -> dict[str, Threshold]:
        return _check_thresholds(v)


class Settings(_Strict):
    deployment: str = Field("driftline", min_length=1)
    """Name of this deployment; alerts carry ``source: /driftline/<deployment>``."""
    decode: DecodeLimits = DecodeLimits()
    limits: LimitsSettings = LimitsSettings()
    window: WindowSettings = WindowSettings()
    warmup_events: int = Field(10_000, gt=0)
    """Without a profile, a model version's first N events become its reference."""
    top_k_categories: int = Field(20, gt=0)
    """Categories kept per feature in profiles learned by warm-up."""
    warmup_sample_values: int = Field(1_000, ge=100)
    """Warm-up keeps each numeric column's first N numbers for its quantiles and bin edges,
    and only bin counts and running aggregates beyond them."""
    warmup_max_categories: int = Field(1_000, gt=0)
    """Distinct categories per column counted during warm-up (the first ones seen); values
    of further categories count as ``other``. At least ``top_k_categories``."""
    unconfigured_models: Literal["warmup", "ignore"] = "warmup"
    """Events of models without an entry: monitor them after warm-up, or only count them."""
    detectors: DetectorSets = Field(default_factory=lambda: dict(DEFAULT_DETECTORS))
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    adwin: AdwinSettings = AdwinSettings()
    page_hinkley: PageHinkleySettings = PageHinkleySettings()
    alerts: AlertSettings = AlertSettings()
    retrain: RetrainSettings = RetrainSettings()
    labels: LabelSettings = LabelSettings()
    performance: PerformanceSettings = PerformanceSettings()
    models: tuple[ModelSettings, ...] = ()
    comparisons: tuple[ComparisonSettings, ...] = ()
    """Champion / challenger pairs of versions (README, "Champion vs challenger")."""
    kafka: KafkaSettings = KafkaSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    http: HttpSettings = HttpSettings()
    report: ReportSettings = ReportSettings()
    logging: LoggingSettings = LoggingSettings()
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()

    @field_validator("detectors")
    @classmethod
    def _detectors(cls, v: DetectorSets) -> DetectorSets:
        for kind, names in v.items():
            _kind_names(names, kind)
        return {**DEFAULT_DETECTORS, **v}

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, Threshold]) -> dict[str, Threshold]:
        return _check_thresholds(v)

    @field_validator("warmup_max_categories")
    @classmethod
    def _category_cap(cls, v: int, info: ValidationInfo) -> int:
        top_k = info.data.get("top_k_categories")
        if top_k is not None and v < top_k:
            raise ValueError(f"{v} is below top_k_categories ({top_k}); it must be at least that")
        return v

    @model_validator(mode="after")
    def _unique_models(self) -> Self:
        seen: set[tuple[str, str | None]] = set()
        for i, model in enumerate(self.models):
            key = (model.model_id, model.model_version)
            if key in seen:
                raise ValueError(f"models.{i}: duplicate entry for model_id {model.model_id!r}")
            seen.add(key)
        check_comparisons(self.comparisons)
        return self

    @property
    def alertmanager_group_id(self) -> str:
        """Consumer group of the Alertmanager bridge."""
        return self.alertmanager.group_id or f"{self.kafka.group_id}-alertmanager"

    @property
    def source(self) -> str:
        """CloudEvents ``source`` of every event this deployment emits."""
        return f"/driftline/{self.deployment}"


_KINDS = frozenset(kind.value for kind in FeatureKind)


def _format_error(origin: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        head, _, rest = message.partition(": ")
        if item["type"] == "value_error" and key.endswith("detectors") and head in _KINDS:
            key, message = f"{key}.{head}", rest
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{origin}: {key}: {message}")
    return "\n".join(lines)


ENV_PREFIX = "DRIFTLINE_"
#: Keys whose environment value is taken verbatim, never parsed as YAML: a password such as
#: ``12345``, ``yes`` or ``a: b`` must stay that string.
SECRET_KEYS = frozenset(
    {
        ("kafka", "security", "sasl_password"),
        ("kafka", "security", "ssl_password"),
        ("http", "token"),
        ("alertmanager", "password"),
        ("alertmanager", "bearer_token"),
    }
)


def apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Override settings from ``DRIFTLINE_<KEY>__<SUBKEY>=value`` variables.

    Keys are matched case-insensitively; values are parsed as YAML scalars or flow
    collections (``DRIFTLINE_KAFKA__INPUT_TOPICS='[a, b]'``).

    >>> apply_environment({"kafka": {"group_id": "a"}}, {"DRIFTLINE_KAFKA__GROUP_ID": "b"})
    {'kafka': {'group_id': 'b'}}
    """
    out = copy.deepcopy(data)
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        if not all(path) or path[0] not in Settings.model_fields:
            continue
        node = out
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if tuple(path) in SECRET_KEYS:
            node[path[-1]] = raw
            continue
        try:
            node[path[-1]] = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            node[path[-1]] = raw
    return out


def _yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error with line and column but without PyYAML's quoted source lines, which
    may hold a secret.

    >>> try:
    ...     yaml.safe_load('password: "s3cret')
    ... except yaml.YAMLError as exc:
    ...     print(_yaml_problem(exc).replace("): ", "):\\n"))
    while scanning a quoted scalar (line 1, column 11):
    found unexpected end of stream (line 1, column 18)
    """
    if not isinstance(error, yaml.MarkedYAMLError):
        return type(error).__name__
    parts = []
    for text, mark in ((error.context, error.context_mark), (error.problem, error.problem_mark)):
        if text:
            where = "" if mark is None else f" (line {mark.line + 1}, column {mark.column + 1})"
            parts.append(f"{text}{where}")
    return ": ".join(parts) or type(error).__name__


def parse_settings(
    data: Any,
    *,
    origin: str = "config",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Validate a parsed config mapping; relative profile paths resolve against ``base_dir``;
    ``environ`` (e.g. ``os.environ``) overrides keys (see :func:`apply_environment`)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of keys to values")
    if environ is not None:
        data = apply_environment(data, environ)
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


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a YAML config file (``environ`` overrides, see apply_environment)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    return parse_settings(data, origin=str(path), base_dir=path.parent, environ=environ)

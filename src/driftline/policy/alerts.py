"""Alert policy: findings -> Alertmanager-style alert events (firing / resolved).

One alert state is kept per (model_id, model_version, feature, detector). Each finding
whose window has enough samples is classified by its thresholds as *critical* (breaches
the critical threshold), *warning* (breaches the warning threshold only) or *clear*
(breaches neither), and three streaks count consecutive windows:

- the warning streak: windows at warning level or worse,
- the critical streak: windows at critical level,
- the clear streak: clear windows.

Transitions, checked after every counted finding:

- **fire** when not firing, unless the key is cooling down (below): a critical alert when
  the critical streak reaches ``critical_fire_after`` (default 1: the first critical
  window), else a warning alert when the warning streak reaches ``fire_after`` (default 3);
- **escalate** when firing as warning and the critical streak reaches
  ``critical_fire_after``: a ``resolved`` event for the warning alert, then a ``firing``
  event for the critical one;
- **resolve** when firing and the clear streak reaches ``resolve_after``. A firing
  critical alert never de-escalates to warning: windows between the two thresholds keep
  it firing.

Why a critical window fires at once while a warning needs three: the default critical
thresholds lie far beyond what stationary windows reach, so one critical window is clear
drift, and waiting for two more only delays its alert by two windows. With 1,000-value
windows PSI on deciles is ~chi2(9)/1,000 (the largest of 10^6 simulated stationary windows
0.042, critical 0.25); the Jensen-Shannon distance of 20 categories plus "other" peaked at
0.11 in 250,000 (critical 0.2). For smaller windows (down to ``min_samples``), wherever
these rates are not negligible, a single window beyond the critical threshold stays rarer
than the three windows beyond the warning threshold that the warning rule accepts: PSI at
200 values ~1e-7 per window against 4.7e-6, Jensen-Shannon of 21 bins at 300 values
1.6e-5 against 0.39. The performance z statistics have their critical threshold at 6
for the same reason (P(z > 6) ~1e-9 < P(z > 3)^3 ~2.4e-9). Stream detectors (ADWIN,
Page-Hinkley) have no critical threshold: their detections keep the three-window rule.
``critical_fire_after`` equal to ``fire_after`` is the rule of earlier versions (one count
for both severities), exactly.
``load_tests/bench_alert_delay.py`` measures both rules' delays and false alerts.

Cooldown: after a resolve the key cannot fire again until a finding's ``window_end`` is at
least the resolving window's end + ``cooldown_seconds``. Streaks keep counting during the
cooldown, so a drift that persisted through it fires on the first finding after it.

Findings with ``sample_size < min_samples`` or a non-finite value are ignored: they neither
extend nor break a streak.

Warning and critical alerts of the same thing have different ``severity`` labels, hence
different fingerprints: they are two alerts, as in Alertmanager.

The policy owns the ``Alert`` objects of firing alerts; the retrain policy refers to them.
The human text of an alert (summary, description) is rendered in :mod:`.alert_text`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Self

import orjson
from pydantic import Field

from driftline.cloudevents import (
    ALERT_TYPE,
    cloud_event,
    deterministic_id,
    encode_event,
    fingerprint,
    format_time,
)
from driftline.detectors.base import Direction
from driftline.events import LABEL_FEATURE, PREDICTION_FEATURE
from driftline.findings import Finding
from driftline.performance.detectors import ERROR_FEATURE, ESTIMATED_ERROR_FEATURE
from driftline.policy.alert_text import AlertText
from driftline.policy.states import Severity, Status, Transition
from driftline.settings_base import StrictSettings

"""Why an alert event was emitted. ``escalated`` marks both events of an escalation: the
``resolved`` warning and the ``firing`` critical alert."""

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Warning and critical thresholds of one (feature, detector).

    With ``direction="above"`` a value breaches a threshold when it is strictly greater
    (distances such as PSI); with ``"below"`` when it is strictly smaller (p-values).
    ``None`` disables a severity.

    >>> Thresholds(warning=0.1, critical=0.25).level(0.3)
    'critical'
    >>> Thresholds(warning=0.05, critical=0.01, direction="below").level(0.03)
    'warning'
    """

    warning: float | None
    critical: float | None
    direction: Direction = "above"

    def __post_init__(self) -> None:
        if self.direction not in ("above", "below"):
            raise ValueError(f"direction must be 'above' or 'below', got {self.direction!r}")
        for name in ("warning", "critical"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} threshold must be finite, got {value!r}")
        if self.warning is not None and self.critical is not None:
            if self.direction == "above" and self.warning > self.critical:
                raise ValueError("warning threshold must be <= critical for direction 'above'")
            if self.direction == "below" and self.warning < self.critical:
                raise ValueError("warning threshold must be >= critical for direction 'below'")

    def breaches(self, value: float, threshold: float | None) -> bool:
        """Whether ``value`` is strictly beyond ``threshold`` in this direction."""
        if threshold is None:
            return False
        return value > threshold if self.direction == "above" else value < threshold

    def level(self, value: float) -> Severity | None:
        """The highest severity ``value`` breaches, or ``None`` when it is clear."""
        if self.breaches(value, self.critical):
            return "critical"
        if self.breaches(value, self.warning):
            return "warning"
        return None

    @property
    def clear_threshold(self) -> float | None:
        """The threshold a window must not breach to count towards resolving."""
        return self.warning if self.warning is not None else self.critical

    def threshold(self, severity: Severity) -> float | None:
        return self.critical if severity == "critical" else self.warning


class AlertSettings(StrictSettings):
    """Debounce settings shared by all alerts of a policy (config key ``alerts``)."""

    fire_after: int = Field(3, gt=0)
    """Consecutive breaching windows needed to fire (a warning; see ``critical_fire_after``)."""
    critical_fire_after: int = Field(1, gt=0)
    """Consecutive critical windows needed to fire a critical alert, or to escalate a firing
    warning; 1: at once. Set it to ``fire_after`` for one rule for both severities."""
    resolve_after: int = Field(3, gt=0)
    """Consecutive clear windows needed to resolve."""
    cooldown_seconds: float = Field(600.0, ge=0, allow_inf_nan=False)
    """Event time after a resolve before the same alert may fire again."""
    min_samples: int = Field(200, ge=0)
    """Windows with fewer (non-missing) values are not evaluated (neither breach nor clear)."""
    runbook_url: str | None = None
    """Added to every alert as the ``runbook_url`` annotation when set."""


@dataclass(frozen=True, slots=True)
class AlertWindow:
    """The window of the finding that caused an alert event (event time, epoch seconds)."""

    start: float
    end: float
    count: int


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert event (a state change of one alert), with its CloudEvent.

    Times are epoch seconds of event time; ``event`` holds them in RFC 3339. Treat the
    ``labels`` and ``event`` mappings as read-only.
    """

    id: str
    fingerprint: str
    status: Status
    severity: Severity
    labels: dict[str, str]
    model_id: str
    model_version: str
    feature: str
    detector: str
    statistic: str
    value: float
    threshold: float
    """The threshold ``value`` was compared with: the alert's own severity threshold when
    firing or escalated, the clear threshold when resolved."""
    direction: Direction
    window: AlertWindow
    breach_start: float
    """``window_start`` of the first breaching window of the streak that fired the alert:
    where the drifted data begins."""
    starts_at: float
    """``window_end`` of the finding that made the alert fire."""
    ends_at: float | None
    """``window_end`` of the resolving finding; ``None`` while firing."""
    time: float
    """Event time of the triggering finding (its ``window_end``)."""
    sequence: int
    """Stream position of the triggering finding's last event."""
    transition: Transition
    event: dict[str, Any] = field(repr=False)

    @property
    def key(self) -> str:
        """Kafka message key: the fingerprint, so an alert's history stays in one partition."""
        return self.fingerprint

    @property
    def drift_score(self) -> float:
        """How far beyond its threshold the value is (> 1 means beyond it), for ranking.

        ``value / threshold`` for direction ``above``, ``threshold / value`` for ``below``;
        infinite when the division is undefined but the value is beyond the threshold.
        """
        numerator, denominator = (
            (self.value, self.threshold)
            if self.direction == "above"
            else (self.threshold, self.value)
        )
        if denominator > 0:
            return numerator / denominator
        return math.inf if numerator > denominator else 0.0

    def to_json(self) -> bytes:
        """The CloudEvent as stable JSON bytes (the Kafka message value)."""
        return encode_event(self.event)

    def to_state(self) -> dict[str, Any]:
        """All fields as a JSON-serialisable dict (see :meth:`from_state`)."""
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "severity": self.severity,
            "labels": dict(self.labels),
            "model_id": self.model_id,
            "model_version": self.model_version,
            "feature": self.feature,
            "detector": self.detector,
            "statistic": self.statistic,
            "value": self.value,
            "threshold": self.threshold,
            "direction": self.direction,
            "window": [self.window.start, self.window.end, self.window.count],
            "breach_start": self.breach_start,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "time": self.time,
            "sequence": self.sequence,
            "transition": self.transition,
            "event": self.event,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild an alert from :meth:`to_state` (also after a JSON round trip). The event
        keeps its key order, so a restored policy's state has the same bytes."""
        start, end, count = state["window"]
        return cls(
            id=state["id"],
            fingerprint=state["fingerprint"],
            status=state["status"],
            severity=state["severity"],
            labels=dict(state["labels"]),
            model_id=state["model_id"],
            model_version=state["model_version"],
            feature=state["feature"],
            detector=state["detector"],
            statistic=state["statistic"],
            value=float(state["value"]),
            threshold=float(state["threshold"]),
            direction=state["direction"],
            window=AlertWindow(float(start), float(end), int(count)),
            breach_start=float(state["breach_start"]),
            starts_at=float(state["starts_at"]),
            ends_at=None if state["ends_at"] is None else float(state["ends_at"]),
            time=float(state["time"]),
            sequence=int(state["sequence"]),
            transition=state["transition"],
            event=orjson.loads(orjson.dumps(state["event"])),  # detached, in its key order
        )


def alert_name(feature: str, detector: str) -> str:
    """The ``alertname`` label of an alert on ``feature`` raised by ``detector``.

    >>> alert_name("amount", "psi"), alert_name("__prediction__.fraud", "jensen_shannon")
    ('FeatureDrift', 'PredictionDrift')
    >>> alert_name("amount", "quality_missing")
    'DataQuality'
    >>> alert_name("__error__", "adwin"), alert_name("__estimated_error__", "estimated_error_rate")
    ('PerformanceDrift', 'EstimatedPerformanceDrift')
    """
    if feature == ERROR_FEATURE:
        return "PerformanceDrift"
    if feature == ESTIMATED_ERROR_FEATURE:
        return "EstimatedPerformanceDrift"
    if detector.startswith("quality_"):
        return "DataQuality"
    if is_prediction_feature(feature):
        return "PredictionDrift"
    if feature == LABEL_FEATURE:
        return "LabelDrift"
    return "FeatureDrift"


def is_prediction_feature(feature: str) -> bool:
    """Whether ``feature`` is the prediction or one class column of it."""
    return feature == PREDICTION_FEATURE or feature.startswith(PREDICTION_FEATURE + ".")


@dataclass(slots=True)
class _AlertState:
    """Mutable state of one (model_id, model_version, feature, detector)."""

    warning_streak: int = 0
    critical_streak: int = 0
    clear_streak: int = 0
    breach_start: float | None = None
    """``window_start`` of the first window of the current breaching streak."""
    firing: Alert | None = None
    resolved_at: float | None = None


_Key = tuple[str, str, str, str]


class AlertPolicy:
    """Turns findings into alert events with debounce, escalation and cooldown.

    Parameters
    ----------
    source
        CloudEvents ``source`` of the alerts, e.g. ``/driftline/prod``.
    settings
        Debounce settings.
    thresholds
        ``(feature, detector) -> Thresholds``, called for every counted finding.
    """

    def __init__(
        self,
        *,
        source: str,
        settings: AlertSettings,
        thresholds: Callable[[str, str], Thresholds],
    ) -> None:
        self.source = source
        self.settings = settings
        self._thresholds = thresholds
        self._states: dict[_Key, _AlertState] = {}

    def observe(self, finding: Finding) -> list[Alert]:
        """Count one finding; return the alert events it causes (often none)."""
        if finding.sample_size < self.settings.min_samples or not math.isfinite(finding.value):
            return []
        thresholds = self._thresholds(finding.feature, finding.detector)
        key = (finding.model_id, finding.model_version, finding.feature, finding.detector)
        state = self._states.setdefault(key, _AlertState())
        level = thresholds.level(finding.value)
        state.warning_streak = state.warning_streak + 1 if level is not None else 0
        state.critical_streak = state.critical_streak + 1 if level == "critical" else 0
        state.clear_streak = state.clear_streak + 1 if level is None else 0
        if level is None:
            state.breach_start = None
        elif state.breach_start is None:
            state.breach_start = finding.window_start

        if state.firing is None:
            return self._maybe_fire(state, finding, thresholds)
        if (
            state.firing.severity == "warning"
            and state.critical_streak >= self.settings.critical_fire_after
        ):
            return self._escalate(state, finding, thresholds)
        if state.clear_streak >= self.settings.resolve_after:
            return [self._resolve(state, finding, thresholds)]
        return []

    def firing(self) -> list[Alert]:
        """The ``firing`` events of all currently firing alerts, ordered by their key."""
        return [
            state.firing for _, state in sorted(self._states.items()) if state.firing is not None
        ]

    def to_state(self) -> dict[str, Any]:
        """All mutable state as a JSON-serialisable dict."""
        return {
            "version": STATE_VERSION,
            "alerts": [
                {
                    "key": list(key),
                    "warning_streak": state.warning_streak,
                    "critical_streak": state.critical_streak,
                    "clear_streak": state.clear_streak,
                    "breach_start": state.breach_start,
                    "firing": None if state.firing is None else state.firing.to_state(),
                    "resolved_at": state.resolved_at,
                }
                for key, state in sorted(self._states.items())
            ],
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        *,
        source: str,
        settings: AlertSettings,
        thresholds: Callable[[str, str], Thresholds],
    ) -> Self:
        """Rebuild a policy from :meth:`to_state`; it continues exactly where it was."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported alert policy state version {state.get('version')!r}")
        policy = cls(source=source, settings=settings, thresholds=thresholds)
        for entry in state["alerts"]:
            model_id, model_version, feature, detector = entry["key"]
            firing = entry["firing"]
            resolved_at = entry["resolved_at"]
            policy._states[(model_id, model_version, feature, detector)] = _AlertState(
                warning_streak=int(entry["warning_streak"]),
                critical_streak=int(entry["critical_streak"]),
                clear_streak=int(entry["clear_streak"]),
                breach_start=None
                if entry["breach_start"] is None
                else float(entry["breach_start"]),
                firing=None if firing is None else Alert.from_state(firing),
                resolved_at=None if resolved_at is None else float(resolved_at),
            )
        return policy

    def tracked(self) -> set[tuple[str, str]]:
        """The (feature, detector) pairs this policy holds state for (streaks, alerts)."""
        return {(key[2], key[3]) for key in self._states}

    def drop_feature(self, feature: str, reason: str, time: float) -> list[Alert]:
        """Forget the state of every detector of ``feature`` (no longer monitored); return
        the ``resolved`` events of its firing alerts, as :meth:`resolve_all` does."""
        dropped = {key: state for key, state in self._states.items() if key[2] == feature}
        resolved = [
            resolved_without_window(
                state.firing, f"state reset: {reason}", max(time, state.firing.time)
            )
            for _, state in sorted(dropped.items())
            if state.firing is not None
        ]
        for key in dropped:
            del self._states[key]
        return resolved

    def resolve_all(self, reason: str, time: float) -> list[Alert]:
        """``resolved`` events of every firing alert, because the state they belong to is
        dropped (e.g. the version's reference profile changed); ordered by alert key.

        ``reason`` becomes the ``resolved_reason`` annotation; ``time`` (event time, the
        last one the version saw) the ``ends_at``, at the earliest the alert's own last
        window end. The id derives from the firing event's id, so resolving the same
        state again gives the same ids. The policy holds no firing alert afterwards.
        """
        resolved: list[Alert] = []
        for state in (s for _, s in sorted(self._states.items())):
            firing = state.firing
            if firing is None:
                continue
            ends_at = max(time, firing.time)
            resolved.append(resolved_without_window(firing, f"state reset: {reason}", ends_at))
            state.firing = None
            state.resolved_at = ends_at
        return resolved

    # -- transitions -------------------------------------------------------------------

    def _maybe_fire(
        self, state: _AlertState, finding: Finding, thresholds: Thresholds
    ) -> list[Alert]:
        severity: Severity
        if state.critical_streak >= self.settings.critical_fire_after:
            severity, streak = "critical", state.critical_streak
        elif state.warning_streak >= self.settings.fire_after and thresholds.warning is not None:
            severity, streak = "warning", state.warning_streak
        else:
            return []
        if (
            state.resolved_at is not None
            and finding.window_end < state.resolved_at + self.settings.cooldown_seconds
        ):
            return []
        threshold = thresholds.threshold(severity)
        assert threshold is not None  # breached, so set
        state.firing = self._alert(
            finding,
            thresholds,
            severity=severity,
            status="firing",
            transition="fired",
            threshold=threshold,
            threshold_name=severity,
            starts_at=finding.window_end,
            breach_start=finding.window_start if state.breach_start is None else state.breach_start,
            streak=streak,
        )
        return [state.firing]

    def _escalate(
        self, state: _AlertState, finding: Finding, thresholds: Thresholds
    ) -> list[Alert]:
        assert state.firing is not None and thresholds.critical is not None
        superseded = self._alert(
            finding,
            thresholds,
            severity="warning",
            status="resolved",
            transition="escalated",
            threshold=thresholds.critical,
            threshold_name="critical",
            starts_at=state.firing.starts_at,
            breach_start=state.firing.breach_start,
            streak=state.critical_streak,
        )
        state.firing = self._alert(
            finding,
            thresholds,
            severity="critical",
            status="firing",
            transition="escalated",
            threshold=thresholds.critical,
            threshold_name="critical",
            starts_at=finding.window_end,
            breach_start=state.firing.breach_start,
            streak=state.critical_streak,
            escalated_from=superseded.starts_at,
        )
        return [superseded, state.firing]

    def _resolve(self, state: _AlertState, finding: Finding, thresholds: Thresholds) -> Alert:
        firing = state.firing
        assert firing is not None
        clear = thresholds.clear_threshold
        resolved = self._alert(
            finding,
            thresholds,
            severity=firing.severity,
            status="resolved",
            transition="resolved",
            threshold=firing.threshold if clear is None else clear,
            threshold_name="warning" if thresholds.warning is not None else "critical",
            starts_at=firing.starts_at,
            breach_start=firing.breach_start,
            streak=state.clear_streak,
        )
        state.firing = None
        state.resolved_at = finding.window_end
        return resolved

    def _alert(
        self,
        finding: Finding,
        thresholds: Thresholds,
        *,
        severity: Severity,
        status: Status,
        transition: Transition,
        threshold: float,
        threshold_name: Severity,
        starts_at: float,
        breach_start: float,
        streak: int,
        escalated_from: float | None = None,
    ) -> Alert:
        """The alert event of ``finding``'s key for one transition, with its CloudEvent."""
        labels = alert_labels(finding, severity)
        alert_fingerprint = fingerprint(labels)
        alert_id = deterministic_id(alert_fingerprint, status, str(finding.sequence))
        ends_at = finding.window_end if status == "resolved" else None
        text = AlertText(
            finding=finding,
            direction=thresholds.direction,
            status=status,
            transition=transition,
            threshold=threshold,
            threshold_name=threshold_name,
            streak=streak,
            starts_at=starts_at,
            escalated_from=escalated_from,
        )
        data = {
            "status": status,
            "fingerprint": alert_fingerprint,
            "labels": labels,
            "annotations": self._annotations(text),
            "starts_at": format_time(starts_at),
            "ends_at": None if ends_at is None else format_time(ends_at),
            "breach_started_at": format_time(breach_start),
            "statistic": _statistic_block(finding, threshold),
            "window": _window_block(finding),
            "evidence": _evidence_block(finding),
        }
        return Alert(
            id=alert_id,
            fingerprint=alert_fingerprint,
            status=status,
            severity=severity,
            labels=dict(labels),
            model_id=finding.model_id,
            model_version=finding.model_version,
            feature=finding.feature,
            detector=finding.detector,
            statistic=finding.statistic,
            value=finding.value,
            threshold=threshold,
            direction=thresholds.direction,
            window=AlertWindow(finding.window_start, finding.window_end, finding.window_count),
            breach_start=breach_start,
            starts_at=starts_at,
            ends_at=ends_at,
            time=finding.window_end,
            sequence=finding.sequence,
            transition=transition,
            event=self._cloud_event(finding, alert_id, data),
        )

    def _annotations(self, text: AlertText) -> dict[str, str]:
        """Summary, description and, when configured, the runbook link."""
        annotations = {"summary": text.summary(), "description": text.description()}
        if self.settings.runbook_url is not None:
            annotations["runbook_url"] = self.settings.runbook_url
        return annotations

    def _cloud_event(self, finding: Finding, alert_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """The CloudEvent envelope of an alert event about ``finding``'s feature."""
        return cloud_event(
            type=ALERT_TYPE,
            source=self.source,
            id=alert_id,
            subject=f"{finding.model_id}/{finding.model_version}/{finding.feature}",
            time=format_time(finding.window_end),
            data=data,
        )


def alert_labels(finding: Finding, severity: Severity) -> dict[str, str]:
    """The Alertmanager labels of an alert on ``finding``'s key; they make its fingerprint."""
    return {
        "alertname": alert_name(finding.feature, finding.detector),
        "model_id": finding.model_id,
        "model_version": finding.model_version,
        "feature": finding.feature,
        "detector": finding.detector,
        "severity": severity,
    }


def _statistic_block(finding: Finding, threshold: float) -> dict[str, Any]:
    """The ``statistic`` block: the finding's statistic and the threshold it was compared with."""
    return {"name": finding.statistic, "value": finding.value, "threshold": threshold}


def _window_block(finding: Finding) -> dict[str, Any]:
    """The ``window`` block: the finding's window in RFC 3339 event time."""
    return {
        "start": format_time(finding.window_start),
        "end": format_time(finding.window_end),
        "count": finding.window_count,
    }


def _evidence_block(finding: Finding) -> dict[str, Any]:
    """The ``evidence`` block: the detector's evidence plus where the finding came from."""
    evidence = _json_copy(finding.evidence)
    evidence.update(
        sample_size=finding.sample_size,
        event_id=finding.event_id,
        sequence=finding.sequence,
    )
    return evidence


def _json_copy(value: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy through JSON: detaches from the caller, turns numpy values into JSON."""
    copied: dict[str, Any] = orjson.loads(encode_event(value))
    return copied


def resolved_without_window(firing: Alert, reason: str, ends_at: float) -> Alert:
    """The ``resolved`` event of ``firing`` when no window resolves it: its state was
    reset, or its version leaves quarantine. ``reason`` is the ``resolved_reason``
    annotation. The id derives from the firing event's id, so resolving the same alert
    again gives the same id."""
    alert_id = deterministic_id(firing.fingerprint, "resolved", "reset", firing.id)
    data = _json_copy(firing.event["data"])
    annotations = data["annotations"]
    annotations["summary"] = f"Resolved ({reason.split(':')[0]}): {annotations['summary']}"
    annotations["resolved_reason"] = reason
    data.update(status="resolved", ends_at=format_time(ends_at))
    event = {**_json_copy(firing.event), "id": alert_id, "data": data}
    event["time"] = format_time(ends_at)
    return replace(
        firing,
        id=alert_id,
        status="resolved",
        ends_at=ends_at,
        time=ends_at,
        transition="reset",
        event=event,
    )


INTERNAL_ERROR_ALERT = "DriftlineInternalError"
INTERNAL_FEATURE = "__internal__"


def internal_error_alert(
    *,
    source: str,
    model_id: str,
    model_version: str,
    message: str,
    sequence: int,
    event_id: str,
    window: AlertWindow,
    runbook_url: str | None = None,
) -> Alert:
    """The ``firing`` critical alert of a model version quarantined after an internal error.

    Labels: ``alertname: DriftlineInternalError``, the model version, ``feature:
    __internal__``, ``detector: pipeline``, ``severity: critical``. ``sequence`` is the
    version's event count before the failing batch and ``event_id`` the id of the batch's
    first event of the version: with the labels they make the deterministic id. ``window``
    spans that batch's events of the version (event time).
    """
    labels = {
        "alertname": INTERNAL_ERROR_ALERT,
        "model_id": model_id,
        "model_version": model_version,
        "feature": INTERNAL_FEATURE,
        "detector": "pipeline",
        "severity": "critical",
    }
    alert_fingerprint = fingerprint(labels)
    alert_id = deterministic_id(alert_fingerprint, "firing", str(sequence), event_id)
    annotations = {
        "summary": (
            f"driftline stopped monitoring {model_id} version {model_version}: internal error"
        ),
        "description": (
            f"An unexpected error while processing the events of {model_id} version "
            f"{model_version}: {message}. The version is quarantined: its events are "
            "dead-lettered (reason internal_error) until its state is restored (restart or "
            "rebalance), when it is tried again and this alert resolves; other versions "
            "are unaffected. The service log has the traceback."
        ),
    }
    if runbook_url is not None:
        annotations["runbook_url"] = runbook_url
    data = {
        "status": "firing",
        "fingerprint": alert_fingerprint,
        "labels": labels,
        "annotations": annotations,
        "starts_at": format_time(window.start),
        "ends_at": None,
        "breach_started_at": format_time(window.start),
        "statistic": {"name": "internal_error", "value": 1.0, "threshold": 0.0},
        "window": {
            "start": format_time(window.start),
            "end": format_time(window.end),
            "count": window.count,
        },
        "evidence": {"error": message, "sequence": sequence, "event_id": event_id},
    }
    event = cloud_event(
        type=ALERT_TYPE,
        source=source,
        id=alert_id,
        subject=f"{model_id}/{model_version}/{INTERNAL_FEATURE}",
        time=format_time(window.start),
        data=data,
    )
    return Alert(
        id=alert_id,
        fingerprint=alert_fingerprint,
        status="firing",
        severity="critical",
        labels=labels,
        model_id=model_id,
        model_version=model_version,
        feature=INTERNAL_FEATURE,
        detector="pipeline",
        statistic="internal_error",
        value=1.0,
        threshold=0.0,
        direction="above",
        window=window,
        breach_start=window.start,
        starts_at=window.start,
        ends_at=None,
        time=window.start,
        sequence=sequence,
        transition="fired",
        event=event,
    )

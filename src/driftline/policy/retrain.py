"""Retrain policy: alert events of one model version -> retrain-request events.

The policy follows every alert event of its model version (``firing`` adds the alert to the
firing set, ``resolved`` removes it) and, after each ``firing`` event, checks its rule over
the firing set, in this order:

0. ``performance_drift``: a ``PerformanceDrift`` alert is firing (``on_performance_drift``,
   on by default: the model got worse on joined labels, the best reason to retrain); then
   ``estimated_performance_drift``: an ``EstimatedPerformanceDrift`` alert is firing
   (``on_estimated_performance_drift``, off by default: an estimate from the model's own
   probabilities, blind to concept drift; while off, these alerts count for no rule);
1. ``critical_alert``: a critical alert is firing (``on_critical``);
2. ``drifted_features``: at least ``min_drifted_features`` distinct input features have a
   firing alert;
3. ``drifted_share``: at least ``min_drifted_share`` of the ``monitored_features`` have one;
4. ``prediction_drift``: an alert on ``__prediction__`` or one of its class columns fires
   (``on_prediction_drift``).

Input features exclude driftline's own columns (``__prediction__*``, ``__label__``). Data-quality
alerts (``alertname`` ``DataQuality``) are ignored unless ``data_quality_triggers`` is set:
retraining on a broken input pipeline would teach the model the breakage.

**Cooldown.** Two requests of one model version are at least ``cooldown_seconds`` of event
time apart. A rule met during the cooldown is *pending*: the first later alert event or
:meth:`RetrainPolicy.tick` at or after the cooldown's end emits it if the rule still holds.

**Episodes and idempotency.** A drift episode begins when an alert fires while none is
firing and ends when the last one resolves (an escalation's ``resolved`` warning does not
end it). The idempotency key is ``deterministic_id("retrain", model_id, model_version,
profile id or "", profile sha256 or "", id of the episode's first firing alert event)``:
replaying the same events gives the same key, every request of one episode against one
reference profile shares it (a retraining system retrains once per episode), and a new
episode or a new reference profile gets a new key. The event ``id`` also covers the
triggering alert event, so each request is a distinct CloudEvent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import Field

from driftline.cloudevents import (
    RETRAIN_TYPE,
    cloud_event,
    deterministic_id,
    encode_event,
    format_time,
)
from driftline.policy.alert_text import (
    display_feature,
    format_number,
    format_pair,
    statistic_display_name,
)
from driftline.policy.alerts import Alert, AlertPolicy, is_prediction_feature
from driftline.settings_base import StrictSettings

ReasonCode = Literal[
    "performance_drift",
    "estimated_performance_drift",
    "critical_alert",
    "drifted_features",
    "drifted_share",
    "prediction_drift",
]
PERFORMANCE_ALERT = "PerformanceDrift"
ESTIMATED_PERFORMANCE_ALERT = "EstimatedPerformanceDrift"
STATE_VERSION = 1
_SEVERITY_RANK = {"warning": 1, "critical": 2}


class RetrainSettings(StrictSettings):
    """When a model version's alerts amount to a retrain request (config key ``retrain``)."""

    on_critical: bool = True
    """Any firing critical alert triggers."""
    min_drifted_features: int | None = Field(3, gt=0)
    """At least this many distinct input features with a firing alert trigger."""
    min_drifted_share: float | None = Field(0.5, gt=0, le=1)
    """At least this share of the monitored features with a firing alert triggers."""
    on_prediction_drift: bool = True
    """A firing alert on ``__prediction__`` (or a class of it) triggers."""
    on_performance_drift: bool = True
    """A firing ``PerformanceDrift`` alert (realized, from joined labels) triggers."""
    on_estimated_performance_drift: bool = False
    """A firing ``EstimatedPerformanceDrift`` alert (before labels arrive) triggers; while
    off, such alerts count for no rule (not even ``on_critical``)."""
    data_quality_triggers: bool = False
    """Whether data-quality alerts count: off, so a broken pipeline is not retrained on."""
    cooldown_seconds: float = Field(3600.0, ge=0, allow_inf_nan=False)
    """Event time between two requests of one model version."""


@dataclass(frozen=True, slots=True)
class ProfileRef:
    """The reference profile the model version is compared with."""

    profile_id: str | None
    sha256: str | None
    """SHA-256 of the data the profile was built from."""


@dataclass(frozen=True, slots=True)
class RetrainRequest:
    """One retrain-request event, with its CloudEvent."""

    id: str
    idempotency_key: str
    model_id: str
    model_version: str
    reason: ReasonCode
    time: float
    """Event time of the triggering alert event (or tick)."""
    event: dict[str, Any]

    @property
    def key(self) -> str:
        """Kafka message key: ``model_id/model_version``."""
        return f"{self.model_id}/{self.model_version}"

    def to_json(self) -> bytes:
        """The CloudEvent as stable JSON bytes (the Kafka message value)."""
        return encode_event(self.event)


class RetrainPolicy:
    """Turns the alert events of one model version into retrain requests.

    Parameters
    ----------
    source
        CloudEvents ``source``, e.g. ``/driftline/prod``.
    model_id, model_version
        The model version this policy watches; alerts of others raise ``ValueError``.
    settings
        The rule and the cooldown.
    """

    def __init__(
        self, *, source: str, model_id: str, model_version: str, settings: RetrainSettings
    ) -> None:
        self.source = source
        self.model_id = model_id
        self.model_version = model_version
        self.settings = settings
        self._firing: dict[str, Alert] = {}
        """The episode's firing alerts by fingerprint. They are the alert policy's own
        objects (it owns them; this holds references, never copies), see :meth:`from_state`."""
        self._episode_alert_id: str | None = None
        self._episode_started_at: float | None = None
        self._last_request_at: float | None = None
        self._pending = False

    def observe(
        self, alert: Alert, *, monitored_features: int, profile: ProfileRef
    ) -> RetrainRequest | None:
        """Follow one alert event; return the retrain request it triggers, if any.

        ``monitored_features`` is the number of input features monitored for this model
        version (the denominator of ``min_drifted_share``).
        """
        return self.observe_window([alert], monitored_features=monitored_features, profile=profile)

    def observe_window(
        self, alerts: Sequence[Alert], *, monitored_features: int, profile: ProfileRef
    ) -> RetrainRequest | None:
        """Follow the alert events raised by one closed window, then evaluate the rule once.

        Evaluating after the whole window means a request lists every feature that drifted
        in that window, not just the first one whose alert was observed.
        """
        trigger: Alert | None = None
        last: Alert | None = None
        for alert in alerts:
            if (alert.model_id, alert.model_version) != (self.model_id, self.model_version):
                raise ValueError(
                    f"alert of {alert.model_id}/{alert.model_version} sent to the retrain "
                    f"policy of {self.model_id}/{self.model_version}"
                )
            if (
                alert.labels.get("alertname") == "DataQuality"
                and not self.settings.data_quality_triggers
            ) or (
                alert.labels.get("alertname") == ESTIMATED_PERFORMANCE_ALERT
                and not self.settings.on_estimated_performance_drift
            ):
                continue
            last = alert
            if alert.status == "resolved":
                self._firing.pop(alert.fingerprint, None)
                if not self._firing and alert.transition != "escalated":
                    self._end_episode()
                continue
            if self._episode_alert_id is None:
                self._episode_alert_id = alert.id
                self._episode_started_at = alert.starts_at
            self._firing[alert.fingerprint] = alert
            trigger = alert
        if trigger is None:
            if last is None:
                return None
            return self._emit_pending(last.time, last.id, monitored_features, profile)
        reason = self._reason(monitored_features)
        if reason is None:
            return None
        if self._cooling_down(trigger.time):
            self._pending = True
            return None
        return self._request(reason, trigger.time, trigger.id, profile)

    def tick(
        self, time: float, *, monitored_features: int, profile: ProfileRef
    ) -> RetrainRequest | None:
        """Emit a request held back by the cooldown, once it is over and still warranted.

        Call it with the ``window_end`` of every finding of this model version (event time
        from the stream, so replays stay identical); without it a pending request waits for
        the next alert event.
        """
        return self._emit_pending(time, "", monitored_features, profile)

    def firing(self) -> list[Alert]:
        """The firing alerts taken into account, ordered by fingerprint."""
        return [self._firing[fp] for fp in sorted(self._firing)]

    def to_state(self) -> dict[str, Any]:
        """All mutable state as a JSON-serialisable dict."""
        return {
            "version": STATE_VERSION,
            "firing": [alert.to_state() for alert in self.firing()],
            "episode_alert_id": self._episode_alert_id,
            "episode_started_at": self._episode_started_at,
            "last_request_at": self._last_request_at,
            "pending": self._pending,
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        *,
        source: str,
        model_id: str,
        model_version: str,
        settings: RetrainSettings,
        alerts: AlertPolicy | None = None,
    ) -> Self:
        """Rebuild a policy from :meth:`to_state`; it continues exactly where it was.

        ``alerts`` is the restored alert policy that emitted the alerts this one follows:
        the policy then refers to that policy's firing ``Alert`` objects instead of
        rebuilding its own copies (the state's entries must match them). Without it, for a
        retrain policy fed alerts by hand, the alerts are rebuilt from the state.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported retrain policy state version {state.get('version')!r}")
        policy = cls(
            source=source, model_id=model_id, model_version=model_version, settings=settings
        )
        policy._firing = _restore_firing(state["firing"], alerts)
        policy._episode_alert_id = state["episode_alert_id"]
        started = state["episode_started_at"]
        policy._episode_started_at = None if started is None else float(started)
        last = state["last_request_at"]
        policy._last_request_at = None if last is None else float(last)
        policy._pending = bool(state["pending"])
        return policy

    # -- rule --------------------------------------------------------------------------

    def _end_episode(self) -> None:
        self._episode_alert_id = None
        self._episode_started_at = None
        self._pending = False

    def _cooling_down(self, time: float) -> bool:
        last = self._last_request_at
        return last is not None and time < last + self.settings.cooldown_seconds

    def _emit_pending(
        self, time: float, trigger_id: str, monitored_features: int, profile: ProfileRef
    ) -> RetrainRequest | None:
        if not self._pending or self._cooling_down(time):
            return None
        reason = self._reason(monitored_features)
        if reason is None:
            self._pending = False
            return None
        return self._request(reason, time, trigger_id, profile)

    def _reason(self, monitored_features: int) -> tuple[ReasonCode, str] | None:
        s = self.settings
        alerts = self.firing()
        rules: tuple[tuple[bool, str, ReasonCode, str], ...] = (
            (s.on_performance_drift, PERFORMANCE_ALERT, "performance_drift", "Performance"),
            (
                s.on_estimated_performance_drift,
                ESTIMATED_PERFORMANCE_ALERT,
                "estimated_performance_drift",
                "Estimated performance",
            ),
        )
        for enabled, name, reason, text in rules:
            performance = [a for a in alerts if a.labels.get("alertname") == name]
            if enabled and performance:
                return reason, text + " " + _alert_text(_strongest(performance))
        if s.on_critical:
            critical = [a for a in alerts if a.severity == "critical"]
            if critical:
                return "critical_alert", "Critical " + _alert_text(_strongest(critical))
        inputs = sorted({a.feature for a in alerts if _is_input_feature(a.feature)})
        if s.min_drifted_features is not None and len(inputs) >= s.min_drifted_features:
            return "drifted_features", (
                f"{len(inputs):,} input features drifted ({', '.join(inputs)}); "
                f"the rule asks for {s.min_drifted_features:,}"
            )
        if (
            s.min_drifted_share is not None
            and monitored_features > 0
            and inputs
            and len(inputs) / monitored_features >= s.min_drifted_share
        ):
            return "drifted_share", (
                f"{len(inputs):,} of {monitored_features:,} monitored features drifted "
                f"({len(inputs) / monitored_features:.0%}); the rule asks for "
                f"{s.min_drifted_share:.0%}"
            )
        if s.on_prediction_drift:
            prediction = [a for a in alerts if is_prediction_feature(a.feature)]
            if prediction:
                return "prediction_drift", "Prediction " + _alert_text(_strongest(prediction))
        return None

    def _request(
        self,
        reason: tuple[ReasonCode, str],
        time: float,
        trigger_id: str,
        profile: ProfileRef,
    ) -> RetrainRequest:
        assert self._episode_alert_id is not None and self._episode_started_at is not None
        alerts = self.firing()
        key = deterministic_id(
            "retrain",
            self.model_id,
            self.model_version,
            profile.profile_id or "",
            profile.sha256 or "",
            self._episode_alert_id,
        )
        request_id = deterministic_id(RETRAIN_TYPE, key, trigger_id, repr(float(time)))
        code, text = reason
        data = {
            "model_id": self.model_id,
            "model_version": self.model_version,
            "reason": {"code": code, "text": text},
            "alert_ids": sorted(a.id for a in alerts),
            "drifted_features": [_feature_entry(a) for a in _ranked_features(alerts)],
            "window": {
                "from": format_time(min(a.breach_start for a in alerts)),
                "to": format_time(max(a.window.end for a in alerts)),
            },
            "reference_profile": {"id": profile.profile_id, "sha256": profile.sha256},
            "idempotency_key": key,
            "episode_started_at": format_time(self._episode_started_at),
        }
        event = cloud_event(
            type=RETRAIN_TYPE,
            source=self.source,
            id=request_id,
            subject=f"{self.model_id}/{self.model_version}",
            time=format_time(time),
            data=data,
        )
        self._last_request_at = time
        self._pending = False
        return RetrainRequest(
            id=request_id,
            idempotency_key=key,
            model_id=self.model_id,
            model_version=self.model_version,
            reason=code,
            time=time,
            event=event,
        )


def _restore_firing(
    entries: Sequence[Mapping[str, Any]], owner: AlertPolicy | None
) -> dict[str, Alert]:
    """The firing alerts of a saved retrain policy, by fingerprint: the ``owner``'s objects
    when given (checked against the saved entries), else rebuilt from the entries."""
    if owner is None:
        rebuilt = (Alert.from_state(entry) for entry in entries)
        return {alert.fingerprint: alert for alert in rebuilt}
    owned = {alert.fingerprint: alert for alert in owner.firing()}
    firing: dict[str, Alert] = {}
    for entry in entries:
        alert = owned.get(entry["fingerprint"])
        if alert is None or alert.id != entry["id"]:
            raise ValueError(
                f"retrain policy state follows alert {entry['id']!r}, which the alert policy "
                "does not hold as firing"
            )
        firing[alert.fingerprint] = alert
    return firing


def _is_input_feature(feature: str) -> bool:
    """Model inputs: every name but driftline's own ``__``-prefixed columns (prediction,
    label), which event decoding reserves; the monitor counts its inputs the same way."""
    return not feature.startswith("__")


def _rank_key(alert: Alert) -> tuple[int, float, str]:
    """Higher severity first, then higher drift score, then detector name."""
    return (-_SEVERITY_RANK[alert.severity], -alert.drift_score, alert.detector)


def _strongest(alerts: list[Alert]) -> Alert:
    return min(alerts, key=lambda a: (*_rank_key(a), a.feature))


def _ranked_features(alerts: list[Alert]) -> list[Alert]:
    """The highest-severity alert per feature, by drift score descending, ties by name."""
    best: dict[str, Alert] = {}
    for alert in alerts:
        current = best.get(alert.feature)
        if current is None or _rank_key(alert) < _rank_key(current):
            best[alert.feature] = alert
    return sorted(best.values(), key=lambda a: (-a.drift_score, a.feature))


def _feature_entry(alert: Alert) -> dict[str, Any]:
    score = alert.drift_score
    return {
        "feature": alert.feature,
        "detector": alert.detector,
        "severity": alert.severity,
        "drift_score": score if math.isfinite(score) else None,
        "statistic": {"name": alert.statistic, "value": alert.value, "threshold": alert.threshold},
        "window": {
            "start": format_time(alert.window.start),
            "end": format_time(alert.window.end),
            "count": alert.window.count,
        },
        "alert_id": alert.id,
    }


def _alert_text(alert: Alert) -> str:
    value, threshold = format_pair(alert.value, alert.threshold)
    op = ">" if alert.direction == "above" else "<"
    return (
        f"drift on {display_feature(alert.feature)}: {statistic_display_name(alert.statistic)} "
        f"{value} {op} {threshold} ({alert.severity} alert of detector `{alert.detector}`, "
        f"score {format_number(alert.drift_score)})"
    )

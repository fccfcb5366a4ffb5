"""Alert events (CloudEvents ``io.driftline.alert.v1``) -> Alertmanager API v2 alerts.

Pure: the wall-clock time a push happens at is an argument. Alertmanager's rules shape the
times:

- a **firing** alert is sent with ``startsAt`` = the alert's ``starts_at`` and ``endsAt`` =
  now + the validity (4 resend intervals, as Prometheus does): re-sent before then, it stays
  active; if the bridge stops re-sending (it stopped, or lost the alert), Alertmanager
  resolves it by itself at ``endsAt`` instead of keeping a stale page forever;
- a **resolved** alert is sent with ``endsAt`` = the alert's ``ends_at``.

Times are event time, which may run ahead of the wall clock (replayed or synthetic
traffic). Alertmanager treats an alert whose ``endsAt`` is in the future as active and
rejects ``endsAt`` before ``startsAt``, so both are capped at now: a resolved alert ends
now at the latest, a firing one has started now at the latest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from driftline.cloudevents import ALERT_TYPE, format_time
from driftline.policy.states import Status


class AlertEventError(ValueError):
    """A record of the alerts topic that is not a driftline alert event."""


@dataclass(frozen=True, slots=True)
class BridgeAlert:
    """What the bridge needs of one alert event (times in epoch seconds)."""

    id: str
    fingerprint: str
    status: Status
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None
    time: float
    """When the state changed (the event's ``time``; without one, ``ends_at`` of a resolved
    alert, else ``starts_at``): orders one alert's records across partitions."""


def _epoch(text: Any, field: str) -> float:
    if not isinstance(text, str):
        raise AlertEventError(f"{field} is not an RFC 3339 string")
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise AlertEventError(f"{field} is not an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise AlertEventError(f"{field} has no time zone")
    return moment.timestamp()


def _text_map(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise AlertEventError(f"data.{field} is not a mapping of strings to strings")
    return dict(value)


def parse_alert_event(value: bytes | None) -> BridgeAlert:
    """Read one record value of the alerts topic.

    >>> from driftline.cloudevents import cloud_event, encode_event
    >>> event = cloud_event(type=ALERT_TYPE, source="/driftline/prod", id="a1", subject="m/1/x",
    ...     time="2026-01-01T00:00:00.000Z", data={"status": "firing", "fingerprint": "f1",
    ...     "labels": {"alertname": "FeatureDrift"}, "annotations": {"summary": "x drifted"},
    ...     "starts_at": "2026-01-01T00:00:00.000Z", "ends_at": None})
    >>> parse_alert_event(encode_event(event)).status
    'firing'
    >>> parse_alert_event(b"{}")
    Traceback (most recent call last):
    ...
    driftline.alertmanager.payload.AlertEventError: type is None, not io.driftline.alert.v1
    """
    if value is None:
        raise AlertEventError("the record has no value (a tombstone)")
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise AlertEventError("the record value is not JSON") from None
    if not isinstance(event, dict):
        raise AlertEventError("the record value is not a JSON object")
    if event.get("type") != ALERT_TYPE:
        raise AlertEventError(f"type is {event.get('type')!r}, not {ALERT_TYPE}")
    data = event.get("data")
    if not isinstance(data, dict):
        raise AlertEventError("data is not an object")
    status = data.get("status")
    if status not in ("firing", "resolved"):
        raise AlertEventError(f"data.status is {status!r}, not firing or resolved")
    alert_fingerprint = data.get("fingerprint")
    if not isinstance(alert_fingerprint, str) or not alert_fingerprint:
        raise AlertEventError("data.fingerprint is missing")
    labels = _text_map(data.get("labels"), "labels")
    if not labels:
        raise AlertEventError("data.labels is empty")
    ends_at = None
    if status == "resolved":
        ends_at = _epoch(data.get("ends_at"), "data.ends_at")
    starts_at = _epoch(data.get("starts_at"), "data.starts_at")
    if event.get("time") is None:
        changed_at = starts_at if ends_at is None else ends_at
    else:
        changed_at = _epoch(event["time"], "time")
    return BridgeAlert(
        id=str(event.get("id", "")),
        fingerprint=alert_fingerprint,
        status=status,
        labels=labels,
        annotations=_text_map(data.get("annotations", {}), "annotations"),
        starts_at=starts_at,
        ends_at=ends_at,
        time=changed_at,
    )


def report_url(base_url: str, labels: dict[str, str]) -> str | None:
    """The live report page of the alert's model version, or ``None`` without the labels.

    >>> report_url("https://driftline.example.com", {"model_id": "fraud/eu", "model_version": "7"})
    'https://driftline.example.com/v1/report/fraud%2Feu/7'
    """
    model_id, model_version = labels.get("model_id"), labels.get("model_version")
    if not model_id or not model_version:
        return None
    return f"{base_url}/v1/report/{quote(model_id, safe='')}/{quote(model_version, safe='')}"


def to_alertmanager(
    alert: BridgeAlert,
    *,
    now: float,
    valid_for: float,
    generator_base_url: str | None = None,
) -> dict[str, Any]:
    """The Alertmanager API v2 ``postableAlert`` of ``alert``, pushed at ``now``.

    >>> alert = BridgeAlert(id="a1", fingerprint="f1", status="resolved",
    ...     labels={"alertname": "FeatureDrift", "model_id": "m", "model_version": "1"},
    ...     annotations={"summary": "s"}, starts_at=100.0, ends_at=200.0, time=200.0)
    >>> body = to_alertmanager(alert, now=1000.0, valid_for=240.0, generator_base_url="http://d")
    >>> body["startsAt"], body["endsAt"], body["generatorURL"]
    ('1970-01-01T00:01:40.000Z', '1970-01-01T00:03:20.000Z', 'http://d/v1/report/m/1')
    """
    if alert.status == "resolved":
        assert alert.ends_at is not None
        ends_at = min(alert.ends_at, now)
        starts_at = min(alert.starts_at, ends_at)
    else:
        starts_at = min(alert.starts_at, now)
        ends_at = now + valid_for
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": format_time(starts_at),
        "endsAt": format_time(ends_at),
    }
    if generator_base_url is not None:
        url = report_url(generator_base_url, alert.labels)
        if url is not None:
            body["generatorURL"] = url
    return body

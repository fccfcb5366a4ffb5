"""Alert event (CloudEvent) -> Alertmanager API v2 alert: the pure conversion."""

from __future__ import annotations

import orjson
import pytest

from driftline.alertmanager.payload import (
    AlertEventError,
    BridgeAlert,
    parse_alert_event,
    to_alertmanager,
)
from driftline.cloudevents import format_time
from tests.alertmanager.alert_events import AlertMaker

VALID_FOR = 240.0


def test_firing_alert_keeps_labels_and_annotations_and_ends_after_the_validity() -> None:
    maker = AlertMaker(runbook_url="https://runbooks.example.com/drift")
    alert = maker.fire("amount")
    parsed = parse_alert_event(alert.to_json())
    assert parsed.fingerprint == alert.fingerprint and parsed.status == "firing"
    assert parsed.id == alert.id
    now = alert.starts_at + 3600
    body = to_alertmanager(
        parsed, now=now, valid_for=VALID_FOR, generator_base_url="https://driftline.example.com"
    )
    assert body["labels"] == alert.labels
    assert body["labels"]["alertname"] == "FeatureDrift"
    assert body["annotations"] == alert.event["data"]["annotations"]
    assert body["annotations"]["runbook_url"] == "https://runbooks.example.com/drift"
    assert body["startsAt"] == alert.event["data"]["starts_at"]
    assert body["endsAt"] == format_time(now + VALID_FOR)
    assert body["generatorURL"] == "https://driftline.example.com/v1/report/fraud/7"
    assert set(body) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}


def test_resolved_alert_ends_at_its_event_time() -> None:
    maker = AlertMaker()
    fired = maker.fire("amount")
    resolved = maker.resolve("amount")
    body = to_alertmanager(
        parse_alert_event(resolved.to_json()), now=resolved.time + 10, valid_for=VALID_FOR
    )
    assert body["startsAt"] == format_time(fired.starts_at)
    assert body["endsAt"] == resolved.event["data"]["ends_at"]
    assert "generatorURL" not in body  # no generator_base_url configured


def test_times_ahead_of_the_wall_clock_are_capped_at_now() -> None:
    maker = AlertMaker()
    fired = parse_alert_event(maker.fire("amount").to_json())
    resolved = parse_alert_event(maker.resolve("amount").to_json())
    now = fired.starts_at - 86_400.0  # the events' time is a day ahead of the clock
    firing_body = to_alertmanager(fired, now=now, valid_for=VALID_FOR)
    assert firing_body["startsAt"] == format_time(now)
    assert firing_body["endsAt"] == format_time(now + VALID_FOR)
    resolved_body = to_alertmanager(resolved, now=now, valid_for=VALID_FOR)
    # Alertmanager would keep an alert whose endsAt lies ahead active until then.
    assert resolved_body["endsAt"] == format_time(now)
    assert resolved_body["startsAt"] <= resolved_body["endsAt"]


def test_generator_url_escapes_the_model_id() -> None:
    alert = BridgeAlert(
        id="1",
        fingerprint="f",
        status="firing",
        labels={"alertname": "A", "model_id": "team/fraud scorer", "model_version": "1.2"},
        annotations={},
        starts_at=0.0,
        ends_at=None,
        time=0.0,
    )
    body = to_alertmanager(alert, now=10.0, valid_for=1.0, generator_base_url="http://d:8000")
    assert body["generatorURL"] == "http://d:8000/v1/report/team%2Ffraud%20scorer/1.2"


def _event(**data: object) -> bytes:
    base = {
        "status": "firing",
        "fingerprint": "f1",
        "labels": {"alertname": "X"},
        "annotations": {},
        "starts_at": "2026-01-01T00:00:00.000Z",
        "ends_at": None,
    }
    return orjson.dumps({"type": "io.driftline.alert.v1", "data": {**base, **data}})


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "tombstone"),
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (orjson.dumps({"type": "io.driftline.retrain.requested.v1"}), "not io.driftline.alert"),
        (_event(status="pending"), "data.status"),
        (_event(fingerprint=""), "data.fingerprint"),
        (_event(labels={}), "data.labels is empty"),
        (_event(labels={"a": 1}), "data.labels"),
        (_event(starts_at="yesterday"), "data.starts_at"),
        (_event(starts_at="2026-01-01T00:00:00"), "time zone"),
        (_event(status="resolved"), "data.ends_at"),
    ],
)
def test_records_that_are_not_alert_events_are_named(value: bytes | None, problem: str) -> None:
    with pytest.raises(AlertEventError, match=problem):
        parse_alert_event(value)

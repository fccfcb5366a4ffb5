"""CloudEvents 1.0 envelope for driftline's output events, with deterministic ids.

Everything here is a pure function of its arguments: the same alert or retrain request,
replayed after a crash, gets the same id, fingerprint, timestamps and bytes, so consumers
can deduplicate (CloudEvents: ``source`` + ``id`` identify an event).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping
from typing import Any

import orjson

SPEC_VERSION = "1.0"
DATA_CONTENT_TYPE = "application/json"
ALERT_TYPE = "io.driftline.alert.v1"
RETRAIN_TYPE = "io.driftline.retrain.requested.v1"
COMPARISON_TYPE = "io.driftline.comparison.v1"
#: The ``content-type`` header of an event in the CloudEvents Kafka protocol binding's
#: structured mode (the value is the whole event as JSON).
KAFKA_CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LABEL_SEP = b"\xff"  # never occurs in UTF-8, so label pairs cannot run into each other


def format_time(epoch_seconds: float) -> str:
    """Format an event time as RFC 3339 UTC with milliseconds and a ``Z`` suffix.

    The time is rounded to the nearest millisecond; the result does not depend on the
    local time zone or the platform's ``gmtime``.

    >>> format_time(1795788192.25)
    '2026-11-27T14:03:12.250Z'
    >>> format_time(0)
    '1970-01-01T00:00:00.000Z'
    """
    if not math.isfinite(epoch_seconds):
        raise ValueError(f"event time must be finite, got {epoch_seconds!r}")
    millis = round(epoch_seconds * 1000)
    seconds, ms = divmod(millis, 1000)
    moment = _EPOCH + dt.timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms:03d}Z"


def fingerprint(labels: Mapping[str, str]) -> str:
    """Identity of an alert: 16 hex digits of SHA-256 over its labels sorted by name.

    As in Alertmanager, two alerts with the same labels are the same alert, whatever the
    order the labels were given in.

    >>> fingerprint({"b": "2", "a": "1"}) == fingerprint({"a": "1", "b": "2"})
    True
    >>> len(fingerprint({"a": "1"}))
    16
    """
    digest = hashlib.sha256()
    for name in sorted(labels):
        digest.update(name.encode())
        digest.update(_LABEL_SEP)
        digest.update(labels[name].encode())
        digest.update(_LABEL_SEP)
    return digest.hexdigest()[:16]


def deterministic_id(*parts: str) -> str:
    """Hex SHA-256 of ``parts``, each length-prefixed so that no two tuples collide.

    >>> deterministic_id("ab", "c") == deterministic_id("a", "bc")
    False
    >>> len(deterministic_id("x"))
    64
    """
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode()
        digest.update(f"{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


def cloud_event(
    *, type: str, source: str, id: str, subject: str, time: str, data: Mapping[str, Any]
) -> dict[str, Any]:
    """Build a CloudEvents 1.0 event in structured JSON form.

    ``time`` is an RFC 3339 string (see :func:`format_time`); ``data`` must be
    JSON-serialisable.

    >>> event = cloud_event(type=ALERT_TYPE, source="/driftline/prod", id="1",
    ...                     subject="m/1/x", time=format_time(0), data={"k": 1})
    >>> event["specversion"], event["datacontenttype"]
    ('1.0', 'application/json')
    """
    return {
        "specversion": SPEC_VERSION,
        "type": type,
        "source": source,
        "id": id,
        "subject": subject,
        "time": time,
        "datacontenttype": DATA_CONTENT_TYPE,
        "data": dict(data),
    }


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Serialise an event to JSON bytes with sorted keys, so equal events give equal bytes.

    >>> encode_event({"b": 1, "a": {"d": 2, "c": 3}})
    b'{"a":{"c":3,"d":2},"b":1}'
    """
    return orjson.dumps(event, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)

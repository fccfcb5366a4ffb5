"""CloudEvents envelope, times, fingerprints and deterministic ids."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import numpy as np
import orjson
import pytest

from driftline.cloudevents import (
    ALERT_TYPE,
    RETRAIN_TYPE,
    cloud_event,
    deterministic_id,
    encode_event,
    fingerprint,
    format_time,
)

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [
        (1795788192.25, "2026-11-27T14:03:12.250Z"),
        (0.0, "1970-01-01T00:00:00.000Z"),
        (0.0004, "1970-01-01T00:00:00.000Z"),
        (0.0006, "1970-01-01T00:00:00.001Z"),
        (59.9996, "1970-01-01T00:01:00.000Z"),
        (-0.5, "1969-12-31T23:59:59.500Z"),
        (951782400.0, "2000-02-29T00:00:00.000Z"),
    ],
)
def test_format_time(epoch: float, expected: str) -> None:
    assert format_time(epoch) == expected


def test_format_time_agrees_with_datetime_on_whole_milliseconds() -> None:
    rng = np.random.default_rng(7)
    for millis in rng.integers(0, 4_000_000_000_000, size=200):
        epoch = int(millis) / 1000
        expected = dt.datetime.fromtimestamp(int(millis) // 1000, tz=dt.UTC)
        text = format_time(epoch)
        assert RFC3339_MS.match(text)
        assert text == f"{expected:%Y-%m-%dT%H:%M:%S}.{int(millis) % 1000:03d}Z"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_format_time_rejects_non_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        format_time(bad)


def test_fingerprint_ignores_label_order_and_has_16_hex_digits() -> None:
    labels = {"alertname": "FeatureDrift", "feature": "amount", "severity": "warning"}
    reordered = dict(reversed(list(labels.items())))
    assert fingerprint(labels) == fingerprint(reordered)
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint(labels))


def test_fingerprint_distinguishes_values_and_boundaries() -> None:
    base = {"feature": "amount", "severity": "warning"}
    assert fingerprint(base) != fingerprint({**base, "severity": "critical"})
    assert fingerprint({"a": "bc"}) != fingerprint({"ab": "c"})
    assert fingerprint({"a": "b", "c": "d"}) != fingerprint({"a": "b\xffc\xffd"})


def test_deterministic_id_is_length_prefixed_sha256() -> None:
    assert deterministic_id("abc", "de") == hashlib.sha256(b"3:abc2:de").hexdigest()
    assert deterministic_id("ab", "cde") != deterministic_id("abc", "de")
    assert deterministic_id("a", "") != deterministic_id("a")
    assert deterministic_id("é") == hashlib.sha256("2:é".encode()).hexdigest()


def test_cloud_event_has_required_attributes() -> None:
    event = cloud_event(
        type=ALERT_TYPE,
        source="/driftline/prod",
        id="abc",
        subject="fraud-scorer/7/amount",
        time=format_time(1795788192.25),
        data={"status": "firing"},
    )
    assert event == {
        "specversion": "1.0",
        "type": "io.driftline.alert.v1",
        "source": "/driftline/prod",
        "id": "abc",
        "subject": "fraud-scorer/7/amount",
        "time": "2026-11-27T14:03:12.250Z",
        "datacontenttype": "application/json",
        "data": {"status": "firing"},
    }
    assert RETRAIN_TYPE == "io.driftline.retrain.requested.v1"


def test_encode_event_is_stable_and_sorted() -> None:
    first = {"b": 1, "a": {"y": [1, 2], "x": None}, "c": 0.1}
    second = {"c": 0.1, "a": {"x": None, "y": [1, 2]}, "b": 1}
    assert (
        encode_event(first) == encode_event(second) == b'{"a":{"x":null,"y":[1,2]},"b":1,"c":0.1}'
    )
    assert orjson.loads(encode_event(first)) == first


def test_encode_event_accepts_numpy_values() -> None:
    assert encode_event({"v": np.float64(0.5), "n": np.int64(3)}) == b'{"n":3,"v":0.5}'

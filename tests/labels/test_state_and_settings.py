"""The binary state (corruption, versions, other limits) and LabelSettings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from driftline.labels import JoinLimits, LabelJoin, LabelSettings
from driftline.labels.state import VERSION
from tests.labels.streams import join_input

LIMITS = JoinLimits(max_pending=4, horizon_seconds=100.0, max_early_labels=3)
EVENTS = [
    (1, "a", 10.0, "p", 0.9),
    (2, "b", 11.0, "p", 0.2),
    (3, "c", 12.0, "l", 1.0),
    (4, "d", 13.0, "p", 0.4),
    (5, "e", 14.0, "p", 0.5),
]


def saved() -> bytes:
    join = LabelJoin(LIMITS)
    join.process(join_input(EVENTS))
    return join.to_state()


def test_round_trip_keeps_counts_and_pending() -> None:
    join = LabelJoin.from_state(saved(), LIMITS)
    assert join.counts.pending_now == 4 and join.counts.early_buffered_now == 1
    pairs = join.process(join_input([(6, "a", 20.0, "l", 1.0), (7, "c", 21.0, "p", 0.7)]))
    assert pairs.completed_at.tolist() == [6, 7]


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:10], "truncated"),
        (lambda b: b"XXXX" + b[4:], "not a label join state"),
        (lambda b: b[:4] + (VERSION + 1).to_bytes(2, "little") + b[6:], "unknown label join"),
        (lambda b: b[:40] + bytes([b[40] ^ 1]) + b[41:], "corrupt"),
        (lambda b: b[:-4] + b"\0" + b[-4:], "corrupt"),
    ],
)
def test_a_damaged_state_is_refused(mangle, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        LabelJoin.from_state(mangle(saved()), LIMITS)


def test_smaller_limits_on_restore_expire_what_no_longer_fits() -> None:
    join = LabelJoin.from_state(saved(), JoinLimits(2, 100.0, 3))
    assert join.counts.pending_now == 2 and join.counts.expired == 2
    pairs = join.process(join_input([(6, "a", 20.0, "l", 1.0), (7, "e", 21.0, "l", 1.0)]))
    assert pairs.completed_at.tolist() == [7]


def test_a_shorter_horizon_on_restore_applies_at_once() -> None:
    join = LabelJoin.from_state(saved(), JoinLimits(4, 1.5, 3))
    assert join.counts.pending_now == 2  # d (13) and e (14) are within 1.5 s of 14


def test_settings_defaults_and_limits() -> None:
    settings = LabelSettings()
    assert settings.limits() == JoinLimits(100_000, 604_800.0, 100_000)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_pending", 0),
        ("horizon_seconds", -1.0),
        ("horizon_seconds", float("inf")),
        ("max_early_labels", 2**31),
    ],
)
def test_invalid_settings_name_the_key(key: str, value: object) -> None:
    with pytest.raises(ValidationError, match=key):
        LabelSettings.model_validate({key: value})


def test_unknown_settings_keys_are_errors() -> None:
    with pytest.raises(ValidationError, match="max_pendng"):
        LabelSettings.model_validate({"max_pendng": 5})


def test_join_limits_validate() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        JoinLimits(0, 1.0, 1)
    with pytest.raises(ValueError, match="horizon_seconds"):
        JoinLimits(1, 0.0, 1)

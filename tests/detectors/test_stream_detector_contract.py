"""The generic contract every stream detector passes (river's ``checks`` style).

Each case adapts one detector to a common view: a stream of rows (a scalar detector is a
one-column bank), positions per column, and detection flags per column.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from driftline.detectors import ADWIN, PageHinkley, PageHinkleyBank


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[..., Any]
    params: dict[str, Any]
    n_columns: int | None  # None: a scalar detector
    bad_params: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def build(self, **overrides: Any) -> Any:
        if self.n_columns is None:
            return self.make(**{**self.params, **overrides})
        n_features = overrides.pop("n_features", self.n_columns)
        return self.make(n_features, **{**self.params, **overrides})

    def stream(self, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        width = self.n_columns or 1
        means = rng.normal(0.0, 3.0, (8, width))
        rows = np.concatenate(
            [rng.normal(m, 1.0, (int(rng.integers(40, 400)), width)) for m in means]
        )
        if self.n_columns is None:
            return rows[:, 0]
        rows[rng.random(rows.shape) < 0.2] = np.nan
        return rows

    def positions(self, detector: Any, chunk: np.ndarray) -> list[list[int]]:
        if self.n_columns is None:
            return [detector.update_many(chunk).tolist()]
        return [hits.tolist() for hits in detector.update_many(chunk)]

    def flags(self, detector: Any) -> list[bool]:
        flags = detector.drift_detected
        return [bool(flags)] if self.n_columns is None else [bool(f) for f in flags]


PH_BAD = [
    ({"min_instances": 0}, "min_instances"),
    ({"min_instances": 2.5}, "min_instances"),
    ({"delta": -0.1}, "delta"),
    ({"delta": math.nan}, "delta"),
    ({"threshold": 0.0}, "threshold"),
    ({"threshold": math.inf}, "threshold"),
    ({"threshold": "50"}, "threshold"),
    ({"alpha": 0.0}, "alpha"),
    ({"alpha": 1.5}, "alpha"),
    ({"mode": "sideways"}, "mode"),
]
CASES = [
    Case(
        "adwin",
        ADWIN,
        {"delta": 0.05, "clock": 4},
        None,
        [
            ({"delta": 0.0}, "delta"),
            ({"delta": 1.0}, "delta"),
            ({"delta": "0.1"}, "delta"),
            ({"clock": 0}, "clock"),
            ({"clock": 2.0}, "clock"),
            ({"clock": True}, "clock"),
            ({"max_buckets": 1}, "max_buckets"),
            ({"min_window_length": 0}, "min_window_length"),
            ({"grace_period": -1}, "grace_period"),
        ],
    ),
    Case("adwin_defaults", ADWIN, {}, None),
    Case("page_hinkley", PageHinkley, {"threshold": 8.0}, None, PH_BAD),
    Case("page_hinkley_up", PageHinkley, {"threshold": 4.0, "mode": "up"}, None),
    Case(
        "page_hinkley_bank",
        PageHinkleyBank,
        {"threshold": 8.0},
        5,
        [({"n_features": 0}, "n_features"), *PH_BAD],
    ),
    Case("page_hinkley_bank_wide", PageHinkleyBank, {"threshold": 8.0, "mode": "down"}, 70),
]


def feed_rows_one_by_one(
    case: Case, detector: Any, rows: np.ndarray
) -> tuple[list[list[int]], list[list[bool]]]:
    positions: list[list[int]] = [[] for _ in range(case.n_columns or 1)]
    flags = []
    for i, row in enumerate(rows):
        detector.update(row)
        step = case.flags(detector)
        if case.n_columns is not None:
            # a bank column's flag stays up while it has no value (its detector is not
            # updated); a detection is the flag at a row where the column has a value
            step = [bool(f and not math.isnan(v)) for f, v in zip(step, row, strict=True)]
        flags.append(step)
        for column, fired in enumerate(step):
            if fired:
                positions[column].append(i)
    return positions, flags


def feed_in_chunks(case: Case, detector: Any, rows: np.ndarray, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    positions: list[list[int]] = [[] for _ in range(case.n_columns or 1)]
    start = 0
    while start < len(rows):
        size = rng.choice([0, 1, 2, rng.randint(3, 30), rng.randint(30, 700)])
        for column, hits in enumerate(case.positions(detector, rows[start : start + size])):
            positions[column].extend(start + h for h in hits)
        start += size
    assert case.positions(detector, rows[len(rows) :]) == [[] for _ in positions]
    return positions


pytestmark = pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])


def test_update_many_in_chunks_equals_one_by_one(case: Case) -> None:
    rows = case.stream(1)
    expected, _ = feed_rows_one_by_one(case, case.build(), rows)
    assert any(expected), "the stream must produce detections"
    for seed in range(3):
        assert feed_in_chunks(case, case.build(), rows, seed) == expected
    assert case.positions(case.build(), rows) == expected


def test_detection_is_visible_for_one_step_then_state_is_fresh(case: Case) -> None:
    rows = case.stream(2)
    positions, flags = feed_rows_one_by_one(case, case.build(), rows)
    for column, hits in enumerate(positions):
        raised = [i for i, step in enumerate(flags) if step[column]]
        assert raised == hits  # true exactly at the detections, false right after
        if case.n_columns is not None:
            continue  # a bank column resets at its own next value: checked per column below
        for hit in hits[:3]:
            fresh = case.build()
            tail = case.positions(fresh, rows[hit + 1 :])[column]
            assert [hit + 1 + h for h in tail] == [h for h in hits if h > hit]
    if case.n_columns is not None:
        scalar = dict(case.params)
        for column in range(min(case.n_columns, 5)):
            values = rows[:, column]
            present = np.flatnonzero(~np.isnan(values))
            alone = PageHinkley(**scalar).update_many(values[present])
            assert present[alone].tolist() == positions[column]


def test_state_round_trip_mid_stream_continues_identically(case: Case) -> None:
    rows = case.stream(3)
    reference = case.build()
    expected = case.positions(reference, rows)
    hits = sorted({h for column in expected for h in column})
    assert hits
    # cut in the middle of nowhere and right at a detection (flag raised at restore)
    for cut in (len(rows) // 3, hits[0] + 1, hits[-1] + 1):
        original = case.build()
        head = case.positions(original, rows[:cut])
        data = original.to_bytes()
        assert isinstance(data, bytes)
        restored = type(original).from_bytes(data)
        assert restored.to_bytes() == data
        assert case.flags(restored) == case.flags(original)
        tail_restored = case.positions(restored, rows[cut:])
        tail_original = case.positions(original, rows[cut:])
        assert tail_restored == tail_original
        joined = [a + [cut + h for h in b] for a, b in zip(head, tail_restored, strict=True)]
        assert joined == expected
        assert restored.to_bytes() == original.to_bytes()


def test_state_bytes_are_compact_binary(case: Case) -> None:
    detector = case.build()
    case.positions(detector, case.stream(4))
    data = detector.to_bytes()
    if isinstance(detector, ADWIN):  # per level: a count, <= max_buckets totals and variances
        levels = math.ceil(math.log2(detector.width + 1)) + 1
        bound = 64 + levels * (4 + 16 * detector.max_buckets)
    else:  # 6 binary64 and a flag per column, plus parameters
        bound = 64 + (case.n_columns or 1) * 49
    assert len(data) <= bound
    assert data[:2] == b"DL"  # format magic; the version byte follows the 4-byte magic
    assert data[4] == 1


def test_garbage_bytes_are_rejected(case: Case) -> None:
    detector = case.build()
    case.positions(detector, case.stream(5))
    data = detector.to_bytes()
    cls = type(detector)
    rng = random.Random(0)
    garbage = [
        b"",
        b"DL",
        data[:-1],
        data + b"\x00",
        b"XXXX" + data[4:],
        data[:4] + bytes([99]) + data[5:],
        bytes(rng.getrandbits(8) for _ in range(len(data))),
    ]
    garbage += [other.to_bytes() for other in (ADWIN(), PageHinkley(), PageHinkleyBank(2))]
    for blob in garbage:
        if blob == data or type(detector).__name__ == _owner(blob):
            continue
        with pytest.raises(ValueError):
            cls.from_bytes(blob)


def _owner(blob: bytes) -> str:
    return {b"DLAD": "ADWIN", b"DLPH": "PageHinkley", b"DLPB": "PageHinkleyBank"}.get(blob[:4], "")


def test_deterministic(case: Case) -> None:
    rows = case.stream(6)
    first, second = case.build(), case.build()
    assert case.positions(first, rows) == case.positions(second, rows)
    assert first.to_bytes() == second.to_bytes()


def test_bad_parameters_raise_value_error_naming_them(case: Case) -> None:
    for overrides, name in case.bad_params:
        with pytest.raises(ValueError, match=name):
            case.build(**overrides)
    detector = case.build()
    for key, value in case.params.items():
        assert getattr(detector, key) == value  # stored as given

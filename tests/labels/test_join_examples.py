"""One readable example per rule of the label join (semantics: driftline.labels)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from driftline.labels import JoinInput, JoinLimits, LabelJoin, hash_ids
from tests.labels.streams import Event, join_input, pair_tuples

LIMITS = JoinLimits(max_pending=3, horizon_seconds=100.0, max_early_labels=2)


def run(events: list[Event], limits: JoinLimits = LIMITS) -> tuple[LabelJoin, list[tuple]]:
    join = LabelJoin(limits)
    return join, pair_tuples(join.process(join_input(events)))


def counts(join: LabelJoin) -> dict[str, int]:
    return {k: v for k, v in join.counts.to_dict().items() if v}


def test_a_feedback_label_joins_its_earlier_prediction() -> None:
    join, pairs = run(
        [(1, "a", 10.0, "p", 0.9), (2, "b", 11.0, "p", 0.2), (3, "a", 50.0, "l", 1.0)]
    )
    assert pairs == [(0.9, 1.0, 10.0, 50.0, 3)]
    assert counts(join) == {"joined": 1, "pending_now": 1}


def test_labels_out_of_order_join_at_their_own_positions() -> None:
    _join, pairs = run(
        [
            (1, "a", 10.0, "p", 0.9),
            (2, "b", 11.0, "p", 0.2),
            (3, "b", 20.0, "l", 0.0),
            (4, "a", 21.0, "l", 1.0),
        ]
    )
    assert pairs == [(0.2, 0.0, 11.0, 20.0, 3), (0.9, 1.0, 10.0, 21.0, 4)]


def test_an_inline_label_joins_at_once() -> None:
    join, pairs = run([(7, "a", 10.0, "i", 0.9)])
    assert pairs == [(0.9, 1.4, 10.0, 10.0, 7)]
    assert counts(join) == {"joined": 1, "inline": 1}


def test_an_early_label_waits_and_joins_at_the_prediction() -> None:
    join, pairs = run([(1, "a", 10.0, "l", 1.0), (2, "a", 12.0, "p", 0.9)])
    assert pairs == [(0.9, 1.0, 12.0, 10.0, 2)]  # label delay -2 s
    assert counts(join) == {"joined": 1}


def test_an_early_label_leaves_unmatched_after_max_early_labels_more_labels() -> None:
    join, _ = run([(1, "a", 10.0, "l", 1.0), (2, "b", 10.0, "l", 1.0), (3, "c", 10.0, "l", 1.0)])
    assert counts(join) == {"unmatched": 1, "early_buffered_now": 2}
    _, pairs = run(
        [
            (1, "a", 10.0, "l", 1.0),
            (2, "b", 10.0, "l", 1.0),
            (3, "c", 10.0, "l", 1.0),
            (4, "a", 11.0, "p", 0.5),
        ]
    )
    assert pairs == []


def test_an_early_label_leaves_unmatched_past_the_horizon() -> None:
    join, _ = run([(1, "a", 10.0, "l", 1.0), (2, "b", 111.0, "p", 0.5)])
    assert counts(join) == {"unmatched": 1, "pending_now": 1}


def test_a_second_label_is_a_duplicate() -> None:
    join, pairs = run(
        [(1, "a", 10.0, "p", 0.9), (2, "a", 20.0, "l", 1.0), (3, "a", 30.0, "l", 0.0)]
    )
    assert len(pairs) == 1
    assert counts(join) == {"joined": 1, "duplicate": 1}


def test_a_label_after_an_inline_label_is_a_duplicate() -> None:
    join, _ = run([(1, "a", 10.0, "i", 0.9), (2, "a", 20.0, "l", 1.0)])
    assert counts(join) == {"joined": 1, "inline": 1, "duplicate": 1}


def test_a_second_early_label_is_a_duplicate() -> None:
    join, pairs = run(
        [(1, "a", 10.0, "l", 1.0), (2, "a", 11.0, "l", 0.0), (3, "a", 12.0, "p", 0.9)]
    )
    assert pairs == [(0.9, 1.0, 12.0, 10.0, 3)]  # the first label wins
    assert counts(join) == {"joined": 1, "duplicate": 1}


def test_a_prediction_expires_after_max_pending_more_predictions() -> None:
    events = [(k, f"p{k}", 10.0, "p", 0.5) for k in range(4)] + [(9, "p0", 11.0, "l", 1.0)]
    join, pairs = run(events)
    assert pairs == []
    assert counts(join) == {"expired": 1, "pending_now": 3, "early_buffered_now": 1}


def test_a_prediction_expires_past_the_horizon_and_its_label_is_late() -> None:
    join, _pairs = run([(1, "a", 10.0, "p", 0.9), (2, "b", 111.0, "p", 0.1)])
    assert counts(join) == {"expired": 1, "pending_now": 1}
    join.process(join_input([(3, "a", 120.0, "l", 1.0)]))
    assert counts(join) == {"expired": 1, "pending_now": 1, "late": 1}


def test_the_horizon_follows_the_watermark_not_the_label_time() -> None:
    # the label itself is only 5 s after its prediction, but another event moved the
    # watermark past the horizon first: the prediction is gone, the label is not late
    join, pairs = run(
        [(1, "a", 10.0, "p", 0.9), (2, "b", 200.0, "n", 0.0), (3, "a", 15.0, "l", 1.0)]
    )
    assert pairs == []
    assert counts(join) == {"expired": 1, "unmatched": 1}


def test_joined_predictions_leave_holes_that_still_count_for_capacity() -> None:
    events = [
        (1, "a", 10.0, "i", 0.5),
        (2, "b", 10.0, "p", 0.5),
        (3, "c", 10.0, "p", 0.5),
        (4, "d", 10.0, "p", 0.5),
        (5, "b", 11.0, "l", 1.0),
    ]
    _join, pairs = run(events)
    assert [p[4] for p in pairs] == [1, 5]
    _, pairs = run([*events[:4], (5, "e", 10.0, "p", 0.5), (6, "b", 11.0, "l", 1.0)])
    assert [p[4] for p in pairs] == [1]  # a, b, c, d, e: b was pushed out by e


def test_a_later_prediction_with_the_same_id_replaces_the_earlier() -> None:
    join, pairs = run(
        [(1, "a", 10.0, "p", 0.9), (2, "a", 11.0, "p", 0.1), (3, "a", 12.0, "l", 1.0)]
    )
    assert pairs == [(0.1, 1.0, 11.0, 12.0, 3)]
    assert counts(join) == {"joined": 1, "expired": 1}


def test_an_early_label_more_than_the_horizon_after_its_prediction_is_late() -> None:
    join, pairs = run([(1, "a", 200.0, "l", 1.0), (2, "a", 50.0, "p", 0.9)])
    assert pairs == []
    assert counts(join) == {"late": 1, "expired": 1}


def test_any_split_gives_the_same_pairs() -> None:
    events = [
        (1, "a", 10.0, "p", 0.9),
        (2, "b", 11.0, "l", 1.0),
        (3, "a", 12.0, "l", 0.0),
        (4, "b", 13.0, "p", 0.3),
    ]
    whole = LabelJoin(LIMITS).process(join_input(events))
    join = LabelJoin(LIMITS)
    parts = [join.process(join_input(events[k : k + 1])) for k in range(4)]
    assert pair_tuples(whole) == [p for part in parts for p in pair_tuples(part)]


def test_ids_hash_stably() -> None:
    assert hash_ids(["req-1", "ç"]).tolist() == [
        int.from_bytes(__import__("hashlib").blake2b(s.encode(), digest_size=8).digest(), "little")
        for s in ("req-1", "ç")
    ]


def test_positions_must_increase() -> None:
    join = LabelJoin(LIMITS)
    join.process(join_input([(5, "a", 1.0, "p", 0.5)]))
    with pytest.raises(ValueError, match="positions must increase"):
        join.process(join_input([(5, "b", 1.0, "p", 0.5)]))


def test_timestamps_must_be_finite() -> None:
    with pytest.raises(ValueError, match="finite"):
        LabelJoin(LIMITS).process(join_input([(1, "a", math.nan, "p", 0.5)]))


def test_columns_must_have_the_same_length() -> None:
    batch = join_input([(1, "a", 1.0, "p", 0.5)])
    broken = JoinInput(
        batch.positions,
        [],
        batch.timestamps,
        batch.has_prediction,
        batch.has_label,
        batch.predictions,
        batch.labels,
    )
    with pytest.raises(ValueError, match="one value per position"):
        LabelJoin(LIMITS).process(broken)


def test_an_empty_batch_changes_nothing() -> None:
    join = LabelJoin(LIMITS)
    pairs = join.process(join_input([]))
    assert len(pairs) == 0 and join.counts.to_dict() == LabelJoin(LIMITS).counts.to_dict()


def test_counts_round_trip_as_json() -> None:
    import json

    join, _ = run([(1, "a", 10.0, "p", 0.9), (2, "a", 20.0, "l", 1.0), (3, "a", 30.0, "l", 0.0)])
    data = json.loads(json.dumps(join.counts.to_dict()))
    assert type(join.counts).from_dict(data) == join.counts


def test_memory_grows_with_use_not_with_limits() -> None:
    join = LabelJoin(JoinLimits(2**30, 1e6, 2**30))
    assert join.memory_bytes() == 0
    join.process(join_input([(1, "a", 1.0, "p", 0.5)]))
    assert 0 < join.memory_bytes() < 64 * 1024
    assert np.isfinite(join.memory_bytes())


def test_at_most_32_bytes_per_pending_prediction() -> None:
    n = 200_000
    join = LabelJoin(JoinLimits(n, 1e9, 1_000))
    for start in range(0, n, 20_000):
        join.process(
            join_input([(k, f"req-{k}", float(k), "p", 0.5) for k in range(start, start + 20_000)])
        )
    assert join.counts.pending_now == n
    assert join.memory_bytes() <= 32 * n

"""The label join of one model version: value types and :class:`LabelJoin`.

The semantics are in the package docstring (:mod:`driftline.labels`). How they are computed
for a batch, in whole-array steps:

1. Hash the ids; per event, the watermark, the number of predictions and of feedback labels
   before it (hence, in closed form, whether any remembered entry is still available there).
2. Look up, per distinct id of the batch, its latest remembered prediction and its latest
   waiting label (one ``searchsorted`` per index run).
3. Ids never interact (every availability rule is in closed form), so the batch is resolved
   in *rounds*: round k takes the k-th event of every id, all at once, and updates the
   per-id state. Nearly every batch has one or two rounds.
4. Write the new flags of remembered entries, append the batch's predictions and labels to
   the rings (counting what capacity pushed out), sweep the horizon, add one index run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, astuple, dataclass, fields
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from driftline.labels.ids import hash_ids
from driftline.labels.index import HashIndex
from driftline.labels.ring import DONE, GONE, LIVE, SlotRing
from driftline.labels.state import decode_state, encode_state

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.uint8]
Bools = npt.NDArray[np.bool_]

MAX_LIMIT = 2**30


@dataclass(frozen=True, slots=True)
class JoinLimits:
    """The bounds of one model version's join (see :class:`driftline.labels.LabelSettings`)."""

    max_pending: int
    """Predictions remembered (pending, joined or expired), per model version."""
    horizon_seconds: float
    """A label joins only a prediction at most this much older (event time)."""
    max_early_labels: int
    """Feedback labels remembered (waiting or not), per model version."""

    def __post_init__(self) -> None:
        for name in ("max_pending", "max_early_labels"):
            value = getattr(self, name)
            if not 1 <= value <= MAX_LIMIT:
                raise ValueError(f"{name} must be in [1, 2**30], got {value!r}")
        if not (np.isfinite(self.horizon_seconds) and self.horizon_seconds > 0):
            raise ValueError(
                f"horizon_seconds must be finite and > 0, got {self.horizon_seconds!r}"
            )


@dataclass(frozen=True, slots=True)
class JoinInput:
    """One model version's events of one batch, in stream order.

    An event with ``has_prediction`` is a prediction (with ``has_label`` too: an inline
    label); with ``has_label`` only, a feedback label; with neither, it only moves the
    watermark.
    """

    positions: Ints
    """The version's event sequence numbers, strictly increasing (also across batches)."""
    event_ids: Sequence[str]
    timestamps: Floats
    """Event time, epoch seconds (finite)."""
    has_prediction: Bools
    has_label: Bools
    predictions: Floats
    """Encoded prediction (NaN where none)."""
    labels: Floats
    """Encoded label (NaN where none)."""

    def __len__(self) -> int:
        return len(self.positions)


@dataclass(frozen=True, slots=True)
class JoinedPairs:
    """Pairs completed in one batch, ordered by ``completed_at``.

    The label delay is ``label_time - prediction_time`` (< 0 for a label that arrived with an
    earlier event time than its prediction)."""

    prediction: Floats
    label: Floats
    prediction_time: Floats
    label_time: Floats
    completed_at: Ints
    """Position of the later of the two events."""

    def __len__(self) -> int:
        return len(self.completed_at)


@dataclass(slots=True)
class JoinCounts:
    """Cumulative counts of one model version's join (JSON-able via ``to_dict``).

    Every prediction ends up in exactly one of ``joined``, ``expired``, ``pending_now``;
    every feedback label in exactly one of ``joined - inline``, ``unmatched``,
    ``duplicate``, ``late``, ``early_buffered_now``.
    """

    joined: int = 0
    """Pairs completed (inline ones included)."""
    inline: int = 0
    """Pairs from a label inside the prediction event."""
    expired: int = 0
    """Predictions that left without a label (capacity, horizon, or replaced)."""
    unmatched: int = 0
    """Feedback labels that left the early-label buffer without a prediction."""
    duplicate: int = 0
    """Feedback labels for a prediction that had already joined, or for an id whose label
    was already waiting."""
    late: int = 0
    """Feedback labels more than the horizon after their (remembered) prediction."""
    early_buffered_now: int = 0
    """Feedback labels waiting for their prediction now."""
    pending_now: int = 0
    """Predictions waiting for their label now."""

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown join counts: {sorted(unknown)}")
        return cls(**{name: int(data.get(name, 0)) for name in names})


def empty_pairs() -> JoinedPairs:
    none = np.empty(0, np.float64)
    return JoinedPairs(none, none, none, none, np.empty(0, np.int64))


class LabelJoin:
    """Joins one model version's predictions and labels (semantics: :mod:`driftline.labels`)."""

    __slots__ = (
        "counts",
        "label_index",
        "label_ring",
        "last_position",
        "limits",
        "prediction_index",
        "prediction_ring",
        "watermark",
    )

    def __init__(self, limits: JoinLimits) -> None:
        self.limits = limits
        self.counts = JoinCounts()
        self.prediction_ring = SlotRing(limits.max_pending)
        self.label_ring = SlotRing(limits.max_early_labels)
        self.prediction_index = HashIndex(self.prediction_ring, live_only=False)
        self.label_index = HashIndex(self.label_ring, live_only=True)
        self.watermark = -np.inf
        self.last_position = -1

    def process(self, batch: JoinInput) -> JoinedPairs:
        """Join one batch; return the pairs it completed, ordered by ``completed_at``."""
        if len(batch) == 0:
            return empty_pairs()
        self._check(batch)
        return _Batch(self, batch).resolve()

    def memory_bytes(self) -> int:
        """Bytes held for remembered predictions and labels (rings and indexes)."""
        return (
            self.prediction_ring.memory_bytes()
            + self.label_ring.memory_bytes()
            + self.prediction_index.memory_bytes()
            + self.label_index.memory_bytes()
        )

    def to_state(self) -> bytes:
        """Compact versioned binary state (layout: :mod:`driftline.labels.state`)."""
        return encode_state(
            (self.prediction_ring, self.label_ring),
            (self.prediction_index, self.label_index),
            self.watermark,
            self.last_position,
            astuple(self.counts),
        )

    @classmethod
    def from_state(cls, data: bytes, limits: JoinLimits) -> LabelJoin:
        """Restore a join; ``ValueError`` on a corrupt state or an unknown version.

        With other limits than the saved join's, entries beyond the new capacities leave
        (counted expired / unmatched) and a shorter horizon applies at once."""
        saved = decode_state(data)
        join = cls(limits)
        join.watermark, join.last_position = saved.watermark, saved.last_position
        join.counts = JoinCounts(*saved.counts)
        join.prediction_ring, expired = SlotRing.restore(limits.max_pending, *saved.rings[0])
        join.label_ring, unmatched = SlotRing.restore(limits.max_early_labels, *saved.rings[1])
        cutoff = join.watermark - limits.horizon_seconds
        expired += join.prediction_ring.expire_before(cutoff)
        unmatched += join.label_ring.expire_before(cutoff)
        join.counts.expired += expired
        join.counts.pending_now -= expired
        join.counts.unmatched += unmatched
        join.counts.early_buffered_now -= unmatched
        join.prediction_index = HashIndex(join.prediction_ring, live_only=False)
        join.prediction_index.restore(*saved.indexes[0])
        join.label_index = HashIndex(join.label_ring, live_only=True)
        join.label_index.restore(*saved.indexes[1])
        return join

    def _check(self, batch: JoinInput) -> None:
        n = len(batch.positions)
        columns = (
            batch.event_ids,
            batch.timestamps,
            batch.has_prediction,
            batch.has_label,
            batch.predictions,
            batch.labels,
        )
        if any(len(column) != n for column in columns):
            raise ValueError("every JoinInput column must have one value per position")
        if batch.positions[0] <= self.last_position or np.any(np.diff(batch.positions) <= 0):
            raise ValueError(
                f"positions must increase strictly (last processed: {self.last_position})"
            )
        if not np.isfinite(batch.timestamps).all():
            raise ValueError("timestamps must be finite")


class _Batch:
    """The resolution of one batch (see the module docstring)."""

    def __init__(self, join: LabelJoin, batch: JoinInput) -> None:
        self.join = join
        self.batch = batch
        limits = join.limits
        self.horizon = limits.horizon_seconds
        is_prediction = np.asarray(batch.has_prediction, np.bool_)
        is_label = np.asarray(batch.has_label, np.bool_)
        self.is_prediction = is_prediction
        self.is_label = is_label
        self.is_feedback = is_label & ~is_prediction
        self.times = np.asarray(batch.timestamps, np.float64)
        self.watermarks = np.maximum(np.maximum.accumulate(self.times), join.watermark)
        self.cutoffs = self.watermarks - self.horizon
        predictions_before: Ints = np.cumsum(is_prediction, dtype=np.int64) - is_prediction
        labels_before: Ints = np.cumsum(self.is_feedback, dtype=np.int64) - self.is_feedback
        # An entry numbered x is within capacity at an event iff x >= these floors.
        self.prediction_numbers: Ints = join.prediction_ring.end + predictions_before
        self.label_numbers: Ints = join.label_ring.end + labels_before
        self.prediction_floor: Ints = self.prediction_numbers - limits.max_pending
        self.label_floor: Ints = self.label_numbers - limits.max_early_labels

        self.ids, self.id_of = np.unique(hash_ids(batch.event_ids), return_inverse=True)
        n_ids = len(self.ids)
        self.pairs: list[tuple[Floats, Floats, Floats, Floats, Ints]] = []
        counts = join.counts
        self.joined, self.inline, self.expired = counts.joined, counts.inline, counts.expired
        self.duplicate, self.late = counts.duplicate, counts.late

        # Per id: its latest prediction and its latest waiting label, remembered or new.
        # ``*_source`` is the event index of a new one (-1: remembered before the batch).
        self.p_number = join.prediction_index.lookup(self.ids)
        self.p_time, self.p_value, self.p_flag = self._read(join.prediction_ring, self.p_number)
        self.p_source = np.full(n_ids, -1, np.int64)
        self.l_number = join.label_index.lookup(self.ids)
        self.l_time, self.l_value, self.l_flag = self._read(join.label_ring, self.l_number)
        self.l_source = np.full(n_ids, -1, np.int64)
        # Remembered entries as found, and their flags as the batch leaves them.
        self.old_p_number, self.old_p_flag = self.p_number.copy(), self.p_flag.copy()
        self.old_l_number, self.old_l_flag = self.l_number.copy(), self.l_flag.copy()
        self.final_p_flag, self.final_l_flag = self.p_flag.copy(), self.l_flag.copy()
        # Flags of the batch's new entries, per event.
        self.new_flag = np.full(len(batch), GONE, np.uint8)

    @staticmethod
    def _read(ring: SlotRing, numbers: Ints) -> tuple[Floats, Floats, Flags]:
        time = np.zeros(len(numbers), np.float64)
        value = np.full(len(numbers), np.nan, np.float64)
        flag = np.full(len(numbers), GONE, np.uint8)
        there = numbers >= 0
        time[there], value[there], flag[there] = ring.read(numbers[there])
        return time, value, flag

    def resolve(self) -> JoinedPairs:
        for events in self._rounds():
            self._round(events)
        self._commit()
        return self._pairs()

    def _rounds(self) -> list[Ints]:
        """Event indexes grouped by occurrence rank of their id (in stream order)."""
        n = len(self.id_of)
        if len(self.ids) == n:
            return [np.arange(n, dtype=np.int64)]
        order = np.argsort(self.id_of, kind="stable")
        grouped = self.id_of[order]
        first = np.ones(n, np.bool_)
        first[1:] = grouped[1:] != grouped[:-1]
        starts = np.flatnonzero(first)
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
        by_rank = np.argsort(rank, kind="stable")
        return np.split(by_rank, np.cumsum(np.bincount(rank))[:-1])

    def _round(self, events: Ints) -> None:
        """Events of distinct ids, resolved at once against the per-id state."""
        ids = self.id_of[events]
        times, cutoffs = self.times[events], self.cutoffs[events]
        p_number, p_flag, p_time = self.p_number[ids], self.p_flag[ids], self.p_time[ids]
        remembered = (p_number >= 0) & (p_number >= self.prediction_floor[events])
        pending = remembered & (p_flag == LIVE) & (p_time >= cutoffs)
        l_number, l_time = self.l_number[ids], self.l_time[ids]
        waiting = (
            (l_number >= 0)
            & (l_number >= self.label_floor[events])
            & (self.l_flag[ids] == LIVE)
            & (l_time >= cutoffs)
        )
        feedback = self.is_feedback[events]
        prediction = self.is_prediction[events]
        inline = prediction & self.is_label[events]
        plain = prediction & ~inline

        # Feedback labels.
        joins = feedback & pending
        rest = feedback & ~pending
        after_join = rest & remembered & (p_flag == DONE)
        late = rest & remembered & (p_flag != DONE) & (times - p_time > self.horizon)
        rest &= ~after_join & ~late
        second_label = rest & waiting
        waits = rest & ~waiting
        self._pair(joins, events, ids, late_side="label")
        self._set_prediction_flag(ids[joins], DONE)
        self.new_flag[events[feedback]] = DONE
        self.new_flag[events[waits]] = LIVE
        self.duplicate += int(np.count_nonzero(after_join) + np.count_nonzero(second_label))
        self.late += int(np.count_nonzero(late))
        wait_ids, wait_events = ids[waits], events[waits]
        self.l_number[wait_ids] = self.label_numbers[wait_events]
        self.l_time[wait_ids] = self.times[wait_events]
        self.l_value[wait_ids] = np.asarray(self.batch.labels, np.float64)[wait_events]
        self.l_flag[wait_ids] = LIVE
        self.l_source[wait_ids] = wait_events

        # Predictions: a pending one with the same id is replaced (it expires).
        replaced = prediction & remembered & (p_flag == LIVE)
        self._set_prediction_flag(ids[replaced], GONE)
        self.expired += int(np.count_nonzero(replaced))
        label_after = waiting & (l_time - times > self.horizon)
        self.duplicate += int(np.count_nonzero(inline & waiting))
        self.late += int(np.count_nonzero(plain & label_after))
        self._set_label_flag(ids[prediction & waiting], DONE)
        early = plain & waiting & ~label_after
        self._pair(early, events, ids, late_side="prediction")
        self._pair(inline, events, ids, late_side="inline")
        self.inline += int(np.count_nonzero(inline))
        new_ids, new_events = ids[prediction], events[prediction]
        self.new_flag[new_events] = np.where((inline | early)[prediction], DONE, LIVE)
        self.p_number[new_ids] = self.prediction_numbers[new_events]
        self.p_time[new_ids] = self.times[new_events]
        self.p_value[new_ids] = np.asarray(self.batch.predictions, np.float64)[new_events]
        self.p_flag[new_ids] = self.new_flag[new_events]
        self.p_source[new_ids] = new_events

    def _pair(self, mask: Bools, events: Ints, ids: Ints, *, late_side: str) -> None:
        """Record the pairs completed at ``events[mask]``."""
        if not mask.any():
            return
        at, of = events[mask], ids[mask]
        batch = self.batch
        if late_side == "label":
            prediction, prediction_time = self.p_value[of], self.p_time[of]
            label, label_time = np.asarray(batch.labels)[at], self.times[at]
        elif late_side == "prediction":
            prediction, prediction_time = np.asarray(batch.predictions)[at], self.times[at]
            label, label_time = self.l_value[of], self.l_time[of]
        else:
            prediction, label = np.asarray(batch.predictions)[at], np.asarray(batch.labels)[at]
            prediction_time = label_time = self.times[at]
        self.joined += len(at)
        positions = np.asarray(batch.positions, np.int64)[at]
        self.pairs.append(
            (
                np.asarray(prediction, np.float64),
                np.asarray(label, np.float64),
                prediction_time,
                label_time,
                positions,
            )
        )

    def _set_prediction_flag(self, ids: Ints, flag: int) -> None:
        self.p_flag[ids] = flag
        source = self.p_source[ids]
        new = source >= 0
        self.new_flag[source[new]] = flag
        self.final_p_flag[ids[~new]] = flag

    def _set_label_flag(self, ids: Ints, flag: int) -> None:
        self.l_flag[ids] = flag
        source = self.l_source[ids]
        new = source >= 0
        self.new_flag[source[new]] = flag
        self.final_l_flag[ids[~new]] = flag

    def _commit(self) -> None:
        join, counts = self.join, self.join.counts
        pending = counts.pending_now
        early = counts.early_buffered_now
        pending -= self._write_back(
            join.prediction_ring, self.old_p_number, self.old_p_flag, self.final_p_flag
        )
        early -= self._write_back(
            join.label_ring, self.old_l_number, self.old_l_flag, self.final_l_flag
        )

        batch = self.batch
        new_p = self.is_prediction
        new_l = self.is_feedback
        pending += int(np.count_nonzero(self.new_flag[new_p] == LIVE))
        early += int(np.count_nonzero(self.new_flag[new_l] == LIVE))
        p_evicted = join.prediction_ring.append(
            self.times[new_p],
            np.asarray(batch.predictions, np.float64)[new_p],
            self.new_flag[new_p],
        )
        l_evicted = join.label_ring.append(
            self.times[new_l], np.asarray(batch.labels, np.float64)[new_l], self.new_flag[new_l]
        )
        cutoff = float(self.cutoffs[-1])
        p_expired = p_evicted + join.prediction_ring.expire_before(cutoff)
        unmatched = l_evicted + join.label_ring.expire_before(cutoff)

        new_id = self.p_source >= 0
        join.prediction_index.add(self.ids[new_id], self.p_number[new_id])
        waiting_id = (self.l_source >= 0) & (self.l_flag == LIVE)
        join.label_index.add(self.ids[waiting_id], self.l_number[waiting_id])

        join.watermark = float(self.watermarks[-1])
        join.last_position = int(batch.positions[-1])
        join.counts = JoinCounts(
            joined=self.joined,
            inline=self.inline,
            expired=self.expired + p_expired,
            unmatched=counts.unmatched + unmatched,
            duplicate=self.duplicate,
            late=self.late,
            early_buffered_now=early - unmatched,
            pending_now=pending - p_expired,
        )

    @staticmethod
    def _write_back(ring: SlotRing, numbers: Ints, before: Flags, after: Flags) -> int:
        """Store the new flags of remembered entries; return how many stopped being LIVE."""
        changed = (numbers >= 0) & (before != after)
        ring.set_flags(numbers[changed], after[changed])
        return int(np.count_nonzero(changed & (before == LIVE)))

    def _pairs(self) -> JoinedPairs:
        if not self.pairs:
            return empty_pairs()
        columns = [np.concatenate(column) for column in zip(*self.pairs, strict=True)]
        order = np.argsort(columns[4], kind="stable")
        return JoinedPairs(*(column[order] for column in columns))

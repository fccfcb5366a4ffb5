"""Which outcome of the champion is compared with which of the challenger.

Both versions' events are read in one stream order (the merged order of the pipeline's
batches). A *side* is 0 for the champion, 1 for the challenger. Every wait is bounded by a
count (``max_waiting`` per side) and by event time: an entry leaves once the *watermark*
(the largest event time of the two versions' events seen so far) is more than
``max_wait_seconds`` past the watermark when it arrived. Leaving entries are counted,
never silently lost.

Outcomes (a joined prediction and label: the version's loss on it)
    - **paired**, when the outcome's prediction carried a ``request_id`` (and
      ``pair_by_request_id``): it waits for the other version's outcome of the same
      request; the later of the two completes the pair. The request id of a prediction is
      remembered (hashed, 64 bits) from the prediction until its label joins, among the
      version's last ``max_pending_requests`` predictions with one; an outcome whose
      request id was forgotten (or whose prediction had none) is compared unpaired.
    - **unpaired** (no request id): the i-th such outcome of the champion is compared with
      the i-th of the challenger, whatever the interleaving; an outcome waits for its
      counterpart as above. Both sides' outcomes then come from the same stretch of event
      time (within ``max_wait_seconds``), so each pair compares the traffic each version
      received over the same span.

Predictions (no labels needed)
    - **agreement**: predictions of the two versions with the same ``request_id`` are
      matched the same way (classifiers: same predicted class; regression: the absolute
      difference of the two predictions);
    - their prediction distributions: :mod:`driftline.comparisons.predictions`.
"""

from __future__ import annotations

import base64
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "CompletedPair",
    "OutcomePairing",
    "RequestMemory",
    "WaitingRoom",
]

CHAMPION, CHALLENGER = 0, 1


@dataclass(frozen=True, slots=True)
class CompletedPair:
    """One champion outcome and one challenger outcome, compared."""

    champion_loss: float
    challenger_loss: float
    first_prediction_time: float
    last_prediction_time: float
    completion_time: float
    """Event time of the event that completed the pair."""
    paired: bool
    """By request id (``False``: by arrival order)."""


Entry = tuple[float, float, float]
"""A waiting value: (value, prediction time, watermark when it arrived)."""


class WaitingRoom:
    """Per side, values waiting for the other side's counterpart, by key (request hash) or
    in arrival order (key ``None``); bounded as the module docstring says."""

    __slots__ = ("by_key", "expired", "in_order", "max_wait_seconds", "max_waiting", "swept")

    def __init__(self, max_waiting: int, max_wait_seconds: float) -> None:
        self.max_waiting = max_waiting
        self.max_wait_seconds = max_wait_seconds
        self.by_key: tuple[dict[int, Entry], dict[int, Entry]] = ({}, {})
        self.in_order: tuple[deque[Entry], deque[Entry]] = (deque(), deque())
        self.expired = 0
        """Values that left without a counterpart (count or time bound)."""
        self.swept = -math.inf
        """The watermark of the last sweep (nothing more leaves until it moves)."""

    def match(
        self, side: int, key: int | None, value: float, time: float, watermark: float
    ) -> Entry | None:
        """The other side's waiting counterpart of this value (it leaves), or ``None`` and
        this value waits."""
        self._expire(watermark)
        other = 1 - side
        if key is not None:
            found = self.by_key[other].pop(key, None)
            if found is None:
                waiting = self.by_key[side]
                waiting.pop(key, None)  # a repeated request id: the latest waits
                waiting[key] = (value, time, watermark)
                if len(waiting) > self.max_waiting:
                    del waiting[next(iter(waiting))]
                    self.expired += 1
            return found
        if self.in_order[other]:
            return self.in_order[other].popleft()
        queue = self.in_order[side]
        queue.append((value, time, watermark))
        if len(queue) > self.max_waiting:
            queue.popleft()
            self.expired += 1
        return None

    def _expire(self, watermark: float) -> None:
        if watermark == self.swept:
            return
        self.swept = watermark
        cutoff = watermark - self.max_wait_seconds
        for waiting in self.by_key:
            while waiting:
                first = next(iter(waiting))
                if waiting[first][2] >= cutoff:
                    break
                del waiting[first]
                self.expired += 1
        for queue in self.in_order:
            while queue and queue[0][2] < cutoff:
                queue.popleft()
                self.expired += 1

    def waiting(self) -> int:
        return sum(map(len, self.by_key)) + sum(map(len, self.in_order))

    def to_state(self) -> dict[str, Any]:
        return {
            "by_key": [
                [_pack_keys(list(w)), _pack_floats([v for e in w.values() for v in e])]
                for w in self.by_key
            ],
            "in_order": [_pack_floats([v for e in q for v in e]) for q in self.in_order],
            "expired": self.expired,
        }

    def restore(self, state: dict[str, Any]) -> None:
        for waiting, (keys, values) in zip(self.by_key, state["by_key"], strict=True):
            entries = _entries(_unpack_floats(values))
            waiting.update(zip(_unpack_keys(keys), entries, strict=True))
        for queue, values in zip(self.in_order, state["in_order"], strict=True):
            queue.extend(_entries(_unpack_floats(values)))
        self.expired = int(state["expired"])


class RequestMemory:
    """Per side, the request id (hash) of the last ``capacity`` predictions that had one,
    by the prediction's event id (hash), until their label joins."""

    __slots__ = ("capacity", "forgotten", "requests")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.requests: tuple[dict[int, int], dict[int, int]] = ({}, {})
        self.forgotten = 0
        """Requests pushed out by capacity before their label joined."""

    def remember(self, side: int, event: int, request: int) -> None:
        requests = self.requests[side]
        requests.pop(event, None)  # a replaced prediction: the latest counts
        requests[event] = request
        if len(requests) > self.capacity:
            del requests[next(iter(requests))]
            self.forgotten += 1

    def take(self, side: int, event: int) -> int | None:
        return self.requests[side].pop(event, None)

    def to_state(self) -> dict[str, Any]:
        return {
            "requests": [
                [_pack_keys(list(r)), _pack_keys(list(r.values()))] for r in self.requests
            ],
            "forgotten": self.forgotten,
        }

    def restore(self, state: dict[str, Any]) -> None:
        for requests, (events, ids) in zip(self.requests, state["requests"], strict=True):
            requests.update(zip(_unpack_keys(events), _unpack_keys(ids), strict=True))
        self.forgotten = int(state["forgotten"])


class OutcomePairing:
    """Outcomes of both versions in stream order -> :class:`CompletedPair` (module
    docstring)."""

    __slots__ = ("memory", "pair_by_request_id", "paired", "room", "unpaired")

    def __init__(
        self,
        max_waiting: int,
        max_wait_seconds: float,
        max_pending_requests: int,
        pair_by_request_id: bool,
    ) -> None:
        self.pair_by_request_id = pair_by_request_id
        self.memory = RequestMemory(max_pending_requests)
        self.room = WaitingRoom(max_waiting, max_wait_seconds)
        self.paired = 0
        self.unpaired = 0

    def prediction(self, side: int, event: int, request: int | None) -> None:
        """A prediction of ``side`` (event id hash; request id hash or ``None``)."""
        if request is not None and self.pair_by_request_id:
            self.memory.remember(side, event, request)

    def outcome(
        self,
        side: int,
        event: int,
        loss: float,
        prediction_time: float,
        completion_time: float,
        watermark: float,
    ) -> CompletedPair | None:
        """A joined outcome of ``side``: the pair it completes, if any."""
        request = self.memory.take(side, event) if self.pair_by_request_id else None
        found = self.room.match(side, request, loss, prediction_time, watermark)
        if found is None:
            return None
        other_loss, other_time, _ = found
        if request is None:
            self.unpaired += 1
        else:
            self.paired += 1
        champion, challenger = (loss, other_loss) if side == CHAMPION else (other_loss, loss)
        return CompletedPair(
            champion,
            challenger,
            min(prediction_time, other_time),
            max(prediction_time, other_time),
            completion_time,
            request is not None,
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "memory": self.memory.to_state(),
            "room": self.room.to_state(),
            "paired": self.paired,
            "unpaired": self.unpaired,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.memory.restore(state["memory"])
        self.room.restore(state["room"])
        self.paired = int(state["paired"])
        self.unpaired = int(state["unpaired"])


def _entries(values: Sequence[float]) -> list[Entry]:
    if len(values) % 3:
        raise ValueError("waiting entries: not a multiple of 3 values")
    return [(values[i], values[i + 1], values[i + 2]) for i in range(0, len(values), 3)]


def _pack_keys(keys: Sequence[int]) -> str:
    return base64.b64encode(np.asarray(keys, dtype="<u8").tobytes()).decode("ascii")


def _unpack_keys(text: str) -> list[int]:
    keys: list[int] = np.frombuffer(base64.b64decode(text), dtype="<u8").tolist()
    return keys


def _pack_floats(values: Sequence[float]) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode("ascii")


def _unpack_floats(text: str) -> list[float]:
    values: list[float] = np.frombuffer(base64.b64decode(text), dtype="<f8").tolist()
    return values

"""A FIFO ring of the last ``limit`` entries (predictions or early labels), as numpy arrays.

Entries are numbered 0, 1, 2, ... in insertion order; the ring holds the numbers
``[max(0, end - limit), end)`` at slot ``number % capacity``. Per entry it stores the event
time, the encoded value (float64) and a one-byte flag (``LIVE``, ``DONE``, ``GONE``): 17
bytes. The physical capacity grows by doubling up to ``limit``, so a quiet model version
costs little.

The horizon sweep (:meth:`SlotRing.expire_before`) must find the live entries older than a
cutoff without scanning the ring: the slots are cut into chunks of ``CHUNK`` and each chunk
keeps a lower bound of its live entries' times; only chunks whose bound is below the cutoff
are rescanned (and their bound made exact again).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

LIVE = 0
"""A pending prediction, or a label waiting for its prediction."""
DONE = 1
"""A joined prediction; a label that joined, was a duplicate or was late."""
GONE = 2
"""An expired prediction or unmatched label (or an empty slot)."""

CHUNK = 2048
MIN_CAPACITY = 1024

Floats = npt.NDArray[np.float64]
Flags = npt.NDArray[np.uint8]
Ints = npt.NDArray[np.int64]


class SlotRing:
    """The last ``limit`` entries by insertion number: time, value and flag of each."""

    __slots__ = ("chunk_min", "end", "flag", "limit", "time", "value")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a ring needs a limit >= 1, got {limit}")
        self.limit = limit
        self.end = 0
        self.time: Floats = np.empty(0, np.float64)
        self.value: Floats = np.empty(0, np.float64)
        self.flag: Flags = np.empty(0, np.uint8)
        self.chunk_min: Floats = np.empty(0, np.float64)

    @property
    def start(self) -> int:
        """The oldest number still held."""
        return max(0, self.end - self.limit)

    @property
    def capacity(self) -> int:
        return len(self.flag)

    def slots(self, numbers: Ints) -> Ints:
        """Slots of held ``numbers``."""
        return numbers % self.capacity

    def read(self, numbers: Ints) -> tuple[Floats, Floats, Flags]:
        """Time, value and flag of held ``numbers``."""
        slots = self.slots(numbers)
        return self.time[slots], self.value[slots], self.flag[slots]

    def set_flags(self, numbers: Ints, flags: Flags) -> None:
        """Set the flags of held ``numbers`` (chunk bounds stay valid lower bounds)."""
        if len(numbers):
            self.flag[self.slots(numbers)] = flags

    def append(self, times: Floats, values: Floats, flags: Flags) -> int:
        """Add entries numbered ``end, end + 1, ...``; return how many ``LIVE`` entries left
        the ring by capacity (old ones, or new ones already pushed out by later new ones)."""
        count = len(flags)
        if count == 0:
            return 0
        new_end = self.end + count
        new_start = max(0, new_end - self.limit)
        leaving = np.arange(self.start, min(self.end, new_start), dtype=np.int64)
        evicted = 0
        if len(leaving):
            slots = self.slots(leaving)
            evicted += int(np.count_nonzero(self.flag[slots] == LIVE))
            self.flag[slots] = GONE
        dropped = max(0, new_start - self.end)
        evicted += int(np.count_nonzero(flags[:dropped] == LIVE))
        self._reserve(new_end - new_start, keep_from=max(self.start, new_start))
        numbers = np.arange(self.end + dropped, new_end, dtype=np.int64)
        slots = numbers % self.capacity
        self.time[slots] = times[dropped:]
        self.value[slots] = values[dropped:]
        self.flag[slots] = flags[dropped:]
        self.end = new_end
        self._refresh_chunks(slots)
        return evicted

    def expire_before(self, cutoff: float) -> int:
        """Mark ``GONE`` the ``LIVE`` entries with time < ``cutoff``; return how many."""
        expired = 0
        for chunk in np.flatnonzero(self.chunk_min < cutoff).tolist():
            part = slice(chunk * CHUNK, (chunk + 1) * CHUNK)
            times, flags = self.time[part], self.flag[part]
            old = (flags == LIVE) & (times < cutoff)
            expired += int(np.count_nonzero(old))
            flags[old] = GONE
            self._bound_chunk(chunk)
        return expired

    def held(self) -> tuple[Floats, Floats, Flags]:
        """Time, value and flag of the held entries in number order (copies)."""
        return self.read(np.arange(self.start, self.end, dtype=np.int64))

    @classmethod
    def restore(
        cls, limit: int, end: int, times: Floats, values: Floats, flags: Flags
    ) -> tuple[SlotRing, int]:
        """A ring holding entries numbered ``end - len(times) ... end - 1`` under ``limit``;
        entries beyond the limit are dropped: also return how many dropped ones were ``LIVE``."""
        ring = cls(limit)
        ring.end = end
        keep = min(len(flags), limit)
        dropped = len(flags) - keep
        evicted = int(np.count_nonzero(flags[:dropped] == LIVE))
        ring._reserve(keep, keep_from=end)
        numbers = np.arange(end - keep, end, dtype=np.int64)
        if keep:
            slots = ring.slots(numbers)
            ring.time[slots] = times[dropped:]
            ring.value[slots] = values[dropped:]
            ring.flag[slots] = flags[dropped:]
        ring._bound_all()
        return ring, evicted

    def memory_bytes(self) -> int:
        return self.time.nbytes + self.value.nbytes + self.flag.nbytes + self.chunk_min.nbytes

    def _reserve(self, needed: int, *, keep_from: int) -> None:
        """Grow the capacity to hold ``needed`` entries, moving the held numbers from
        ``keep_from`` to ``end`` to their new slots."""
        if needed <= self.capacity:
            return
        capacity = min(self.limit, max(needed, 2 * self.capacity, MIN_CAPACITY))
        time = np.zeros(capacity, np.float64)
        value = np.zeros(capacity, np.float64)
        flag = np.full(capacity, GONE, np.uint8)
        if self.end > keep_from:
            numbers = np.arange(keep_from, self.end, dtype=np.int64)
            old, new = numbers % self.capacity, numbers % capacity
            time[new], value[new], flag[new] = self.time[old], self.value[old], self.flag[old]
        self.time, self.value, self.flag = time, value, flag
        self._bound_all()

    def _bound_all(self) -> None:
        live_times = np.where(self.flag == LIVE, self.time, np.inf)
        if len(live_times):
            starts = np.arange(0, len(live_times), CHUNK)
            self.chunk_min = np.minimum.reduceat(live_times, starts)
        else:
            self.chunk_min = np.empty(0, np.float64)

    def _refresh_chunks(self, slots: Ints) -> None:
        first, last = int(slots[0]) // CHUNK, int(slots[-1]) // CHUNK
        chunks = (
            range(first, last + 1)
            if first <= last
            else [*range(first, len(self.chunk_min)), *range(last + 1)]
        )
        if len(slots) > self.capacity - CHUNK:
            chunks = range(len(self.chunk_min))
        for chunk in chunks:
            self._bound_chunk(chunk)

    def _bound_chunk(self, chunk: int) -> None:
        part = slice(chunk * CHUNK, (chunk + 1) * CHUNK)
        live = self.flag[part] == LIVE
        self.chunk_min[chunk] = self.time[part][live].min() if live.any() else np.inf

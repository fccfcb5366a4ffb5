"""The index from 64-bit id hash to the number of the latest entry of a :class:`SlotRing`.

Sorted runs of (hash, low 32 bits of the number), 12 bytes an entry, merged LSM-style:
each batch adds one run (unique hashes, sorted); a run is merged into the previous one
while that one is at most twice its size (so there are about log2(entries / batch) runs),
and every run is merged into one when the entries exceed 1.25 x the ring's entries
(+ 4096), so stale entries never pile up. Merges keep the newest entry of a hash and drop
entries whose number left the ring (and, with ``live_only``, entries no longer ``LIVE``).
Lookups are one ``np.searchsorted`` per run, newest run first.

The full number is recovered from its low 32 bits and the ring's ``end``: exact for the
numbers ``[end - 2**32, end)``; entries leave the index (at the latest at a full merge)
long before that, because ring limits are at most 2**30.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from driftline.labels.ring import LIVE, SlotRing

Keys = npt.NDArray[np.uint64]
Low = npt.NDArray[np.uint32]
Ints = npt.NDArray[np.int64]

LOW_MASK = 0xFFFFFFFF
SLACK = 4096


class HashIndex:
    """Id hash -> number of the latest entry with that hash in ``ring``."""

    __slots__ = ("live_only", "ring", "runs")

    def __init__(self, ring: SlotRing, *, live_only: bool) -> None:
        self.ring = ring
        self.live_only = live_only
        self.runs: list[tuple[Keys, Low]] = []

    def lookup(self, keys: Keys) -> Ints:
        """The held number of each key's latest entry, or -1."""
        found = np.full(len(keys), -1, np.int64)
        missing = np.ones(len(keys), np.bool_)
        for run_keys, run_low in reversed(self.runs):
            if len(run_keys) == 0:
                continue
            at = np.searchsorted(run_keys, keys).clip(max=len(run_keys) - 1)
            hit = missing & (run_keys[at] == keys)
            found[hit] = self._numbers(run_low[at[hit]])
            missing &= ~hit
        found[found < self.ring.start] = -1
        return found

    def add(self, keys: Keys, numbers: Ints) -> None:
        """Add one run: ``keys`` unique and sorted, ``numbers`` newer than every entry."""
        if len(keys) == 0:
            return
        self.runs.append((keys, (numbers & LOW_MASK).astype(np.uint32)))
        while len(self.runs) >= 2 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]):
            newer = self.runs.pop()
            self.runs[-1] = self._merge([self.runs[-1], newer])
        held = self.ring.end - self.ring.start
        if len(self.runs) > 1 and self.entries() > 1.25 * held + SLACK:
            self.runs = [self._merge(self.runs)]

    def merged(self) -> tuple[Keys, Low]:
        """All runs as one pruned run (the index itself is left as it is)."""
        if not self.runs:
            return np.empty(0, np.uint64), np.empty(0, np.uint32)
        return self._merge(self.runs)

    def restore(self, keys: Keys, low: Low) -> None:
        self.runs = [(keys, low)] if len(keys) else []

    def entries(self) -> int:
        return sum(len(keys) for keys, _ in self.runs)

    def memory_bytes(self) -> int:
        return sum(keys.nbytes + low.nbytes for keys, low in self.runs)

    def _numbers(self, low: Low) -> Ints:
        last = self.ring.end - 1
        return last - ((last - low.astype(np.int64)) & LOW_MASK)

    def _merge(self, runs: list[tuple[Keys, Low]]) -> tuple[Keys, Low]:
        """One run from ``runs`` (oldest first): newest entry per key, still held."""
        keys = np.concatenate([keys for keys, _ in runs])
        low = np.concatenate([low for _, low in runs])
        order = np.argsort(keys, kind="stable")
        keys, low = keys[order], low[order]
        keep = np.ones(len(keys), np.bool_)
        keep[:-1] = keys[:-1] != keys[1:]
        numbers = self._numbers(low)
        keep &= numbers >= self.ring.start
        if self.live_only:
            live = np.zeros(len(keys), np.bool_)
            live[keep] = self.ring.read(numbers[keep])[2] == LIVE
            keep = live
        return keys[keep], low[keep]

"""What the bridge knows: the latest state of every alert, and what each Alertmanager has
accepted of it. Pure: no Kafka, no HTTP, no clock.

Records of the alerts topic are applied in offset order per partition. The topic is keyed
by the alert's fingerprint, so one alert's history normally lies in one partition and the
record with the highest offset is its current state (firing or resolved). One alert can
still have records in two partitions (partitions added to the topic change where a key
goes; a foreign producer): offsets of different partitions say nothing about which came
first, so across partitions the record with the later event time (the alert event's
``time``) is the current state, whatever order the partitions are read in.

Each target (an Alertmanager URL) has its own set of *pending* fingerprints: alerts whose
current state it has not accepted yet. A push takes a target's pending alerts together with
the read positions they cover; when the target accepts them, those positions become its
*accepted* positions. The positions the consumer group may commit are the lowest accepted
ones over all targets: an offset is committed only once every Alertmanager accepted
everything before it. A target that is down does not hold the others back (each is pushed
on its own), only the commits.

A resolved alert is forgotten once every target accepted it; a firing one is kept, and
:meth:`Deliveries.resend_firing` makes every firing alert pending again (Alertmanager
expires alerts that are not re-sent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from driftline.alertmanager.payload import BridgeAlert

Positions = dict[int, int]
"""Partition -> the next offset (everything before it is covered)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    alert: BridgeAlert
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Push:
    """The alerts one target has pending, and the read positions they bring it up to."""

    target: str
    alerts: tuple[BridgeAlert, ...]
    versions: tuple[tuple[str, int, int], ...]
    """(fingerprint, partition, offset) of each alert's state as pushed."""
    through: Positions


def _newer(current: _Entry, partition: int, offset: int, alert: BridgeAlert) -> bool:
    """Whether ``current`` is a newer state than ``alert`` read at ``partition``:``offset``:
    by offset within a partition, by event time across partitions (a tie: the one read
    last wins)."""
    if current.partition == partition:
        return current.offset > offset
    return current.alert.time > alert.time


class Deliveries:
    """The latest alert per fingerprint and what each target has accepted.

    ``start`` holds the positions already delivered before this run (the consumer group's
    committed offsets): records below them were accepted by every target in an earlier
    run, so applying them makes nothing pending but firing alerts after
    :meth:`resend_firing`.
    """

    def __init__(self, targets: Sequence[str], start: Mapping[int, int] | None = None) -> None:
        if not targets:
            raise ValueError("at least one target is required")
        self.targets = tuple(targets)
        self._start: Positions = dict(start or {})
        self._latest: dict[str, _Entry] = {}
        self._read: Positions = dict(self._start)
        self._pending: dict[str, dict[str, None]] = {t: {} for t in self.targets}
        self._accepted: dict[str, Positions] = {t: dict(self._start) for t in self.targets}
        self.skipped = 0
        """Records that were not alert events (counted, never pushed)."""

    # -- reading ----------------------------------------------------------------------

    def apply(self, partition: int, offset: int, alert: BridgeAlert) -> None:
        """The record at ``offset`` of ``partition`` is ``alert``'s newest state."""
        self._advance(partition, offset)
        fp = alert.fingerprint
        current = self._latest.get(fp)
        if current is not None and _newer(current, partition, offset, alert):
            return  # an older state than the one held (a re-read, another partition)
        self._latest[fp] = _Entry(alert, partition, offset)
        if offset < self._start.get(partition, 0):
            # Delivered in an earlier run: nothing to push, unless still firing (the
            # restart's resend_firing covers those). A state pending from another
            # partition is older than this one: no longer to push either.
            for pending in self._pending.values():
                pending.pop(fp, None)
            if alert.status == "resolved":
                del self._latest[fp]
            return
        for pending in self._pending.values():
            pending[fp] = None

    def skip(self, partition: int, offset: int) -> None:
        """The record at ``offset`` is not an alert event: nothing to push, but covered."""
        self._advance(partition, offset)
        self.skipped += 1

    def _advance(self, partition: int, offset: int) -> None:
        self._read[partition] = max(self._read.get(partition, 0), offset + 1)

    def resend_firing(self) -> int:
        """Make every firing alert pending for every target; returns how many fire."""
        firing = [fp for fp, entry in self._latest.items() if entry.alert.status == "firing"]
        for pending in self._pending.values():
            pending.update(dict.fromkeys(firing))
        return len(firing)

    # -- pushing ----------------------------------------------------------------------

    def pending(self, target: str) -> Push:
        """What ``target`` has not accepted yet, ordered by fingerprint."""
        entries = [self._latest[fp] for fp in sorted(self._pending[target])]
        return Push(
            target=target,
            alerts=tuple(entry.alert for entry in entries),
            versions=tuple((e.alert.fingerprint, e.partition, e.offset) for e in entries),
            through=dict(self._read),
        )

    def accepted(self, push: Push) -> None:
        """``push.target`` accepted ``push``: its alerts are no longer pending there (unless
        a newer state arrived since), and it is up to date through ``push.through``."""
        pending = self._pending[push.target]
        for fp, partition, offset in push.versions:
            entry = self._latest.get(fp)
            if entry is not None and (entry.partition, entry.offset) == (partition, offset):
                pending.pop(fp, None)
        accepted = self._accepted[push.target]
        for partition, offset in push.through.items():
            accepted[partition] = max(accepted.get(partition, 0), offset)
        self._forget_delivered_resolved(fp for fp, _, _ in push.versions)

    def _forget_delivered_resolved(self, fingerprints: Iterable[str]) -> None:
        for fp in fingerprints:
            entry = self._latest.get(fp)
            if entry is None or entry.alert.status != "resolved":
                continue
            if not any(fp in pending for pending in self._pending.values()):
                del self._latest[fp]

    # -- views ------------------------------------------------------------------------

    def firing(self) -> list[BridgeAlert]:
        """The firing alerts, ordered by fingerprint."""
        return [
            self._latest[fp].alert
            for fp in sorted(self._latest)
            if self._latest[fp].alert.status == "firing"
        ]

    def known(self) -> int:
        """Alerts held: the firing ones and the resolved ones not yet accepted everywhere."""
        return len(self._latest)

    def pending_count(self, target: str) -> int:
        return len(self._pending[target])

    def committable(self) -> Positions:
        """Per partition, the lowest position every target accepted (``start`` at least:
        everything before it was delivered earlier)."""
        # A target with nothing pending has accepted every alert read so far.
        reached = [
            self._read if not self._pending[target] else self._accepted[target]
            for target in self.targets
        ]
        out: Positions = {}
        for partition in sorted(self._read):
            lowest = min(positions.get(partition, 0) for positions in reached)
            if lowest > 0 or partition in self._start:
                out[partition] = lowest
        return out

"""What the service shows its observers (HTTP API, Prometheus collector), as plain values.

:meth:`MonitorService.snapshot <driftline.service.app.MonitorService.snapshot>` builds one
:class:`ServiceSnapshot`: its own partition bookkeeping plus each partition pipeline's
:class:`~driftline.snapshot.PipelineSnapshot`. Observers depend on this module, not on the
service: anything with a ``snapshot()`` method of this shape can be watched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from driftline.snapshot import PipelineSnapshot


@dataclass(frozen=True, slots=True)
class FeedbackPartitionSnapshot:
    """A feedback partition joined to an input partition (``kafka.feedback_topics``)."""

    topic: str
    partition: int
    next_offset: int | None
    checkpointed_offset: int | None
    highwater: int | None


@dataclass(frozen=True, slots=True)
class PartitionSnapshot:
    """One assigned input partition."""

    topic: str
    partition: int
    next_offset: int | None
    """First offset not yet processed (None until the first record)."""
    checkpointed_offset: int | None
    last_checkpoint: float
    """Service clock (monotonic seconds) of the partition's last checkpoint."""
    highwater: int | None
    """The partition's end offset as the consumer last saw it (None: unknown)."""
    pipeline: PipelineSnapshot
    feedback: tuple[FeedbackPartitionSnapshot, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceSnapshot:
    ready: bool
    taken_at: float
    """Service clock (monotonic seconds) when the snapshot was taken."""
    partitions: tuple[PartitionSnapshot, ...]
    """Sorted by (topic, partition)."""

    def comparisons(self) -> list[dict[str, Any]]:
        """The current state of every configured comparison: from the partition whose
        pipeline compared the most pairs (both versions of a model are read from the
        partition its ``model_id`` keys; other partitions have compared none), with that
        partition named."""
        best: dict[tuple[str, str, str], tuple[tuple[int, int], dict[str, Any]]] = {}
        for part in self.partitions:
            for status in part.pipeline.comparisons:
                key = (status["model_id"], status["champion"], status["challenger"])
                seen = status["predictions"] is not None
                rank = (status["pairs"], int(seen))
                if key not in best or rank > best[key][0]:
                    where = f"{part.topic}[{part.partition}]" if rank > (0, 0) else None
                    best[key] = (rank, {**status, "partition": where})
        return [status for _, status in best.values()]


class Observable(Protocol):
    """A service whose state can be observed."""

    def snapshot(self) -> ServiceSnapshot: ...

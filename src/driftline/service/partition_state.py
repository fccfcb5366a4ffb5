"""What the service holds for one assigned input partition."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from driftline.pipeline import Pipeline
from driftline.plan import ModelKey
from driftline.service.checkpoints import BlobRef


@dataclass(slots=True)
class FeedbackCursor:
    """A feedback partition joined to an input partition (``kafka.feedback_topics``)."""

    next_offset: int | None = None
    """First offset not yet processed (None until the first record or a restore)."""
    checkpointed_offset: int | None = None


@dataclass(slots=True)
class PartitionState:
    """One assigned input partition: its pipeline, offsets and checkpoint bookkeeping."""

    topic_partition: TopicPartition
    pipeline: Pipeline
    last_checkpoint: float
    """Clock time of the last acknowledged checkpoint (or of the adoption)."""
    next_offset: int | None = None
    """First offset not yet processed (None until the first record)."""
    checkpointed_offset: int | None = None
    """The offset the last acknowledged checkpoint covers."""
    events_since_checkpoint: int = 0
    """Events processed since the last checkpoint was taken (not necessarily written)."""
    last_taken: float = 0.0
    """Clock time the last checkpoint was taken (its state captured): when the next is due."""
    adopted: int = 0
    """The service's adoption count when this state was created: batches fetched before
    it belong to an earlier assignment of the partition and are not processed."""
    epoch: int = 1
    """This owner's epoch for the partition (highest seen on the state topic + 1)."""
    writer: str = field(default_factory=lambda: secrets.token_hex(4))
    seq: int = 0
    """Sequence of the last checkpoint written in this epoch."""
    refs: dict[ModelKey, BlobRef] = field(default_factory=dict)
    """Where each version's state is in the state topic (this epoch's writes only, so
    the first checkpoint after an adoption writes every version)."""
    live_keys: set[bytes] = field(default_factory=set)
    """State records of the partition that are not tombstoned yet."""
    feedback: dict[TopicPartition, FeedbackCursor] = field(default_factory=dict)
    """The feedback partitions of the same number, processed by the same pipeline (their
    offsets are checkpointed with this partition's state)."""

    def advance(self, tp: TopicPartition, next_offset: int) -> None:
        """Records of ``tp`` (this partition or one of its feedback partitions) up to
        ``next_offset`` are processed and their outputs acknowledged."""
        if tp == self.topic_partition:
            self.next_offset = next_offset
        else:
            self.feedback[tp].next_offset = next_offset

    def position(self, tp: TopicPartition) -> int | None:
        """First offset of ``tp`` not yet processed."""
        if tp == self.topic_partition:
            return self.next_offset
        return self.feedback[tp].next_offset

"""Writing checkpoints without holding up consumption.

A checkpoint is **taken** between two batches, in the event loop: each due partition's
changed version states and head state are serialized to bytes, a copy that later events
cannot touch, at the offset the partition has processed (every output before it already
acknowledged). It is then **written** in the background while the loop goes on consuming:
compressed in a thread, its chunks produced and acknowledged, then its heads, then the
offsets committed, then tombstones for what no head needs any more (format 2, see
:mod:`driftline.service.checkpoints`). One write is in flight at a time; partitions due
meanwhile wait for the next. A revoke or a shutdown waits for the write in flight and then
writes the partitions' final state before they are released.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from driftline.config import KafkaSettings
from driftline.plan import ModelKey
from driftline.service.checkpoints import BlobRef, EncodedCheckpoint, WriteId, encode_parts
from driftline.service.metrics import ServiceMetrics
from driftline.service.partition_state import PartitionState
from driftline.service.publisher import OutgoingRecord, Publisher

log = logging.getLogger(__name__)

Commit = Callable[[dict[TopicPartition, OffsetAndMetadata]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TakenCheckpoint:
    """A partition's state captured between batches, ready to be written."""

    part: PartitionState
    write: WriteId
    next_offset: int
    head_state: bytes
    monitored: list[ModelKey]
    states: dict[ModelKey, bytes]
    """The serialized states of the versions changed since the previous checkpoint (all of
    them at the first checkpoint of an epoch)."""
    previous: dict[ModelKey, BlobRef]
    feedback_offsets: dict[TopicPartition, int]
    """The next offsets of the partition's feedback partitions that were read from."""


class CheckpointWriter:
    """Takes checkpoints between batches and writes them in the background."""

    def __init__(
        self,
        kafka: KafkaSettings,
        publisher: Publisher,
        commit: Commit,
        metrics: ServiceMetrics,
        clock: Callable[[], float],
    ) -> None:
        self.kafka = kafka
        self.publisher = publisher
        self.commit = commit
        self.metrics = metrics
        self.clock = clock
        self.in_flight: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        return self.in_flight is not None and not self.in_flight.done()

    def raise_failure(self) -> None:
        """Re-raise the error of a background write that failed (a fatal Kafka error:
        retriable ones are retried inside the write); the consumer loop calls this."""
        task = self.in_flight
        if task is not None and task.done():
            self.in_flight = None
            task.result()

    def start(self, parts: Sequence[PartitionState]) -> None:
        """Take the partitions' checkpoints now and write them in the background."""
        assert not self.busy, "one checkpoint write at a time"
        self.raise_failure()
        taken = self._take(parts)
        if taken:
            self.in_flight = asyncio.ensure_future(self._write(taken))

    async def write(self, parts: Sequence[PartitionState]) -> None:
        """Wait for the write in flight, then take and write the partitions' checkpoints
        (on revoke and at shutdown)."""
        await self.drain()
        taken = self._take(parts)
        if taken:
            await self._write(taken)

    async def drain(self) -> None:
        """Wait for the write in flight (re-raising its error)."""
        task, self.in_flight = self.in_flight, None
        if task is not None:
            await task

    async def cancel(self) -> None:
        """Abandon the write in flight (the service is stopping after an error)."""
        task, self.in_flight = self.in_flight, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _take(self, parts: Sequence[PartitionState]) -> list[TakenCheckpoint]:
        now = self.clock()
        taken = []
        for part in parts:
            feedback = {
                tp: c.next_offset for tp, c in part.feedback.items() if c.next_offset is not None
            }
            moved = part.next_offset != part.checkpointed_offset or any(
                part.feedback[tp].checkpointed_offset != offset for tp, offset in feedback.items()
            )
            # Nothing read from the input partition yet: no offset to resume from (its
            # feedback partitions then resume from their committed offsets).
            if part.next_offset is None or not moved:
                continue
            pipeline = part.pipeline
            changed = pipeline.take_changed()
            monitored = [k for k, v in pipeline.versions.items() if v is not None]
            states = {
                k: pipeline.version_state(k)
                for k in monitored
                if k in changed or k not in part.refs
            }
            taken.append(
                TakenCheckpoint(
                    part,
                    WriteId(part.epoch, part.seq + 1, part.writer),
                    part.next_offset,
                    pipeline.head_state(),
                    monitored,
                    states,
                    dict(part.refs),
                    feedback,
                )
            )
            part.events_since_checkpoint = 0
            part.last_taken = now
        return taken

    def _encode(self, taken: TakenCheckpoint) -> EncodedCheckpoint:
        tp = taken.part.topic_partition
        return encode_parts(
            self.kafka.group_id,
            tp.topic,
            tp.partition,
            taken.write,
            taken.next_offset,
            taken.head_state,
            taken.monitored,
            taken.states,
            taken.previous,
            [(t.topic, t.partition, offset) for t, offset in taken.feedback_offsets.items()],
        )

    async def _write(self, taken: list[TakenCheckpoint]) -> None:
        """Chunks (acknowledged), then heads (acknowledged), then one offset commit, then
        tombstones: four round trips for every partition taken together."""
        started = self.clock()
        topic = self.kafka.state_topic
        # zlib and SHA-256 release the GIL: compress off the event loop.
        encoded = await asyncio.to_thread(lambda: [self._encode(t) for t in taken])
        encoded_at = self.clock()
        await self.send_chunks(
            [[OutgoingRecord(topic, v, k) for k, v in e.chunks] for e in encoded]
        )
        heads = [OutgoingRecord(topic, e.head[1], e.head[0]) for e in encoded]
        await self.publisher.send_acked(heads, holds_back="offset commit")
        # The acknowledged heads are what a restore resumes from; the committed offsets only
        # follow them (a commit refused because the group rebalanced is harmless: the
        # partition's next owner restores this checkpoint).
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for t in taken:
            offsets[t.part.topic_partition] = OffsetAndMetadata(t.next_offset, "")
            for tp, offset in t.feedback_offsets.items():
                offsets[tp] = OffsetAndMetadata(offset, "")
        await self.commit(offsets)
        garbage: set[bytes] = set()
        for t, e in zip(taken, encoded, strict=True):
            part = t.part
            garbage |= part.live_keys - e.referenced
            part.seq = t.write.seq
            part.refs = e.refs
            part.live_keys = set(e.referenced)
        if garbage:
            tombstones = [OutgoingRecord(topic, None, k) for k in sorted(garbage)]
            await self.publisher.send_acked(tombstones, holds_back="nothing")
        finished = self.clock()
        for t, e in zip(taken, encoded, strict=True):
            t.part.checkpointed_offset = t.next_offset
            for tp, offset in t.feedback_offsets.items():
                if tp in t.part.feedback:
                    t.part.feedback[tp].checkpointed_offset = offset
            t.part.last_checkpoint = finished
            log.debug(
                "%s[%d]: checkpoint at %d: %d versions written, %d records, %d bytes",
                *t.part.topic_partition,
                t.next_offset,
                e.versions_written,
                e.records,
                e.bytes,
            )
        log.debug(
            "checkpoint of %d partitions: encoded in %.3f s, written in %.3f s",
            len(taken),
            encoded_at - started,
            finished - encoded_at,
        )
        self.metrics.checkpoint_written(sum(e.bytes for e in encoded), seconds=finished - started)

    async def send_chunks(self, per_partition: list[list[OutgoingRecord]]) -> None:
        """Send every partition's chunk records and wait for their acknowledgements (a
        seam: the crash-in-a-checkpoint test replaces it)."""
        await self.publisher.send_acked(
            [r for chunks in per_partition for r in chunks], holds_back="checkpoint heads"
        )

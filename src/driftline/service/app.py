"""``driftline run``: the core over Kafka, at least once, with state that survives.

Per input partition the service owns one :class:`~driftline.pipeline.Pipeline`. A batch
of fetched records (:class:`~driftline.service.records.RecordReader`, ``getmany()`` without
its per-record objects) is processed partition by partition; the outputs of the whole batch
are then produced and **acknowledged** before anything else happens. Periodically (time or
event count), on partition revoke and on shutdown, each partition's state is checkpointed
to the compacted state topic together with the next input offset it covers, and only after
that is acknowledged is the offset committed (:mod:`driftline.service.checkpointer`: taken
between batches, written in the background). On assignment the service claims a new epoch
for the partition (fencing out an evicted member that still writes), restores the newest
consistent checkpoint and resumes reading at its offset: the events after it are processed
again and produce the same outputs with the same ids, which consumers deduplicate.

Faults: a produce that fails with a retriable error (broker away, leader moving, an output
topic being recreated, a timeout) is sent again, the same records, with a bounded backoff,
and nothing after it (offsets, checkpoints) happens until Kafka acknowledged it; a commit
refused because the group rebalanced is logged (the acknowledged checkpoint is what the
next owner resumes from). A background probe asks the cluster for metadata every second
and readiness follows its answer. Only errors retrying cannot fix (authorization,
authentication, a record too large) stop the service
(:class:`~driftline.service.publisher.FatalKafkaError`). Input records without a value
(tombstones) and record batches the consumer cannot decode (see
:mod:`driftline.service.records`) become dead letters like invalid events: a poison batch
never stops the service. Rebalance callbacks (run by aiokafka's coordinator task) and batch
processing take turns under one lock, so a partition's checkpoint is never taken in the
middle of a batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from driftline.config import Settings
from driftline.pipeline import Pipeline, PipelineOutput, StateError
from driftline.plan import ModelKey, Plan
from driftline.report.history import FindingHistory
from driftline.report.model import VersionReport, version_report
from driftline.service.checkpointer import CheckpointWriter
from driftline.service.checkpoints import (
    Fence,
    NoConsistentCheckpointError,
    PartitionRecords,
    WriteId,
    encode_epoch,
    epoch_key,
    read_state,
    select,
)
from driftline.service.kafka_clients import connection_options, make_consumer, make_producer
from driftline.service.metrics import ServiceMetrics
from driftline.service.partition_state import FeedbackCursor, PartitionState
from driftline.service.publisher import (
    RETRY_BACKOFF_SECONDS,
    OutgoingRecord,
    Publisher,
    is_retriable,
)
from driftline.service.records import (
    CLOUDEVENT_HEADERS,
    Batch,
    InputRecord,
    RecordReader,
    Rejected,
    dead_letter_headers,
    dead_letter_value,
    split_records,
)
from driftline.service.snapshot import (
    FeedbackPartitionSnapshot,
    PartitionSnapshot,
    ServiceSnapshot,
)
from driftline.service.topics import check_topics

log = logging.getLogger(__name__)

#: How often the broker-health probe asks the cluster for metadata, and how long it waits.
PROBE_INTERVAL_SECONDS = 1.0
PROBE_TIMEOUT_SECONDS = 3.0


class FeedbackAssignmentError(RuntimeError):
    """A feedback partition was assigned without its input partition (not co-partitioned)."""


@dataclass(frozen=True, slots=True)
class KafkaClients:
    """The service's Kafka clients, created (not started) for one run."""

    producer: AIOKafkaProducer
    state_reader: AIOKafkaConsumer
    """Reads the state topic (no consumer group)."""
    consumer: AIOKafkaConsumer
    """The input topics' consumer, in the service's group."""


def kafka_clients(settings: Settings) -> KafkaClients:
    kafka = settings.kafka
    return KafkaClients(
        producer=make_producer(kafka),
        state_reader=make_consumer(kafka, group=False),
        consumer=make_consumer(kafka),
    )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: MonitorService) -> None:
        self.service = service

    # aiokafka calls these from its coordinator task, concurrently with the consumer loop:
    # the service's lock keeps a rebalance from checkpointing a partition in the middle of
    # a batch (its state would include events its offset does not cover). aiokafka logs
    # and swallows a listener's exception; the service keeps it and stops (a partition
    # assigned without its state would otherwise be silently skipped).

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        try:
            async with self.service.lock:
                await self.service.release(revoked)
        except Exception as exc:
            self.service.failure = exc
            raise

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        try:
            async with self.service.lock:
                await self.service.adopt(assigned)
        except Exception as exc:
            self.service.failure = exc
            raise


class MonitorService:
    """The Kafka shell around the core."""

    def __init__(
        self,
        settings: Settings,
        plan: Plan,
        metrics: ServiceMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        clients: Callable[[Settings], KafkaClients] | None = None,
        topics: Callable[[Settings], Awaitable[int]] = check_topics,
        probe: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``clients``, ``topics`` and ``probe`` are seams for tests (fake Kafka clients):
        by default the clients come from :func:`kafka_clients`, :func:`check_topics` checks
        the topics (returning the state topic's partition count) and the broker-health probe
        asks the cluster for metadata."""
        self.settings = settings
        self.plan = plan
        self.metrics = metrics
        self.clock = clock
        self.wall_clock = wall_clock
        self.make_clients = kafka_clients if clients is None else clients
        self.check_topics = topics
        self.probe = self._probe_broker if probe is None else probe
        self.partitions: dict[TopicPartition, PartitionState] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.reader: RecordReader | None = None
        self.producer: AIOKafkaProducer | None = None
        self.state_reader: AIOKafkaConsumer | None = None
        self.state_partitions: list[TopicPartition] = []
        self.assigned_once = False
        self.restoring = False
        self.running = False
        self.failure: Exception | None = None
        """An error raised in a rebalance callback; the consumer loop re-raises it."""
        self.lock = asyncio.Lock()
        """Held while a batch is processed or checkpointed and while a rebalance callback
        runs: partitions change only between batches."""
        self.adoptions = 0
        """Number of rebalance assignments so far (see PartitionState.adopted)."""
        self.broker_reachable = True
        """Last answer of the broker-health probe (metadata request with a short timeout)."""
        self.publisher: Publisher | None = None
        self.checkpoints: CheckpointWriter | None = None
        self.history = FindingHistory(settings.report.history_windows)
        """Statistics per closed window and alert episodes, for the live drift report."""

    # -- lifecycle -------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Partitions assigned (at least one rebalance done), state restored, broker reachable."""
        return self.running and self.assigned_once and not self.restoring and self.broker_reachable

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then checkpoint, commit and leave the group."""
        kafka = self.settings.kafka
        clients = self.make_clients(self.settings)
        self.producer = clients.producer
        self.state_reader = clients.state_reader
        self.consumer = clients.consumer
        self.reader = RecordReader(self.consumer)
        self.publisher = Publisher(self.producer)
        self.checkpoints = CheckpointWriter(
            kafka, self.publisher, self._commit, self.metrics, self.clock
        )
        started: list[Callable[[], Awaitable[None]]] = []
        try:
            state_partitions = await self.check_topics(self.settings)
            self.state_partitions = [
                TopicPartition(kafka.state_topic, p) for p in range(state_partitions)
            ]
            for client in (self.producer, self.state_reader, self.consumer):
                await client.start()
                started.append(client.stop)
            topics = [*kafka.input_topics, *kafka.feedback_topics]
            self.consumer.subscribe(topics, listener=_Rebalance(self))
            probe = asyncio.ensure_future(self.probe())
            started.append(lambda: _cancel(probe))
            self.running = True
            log.info("consuming %s as group %s", ", ".join(topics), kafka.group_id)
            while not stop.is_set():
                fetched_at = self.adoptions
                batch = await self._next_batch(stop)
                if self.failure is not None:
                    raise self.failure
                self.checkpoints.raise_failure()
                async with self.lock:
                    await self._process(batch, fetched_at)
                    self._checkpoint_due()
            async with self.lock:
                await self.release(list(self.partitions))
        finally:
            self.running = False
            await self.checkpoints.cancel()
            for stop_client in reversed(started):
                try:
                    await stop_client()
                except Exception:
                    log.exception("error while closing a Kafka client")

    def snapshot(self) -> ServiceSnapshot:
        """The partitions (in assignment order) and their pipelines, as plain values."""
        now = self.clock()
        consumer = self.consumer
        return ServiceSnapshot(
            ready=self.ready,
            taken_at=now,
            partitions=tuple(
                PartitionSnapshot(
                    topic=tp.topic,
                    partition=tp.partition,
                    next_offset=part.next_offset,
                    checkpointed_offset=part.checkpointed_offset,
                    last_checkpoint=part.last_checkpoint,
                    highwater=None if consumer is None else consumer.highwater(tp),
                    pipeline=part.pipeline.snapshot(),
                    feedback=tuple(
                        FeedbackPartitionSnapshot(
                            ftp.topic,
                            ftp.partition,
                            cursor.next_offset,
                            cursor.checkpointed_offset,
                            None if consumer is None else consumer.highwater(ftp),
                        )
                        for ftp, cursor in sorted(part.feedback.items())
                    ),
                )
                for tp, part in self.partitions.items()
            ),
        )

    def version_report(self, key: ModelKey) -> VersionReport | None:
        """The drift report of a version an assigned partition monitors, else ``None``."""
        for tp, part in self.partitions.items():
            view = part.pipeline.version_view(key)
            if view is not None:
                # The first partition that monitors it: a version whose events are spread
                # over several input partitions is shown as one of them saw it.
                return version_report(view, self.history.of(key, tp))
        return None

    async def _next_batch(self, stop: asyncio.Event) -> Batch:
        assert self.reader is not None
        fetch = asyncio.ensure_future(
            self.reader.read(timeout_ms=500, max_records=self.settings.kafka.max_batch_records)
        )
        stopped = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if fetch not in done:
            # Stop requested while waiting: let the fetch finish (it returns within its
            # timeout) rather than cancel it in the middle of a rebalance.
            await asyncio.wait({fetch})
        result: Batch = fetch.result()
        return result

    # -- processing ------------------------------------------------------------------

    async def _process(self, batch: Batch, fetched_at: int) -> None:
        """Run each partition's records through its pipeline, then publish every output of
        the batch at once and wait for all acknowledgements (one round trip per batch, not
        per partition); only then do the partitions' offsets advance."""
        done: list[
            tuple[
                PartitionState,
                TopicPartition,
                list[InputRecord],
                PipelineOutput,
                list[Rejected],
                float,
            ]
        ] = []
        outgoing: list[OutgoingRecord] = []
        for tp, records in batch.items():
            part = self._owner(tp)
            if part is None:  # revoked while the batch was in flight
                continue
            if part.adopted > fetched_at:
                # Fetched while the partition was being (re)assigned: it may predate the
                # restored checkpoint. Read again from where the restored state resumes.
                await self._rewind(part, tp)
                continue
            position = part.position(tp)
            if position is not None and records and records[0].offset < position:
                records = [r for r in records if r.offset >= position]
            if not records:
                continue
            consumed_at = self.wall_clock()
            split = split_records(records)
            output = part.pipeline.process(split.values)
            part.pipeline.count_rejected(r.reason for r in split.rejected)
            self.history.observe(output, part.topic_partition)
            for notice in output.learning_started:
                log.info("%s[%d]: %s", *tp, notice.message())
            for (model_id, model_version), trace in output.internal_errors:
                log.error(
                    "%s[%d]: model %s version %s quarantined (its events become dead letters, "
                    "reason internal_error) after an internal error:\n%s",
                    *tp,
                    model_id,
                    model_version,
                    trace,
                )
            for name, trace in output.comparison_errors:
                log.error("%s[%d]: comparison %s stopped by an error:\n%s", *tp, name, trace)
            outgoing += self._outputs(tp, split.events, output, split.rejected)
            done.append((part, tp, records, output, split.rejected, consumed_at))
        await self._send_acked(outgoing)
        for part, tp, records, output, rejected, consumed_at in done:
            part.advance(tp, records[-1].offset + 1)
            part.events_since_checkpoint += len(records)
            self.metrics.batch_processed(
                tp,
                len(records),
                output,
                consumed_at=consumed_at,
                rejected=[r.reason for r in rejected],
            )

    def _owner(self, tp: TopicPartition) -> PartitionState | None:
        """The state of the input partition ``tp`` is, or whose feedback partition it is."""
        part = self.partitions.get(tp)
        if part is None and self.settings.kafka.feedback_topics:
            owner = self.partitions.get(
                TopicPartition(self.settings.kafka.input_topics[0], tp.partition)
            )
            if owner is not None and tp in owner.feedback:
                return owner
        return part

    async def _rewind(self, part: PartitionState, tp: TopicPartition) -> None:
        assert self.consumer is not None
        position = part.position(tp)
        if position is not None:
            self.consumer.seek(tp, position)
            return
        committed = await self.consumer.committed(tp)
        if committed is not None:
            self.consumer.seek(tp, committed)
        else:
            await self.consumer.seek_to_beginning(tp)

    def _outputs(
        self,
        tp: TopicPartition,
        events: list[InputRecord],
        output: PipelineOutput,
        rejected: Sequence[Rejected] = (),
    ) -> list[OutgoingRecord]:
        """The records to produce for one partition's output: dead letters in input order
        (the records rejected before decoding and those the pipeline rejected, their source
        in headers), alerts keyed by fingerprint, retrain requests by model, comparison
        verdicts by model id (CloudEvents in structured mode: the ``content-type`` header)."""
        kafka = self.settings.kafka
        letters = [
            (r.record, dead_letter_headers(tp, r.record, r.reason, r.message)) for r in rejected
        ]
        for dead in output.dead_letters:
            record = events[dead.index]
            letters.append((record, dead_letter_headers(tp, record, dead.reason, dead.message)))
        if rejected and output.dead_letters:
            letters.sort(key=lambda letter: letter[0].offset)
        outgoing = [
            OutgoingRecord(kafka.dead_letter_topic, dead_letter_value(record), record.key, headers)
            for record, headers in letters
        ]
        for alert in output.alerts:
            outgoing.append(
                OutgoingRecord(
                    kafka.alerts_topic, alert.to_json(), alert.key.encode(), CLOUDEVENT_HEADERS
                )
            )
        for request in output.retrain_requests:
            outgoing.append(
                OutgoingRecord(
                    kafka.retrain_topic, request.to_json(), request.key.encode(), CLOUDEVENT_HEADERS
                )
            )
        for comparison in output.comparisons:
            outgoing.append(
                OutgoingRecord(
                    kafka.comparisons_topic,
                    comparison.to_json(),
                    comparison.key.encode(),
                    CLOUDEVENT_HEADERS,
                )
            )
        return outgoing

    async def _send_acked(self, outgoing: list[OutgoingRecord]) -> None:
        """Outputs, acknowledged before the offsets they cover advance."""
        assert self.publisher is not None
        await self.publisher.send_acked(outgoing, holds_back="input offsets")

    # -- checkpoints -----------------------------------------------------------------

    def _checkpoint_due(self) -> None:
        """Start writing the checkpoints that are due (unless one is being written)."""
        assert self.checkpoints is not None
        if self.checkpoints.busy:
            return
        limits = self.settings.checkpoint
        now = self.clock()
        due = [
            part
            for part in self.partitions.values()
            if part.events_since_checkpoint
            and (
                part.events_since_checkpoint >= limits.interval_events
                or now - part.last_taken >= limits.interval_seconds
            )
        ]
        if due:
            self.checkpoints.start(due)

    async def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        """Commit checkpointed offsets; a commit refused because the group rebalanced is
        logged (the partition's next owner restores the acknowledged checkpoint)."""
        assert self.consumer is not None
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("offsets %s not committed (%s)", _offsets_text(offsets), exc)

    # -- rebalance -------------------------------------------------------------------

    async def release(self, revoked: list[TopicPartition]) -> None:
        """Checkpoint and forget revoked partitions (also used at shutdown)."""
        assert self.checkpoints is not None
        parts = [self.partitions[tp] for tp in revoked if tp in self.partitions]
        try:
            await self.checkpoints.write(parts)
        finally:
            for part in parts:
                del self.partitions[part.topic_partition]
            for tp in revoked:  # a feedback partition revoked apart from its input one
                owner = self._owner(tp)
                if owner is not None and tp != owner.topic_partition:
                    del owner.feedback[tp]
        if revoked:
            log.info("released %s", ", ".join(f"{t.topic}[{t.partition}]" for t in revoked))

    async def adopt(self, assigned: list[TopicPartition]) -> None:
        """Restore the latest consistent checkpoint of each assigned partition, claim a new
        epoch for it, publish what the restore resolved, and seek to its offset. The claims
        and the outputs are acknowledged before any of these partitions is consumed."""
        assert self.consumer is not None and self.state_reader is not None
        self.restoring = True
        try:
            inputs = set(self.settings.kafka.input_topics)
            new = [tp for tp in assigned if tp.topic in inputs and tp not in self.partitions]
            feedback = [tp for tp in assigned if tp.topic not in inputs]
            found = await self._read_state(new) if new else {}
            self.adoptions += 1
            outgoing: list[OutgoingRecord] = []
            parts = []
            for tp in new:
                records = found.get(tp) or PartitionRecords(tp.topic, tp.partition)
                part, output, resumed_from = self._restore(tp, records)
                part.adopted = self.adoptions
                outgoing.append(self._claim(part, Fence(part.epoch, resumed_from), records))
                if output is not None:
                    # What the restore resolved (alerts of versions whose state was reset).
                    outgoing += self._outputs(tp, [], output)
                    self.history.observe(output, tp)
                parts.append(part)
            await self._send_acked(outgoing)
            for part in parts:
                self.partitions[part.topic_partition] = part
            for tp in feedback:
                self._attach_feedback(tp)
            self.history.retain(
                {(tp, k) for tp, p in self.partitions.items() for k in p.pipeline.versions}
            )
            self.assigned_once = True
        finally:
            self.restoring = False
        if assigned:
            log.info("assigned %s", ", ".join(f"{t.topic}[{t.partition}]" for t in assigned))

    def _attach_feedback(self, tp: TopicPartition) -> None:
        """Join feedback partition ``tp`` to the input partition of the same number, at the
        offset the input partition's checkpoint holds for it (else the committed one)."""
        assert self.consumer is not None
        input_tp = TopicPartition(self.settings.kafka.input_topics[0], tp.partition)
        owner = self.partitions.get(input_tp)
        if owner is None:
            raise FeedbackAssignmentError(
                f"feedback partition {tp.topic}[{tp.partition}] was assigned without input "
                f"partition {input_tp.topic}[{input_tp.partition}]: the feedback and input "
                "topics must have the same partition count (labels join predictions of the "
                "same partition number)"
            )
        cursor = owner.feedback.get(tp)
        if cursor is None:
            cursor = owner.feedback[tp] = FeedbackCursor()
        if cursor.next_offset is not None:
            self.consumer.seek(tp, cursor.next_offset)
            log.info(
                "%s[%d]: feedback joined to %s[%d], resuming at offset %d (checkpoint)",
                *tp,
                *input_tp,
                cursor.next_offset,
            )
        else:
            log.info(
                "%s[%d]: feedback joined to %s[%d], no checkpointed offset: starting from the "
                "committed offset",
                *tp,
                *input_tp,
            )

    async def _read_state(
        self, wanted: list[TopicPartition]
    ) -> dict[TopicPartition, PartitionRecords]:
        """The group's state records of ``wanted``, retrying while the broker is away (an
        assigned partition without its state would be skipped, not processed)."""
        assert self.state_reader is not None
        backoff, max_backoff = RETRY_BACKOFF_SECONDS
        while True:
            try:
                return await read_state(
                    self.state_reader,
                    self.state_partitions,
                    self.settings.kafka.group_id,
                    wanted,
                )
            except Exception as exc:
                if not is_retriable(exc):
                    raise
                log.warning("reading checkpoints failed (%r); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff)

    # -- broker health ---------------------------------------------------------------

    async def _probe_broker(self) -> None:
        """Ask the cluster for metadata every second; readiness follows the answer."""
        client = AIOKafkaClient(
            **connection_options(self.settings.kafka),
            request_timeout_ms=int(PROBE_TIMEOUT_SECONDS * 1000),
        )
        bootstrapped = False
        problem: BaseException | None = None
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                    # cancellation that races with completion, and the probe would outlive
                    # the service's shutdown (seen once: SIGTERM hung for 60 s).
                    async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                        if not bootstrapped:
                            await client.bootstrap()
                            bootstrapped = True
                        else:
                            await client.fetch_all_metadata()
                    reachable, problem = True, None
                except (TimeoutError, KafkaError, OSError) as exc:
                    reachable = False
                    problem = exc
                if reachable != self.broker_reachable:
                    if reachable:
                        log.info("Kafka reachable again")
                    else:
                        log.warning("Kafka unreachable (%r): not ready", problem)
                    self.broker_reachable = reachable
                await asyncio.sleep(PROBE_INTERVAL_SECONDS)
        finally:
            self.broker_reachable = False
            await client.close()

    def _claim(
        self, part: PartitionState, fence: Fence, records: PartitionRecords
    ) -> OutgoingRecord:
        """The epoch claim of a newly adopted partition: its new epoch and the fence that
        rules out heads an evicted owner of an older epoch writes from now on."""
        tp = part.topic_partition
        kafka = self.settings.kafka
        claim = encode_epoch(part.epoch, (fence, *records.fences))
        return OutgoingRecord(kafka.state_topic, claim, epoch_key(kafka.group_id, *tp))

    def _restore(
        self, tp: TopicPartition, records: PartitionRecords
    ) -> tuple[PartitionState, PipelineOutput | None, WriteId | None]:
        """The partition's state from its newest consistent checkpoint, what restoring it
        produced (to publish) and the checkpoint it resumes from. The partition's other
        state records (superseded heads, leftovers of interrupted writes) stay in
        ``live_keys``: the first checkpoint of the new epoch tombstones them once its head
        is acknowledged."""
        assert self.consumer is not None
        pipeline = Pipeline(self.plan)
        now = self.clock()
        part = PartitionState(tp, pipeline, last_checkpoint=now, last_taken=now)
        part.epoch = records.max_epoch + 1
        part.live_keys = records.live_keys()
        try:
            restored = select(records)
        except NoConsistentCheckpointError as exc:
            log.error("%s[%d]: %s; stopping", *tp, exc)
            raise
        for reason in () if restored is None else restored.skipped:
            log.warning("%s[%d]: newer checkpoint not consistent, not used (%s)", *tp, reason)
        for head in records.heads.values():
            if records.fenced(head):
                log.warning(
                    "%s[%d]: checkpoint %s ignored: written by an owner evicted from the group "
                    "after a later owner claimed the partition",
                    *tp,
                    head.write.as_list(),
                )
        if restored is None:
            log.info("%s[%d]: no checkpoint, starting from the committed offset", *tp)
            return part, None, None
        output: PipelineOutput | None = None
        try:
            if restored.legacy:
                output = pipeline.restore(restored.head_state)
                log.warning(
                    "%s[%d]: upgrading a format 1 checkpoint (one record, whole state): "
                    "restored; rewritten in format 2 at the next checkpoint",
                    *tp,
                )
            else:
                output = pipeline.restore_parts(restored.head_state, restored.versions)
        except StateError as exc:
            # A corrupt or unreadable state is a bug to see, never a silent reset: stop
            # (a config change the state cannot continue resets versions in the core).
            log.error("%s[%d]: checkpoint cannot be restored (%s); stopping", *tp, exc)
            raise
        self.consumer.seek(tp, restored.next_offset)
        part.next_offset = restored.next_offset
        part.checkpointed_offset = restored.next_offset
        for topic, partition, offset in (
            () if restored.head is None else restored.head.feedback_offsets
        ):
            part.feedback[TopicPartition(topic, partition)] = FeedbackCursor(offset, offset)
        log.info(
            "%s[%d]: restored checkpoint (%d versions), epoch %d, resuming at offset %d",
            *tp,
            len(restored.versions),
            part.epoch,
            restored.next_offset,
        )
        return part, output, None if restored.head is None else restored.head.write


def _offsets_text(offsets: dict[TopicPartition, OffsetAndMetadata]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]={o.offset}" for tp, o in offsets.items())


async def _cancel(task: asyncio.Future[None]) -> None:
    """Cancel ``task`` and wait for its end, cancelling again should one be swallowed."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled() and task.exception() is not None:
        log.warning("broker probe ended with %r", task.exception())

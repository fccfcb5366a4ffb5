"""Taking fetched input records from aiokafka without one Python object per record.

``AIOKafkaConsumer.getmany()`` turns every record into a ``ConsumerRecord`` through a Python
generator: in the service's profiles that was the largest single cost (see
``load_tests/RESULTS.md``). :class:`RecordReader` drains the same fetched data, with the
same bookkeeping as ``getmany()`` (consumed positions, the wait during a rebalance, fetch
errors raised, the fetcher woken for the next fetch), but hands over aiokafka's native
record objects (``offset``, ``key``, ``value``), one record batch at a time.

It reads aiokafka's fetcher internals, so it is tied to the pinned aiokafka version
(``pyproject.toml``): with another version, :func:`fast_path_problem` says so and the
reader falls back to ``getmany()`` (and logs why). The integration tests run the fast path
against a real broker (``tests/integration/test_records.py``).

Poison batches: a record batch the consumer cannot decode (a codec it cannot decompress,
a CRC mismatch, corrupt bytes) is not raised. It comes out as one :class:`UndecodableBatch`
in place of its records and the position moves past it, so the service dead-letters it and
goes on (``getmany()`` would raise the same error at every fetch: a crash loop).
:func:`split_records` sorts what the pipeline cannot take (tombstones, undecodable batches)
from the events it decodes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiokafka
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import FetchResult, PartitionRecords
from aiokafka.errors import ConsumerStoppedError, CorruptRecordException

from driftline.cloudevents import KAFKA_CONTENT_TYPE
from driftline.events import DeadLetterReason

log = logging.getLogger(__name__)


class InputRecord(Protocol):
    """What the service reads of a record (aiokafka's native record or ``ConsumerRecord``)."""

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


Batch = dict[TopicPartition, list[InputRecord]]


@dataclass(frozen=True, slots=True)
class UndecodableBatch:
    """A record batch that could not be decoded, in place of its records."""

    first_offset: int
    """First offset the batch covers (from its header, or the fetch position)."""
    offset: int
    """Last offset the batch covers: the partition resumes after it."""
    problem: str
    """Why it could not be decoded (the decoder's error)."""
    key: None = None
    value: None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """An input record dead-lettered before decoding, with why."""

    record: InputRecord
    reason: DeadLetterReason
    message: str


@dataclass(frozen=True, slots=True)
class SplitRecords:
    """One partition's records sorted by :func:`split_records`."""

    events: list[InputRecord]
    """The records with a value, for the pipeline (its dead letters index into these)."""
    values: list[bytes]
    """Their values."""
    rejected: list[Rejected]


def split_records(records: list[InputRecord]) -> SplitRecords:
    """The records with a value (events for the pipeline) and those rejected before decoding:
    tombstones (``null_value``: a null value, unlike an empty one, which is ``invalid_json``)
    and undecodable batches (``undecodable_record``).

    >>> class R:
    ...     def __init__(self, offset, value):
    ...         self.offset, self.key, self.value = offset, None, value
    >>> split = split_records([R(0, b"{}"), R(1, None), R(2, b"")])
    >>> split.values, [(r.record.offset, r.reason.value) for r in split.rejected]
    ([b'{}', b''], [(1, 'null_value')])
    """
    events: list[InputRecord] = []
    values: list[bytes] = []
    rejected: list[Rejected] = []
    for record in records:
        value = record.value
        if value is not None:
            events.append(record)
            values.append(value)
        elif isinstance(record, UndecodableBatch):
            reason = DeadLetterReason.UNDECODABLE_RECORD
            rejected.append(Rejected(record, reason, record.problem))
        else:
            message = "the record's value is null (a tombstone), not an event"
            rejected.append(Rejected(record, DeadLetterReason.NULL_VALUE, message))
    return SplitRecords(events, values, rejected)


#: Headers of driftline's CloudEvents outputs (alerts, retrain requests): the CloudEvents
#: Kafka protocol binding's structured mode, so CloudEvents SDKs read them as events.
CLOUDEVENT_HEADERS = [("content-type", KAFKA_CONTENT_TYPE.encode())]


def dead_letter_value(record: InputRecord) -> bytes | None:
    """A dead letter's value: the input record's value unchanged (null stays null), but
    empty when the record has no key either (an undecodable batch, a keyless tombstone):
    Kafka producers refuse a record with neither (the reason header tells them apart).

    >>> dead_letter_value(UndecodableBatch(1, 1, "x"))
    b''
    """
    if record.value is None and record.key is None:
        return b""
    return record.value


def dead_letter_headers(
    tp: TopicPartition, record: InputRecord, reason: DeadLetterReason, message: str
) -> list[tuple[str, bytes]]:
    """A dead letter's headers: why, and where the record came from (no ``content-type``:
    a dead letter is the input record's value unchanged, not a CloudEvent). An undecodable
    batch also names the last offset it covers.

    >>> headers = dead_letter_headers(TopicPartition("in", 2), UndecodableBatch(5, 9, "x"),
    ...                               DeadLetterReason.UNDECODABLE_RECORD, "x")
    >>> for name, value in headers[2:]:
    ...     print(name, value.decode())
    driftline.source.topic in
    driftline.source.partition 2
    driftline.source.offset 5
    driftline.source.last_offset 9
    """
    first = record.first_offset if isinstance(record, UndecodableBatch) else record.offset
    headers = [
        ("driftline.reason", reason.value.encode()),
        ("driftline.message", message.encode()),
        ("driftline.source.topic", tp.topic.encode()),
        ("driftline.source.partition", str(tp.partition).encode()),
        ("driftline.source.offset", str(first).encode()),
    ]
    if isinstance(record, UndecodableBatch):
        headers.append(("driftline.source.last_offset", str(record.offset).encode()))
    return headers


#: The aiokafka version whose fetcher code :class:`RecordReader` mirrors.
MIRRORED_AIOKAFKA = "0.14.0"


def fast_path_problem(isolation_level: str, version: str = aiokafka.__version__) -> str | None:
    """Why the fast path cannot drain a consumer, or ``None`` when it can.

    >>> fast_path_problem("read_uncommitted") is None
    True
    >>> fast_path_problem("read_committed")
    'isolation_level is read_committed, not read_uncommitted'
    >>> fast_path_problem("read_uncommitted", version="0.15.0")
    'aiokafka 0.15.0 is not 0.14.0'
    """
    if version != MIRRORED_AIOKAFKA:
        return f"aiokafka {version} is not {MIRRORED_AIOKAFKA}"
    if isolation_level != "read_uncommitted":
        return f"isolation_level is {isolation_level}, not read_uncommitted"
    return None


class RecordReader:
    """``getmany()`` for the service's consumer, without a ``ConsumerRecord`` per record."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self._checked = False
        self.fast = True
        """Whether the fast path is in use (decided at the first read, after start())."""

    async def read(self, timeout_ms: int, max_records: int) -> Batch:
        """Records fetched so far (waiting up to ``timeout_ms`` for some), at most about
        ``max_records`` (whole record batches are taken, so a little more is possible)."""
        if not self._checked:
            self._checked = True
            problem = fast_path_problem(getattr(self.consumer, "_isolation_level", "unknown"))
            if problem is not None:
                log.warning("reading records through getmany() (slower): %s", problem)
                self.fast = False
        if not self.fast:
            batch: Batch = await self.consumer.getmany(
                timeout_ms=timeout_ms, max_records=max_records
            )
            return batch
        consumer: Any = self.consumer
        if consumer._closed:
            raise ConsumerStoppedError()
        consumer._coordinator.check_errors()
        with consumer._subscription.fetch_context():
            return await _fetched_records(consumer._fetcher, timeout_ms / 1000, max_records)


async def _fetched_records(fetcher: Any, timeout: float, max_records: int) -> Batch:
    """``Fetcher.fetched_records`` (aiokafka 0.14.0) with :func:`_take` for ``getall``."""
    subscriptions = fetcher._subscriptions
    while True:
        # Records fetched before a reassignment finished may not belong to this member.
        if subscriptions.reassignment_in_progress:
            await subscriptions.wait_for_assignment()
        start = time.monotonic()
        drained: Batch = {}
        for tp in list(fetcher._records):
            result = fetcher._records[tp]
            if type(result) is FetchResult:
                records = _take(result, max_records)
                if not result.has_more():
                    del fetcher._records[tp]
                    fetcher._notify(fetcher._wait_consume_future)
                if not records:
                    continue
                drained[tp] = records
                max_records -= len(records)
                if max_records <= 0:
                    break
            elif drained:
                return drained  # the error is raised by the next call
            else:
                del fetcher._records[tp]
                fetcher._notify(fetcher._wait_consume_future)
                result.check_raise()
        if drained or not timeout:
            return drained
        waiter = fetcher._create_fetch_waiter()
        done, pending = await asyncio.wait([waiter], timeout=timeout)
        if not done or fetcher._closed:
            for future in pending:
                future.cancel()
            return {}
        waiter.result()  # raises authorization errors
        timeout = max(0.0, timeout - (time.monotonic() - start))


def _take(result: FetchResult, max_records: int) -> list[InputRecord]:
    """``FetchResult.getall``: whole record batches until ``max_records`` is reached.

    As aiokafka's ``PartitionRecords._unpack_records`` does (read_uncommitted): batches are
    CRC-checked when the consumer checks CRCs, control batches are skipped, and records
    before the fetch position (inside a compressed legacy message set) are dropped. Unlike
    it, a batch that fails to decode becomes an :class:`UndecodableBatch` and the position
    moves past it (see :func:`_decoded`).
    """
    tp = result._topic_partition
    if not result.check_assignment(tp) or not result.has_more():
        return []
    partition: PartitionRecords = result._partition_records
    memory = partition._records
    taken: list[InputRecord] = []
    while memory.has_next():
        position = partition.next_fetch_offset
        try:
            batch = memory.next_batch()
        except Exception as exc:
            # The batch's own length or header is unreadable, so is where the next batch
            # starts: skip one offset and drop the rest of this fetch (the next fetch starts
            # after it; a batch spanning several offsets is dead-lettered once per offset).
            log.error("%s[%d]: corrupt record batch at offset %d: %r", *tp, position, exc)
            taken.append(UndecodableBatch(position, position, f"corrupt record batch: {exc!r}"))
            partition.next_fetch_offset = position + 1
            break
        if batch is None:
            break
        decoded = _decoded(tp, batch, position, partition._check_crcs)
        taken.extend(decoded)
        if decoded and isinstance(decoded[-1], UndecodableBatch):
            # Never at or behind the position (the same batch again, for ever), whatever
            # the (possibly damaged) header says.
            partition.next_fetch_offset = decoded[-1].offset + 1
        else:
            partition.next_fetch_offset = batch.next_offset
        if len(taken) >= max_records:
            result._update_position()
            return taken
    result._update_position()
    result._partition_records = None
    return taken


def _decoded(tp: TopicPartition, batch: Any, position: int, check_crc: bool) -> list[InputRecord]:
    """The records of ``batch`` from ``position`` on (none for a control batch), or one
    :class:`UndecodableBatch` when it cannot be decoded for any reason: a CRC mismatch, a
    codec the consumer lacks, bytes the codec rejects. Decoding is a pure function of the
    batch's bytes, so any exception here means these bytes, which no retry can change.

    The undecodable batch's range is what the partition skips: from the position to the
    header's last offset, and at least the position itself (a header pointing behind the
    position would have the same batch fetched again for ever). After a CRC mismatch the
    header may be damaged too: the range then starts at the position (not the header's
    base offset) and the message says its end comes from an unverified header."""
    crc_ok = True
    try:
        if check_crc and not batch.validate_crc():
            crc_ok = False
            raise CorruptRecordException(f"Invalid CRC - {tp}")
        if batch.is_control_batch:
            return []
        records: list[InputRecord] = list(batch)
    except Exception as exc:
        first = position if not crc_ok else max(getattr(batch, "base_offset", position), position)
        last = max(batch.next_offset - 1, first)
        problem = f"{type(exc).__name__}: {exc}"
        if not crc_ok:
            problem += (
                f" (the header, unverified, says offsets {batch.base_offset}-"
                f"{batch.next_offset - 1}; skipped {first}-{last})"
            )
        log.error(
            "%s[%d]: record batch at offsets %d-%d undecodable: %s", *tp, first, last, problem
        )
        return [UndecodableBatch(first, last, problem)]
    if records and records[0].offset < position:
        records = [r for r in records if r.offset >= position]
    return records

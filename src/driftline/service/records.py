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
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

import aiokafka
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import FetchResult, PartitionRecords
from aiokafka.errors import ConsumerStoppedError, CorruptRecordException

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
    before the fetch position (inside a compressed legacy message set) are dropped.
    """
    tp = result._topic_partition
    if not result.check_assignment(tp) or not result.has_more():
        return []
    partition: PartitionRecords = result._partition_records
    memory = partition._records
    taken: list[InputRecord] = []
    while memory.has_next():
        batch = memory.next_batch()
        if batch is None:
            break
        if partition._check_crcs and not batch.validate_crc():
            raise CorruptRecordException(f"Invalid CRC - {tp}")
        if not batch.is_control_batch:
            position = partition.next_fetch_offset
            records = list(batch)
            if records and records[0].offset < position:
                records = [r for r in records if r.offset >= position]
            taken.extend(records)
        partition.next_fetch_offset = batch.next_offset
        if len(taken) >= max_records:
            result._update_position()
            return taken
    result._update_position()
    result._partition_records = None
    return taken

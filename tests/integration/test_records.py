"""RecordReader (the service's fast path around getmany) against a real broker: it must
hand over exactly the records getmany() does, in order, with the same positions."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from driftline.service.records import RecordReader

Names = Callable[[str], str]
PARTITIONS = 3


async def _create(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str) -> int:
    """Records of several shapes and batchings: plain and gzip-compressed producers, null
    values and keys, empty values, headers, batches of one and of many records."""
    sent = 0
    for compression in (None, "gzip"):
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, compression_type=compression, linger_ms=20
        )
        await producer.start()
        try:
            futures = []
            for i in range(3_000):
                key = None if i % 7 == 0 and i % 11 else f"k{i % 5}".encode()
                value = None if i % 11 == 0 else (b"" if i % 13 == 0 else b"v%d" % i)
                headers = [("h", b"x")] if i % 3 == 0 else None
                futures.append(
                    await producer.send(
                        topic, value, key=key, partition=i % PARTITIONS, headers=headers
                    )
                )
                if i % 500 == 0:  # some one-record batches
                    await futures[-1]
            await asyncio.gather(*futures)
            sent += len(futures)
        finally:
            await producer.stop()
    return sent


Seen = dict[int, list[tuple[int, bytes | None, bytes | None]]]


async def _read(
    bootstrap: str, topic: str, group: str, total: int, fast: bool, max_records: int
) -> tuple[Seen, dict[int, int]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=16 * 1024,  # many fetches, partial takes
    )
    await consumer.start()
    reader = RecordReader(consumer)
    seen: Seen = {p: [] for p in range(PARTITIONS)}
    try:
        async with asyncio.timeout(60):
            count = 0
            while count < total:
                if fast:
                    batch = await reader.read(timeout_ms=500, max_records=max_records)
                else:
                    batch = await consumer.getmany(timeout_ms=500, max_records=max_records)
                for tp, records in batch.items():
                    seen[tp.partition] += [(r.offset, r.key, r.value) for r in records]
                    count += len(records)
        assert reader.fast or not fast
        positions = {
            p: await consumer.position(TopicPartition(topic, p)) for p in range(PARTITIONS)
        }
        return seen, positions
    finally:
        await consumer.stop()


def test_reader_returns_what_getmany_returns(
    kafka_bootstrap: str, topic_name: Names, group_id: Names
) -> None:
    topic = topic_name("records")
    asyncio.run(_create(kafka_bootstrap, topic))
    total = asyncio.run(_produce(kafka_bootstrap, topic))
    for max_records in (7, 5_000):
        expected, expected_positions = asyncio.run(
            _read(kafka_bootstrap, topic, group_id("slow"), total, False, max_records)
        )
        got, positions = asyncio.run(
            _read(kafka_bootstrap, topic, group_id("fast"), total, True, max_records)
        )
        assert sum(len(v) for v in got.values()) == total
        assert got == expected
        assert positions == expected_positions
        for records in got.values():
            offsets = [offset for offset, _, _ in records]
            assert offsets == sorted(set(offsets))


def test_reader_follows_a_seek(kafka_bootstrap: str, topic_name: Names, group_id: Names) -> None:
    """Records buffered before a seek are not returned; reading resumes at the seek."""
    topic = topic_name("seek")
    asyncio.run(_create(kafka_bootstrap, topic))
    asyncio.run(_produce(kafka_bootstrap, topic))

    async def scenario() -> list[int]:
        tp = TopicPartition(topic, 0)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            reader = RecordReader(consumer)
            first: list[int] = []
            async with asyncio.timeout(30):
                while len(first) < 100:
                    batch = await reader.read(timeout_ms=500, max_records=100)
                    first += [r.offset for r in batch.get(tp, [])]
                consumer.seek(tp, 10)
                again: list[int] = []
                while len(again) < 50:
                    batch = await reader.read(timeout_ms=500, max_records=50)
                    again += [r.offset for r in batch.get(tp, [])]
            return again
        finally:
            await consumer.stop()

    again = asyncio.run(scenario())
    assert again[:5] == [10, 11, 12, 13, 14]

"""Checkpoints: a partition's core state together with the input offset it covers.

One record per (consumer group, input topic, input partition) on the compacted state topic.
The key names the partition; the value is ``MAGIC | version | next offset | zlib(state)``,
where *next offset* is the first input offset **not** covered by the state. On assignment
the service restores the state and resumes reading at that offset, so events after the
checkpoint are processed again and produce the same outputs (ids included).
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

MAGIC = b"DLCK"
VERSION = 1
_HEADER = struct.Struct("<4sBq")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    topic: str
    partition: int
    next_offset: int
    """First input offset not covered by ``state``."""
    state: bytes
    """``Pipeline.to_state()`` of the partition."""

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


def checkpoint_key(group_id: str, topic: str, partition: int) -> bytes:
    return orjson.dumps([group_id, topic, partition])


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    header = _HEADER.pack(MAGIC, VERSION, checkpoint.next_offset)
    return header + zlib.compress(checkpoint.state, 1)


def decode_checkpoint(key: bytes, value: bytes) -> tuple[str, Checkpoint]:
    """Return (group id, checkpoint); ValueError on anything malformed."""
    try:
        group_id, topic, partition = orjson.loads(key)
        magic, version, next_offset = _HEADER.unpack_from(value)
    except (orjson.JSONDecodeError, ValueError, TypeError, struct.error) as exc:
        raise ValueError(f"malformed checkpoint record: {exc}") from None
    if magic != MAGIC or version != VERSION:
        raise ValueError(f"unsupported checkpoint format {magic!r} v{version}")
    try:
        state = zlib.decompress(value[_HEADER.size :])
    except zlib.error as exc:
        raise ValueError(f"corrupt checkpoint state: {exc}") from None
    return str(group_id), Checkpoint(str(topic), int(partition), int(next_offset), state)


async def read_checkpoints(
    reader: AIOKafkaConsumer, tps: list[TopicPartition], group_id: str
) -> dict[TopicPartition, Checkpoint]:
    """The latest checkpoint of every input partition of ``group_id`` on the state topic.

    ``reader`` is a started consumer without a group; it is (re)assigned to ``tps`` (every
    partition of the state topic) and reads them from the beginning to their current end.
    """
    if not tps:
        return {}
    reader.assign(tps)
    ends = await reader.end_offsets(tps)
    for tp in tps:
        reader.seek(tp, 0)
    by_key: dict[bytes, Checkpoint | None] = {}
    remaining = {tp for tp in tps if ends[tp] > 0}
    while remaining:
        batch = await reader.getmany(*remaining, timeout_ms=1000)
        for tp, records in batch.items():
            for record in records:
                if record.key is None:
                    continue
                if record.value is None:  # a tombstone deletes the checkpoint
                    by_key[record.key] = None
                    continue
                try:
                    group, checkpoint = decode_checkpoint(record.key, record.value)
                except ValueError as exc:
                    log.warning("skipping state record %s@%d: %s", tp, record.offset, exc)
                    continue
                if group == group_id:
                    by_key[record.key] = checkpoint
        for tp in list(remaining):
            if await reader.position(tp) >= ends[tp]:
                remaining.discard(tp)
    return {c.topic_partition: c for c in by_key.values() if c is not None}

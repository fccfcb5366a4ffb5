"""The fast path's reading of fetched record batches that cannot be decoded (poison batches).

The batches are real Kafka record batches (aiokafka's builder) in a real aiokafka
``FetchResult``; only the consumer's assignment is a stand-in. Before poison batches became
dead letters, each of these raised out of the read (CorruptRecordException,
UnsupportedCodecError, BadGzipFile), and again at every later read: the service stopped
and, restarted, stopped again at the same offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import READ_UNCOMMITTED, FetchResult, PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c

from driftline.events import DeadLetterReason
from driftline.service.records import UndecodableBatch, _take, split_records

TP = TopicPartition("in", 0)
# Record batch v2 layout: base offset (8), length (4), leader epoch (4), magic (1), CRC (4),
# then attributes onwards, which the CRC covers; records follow a 61-byte header.
_CRC_AT = 17
_CRC_FROM = 21
_HEADER = 61


def _batch(base: int, values: list[bytes], codec: int = DefaultRecordBatch.CODEC_NONE) -> bytearray:
    builder = DefaultRecordBatchBuilder(2, codec, 0, -1, -1, -1, 1 << 20)
    for delta, value in enumerate(values):
        builder.append(delta, 1_000, None, value, [])
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base)  # the base offset is outside the CRC
    return data


def _fix_crc(data: bytearray) -> bytearray:
    struct.pack_into(">I", data, _CRC_AT, calc_crc32c(bytes(data[_CRC_FROM:])))
    return data


def _crc_mismatch(base: int) -> bytearray:
    data = _batch(base, [b"c" * 50, b"d"])
    data[-1] ^= 0xFF
    return data


def _bad_gzip(base: int) -> bytearray:
    """A gzip batch whose CRC is right but whose compressed bytes are not gzip."""
    data = _batch(base, [b"c" * 50, b"d"], DefaultRecordBatch.CODEC_GZIP)
    data[_HEADER : _HEADER + 8] = bytes(8)
    return _fix_crc(data)


def _unknown_codec(base: int) -> bytearray:
    """A batch naming codec 5, which no Kafka client knows (CRC right)."""
    data = _batch(base, [b"c", b"d"])
    struct.pack_into(">h", data, _CRC_FROM, 5)
    return _fix_crc(data)


@dataclass
class _PartitionState:
    position: int
    paused: bool = False

    def consumed_to(self, offset: int) -> None:
        self.position = offset


@dataclass
class _Assignment:
    state: _PartitionState
    active: bool = True

    def state_value(self, tp: TopicPartition) -> _PartitionState:
        return self.state


def _fetch(data: bytes, position: int = 0) -> tuple[FetchResult, _PartitionState]:
    state = _PartitionState(position)
    records = PartitionRecords(
        TP, MemoryRecords(data), None, position, None, None, True, READ_UNCOMMITTED
    )
    result = FetchResult(TP, assignment=_Assignment(state), partition_records=records, backoff=0)
    return result, state


def _read(data: bytes, position: int = 0) -> tuple[list[object], int]:
    result, state = _fetch(data, position)
    taken: list[object] = []
    while result.has_more():
        taken += _take(result, 1_000)
    return taken, state.position


def _summary(records: list[object]) -> list[tuple[int, bytes | None] | tuple[int, int, str]]:
    out: list[tuple[int, bytes | None] | tuple[int, int, str]] = []
    for record in records:
        if isinstance(record, UndecodableBatch):
            out.append((record.first_offset, record.offset, record.problem.split(":")[0]))
        else:
            out.append((record.offset, record.value))  # type: ignore[attr-defined]
    return out


def test_good_batches_around_an_undecodable_one_are_read_and_the_position_passes_it() -> None:
    for bad, problem in (
        (_crc_mismatch(2), "CorruptRecordException"),
        (_bad_gzip(2), "BadGzipFile"),
        (_unknown_codec(2), "UnsupportedCodecError"),
    ):
        data = bytes(_batch(0, [b"a", b"b"]) + bad + _batch(4, [b"e"]))
        taken, position = _read(data)
        assert _summary(taken) == [(0, b"a"), (1, b"b"), (2, 3, problem), (4, b"e")], problem
        assert position == 5


def test_an_undecodable_batch_alone_moves_the_position_past_it() -> None:
    taken, position = _read(bytes(_unknown_codec(7)), position=7)
    assert _summary(taken) == [(7, 8, "UnsupportedCodecError")]
    assert position == 9


def test_a_batch_entered_in_the_middle_is_dead_lettered_from_the_position() -> None:
    taken, position = _read(bytes(_crc_mismatch(2)), position=3)
    assert _summary(taken) == [(3, 3, "CorruptRecordException")]
    assert position == 4


def test_an_unreadable_batch_length_skips_one_offset_and_the_rest_of_the_fetch() -> None:
    broken = _batch(2, [b"x"])
    struct.pack_into(">i", broken, 8, 3)  # batch length below the minimum
    data = bytes(_batch(0, [b"a", b"b"]) + broken + _batch(3, [b"y"]))
    result, state = _fetch(data)
    taken = _take(result, 1_000)
    assert _summary(taken) == [(0, b"a"), (1, b"b"), (2, 2, "corrupt record batch")]
    assert state.position == 3
    assert not result.has_more()  # the next fetch starts at offset 3


def test_split_records_keeps_null_and_empty_values_apart() -> None:
    @dataclass
    class Record:
        offset: int
        key: bytes | None
        value: bytes | None

    undecodable = UndecodableBatch(3, 5, "UnsupportedCodecError: lz4")
    split = split_records(
        [Record(0, b"k", b"{}"), Record(1, b"k", None), Record(2, None, b""), undecodable]
    )
    assert split.values == [b"{}", b""]
    assert [r.offset for r in split.events] == [0, 2]
    assert [(r.record.offset, r.reason) for r in split.rejected] == [
        (1, DeadLetterReason.NULL_VALUE),
        (5, DeadLetterReason.UNDECODABLE_RECORD),
    ]
    assert split.rejected[1].message == "UnsupportedCodecError: lz4"


def test_a_header_behind_the_position_still_moves_the_position_on() -> None:
    """A damaged header claiming offsets 2-3 met at position 5: before, the position went
    back to 4 and the same batch was fetched again for ever."""
    for bad in (_crc_mismatch(2), _unknown_codec(2)):
        taken, position = _read(bytes(bad), position=5)
        [dead] = taken
        assert isinstance(dead, UndecodableBatch)
        assert (dead.first_offset, dead.offset) == (5, 5)
        assert position == 6


def test_after_a_crc_mismatch_the_range_starts_at_the_position_not_the_header() -> None:
    bad = _crc_mismatch(0)
    struct.pack_into(">q", bad, 0, 1)  # the base offset is outside the CRC: claims 1-2
    taken, position = _read(bytes(bad), position=0)
    [dead] = taken
    assert isinstance(dead, UndecodableBatch)
    assert (dead.first_offset, dead.offset) == (0, 2)
    assert "unverified, says offsets 1-2; skipped 0-2" in dead.problem
    assert position == 3

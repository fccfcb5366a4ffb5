"""The binary state of a label join (little-endian).

Layout, version 1::

    b"DLLJ", u16 version,
    i64 prediction_end, i64 label_end, f64 watermark, i64 last_position,
    8 x i64 counts (JoinCounts field order),
    2 x ring   (predictions, then labels): i64 k, f64[k] time, f64[k] value, u8[k] flag
               -- the entries numbered end - k ... end - 1,
    2 x index  (predictions, then labels): i64 m, u64[m] id hash, u32[m] low number bits,
    u32 CRC-32 of everything before it.

About 29 bytes per remembered prediction. The index is saved merged and pruned; a restored
join looks up exactly the same numbers, so it continues exactly as the saved one would.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from driftline.labels.index import HashIndex
from driftline.labels.ring import GONE, SlotRing

MAGIC = b"DLLJ"
VERSION = 1
_HEAD = struct.Struct("<4sH")
_FIXED = struct.Struct("<qqdq8q")
_COUNT = struct.Struct("<q")
_CRC = struct.Struct("<I")


RingArrays = tuple[int, npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.uint8]]
"""A ring's ``end`` and the time, value and flag of its entries ``end - k ... end - 1``."""
IndexArrays = tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32]]


@dataclass(frozen=True, slots=True)
class SavedJoin:
    """The decoded contents of a state."""

    watermark: float
    last_position: int
    counts: tuple[int, ...]
    rings: tuple[RingArrays, RingArrays]
    indexes: tuple[IndexArrays, IndexArrays]


def encode_state(
    rings: tuple[SlotRing, SlotRing],
    indexes: tuple[HashIndex, HashIndex],
    watermark: float,
    last_position: int,
    counts: tuple[int, ...],
) -> bytes:
    parts = [
        _HEAD.pack(MAGIC, VERSION),
        _FIXED.pack(rings[0].end, rings[1].end, watermark, last_position, *counts),
    ]
    for ring in rings:
        time, value, flag = ring.held()
        parts += [_COUNT.pack(len(flag)), time.tobytes(), value.tobytes(), flag.tobytes()]
    for index in indexes:
        keys, low = index.merged()
        parts += [
            _COUNT.pack(len(keys)),
            keys.astype("<u8").tobytes(),
            low.astype("<u4").tobytes(),
        ]
    body = b"".join(parts)
    return body + _CRC.pack(zlib.crc32(body))


def decode_state(data: bytes) -> SavedJoin:
    """Parse and check ``data``; ``ValueError`` when it is not a valid state."""
    if len(data) < _HEAD.size + _FIXED.size + _CRC.size:
        raise ValueError(f"label join state is truncated ({len(data)} bytes)")
    magic, version = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise ValueError(f"not a label join state (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise ValueError(f"unknown label join state version {version} (this build reads {VERSION})")
    body = memoryview(data)[: -_CRC.size]
    (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if zlib.crc32(body) != crc:
        raise ValueError("label join state is corrupt (CRC-32 mismatch)")
    reader = _Reader(body, _HEAD.size)
    prediction_end, label_end, watermark, last_position, *counts = reader.unpack(_FIXED)
    if min(prediction_end, label_end) < 0:
        raise ValueError("label join state is corrupt (negative entry count)")
    rings: list[RingArrays] = []
    for end in (prediction_end, label_end):
        (k,) = reader.unpack(_COUNT)
        if not 0 <= k <= end:
            raise ValueError("label join state is corrupt (ring size out of range)")
        time = reader.array("<f8", k).astype(np.float64)
        value = reader.array("<f8", k).astype(np.float64)
        flag = reader.array("u1", k).astype(np.uint8)
        if np.any(flag > GONE):
            raise ValueError("label join state is corrupt (unknown entry flag)")
        rings.append((end, time, value, flag))
    indexes: list[IndexArrays] = []
    for _ in range(2):
        (m,) = reader.unpack(_COUNT)
        if m < 0:
            raise ValueError("label join state is corrupt (negative index size)")
        keys = reader.array("<u8", m).astype(np.uint64)
        indexes.append((keys, reader.array("<u4", m).astype(np.uint32)))
    if reader.offset != len(body):
        raise ValueError("label join state is corrupt (trailing bytes)")
    return SavedJoin(
        watermark, last_position, tuple(counts), (rings[0], rings[1]), (indexes[0], indexes[1])
    )


class _Reader:
    def __init__(self, data: memoryview, offset: int) -> None:
        self.data = data
        self.offset = offset

    def unpack(self, layout: struct.Struct) -> tuple[Any, ...]:
        self._need(layout.size)
        values = layout.unpack_from(self.data, self.offset)
        self.offset += layout.size
        return values

    def array(self, dtype: str, count: int) -> np.ndarray[Any, Any]:
        size = np.dtype(dtype).itemsize * count
        self._need(size)
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.offset)
        self.offset += size
        return values

    def _need(self, size: int) -> None:
        if self.offset + size > len(self.data):
            raise ValueError("label join state is truncated")

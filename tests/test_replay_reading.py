"""Reading JSONL for replay: line numbers and blank-line handling, whatever the chunking."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.replay import read_batches


def _reference(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        payload = line.rstrip(b"\r")
        if payload.strip():
            out.append((number, payload))
    return out


def _read(data: bytes, batch: int, chunk: int) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    for numbers, lines in read_batches(io.BytesIO(data), batch, chunk):
        assert 0 < len(lines) <= batch
        out.extend(zip(numbers, lines, strict=True))
    return out


@settings(derandomize=True, max_examples=300, database=None)
@given(
    st.lists(st.sampled_from([b"{}", b"", b" ", b"a\r", b"\r", b"xyz", b'{"k": 1}']), max_size=40),
    st.integers(1, 7),
    st.integers(1, 16),
    st.booleans(),
)
def test_read_batches_equals_line_by_line(
    lines: list[bytes], batch: int, chunk: int, final_newline: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    assert _read(data, batch, chunk) == _reference(data)


@pytest.mark.parametrize("chunk", [1, 3, 1 << 22])
def test_numbers_count_blank_lines(chunk: int) -> None:
    data = b"a\n\nb\r\n  \nc"
    assert _read(data, 2, chunk) == [(1, b"a"), (3, b"b"), (5, b"c")]

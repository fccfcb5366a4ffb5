"""Native fast paths of :func:`driftline.events.decode_batch` and
:meth:`driftline.sketches.BinCounts.update` (see ``_fastdecode.c``)."""

from collections.abc import Sequence

from _typeshed import ReadableBuffer, WriteableBuffer

Group = tuple[
    str,  # model_id
    str,  # model_version
    bytearray,  # row indices, int64
    list[str],  # event ids
    bytearray,  # timestamps, float64 epoch seconds
    list[str],  # column names
    list[bytes],  # column values, float64 (NaN where null or absent)
    list[bytes | None],  # per column: uint8 1 where the literal was an integer, or None
    list[bytes | None],  # per column: uint8 1 where the value was an explicit null, or None
    list[list[str | bool | int | float | None] | None],  # per column with a string or
    # boolean: every row's value (None where null or absent), else None
    list[str | None] | None,  # request ids (None where absent), or None when no row has one
]

def decode(
    payloads: Sequence[bytes], max_payload_bytes: int, max_features: int, /
) -> tuple[list[int], list[Group]]:
    """Decode the canonical events of a batch; return the indices of the others and one
    group per (model_id, model_version)."""

def bin_count(
    values: ReadableBuffer, edges: ReadableBuffer, counts: WriteableBuffer, /
) -> tuple[int, float, float, bool]:
    """Count C-contiguous float64 ``values`` into the int64 ``counts`` (``len(edges) + 1``)
    in place, value ``x`` in bin ``searchsorted(edges, x, side="right")``; NaN is missing,
    an infinite value a ValueError (``counts`` untouched). Return ``(missing, minimum,
    maximum, zero_tie)``: NaN extremes when no value is present; ``zero_tie`` when the
    minimum or maximum is a zero and both ``0.0`` and ``-0.0`` occurred (which zero is then
    unspecified)."""

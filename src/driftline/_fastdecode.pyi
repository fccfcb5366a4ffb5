"""Native fast path of :func:`driftline.events.decode_batch` (see ``_fastdecode.c``)."""

from collections.abc import Sequence

Group = tuple[
    str,  # model_id
    str,  # model_version
    bytearray,  # row indices, int64
    list[str],  # event ids
    bytearray,  # timestamps, float64 epoch seconds
    list[str],  # column names
    list[bytes],  # column values, float64 (NaN where null or absent)
    list[bytes | None],  # per column: uint8 1 where the literal was an integer, or None
]

def decode(
    payloads: Sequence[bytes], max_payload_bytes: int, max_features: int, /
) -> tuple[list[int], list[Group]]:
    """Decode the canonical events of a batch; return the indices of the others and one
    group per (model_id, model_version)."""

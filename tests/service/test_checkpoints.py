import pytest

from driftline.service.checkpoints import (
    Checkpoint,
    checkpoint_key,
    decode_checkpoint,
    encode_checkpoint,
)


def test_checkpoint_round_trip() -> None:
    checkpoint = Checkpoint("in", 3, 12_345, b'{"version":1,"versions":[]}' * 50)
    key = checkpoint_key("group", "in", 3)
    group, decoded = decode_checkpoint(key, encode_checkpoint(checkpoint))
    assert group == "group"
    assert decoded == checkpoint
    assert len(encode_checkpoint(checkpoint)) < len(checkpoint.state)  # compressed


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (b"not json", b"", "malformed"),
        (checkpoint_key("g", "t", 0), b"XXXX\x01" + b"\x00" * 8, "unsupported"),
        (checkpoint_key("g", "t", 0), b"DLCK\x01" + b"\x00" * 8 + b"garbage", "corrupt"),
        (checkpoint_key("g", "t", 0), b"DL", "malformed"),
    ],
)
def test_bad_records_are_rejected_clearly(key: bytes, value: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_checkpoint(key, value)

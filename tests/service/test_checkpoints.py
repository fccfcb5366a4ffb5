import os
import random
from typing import Any

import orjson
import pytest

from driftline.config import parse_settings
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.service.checkpoints import (
    MAX_STATE_RECORD_BYTES,
    BlobRef,
    Checkpoint,
    EncodedCheckpoint,
    Fence,
    NoConsistentCheckpointError,
    PartitionRecords,
    WriteId,
    checkpoint_key,
    decode_checkpoint,
    decode_record,
    encode_blob,
    encode_checkpoint,
    encode_epoch,
    encode_head,
    encode_parts,
    epoch_key,
    select,
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


# --- format 2: keyed, bounded state ---------------------------------------------------


def _events(models: int, per_model: int, features: int, start: int = 0) -> list[bytes]:
    rng = random.Random(models * 1000 + start)
    return [
        orjson.dumps(
            {
                "event_id": f"{m}-{i}",
                "model_id": f"model-{m}",
                "model_version": "1",
                "timestamp": 1_700_000_000 + i,
                "features": {f"f{j}": rng.gauss(0, 1) for j in range(features)},
            }
        )
        for i in range(start, start + per_model)
        for m in range(models)
    ]


def _pipeline() -> Pipeline:
    settings = parse_settings({"window": {"events": 100}, "warmup_events": 200})
    return Pipeline(build_plan(settings, {}))


def _checkpoint(
    pipeline: Pipeline, write: WriteId, next_offset: int, previous: dict[Any, BlobRef]
) -> EncodedCheckpoint:
    changed = pipeline.take_changed()
    monitored = [k for k, v in pipeline.versions.items() if v is not None]
    states = {k: pipeline.version_state(k) for k in monitored if k in changed or k not in previous}
    return encode_parts(
        "g", "in", 0, write, next_offset, pipeline.head_state(), monitored, states, previous
    )


def _records(*encoded: EncodedCheckpoint, order: int | None = None) -> PartitionRecords:
    pairs = [pair for e in encoded for pair in [*e.chunks, e.head]]
    if order is not None:
        random.Random(order).shuffle(pairs)
    records = PartitionRecords("in", 0)
    for key, value in pairs:
        records.add(key, value, decode_record(key, value))
    return records


def _restored_state(records: PartitionRecords) -> bytes:
    restored = select(records)
    assert restored is not None
    pipeline = _pipeline()
    if restored.legacy:
        pipeline.restore(restored.head_state)
    else:
        pipeline.restore_parts(restored.head_state, restored.versions)
    return pipeline.to_state()


def test_parts_round_trip_to_the_same_pipeline_state_in_any_read_order() -> None:
    pipeline = _pipeline()
    pipeline.process(_events(4, 300, 5))
    encoded = _checkpoint(pipeline, WriteId(1, 1, "w"), 1200, {})
    assert encoded.versions_written == 4 and encoded.records == 5
    for order in (None, 1, 2, 3):
        assert _restored_state(_records(encoded, order=order)) == pipeline.to_state()


def test_only_changed_versions_are_written_and_unchanged_ones_referenced() -> None:
    pipeline = _pipeline()
    pipeline.process(_events(3, 300, 5))
    first = _checkpoint(pipeline, WriteId(1, 1, "w"), 900, {})
    pipeline.process(_events(1, 50, 5, start=300))  # only model-0 changes
    second = _checkpoint(pipeline, WriteId(1, 2, "w"), 950, first.refs)
    assert second.versions_written == 1
    assert second.refs[("model-1", "1")] == first.refs[("model-1", "1")]
    assert second.refs[("model-0", "1")].write == WriteId(1, 2, "w")
    assert _restored_state(_records(first, second)) == pipeline.to_state()
    # Garbage after the second head: the first head and model-0's first chunk only.
    garbage = first.referenced - second.referenced
    assert len(garbage) == 2


def test_no_record_exceeds_the_bound_and_large_states_are_chunked() -> None:
    data = os.urandom(2_500_000)  # incompressible: three chunks at least
    ref, records = encode_blob("g", "in", 0, WriteId(1, 1, "w"), ("m", "1"), data)
    assert ref.chunks == len(records) == 3
    assert all(len(k) + len(v) <= MAX_STATE_RECORD_BYTES for k, v in records)
    assert max(len(k) + len(v) for k, v in records) > MAX_STATE_RECORD_BYTES - 100
    # A large pipeline: 300 features mid-warm-up in 3 versions, far over 1 MiB in all.
    pipeline = Pipeline(
        build_plan(parse_settings({"window": {"events": 100}, "warmup_events": 10_000}), {})
    )
    pipeline.process(_events(3, 1_000, 300))
    encoded = _checkpoint(pipeline, WriteId(1, 1, "w"), 3000, {})
    assert encoded.bytes > 3 * MAX_STATE_RECORD_BYTES
    assert encoded.largest <= MAX_STATE_RECORD_BYTES
    assert _restored_state(_records(encoded, order=5)) == pipeline.to_state()


def test_a_large_head_spills_into_chunks() -> None:
    refs = {}
    pairs = []
    for i in range(30_000):
        ref, chunk = encode_blob("g", "in", 0, WriteId(1, 1, "w"), (f"m{i}", "1"), b"%d" % i)
        refs[(f"m{i}", "1")] = ref
        pairs += chunk
    head = encode_head("g", "in", 0, WriteId(1, 1, "w"), 7, b"{}", refs)
    assert len(head) > 1  # spilled
    assert all(len(k) + len(v) <= MAX_STATE_RECORD_BYTES for k, v in head)
    records = PartitionRecords("in", 0)
    for key, value in pairs + head:
        records.add(key, value, decode_record(key, value))
    restored = select(records)
    assert restored is not None and restored.next_offset == 7 and len(restored.versions) == 30_000


def test_a_hash_mismatch_falls_back_to_the_previous_consistent_head() -> None:
    pipeline = _pipeline()
    pipeline.process(_events(2, 300, 5))
    first = _checkpoint(pipeline, WriteId(1, 1, "w"), 600, {})
    expected = pipeline.to_state()
    pipeline.process(_events(2, 50, 5, start=300))
    second = _checkpoint(pipeline, WriteId(1, 2, "w"), 700, first.refs)
    records = _records(first, second)
    key = second.chunks[0][0]
    records.values[key] = records.values[key][:-1] + bytes([records.values[key][-1] ^ 1])
    restored = select(records)
    assert restored is not None and restored.next_offset == 600
    assert "SHA-256" in restored.skipped[0]
    assert _restored_state(records) == expected


def test_an_interrupted_write_restores_the_previous_head() -> None:
    pipeline = _pipeline()
    pipeline.process(_events(3, 300, 5))
    first = _checkpoint(pipeline, WriteId(1, 1, "w"), 900, {})
    expected = pipeline.to_state()
    pipeline.process(_events(3, 50, 5, start=300))
    second = _checkpoint(pipeline, WriteId(1, 2, "w"), 1050, first.refs)
    records = _records(first)
    for key, value in second.chunks[:2]:  # some chunks written, the head not
        records.add(key, value, decode_record(key, value))
    assert _restored_state(records) == expected
    # The head written but a chunk missing (e.g. compacted away): also the previous one.
    records.add(*second.head, decode_record(*second.head))
    restored = select(records)
    assert restored is not None and restored.next_offset == 900
    assert "missing" in restored.skipped[0]


def test_heads_without_a_consistent_one_stop_instead_of_starting_fresh() -> None:
    pipeline = _pipeline()
    pipeline.process(_events(2, 300, 5))
    only = _checkpoint(pipeline, WriteId(1, 1, "w"), 600, {})
    records = _records(only)
    del records.values[only.chunks[0][0]]  # its only head's chunk is gone
    with pytest.raises(NoConsistentCheckpointError, match="missing"):
        select(records)


def test_a_head_of_an_older_epoch_is_ignored_whatever_its_sequence_and_position() -> None:
    pipeline = _pipeline()
    pipeline.process(_events(2, 300, 5))
    survivor = _checkpoint(pipeline, WriteId(2, 1, "b"), 600, {})
    zombie_pipeline = _pipeline()
    zombie = _checkpoint(zombie_pipeline, WriteId(1, 9, "a"), 10**9, {})
    for order in range(4):  # the zombie's head read last, first, anywhere
        records = _records(survivor, zombie, order=order)
        restored = select(records)
        assert restored is not None and restored.next_offset == 600
        assert records.max_epoch == 2
    records = PartitionRecords("in", 0)
    key = epoch_key("g", "in", 0)
    records.add(key, encode_epoch(5), decode_record(key, encode_epoch(5)))
    assert records.max_epoch == 5 and select(records) is None


def _claim(records: PartitionRecords, epoch: int, *fences: Fence) -> None:
    key = epoch_key("g", "in", 0)
    value = encode_epoch(epoch, fences)
    records.add(key, value, decode_record(key, value))


def test_heads_a_zombie_writes_after_a_later_owner_claimed_the_partition_are_ignored() -> None:
    pipeline = _pipeline()
    pipeline.process(_events(2, 300, 5))
    first = _checkpoint(pipeline, WriteId(1, 1, "a"), 600, {})
    # Owner "a" (epoch 1) is evicted but runs on; "b" adopts the partition from `first`,
    # claims epoch 2, and is itself gone before its first checkpoint. The zombie then
    # writes a newer head of epoch 1.
    pipeline.process(_events(2, 100, 5, start=300))
    zombie = _checkpoint(pipeline, WriteId(1, 2, "a"), 800, first.refs)
    for order in range(4):
        records = _records(first, zombie, order=order)
        assert select(records) is not None and select(records).next_offset == 800  # type: ignore[union-attr]
        _claim(records, 2, Fence(2, WriteId(1, 1, "a")))
        restored = select(records)
        assert restored is not None and restored.next_offset == 600, order
        assert records.fenced(records.heads[zombie.head[0]])
        assert records.max_epoch == 2
    # The fence is carried by later claims: epoch 3 resumed from `first` too.
    records = _records(first, zombie)
    _claim(records, 3, Fence(3, WriteId(1, 1, "a")), Fence(2, WriteId(1, 1, "a")))
    assert select(records).next_offset == 600  # type: ignore[union-attr]
    # An owner that adopted with no checkpoint fences out every older head: starting from
    # the committed offset, not from a zombie's state (and not stopping either).
    records = _records(zombie)
    _claim(records, 2, Fence(2, None))
    assert select(records) is None
    # A claim written before fences existed fences nothing.
    records = _records(first, zombie)
    key = epoch_key("g", "in", 0)
    old = encode_epoch(2)[:6] + orjson.dumps({"epoch": 2})
    records.add(key, old, decode_record(key, old))
    assert select(records).next_offset == 800  # type: ignore[union-attr]


def test_a_format_1_checkpoint_is_upgraded() -> None:
    pipeline = _pipeline()
    pipeline.process(_events(2, 300, 5))
    legacy_key = checkpoint_key("g", "in", 0)
    legacy = encode_checkpoint(Checkpoint("in", 0, 600, pipeline.to_state()))
    records = PartitionRecords("in", 0)
    records.add(legacy_key, legacy, decode_record(legacy_key, legacy))
    restored = select(records)
    assert restored is not None and restored.legacy and restored.next_offset == 600
    assert _restored_state(records) == pipeline.to_state()
    assert records.live_keys() == {legacy_key}  # tombstoned after the first format 2 head
    # Once a format 2 head exists it wins over the format 1 record.
    upgraded = _checkpoint(pipeline, WriteId(1, 1, "w"), 650, {})
    for key, value in [*upgraded.chunks, upgraded.head]:
        records.add(key, value, decode_record(key, value))
    restored = select(records)
    assert restored is not None and not restored.legacy and restored.next_offset == 650
    # A tombstone removes a record.
    records.add(upgraded.head[0], None, None)
    restored = select(records)
    assert restored is not None and restored.legacy


def test_malformed_format_2_records_are_rejected_clearly() -> None:
    key = epoch_key("g", "in", 0)
    with pytest.raises(ValueError, match="unsupported"):
        decode_record(key, b"XXXX\x02\x01{}")
    with pytest.raises(ValueError, match="malformed"):
        decode_record(key, b"DL")

"""Checkpoints: a partition's core state together with the input offset it covers.

**Format 2** (keyed, bounded; written since driftline 0.x): a checkpoint is several records
on the compacted state topic, none larger than :data:`MAX_STATE_RECORD_BYTES`:

* per monitored model version, its state (``Pipeline.version_state``, zlib) cut into
  **chunk** records; key ``[tag, group, topic, partition, "chunk", epoch, writer, seq,
  [model_id, model_version], index]``;
* one **head** record per checkpoint, key ``[tag, group, topic, partition, "head", epoch,
  writer, seq]``: the next input offset, the ``Pipeline.head_state`` and the exact
  reference (write id, chunk count, size, SHA-256) of every version's chunks. A large head
  body spills into chunk records of its own (model ``null``);
* one **epoch** claim per input partition, key ``[tag, group, topic, partition,
  "epoch"]``: the owner's epoch (highest seen + 1), written and acknowledged when it
  adopts the partition, before it consumes. The claim carries **fences**: the head the
  owner resumed from (none if it started without one), and the fences of the claims before
  it (the last :data:`MAX_FENCES`). A head of an older epoch written after a claim (by a
  member evicted from the group that still runs: a zombie) is newer than that claim's
  fence, so no restore ever uses it.

Keys are write-addressed (epoch, writer id, sequence), so a new checkpoint never overwrites
a record an earlier head references. Only versions changed since the previous checkpoint
are encoded again; the head references the unchanged versions' earlier chunks. A restore
takes the head with the highest (epoch, sequence) whose every chunk is present with its
hash and that no fence rules out, else the next one: a consistent set or an older
consistent set, never a mix.

**Format 1** (``DLCK`` v1, one record holding the whole ``Pipeline.to_state()``) is still
read: it is restored with ``Pipeline.restore`` and rewritten in format 2 at the next
checkpoint (then tombstoned).
"""

from __future__ import annotations

import hashlib
import logging
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from driftline.plan import ModelKey

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


# ----------------------------------------------------------------------------------------
# Format 2: keyed, bounded state (one head per checkpoint, version states in chunks)
# ----------------------------------------------------------------------------------------

FORMAT = 2
MAGIC2 = b"DLS2"
KEY_TAG = "driftline.state.v2"
MAX_STATE_RECORD_BYTES = 1_000_000
"""Upper bound of one state record (key + value, no headers). The broker's default
``max.message.bytes`` is 1,048,588 bytes per record batch; the rest is the margin for the
batch and record overhead, so the state topic works with the broker's default."""

_V2 = struct.Struct("<4sBB")  # magic, format, kind
_U32 = struct.Struct("<I")
_KIND_EPOCH, _KIND_HEAD, _KIND_CHUNK = 1, 2, 3
_HEAD_INLINE_BYTES = MAX_STATE_RECORD_BYTES // 2
"""A head body (head state + references, compressed) larger than this is spilled into
chunk records the head references like a version's state."""


@dataclass(frozen=True, slots=True, order=True)
class WriteId:
    """Who wrote a record and when: the writer's epoch (fencing), its checkpoint sequence
    and a random id of the writer (so two writers never share a key)."""

    epoch: int
    seq: int
    writer: str

    def as_list(self) -> list[Any]:
        return [self.epoch, self.writer, self.seq]


@dataclass(frozen=True, slots=True)
class BlobRef:
    """Exact reference to a compressed blob stored as ``chunks`` chunk records."""

    write: WriteId
    chunks: int
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Head:
    """A decoded head record: one consistent checkpoint of an input partition (if every
    chunk it references is present with its hash)."""

    group: str
    topic: str
    partition: int
    write: WriteId
    next_offset: int
    body: bytes | None
    """Compressed body inline, or None when it is spilled (see ``spill``)."""
    spill: BlobRef | None
    feedback_offsets: tuple[tuple[str, int, int], ...] = ()
    """(topic, partition, next offset) of the feedback partitions joined to this one."""

    @property
    def key(self) -> bytes:
        return head_key(self.group, self.topic, self.partition, self.write)


@dataclass(frozen=True, slots=True)
class StateRecord:
    """Any record of the state topic, decoded as far as its key and header go."""

    kind: str
    """``epoch``, ``head``, ``chunk`` (format 2) or ``v1`` (a whole-state checkpoint)."""
    group: str
    topic: str
    partition: int
    epoch: int = 0
    head: Head | None = None
    legacy: Checkpoint | None = None
    fences: tuple[Fence, ...] = ()
    """An epoch claim's fences, newest first."""

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


def _key(group: str, topic: str, partition: int, kind: str, *rest: Any) -> bytes:
    return orjson.dumps([KEY_TAG, group, topic, partition, kind, *rest])


def epoch_key(group: str, topic: str, partition: int) -> bytes:
    """The key of the partition's epoch claim (the one record that is overwritten)."""
    return _key(group, topic, partition, "epoch")


def head_key(group: str, topic: str, partition: int, write: WriteId) -> bytes:
    return _key(group, topic, partition, "head", *write.as_list())


def chunk_key(
    group: str, topic: str, partition: int, write: WriteId, model: ModelKey | None, index: int
) -> bytes:
    """A chunk of one version's state (``model``) or of a spilled head body (None)."""
    name: list[str] | None = None if model is None else [model[0], model[1]]
    return _key(group, topic, partition, "chunk", *write.as_list(), name, index)


def blob_keys(
    group: str, topic: str, partition: int, model: ModelKey | None, ref: BlobRef
) -> list[bytes]:
    return [chunk_key(group, topic, partition, ref.write, model, i) for i in range(ref.chunks)]


@dataclass(frozen=True, slots=True)
class Fence:
    """Epoch ``epoch`` claimed the partition resuming from ``resumed_from`` (None: from
    no checkpoint): heads of older epochs newer than that were written after the claim."""

    epoch: int
    resumed_from: WriteId | None

    def excludes(self, write: WriteId) -> bool:
        """Whether a head written as ``write`` came from a fenced-out (zombie) writer.

        >>> fence = Fence(3, WriteId(2, 7, "a"))
        >>> fence.excludes(WriteId(2, 7, "a")), fence.excludes(WriteId(2, 8, "a"))
        (False, True)
        >>> fence.excludes(WriteId(3, 1, "b")), Fence(3, None).excludes(WriteId(1, 1, "a"))
        (False, True)
        """
        if write.epoch >= self.epoch:
            return False
        return self.resumed_from is None or write > self.resumed_from


#: Fences a claim carries: its own and those of the claims before it (older ones fence
#: only heads far behind every later claim's).
MAX_FENCES = 8


def encode_epoch(epoch: int, fences: Iterable[Fence] = ()) -> bytes:
    """The epoch claim; ``fences`` newest first (the claim's own first)."""
    body = {
        "epoch": epoch,
        "fences": [
            [f.epoch, None if f.resumed_from is None else f.resumed_from.as_list()]
            for f in list(fences)[:MAX_FENCES]
        ],
    }
    return _V2.pack(MAGIC2, FORMAT, _KIND_EPOCH) + orjson.dumps(body)


def _decode_fences(raw: Any) -> tuple[Fence, ...]:
    fences = []
    for epoch, resumed in raw:
        write = None
        if resumed is not None:
            write = WriteId(int(resumed[0]), int(resumed[2]), str(resumed[1]))
        fences.append(Fence(int(epoch), write))
    return tuple(fences)


def encode_blob(
    group: str, topic: str, partition: int, write: WriteId, model: ModelKey | None, data: bytes
) -> tuple[BlobRef, list[tuple[bytes, bytes]]]:
    """Compress ``data`` and cut it into chunk records of at most MAX_STATE_RECORD_BYTES."""
    compressed = zlib.compress(data, 1)
    digest = hashlib.sha256(compressed).hexdigest()
    records: list[tuple[bytes, bytes]] = []
    start = 0
    while start < len(compressed) or not records:
        key = chunk_key(group, topic, partition, write, model, len(records))
        room = MAX_STATE_RECORD_BYTES - len(key) - _V2.size
        if room < 1024:
            raise ValueError(f"state key too long ({len(key)} bytes)")
        piece = compressed[start : start + room]
        records.append((key, _V2.pack(MAGIC2, FORMAT, _KIND_CHUNK) + piece))
        start += len(piece)
    return BlobRef(write, len(records), digest, len(compressed)), records


def encode_head(
    group: str,
    topic: str,
    partition: int,
    write: WriteId,
    next_offset: int,
    head_state: bytes,
    versions: Mapping[ModelKey, BlobRef],
    feedback_offsets: Iterable[tuple[str, int, int]] = (),
) -> list[tuple[bytes, bytes]]:
    """The head record (last) and, for a large head body, the chunks it spills into."""
    body = orjson.dumps(
        {
            "state": head_state.decode(),
            "versions": [
                [k[0], k[1], r.write.epoch, r.write.writer, r.write.seq, r.chunks, r.sha256, r.size]
                for k, r in versions.items()
            ],
        }
    )
    records: list[tuple[bytes, bytes]] = []
    compressed = zlib.compress(body, 1)
    spill: BlobRef | None = None
    if len(compressed) > _HEAD_INLINE_BYTES:
        spill, records = encode_blob(group, topic, partition, write, None, body)
        compressed = b""
    fields: dict[str, Any] = {
        "next_offset": next_offset,
        "epoch": write.epoch,
        "writer": write.writer,
        "seq": write.seq,
        "spill": None if spill is None else [spill.chunks, spill.sha256, spill.size],
    }
    feedback = [list(f) for f in feedback_offsets]
    if feedback:  # only then: heads without feedback partitions keep their bytes
        fields["feedback_offsets"] = feedback
    meta = orjson.dumps(fields)
    value = _V2.pack(MAGIC2, FORMAT, _KIND_HEAD) + _U32.pack(len(meta)) + meta + compressed
    records.append((head_key(group, topic, partition, write), value))
    return records


def decode_record(key: bytes, value: bytes) -> StateRecord:
    """Decode a state record of either format; ValueError on anything malformed."""
    try:
        parsed = orjson.loads(key)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"malformed state record key: {exc}") from None
    if not (isinstance(parsed, list) and parsed and parsed[0] == KEY_TAG):
        group, checkpoint = decode_checkpoint(key, value)
        return StateRecord("v1", group, checkpoint.topic, checkpoint.partition, legacy=checkpoint)
    try:
        _, group, topic, partition, kind, *rest = parsed
        magic, version, code = _V2.unpack_from(value)
        group, topic, partition = str(group), str(topic), int(partition)
    except (ValueError, TypeError, struct.error) as exc:
        raise ValueError(f"malformed state record: {exc}") from None
    if magic != MAGIC2 or version != FORMAT:
        raise ValueError(f"unsupported state record format {magic!r} v{version}")
    try:
        if kind == "epoch" and code == _KIND_EPOCH:
            body = orjson.loads(value[_V2.size :])
            # Claims written before fences existed carry none.
            fences = _decode_fences(body.get("fences", []))
            return StateRecord(kind, group, topic, partition, int(body["epoch"]), fences=fences)
        if kind == "chunk" and code == _KIND_CHUNK:
            return StateRecord(kind, group, topic, partition, epoch=int(rest[0]))
        if kind == "head" and code == _KIND_HEAD:
            (size,) = _U32.unpack_from(value, _V2.size)
            start = _V2.size + _U32.size
            meta = orjson.loads(value[start : start + size])
            write = WriteId(int(meta["epoch"]), int(meta["seq"]), str(meta["writer"]))
            if write.as_list() != rest:
                raise ValueError("head key and value disagree")
            spill = None
            if meta["spill"] is not None:
                chunks, digest, total = meta["spill"]
                spill = BlobRef(write, int(chunks), str(digest), int(total))
            head = Head(
                group,
                topic,
                partition,
                write,
                int(meta["next_offset"]),
                None if spill is not None else value[start + size :],
                spill,
                tuple((str(t), int(p), int(o)) for t, p, o in meta.get("feedback_offsets", [])),
            )
            return StateRecord(kind, group, topic, partition, epoch=write.epoch, head=head)
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError, IndexError, struct.error) as e:
        raise ValueError(f"malformed state {kind} record: {e}") from None
    raise ValueError(f"unknown state record kind {kind!r}/{code}")


@dataclass(slots=True)
class PartitionRecords:
    """Every live record of one input partition (of one group) on the state topic."""

    topic: str
    partition: int
    values: dict[bytes, bytes] = field(default_factory=dict)
    """Live key -> value (chunks and heads; tombstoned keys removed)."""
    heads: dict[bytes, Head] = field(default_factory=dict)
    legacy: Checkpoint | None = None
    legacy_key: bytes | None = None
    max_epoch: int = 0
    fences: tuple[Fence, ...] = ()
    """The fences of the partition's epoch claim (the one key, so the last read is the
    last written)."""

    def add(self, key: bytes, value: bytes | None, record: StateRecord | None) -> None:
        if value is None:
            self.values.pop(key, None)
            self.heads.pop(key, None)
            if key == self.legacy_key:
                self.legacy = self.legacy_key = None
            return
        if record is None:
            return
        self.max_epoch = max(self.max_epoch, record.epoch)
        if record.kind == "v1":
            self.legacy, self.legacy_key = record.legacy, key
        elif record.kind == "epoch":
            self.fences = record.fences
        else:
            self.values[key] = value
            if record.head is not None:
                self.heads[key] = record.head

    def fenced(self, head: Head) -> bool:
        """Whether ``head`` was written by a zombie (see :class:`Fence`)."""
        return any(fence.excludes(head.write) for fence in self.fences)

    def live_keys(self) -> set[bytes]:
        """Keys a new head may make garbage (everything but the epoch claim)."""
        keys = set(self.values)
        if self.legacy_key is not None:
            keys.add(self.legacy_key)
        return keys


class NoConsistentCheckpointError(ValueError):
    """A partition has checkpoints but none can be restored (a bug or lost records)."""


@dataclass(frozen=True, slots=True)
class Restored:
    """A consistent state to resume from: format 2 parts, or a format 1 whole state."""

    next_offset: int
    head: Head | None
    head_state: bytes
    versions: dict[ModelKey, bytes]
    refs: dict[ModelKey, BlobRef]
    legacy: bool = False
    skipped: tuple[str, ...] = ()
    """Why newer heads were not used (inconsistent: missing chunk, hash mismatch)."""


def _blob(records: PartitionRecords, head: Head, model: ModelKey | None, ref: BlobRef) -> bytes:
    parts = []
    for key in blob_keys(head.group, head.topic, head.partition, model, ref):
        value = records.values.get(key)
        if value is None:
            raise ValueError(f"chunk {key.decode(errors='replace')} missing")
        parts.append(value[_V2.size :])
    data = b"".join(parts)
    if len(data) != ref.size or hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ValueError(f"state of {model or 'the head'} does not match its SHA-256")
    try:
        return zlib.decompress(data)
    except zlib.error as exc:
        raise ValueError(f"corrupt state of {model or 'the head'}: {exc}") from None


def assemble(records: PartitionRecords, head: Head) -> Restored:
    """``head`` with every version state it references, verified; ValueError if any part
    is missing or does not match its hash."""
    if head.spill is not None:
        body = _blob(records, head, None, head.spill)
    else:
        assert head.body is not None
        try:
            body = zlib.decompress(head.body)
        except zlib.error as exc:
            raise ValueError(f"corrupt head: {exc}") from None
    parsed = orjson.loads(body)
    refs: dict[ModelKey, BlobRef] = {}
    for model_id, version, epoch, writer, seq, chunks, digest, size in parsed["versions"]:
        write = WriteId(int(epoch), int(seq), str(writer))
        refs[(str(model_id), str(version))] = BlobRef(write, int(chunks), str(digest), int(size))
    versions = {model: _blob(records, head, model, ref) for model, ref in refs.items()}
    return Restored(head.next_offset, head, str(parsed["state"]).encode(), versions, refs)


def select(records: PartitionRecords) -> Restored | None:
    """The newest consistent checkpoint: the format 2 head with the highest (epoch,
    sequence) whose parts are all present and match their hashes; else the next one;
    else a format 1 checkpoint (upgraded); else None when nothing was ever written.
    Heads a fence rules out (written by a zombie) are ignored as if never written.
    Raises :class:`NoConsistentCheckpointError` when heads exist but none is consistent.
    Read order plays no part."""
    skipped: list[str] = []
    heads = [h for h in records.heads.values() if not records.fenced(h)]
    for head in sorted(heads, key=lambda h: h.write, reverse=True):
        try:
            restored = assemble(records, head)
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError) as exc:
            skipped.append(f"head {head.write.as_list()}: {exc}")
            continue
        return Restored(
            restored.next_offset,
            restored.head,
            restored.head_state,
            restored.versions,
            restored.refs,
            skipped=tuple(skipped),
        )
    if records.legacy is not None:
        legacy = records.legacy
        return Restored(legacy.next_offset, None, legacy.state, {}, {}, True, tuple(skipped))
    if skipped:
        # State was written but none of it can be continued: resuming from the committed
        # offset would silently forget it (firing alerts never resolved).
        raise NoConsistentCheckpointError("no consistent checkpoint: " + "; ".join(skipped))
    return None


def referenced_keys(head: Head, refs: Mapping[ModelKey, BlobRef]) -> set[bytes]:
    """Every key ``head`` needs: itself, its spilled body and its versions' chunks."""
    keys = {head.key}
    g, t, p = head.group, head.topic, head.partition
    if head.spill is not None:
        keys.update(blob_keys(g, t, p, None, head.spill))
    for model, ref in refs.items():
        keys.update(blob_keys(g, t, p, model, ref))
    return keys


async def read_state(
    reader: AIOKafkaConsumer,
    tps: list[TopicPartition],
    group_id: str,
    wanted: Iterable[TopicPartition] | None = None,
) -> dict[TopicPartition, PartitionRecords]:
    """Every live record of ``group_id`` on the state topic (partitions ``tps``, read from
    the beginning to their current end), by input partition (only ``wanted`` ones)."""
    out: dict[TopicPartition, PartitionRecords] = {}
    if not tps:
        return out
    keep = None if wanted is None else set(wanted)
    reader.assign(tps)
    ends = await reader.end_offsets(tps)
    for tp in tps:
        reader.seek(tp, 0)
    remaining = {tp for tp in tps if ends[tp] > 0}
    while remaining:
        batch = await reader.getmany(*remaining, timeout_ms=1000)
        for tp, batch_records in batch.items():
            for record in batch_records:
                if record.key is None:
                    continue
                owner = _owner(record.key)
                if owner is None or owner[0] != group_id:
                    continue
                input_tp = TopicPartition(owner[1], owner[2])
                if keep is not None and input_tp not in keep:
                    continue
                decoded: StateRecord | None = None
                if record.value is not None:
                    try:
                        decoded = decode_record(record.key, record.value)
                    except ValueError as exc:
                        log.warning("skipping state record %s@%d: %s", tp, record.offset, exc)
                entry = out.get(input_tp)
                if entry is None:
                    entry = out[input_tp] = PartitionRecords(*input_tp)
                entry.add(record.key, record.value, decoded)
        for tp in list(remaining):
            if await reader.position(tp) >= ends[tp]:
                remaining.discard(tp)
    return out


def _owner(key: bytes) -> tuple[str, str, int] | None:
    """(group, input topic, input partition) named by a state record key of either format."""
    try:
        parsed = orjson.loads(key)
        if isinstance(parsed, list) and parsed and parsed[0] == KEY_TAG:
            parsed = parsed[1:4]
        group, topic, partition = parsed[:3]
        return str(group), str(topic), int(partition)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class EncodedCheckpoint:
    """One checkpoint of one input partition in format 2, ready to send."""

    chunks: list[tuple[bytes, bytes]]
    """Chunk records of the versions written at this checkpoint and of a spilled head
    body: all acknowledged before the head is sent."""
    head: tuple[bytes, bytes]
    refs: dict[ModelKey, BlobRef]
    """The reference of every monitored version (rewritten or kept)."""
    referenced: set[bytes]
    """Every key the head needs (itself included): nothing else of the partition's is live
    once the head is acknowledged."""
    versions_written: int

    @property
    def records(self) -> int:
        return len(self.chunks) + 1

    @property
    def bytes(self) -> int:
        return sum(len(k) + len(v) for k, v in self.chunks) + len(self.head[0]) + len(self.head[1])

    @property
    def largest(self) -> int:
        return max(len(k) + len(v) for k, v in [*self.chunks, self.head])


def encode_parts(
    group: str,
    topic: str,
    partition: int,
    write: WriteId,
    next_offset: int,
    head_state: bytes,
    monitored: Iterable[ModelKey],
    states: Mapping[ModelKey, bytes],
    previous: Mapping[ModelKey, BlobRef],
    feedback_offsets: Iterable[tuple[str, int, int]] = (),
) -> EncodedCheckpoint:
    """Encode a checkpoint: the ``states`` given (changed versions) as new chunks, every
    other monitored version by its ``previous`` reference. Pure (no Kafka)."""
    chunks: list[tuple[bytes, bytes]] = []
    refs: dict[ModelKey, BlobRef] = {}
    for model in monitored:
        if model in states:
            ref, records = encode_blob(group, topic, partition, write, model, states[model])
            chunks += records
            refs[model] = ref
        else:
            refs[model] = previous[model]
    head_records = encode_head(
        group, topic, partition, write, next_offset, head_state, refs, feedback_offsets
    )
    chunks += head_records[:-1]
    head_key_, head_value = head_records[-1]
    decoded = decode_record(head_key_, head_value).head
    assert decoded is not None
    return EncodedCheckpoint(
        chunks,
        (head_key_, head_value),
        refs,
        referenced_keys(decoded, refs),
        len(states),
    )

"""The service's batch / acknowledgement / checkpoint / commit ordering, with fake Kafka clients.

No broker: the fakes record every send, acknowledgement and commit on one timeline, and the
tests hold, fail or release acknowledgements at will, so the race windows (a slow ack, a
failed ack, a revoke while a batch's outputs are in flight) happen deterministically.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError
from aiokafka.structs import OffsetAndMetadata

from driftline.config import Settings, parse_settings
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.service.app import KafkaClients, MonitorService
from driftline.service.checkpoints import (
    Head,
    PartitionRecords,
    assemble,
    decode_record,
    referenced_keys,
    select,
)
from driftline.service.metrics import ServiceMetrics
from driftline.service.publisher import FatalKafkaError
from driftline.service.records import UndecodableBatch

INPUT = "in"
TP = TopicPartition(INPUT, 0)
DEAD = "dead"
STATE = "state"


@dataclass(frozen=True)
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Broker:
    """The input partition, the acknowledged output records and one timeline of actions."""

    inputs: list[Any] = field(default_factory=list)
    """Values (bytes, or None: a tombstone), or records given whole (an UndecodableBatch)."""
    keys: dict[int, bytes] = field(default_factory=dict)
    """Keys of input records by offset (default: none)."""
    acked: list[tuple[str, bytes | None, bytes, dict[str, bytes]]] = field(default_factory=list)
    timeline: list[tuple[Any, ...]] = field(default_factory=list)
    committed: dict[TopicPartition, int] = field(default_factory=dict)

    def state_records(self) -> list[Record]:
        values = [(k, v) for topic, k, v, _ in self.acked if topic == STATE]
        return [Record(i, k, v) for i, (k, v) in enumerate(values)]

    def commits(self) -> list[int]:
        return [entry[1] for entry in self.timeline if entry[0] == "commit"]

    def index(self, *entry: Any) -> int:
        return self.timeline.index(entry)


class FakeProducer:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.hold = False
        """Keep acknowledgements back until :meth:`release` or :meth:`fail_held`."""
        self.hold_topic: str | None = None
        """Keep only this topic's acknowledgements back."""
        self.failures: list[BaseException] = []
        """Errors for the next sends, one each."""
        self.held: list[tuple[asyncio.Future[object], tuple[Any, ...]]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[object]:
        assert value is not None or key is not None, "Need at least one: key or value"  # aiokafka
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        record = (topic, key, value, dict(headers or []))
        self.broker.timeline.append(("send", *_label(record)))
        if self.failures:
            error = self.failures.pop(0)
            self.broker.timeline.append(("failed", *_label(record)))
            future.set_exception(error)
        elif self.hold or topic == self.hold_topic:
            self.held.append((future, record))
        else:
            self._ack(future, record)
        return future

    def _ack(self, future: asyncio.Future[object], record: tuple[Any, ...]) -> None:
        self.broker.acked.append(record)
        self.broker.timeline.append(("ack", *_label(record)))
        future.set_result(None)

    def release(self) -> None:
        self.hold = False
        self.hold_topic = None
        held, self.held = self.held, []
        for future, record in held:
            self._ack(future, record)

    def fail_held(self, error: BaseException) -> None:
        held, self.held = self.held, []
        for future, record in held:
            self.broker.timeline.append(("failed", *_label(record)))
            future.set_exception(error)


def _label(record: tuple[Any, ...]) -> tuple[Any, ...]:
    """A timeline entry's subject: (dead, source offset) or (state, next offset)."""
    topic, key, value, headers = record
    if topic == DEAD:
        return (DEAD, int(headers["driftline.source.offset"]))
    if topic == STATE:  # a checkpoint's head; its other records (chunks, epoch) apart
        if value is None:
            return (f"{STATE}:tombstone",)
        state = decode_record(key, value)
        if state.head is not None:
            return (STATE, state.head.next_offset)
        return (f"{STATE}:{state.kind}",)
    return (topic,)


def _heads(broker: Broker) -> list[Head]:
    """The heads of the acknowledged checkpoints, in order."""
    heads = []
    for topic, key, value, _ in broker.acked:
        if topic == STATE and value is not None:
            head = decode_record(key, value).head
            if head is not None:
                heads.append(head)
    return heads


def _restore_latest(pipeline: Pipeline, broker: Broker) -> None:
    """Restore ``pipeline`` from the state records the fake broker holds."""
    records = PartitionRecords(INPUT, 0)
    for topic, key, value, _ in broker.acked:
        if topic == STATE:
            records.add(key, value, None if value is None else decode_record(key, value))
    restored = select(records)
    assert restored is not None
    pipeline.restore_parts(restored.head_state, restored.versions)


class FakeConsumer:
    """The group consumer: one input partition, assigned at the first fetch."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.listener: Any = None
        self.assigned = False
        self.position: int | None = None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def subscribe(self, topics: list[str], listener: Any) -> None:
        assert topics == [INPUT]
        self.listener = listener

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]:
        if not self.assigned:  # aiokafka runs the rebalance callbacks inside the fetch
            self.assigned = True
            await self.listener.on_partitions_assigned([TP])
            return {}
        start = self.broker.committed.get(TP, 0) if self.position is None else self.position
        values = self.broker.inputs[start : start + max_records]
        if not values:
            await asyncio.sleep(0.005)
            return {}
        self.position = start + len(values)
        keys = self.broker.keys
        return {TP: [_record(start + i, keys.get(start + i), v) for i, v in enumerate(values)]}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position = offset

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.position = 0

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.broker.committed.get(tp)

    async def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        for tp, meta in offsets.items():
            self.broker.timeline.append(("commit", meta.offset))
            self.broker.committed[tp] = meta.offset

    def highwater(self, tp: TopicPartition) -> int:
        return len(self.broker.inputs)


def _record(offset: int, key: bytes | None, value: Any) -> Any:
    return Record(offset, key, value) if value is None or isinstance(value, bytes) else value


class FakeStateReader:
    """The state topic's reader (one partition holding every acknowledged state record)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.offset = 0

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def position(self, tp: TopicPartition) -> int:
        return self.offset

    def assign(self, tps: list[TopicPartition]) -> None:
        assert tps == [TopicPartition(STATE, 0)]

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.broker.state_records()) for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.offset = offset

    async def getmany(self, *tps: TopicPartition, timeout_ms: int) -> dict[TopicPartition, Any]:
        records = self.broker.state_records()[self.offset :]
        self.offset += len(records)
        return {tps[0]: records}


def _settings(interval_events: int) -> Settings:
    return parse_settings(
        {
            "warmup_events": 100,
            "kafka": {
                "input_topics": [INPUT],
                "dead_letter_topic": DEAD,
                "state_topic": STATE,
                "max_batch_records": 3,
            },
            "checkpoint": {"interval_events": interval_events, "interval_seconds": 3600},
        }
    )


async def _one_state_partition(settings: Settings) -> int:
    return 1


async def _no_probe() -> None:
    await asyncio.Event().wait()


@dataclass
class Harness:
    broker: Broker
    producer: FakeProducer
    consumer: FakeConsumer
    service: MonitorService
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        for _ in range(2_000):
            if condition():
                return
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.002)
        raise AssertionError(f"timed out waiting for {what}: {self.broker.timeline}")

    def sent(self, *entry: Any) -> bool:
        return ("send", *entry) in self.broker.timeline

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 5)


async def _start(broker: Broker, interval_events: int = 1_000) -> Harness:
    producer = FakeProducer(broker)
    consumer = FakeConsumer(broker)
    state_reader = FakeStateReader(broker)

    def clients(settings: Settings) -> KafkaClients:
        return KafkaClients(producer, state_reader, consumer)  # type: ignore[arg-type]

    settings = _settings(interval_events)
    service = MonitorService(
        settings,
        build_plan(settings, {}),
        ServiceMetrics(),
        clients=clients,
        topics=_one_state_partition,
        probe=_no_probe,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    harness = Harness(broker, producer, consumer, service, stop, task)
    # The partition's epoch claim is acknowledged at assignment, before any input.
    await harness.until(lambda: TP in service.partitions, "the assignment")
    return harness


def _good(start: int, n: int) -> list[bytes]:
    """Valid events of two model versions (each gets state to checkpoint: chunks)."""
    return [
        b'{"event_id": "e%d", "model_id": "m", "model_version": "%d", "timestamp": %d, '
        b'"features": {"x": %d.5}}' % (i, i % 2, 1_700_000_000 + i, i % 7)
        for i in range(start, start + n)
    ]


def _bad(n: int) -> list[bytes]:
    """Records that each become one dead letter: one output per input offset."""
    return [b"not json %d" % i for i in range(n)]


def _run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


def _assert_commits_follow_acks(broker: Broker) -> None:
    """Every commit comes after the acks of all outputs of the offsets it covers and after
    the ack of a checkpoint for exactly that offset."""
    assert broker.commits(), broker.timeline
    for offset in broker.commits():
        commit = broker.index("commit", offset)
        for source in range(offset):
            assert broker.index("ack", DEAD, source) < commit, (source, broker.timeline)
        assert broker.index("ack", STATE, offset) < commit, broker.timeline


# --------------------------------------------------------------------------- the tests


def test_offsets_are_committed_after_the_outputs_they_cover_and_their_checkpoint() -> None:
    async def test() -> None:
        broker = Broker(inputs=_bad(10))
        h = await _start(broker, interval_events=4)
        await h.until(lambda: h.service.partitions.get(TP) is not None, "assignment")
        await h.until(lambda: h.sent(DEAD, 9), "the last dead letter")
        await h.finish()  # shutdown: a last checkpoint and commit
        _assert_commits_follow_acks(broker)
        assert broker.commits() == [6, 10]  # batches of 3, a checkpoint once 4 events are due

    _run(test)


def test_the_checkpoint_holds_the_offset_it_is_committed_with() -> None:
    async def test() -> None:
        broker = Broker(inputs=_bad(5))
        h = await _start(broker, interval_events=2)
        await h.until(lambda: broker.commits()[-1:] == [5], "the last commit")
        await h.finish()
        states = _heads(broker)
        assert [s.next_offset for s in states] == broker.commits() == [3, 5]
        assert states[0].topic == INPUT and states[0].partition == 0

    _run(test)


def test_a_held_acknowledgement_holds_back_checkpoint_and_commit() -> None:
    async def test() -> None:
        broker = Broker()
        h = await _start(broker, interval_events=1)
        h.producer.hold = True
        broker.inputs += _bad(3)
        await h.until(lambda: h.sent(DEAD, 2), "the batch's outputs")
        await asyncio.sleep(0.2)  # the service has every chance to run ahead
        assert broker.commits() == []
        assert not h.sent(STATE, 3)
        part = h.service.partitions[TP]
        assert part.next_offset is None and part.events_since_checkpoint == 0
        h.producer.release()
        await h.until(lambda: broker.commits() == [3], "the commit")
        _assert_commits_follow_acks(broker)
        await h.finish()

    _run(test)


def test_a_retriable_failure_is_resent_and_the_commit_waits_for_it() -> None:
    async def test() -> None:
        broker = Broker()
        h = await _start(broker, interval_events=1)
        h.producer.failures = [KafkaTimeoutError()]  # the first output: offset 0
        broker.inputs += _bad(3)
        await h.until(lambda: broker.commits() == [3], "the commit")
        await h.finish()
        sends = [e for e in broker.timeline if e[:2] == ("send", DEAD)]
        # The batch's three outputs, then only the one that failed, again.
        assert [e[2] for e in sends] == [0, 1, 2, 0]
        assert broker.index("failed", DEAD, 0) < broker.index("ack", DEAD, 0)
        _assert_commits_follow_acks(broker)

    _run(test)


def test_a_fatal_failure_stops_the_service_and_commits_nothing_past_it() -> None:
    async def test() -> None:
        broker = Broker()
        h = await _start(broker, interval_events=1)
        h.producer.failures = [TopicAuthorizationFailedError()]
        broker.inputs += _bad(3)
        with pytest.raises(FatalKafkaError):
            await asyncio.wait_for(h.task, 5)
        assert broker.commits() == []
        assert not h.sent(STATE, 3)  # no checkpoint (the epoch claim was sent at assignment)

    _run(test)


def test_a_revoke_during_an_in_flight_batch_waits_for_its_acknowledgements() -> None:
    async def test() -> None:
        broker = Broker(inputs=_bad(3))
        h = await _start(broker)  # no checkpoint due before the revoke
        await h.until(lambda: broker.timeline[-1:] == [("ack", DEAD, 2)], "the first batch")
        await h.until(lambda: h.service.partitions[TP].next_offset == 3, "its offsets")
        h.producer.hold = True
        broker.inputs += _bad(3)
        await h.until(lambda: h.sent(DEAD, 5), "the second batch's outputs")
        revoke = asyncio.create_task(h.consumer.listener.on_partitions_revoked([TP]))
        await asyncio.sleep(0.2)
        assert not revoke.done(), "the revoke must wait for the batch"
        assert broker.commits() == [] and TP in h.service.partitions
        h.producer.release()
        await asyncio.wait_for(revoke, 5)
        assert broker.commits() == [6]
        _assert_commits_follow_acks(broker)
        # The checkpoint's state covers exactly the events before its offset.
        [state] = _heads(broker)
        pipeline = Pipeline(build_plan(h.service.settings, {}))
        _restore_latest(pipeline, broker)
        assert sum(pipeline.counters.dead_letters.values()) == state.next_offset == 6
        assert TP not in h.service.partitions
        await h.finish()

    _run(test)


def test_a_revoke_while_a_batch_fails_commits_nothing_past_the_acknowledged() -> None:
    async def test() -> None:
        broker = Broker(inputs=_bad(3))
        h = await _start(broker, interval_events=3)
        await h.until(lambda: broker.commits() == [3], "the first batch's commit")
        h.producer.hold = True
        broker.inputs += _bad(3)
        await h.until(lambda: h.sent(DEAD, 5), "the second batch's outputs")
        revoke = asyncio.create_task(h.consumer.listener.on_partitions_revoked([TP]))
        await asyncio.sleep(0.05)
        h.producer.fail_held(TopicAuthorizationFailedError())
        with pytest.raises(FatalKafkaError):
            await asyncio.wait_for(h.task, 5)
        await asyncio.wait_for(revoke, 5)
        assert broker.commits() == [3], broker.timeline
        assert not h.sent(STATE, 6)

    _run(test)


def test_a_restart_resumes_at_the_checkpoint_and_redoes_only_what_it_does_not_cover() -> None:
    async def test() -> None:
        broker = Broker(inputs=_bad(3))
        first = await _start(broker, interval_events=3)
        await first.until(lambda: broker.commits() == [3], "the first commit")
        first.producer.hold = True  # the second batch's outputs never get acknowledged
        broker.inputs += _bad(3)
        await first.until(lambda: first.sent(DEAD, 5), "the second batch's outputs")
        first.producer.fail_held(TopicAuthorizationFailedError())
        with pytest.raises(FatalKafkaError):
            await asyncio.wait_for(first.task, 5)

        broker.timeline.clear()
        second = await _start(broker, interval_events=3)
        await second.until(lambda: broker.commits() == [6], "the second run's commit")
        await second.finish()
        redone = [e[2] for e in broker.timeline if e[:2] == ("send", DEAD)]
        assert redone == [3, 4, 5]
        assert second.service.partitions == {}

    _run(test)


def test_the_epoch_claim_is_acknowledged_before_the_partition_is_consumed() -> None:
    async def test() -> None:
        broker = Broker(inputs=_bad(3))
        h = await _start(broker)
        await h.until(lambda: h.sent(DEAD, 2), "the outputs")
        await h.finish()
        claim = broker.index("ack", f"{STATE}:epoch")
        assert claim < broker.index("send", DEAD, 0), broker.timeline
        assert [e for e in broker.timeline if e[:2] == ("send", f"{STATE}:epoch")] == [
            ("send", f"{STATE}:epoch")
        ]  # one claim per adoption, none at the checkpoints

    _run(test)


def test_consumption_goes_on_while_a_checkpoint_is_written() -> None:
    async def test() -> None:
        broker = Broker()
        h = await _start(broker, interval_events=3)
        h.producer.hold_topic = STATE  # the checkpoint's records wait for their acks
        broker.inputs += _bad(3)
        await h.until(lambda: h.sent(STATE, 3), "the checkpoint's head")
        broker.inputs += _bad(6)
        # Later batches are processed and their outputs acknowledged meanwhile ...
        await h.until(lambda: ("ack", DEAD, 8) in broker.timeline, "later outputs")
        assert broker.commits() == [] and ("ack", STATE, 3) not in broker.timeline
        # ... and the checkpoint, once acknowledged, covers exactly the events it was
        # taken at (offset 3), not those processed while it was written.
        h.producer.release()
        await h.until(lambda: 3 in broker.commits(), "the commit")
        await h.finish()
        assert _heads(broker)[0].next_offset == 3
        pipeline = Pipeline(build_plan(h.service.settings, {}))
        _restore_state(pipeline, broker, _heads(broker)[0])
        assert sum(pipeline.counters.dead_letters.values()) == 3
        _assert_commits_follow_acks(broker)

    _run(test)


def test_chunks_are_acknowledged_before_heads_and_tombstones_spare_what_heads_need() -> None:
    async def test() -> None:
        broker = Broker()
        h = await _start(broker, interval_events=3)
        for _ in range(4):  # four checkpoints, each superseding the one before
            offset = len(broker.inputs) + 3
            broker.inputs += _good(len(broker.inputs), 3)
            await h.until(lambda: offset in broker.commits(), f"the commit of {offset}")  # noqa: B023
        await h.finish()
        acked = [(k, v) for topic, k, v, _ in broker.acked if topic == STATE]
        live: dict[bytes, bytes] = {}
        for key, value in acked:
            if value is None:
                assert key in live, "a tombstone for a key never written"
                del live[key]
            else:
                record = decode_record(key, value)
                if record.head is not None:
                    # Every record the head needs was acknowledged before it.
                    needed = _needed_keys({**live, key: value}, record.head)
                    assert needed <= set(live) | {key}, (needed - set(live), broker.timeline)
                live[key] = value
        # After the last checkpoint only its records (and the epoch claim) are live, and
        # they restore.
        heads = [decode_record(k, v).head for k, v in live.items()]
        [head] = [h for h in heads if h is not None]
        assert head.next_offset == 12
        assert _needed_keys(live, head) | {_claim_key(live)} == set(live)
        assert len(live) == 4  # the claim, the head and the two versions' chunks

    _run(test)


def _claim_key(live: dict[bytes, bytes]) -> bytes:
    [key] = [k for k, v in live.items() if decode_record(k, v).kind == "epoch"]
    return key


def _needed_keys(live: dict[bytes, bytes], head: Head) -> set[bytes]:
    """The keys ``head`` references, checked present (with their hashes) in ``live``."""
    records = PartitionRecords(INPUT, 0)
    for key, value in live.items():
        records.add(key, value, decode_record(key, value))
    restored = assemble(records, head)
    return referenced_keys(head, restored.refs)


def _restore_state(pipeline: Pipeline, broker: Broker, head: Head) -> None:
    records = PartitionRecords(INPUT, 0)
    for topic, key, value, _ in broker.acked:
        if topic == STATE:
            records.add(key, value, None if value is None else decode_record(key, value))
    restored = assemble(records, head)
    pipeline.restore_parts(restored.head_state, restored.versions)


def test_tombstones_and_undecodable_batches_are_dead_letters_and_the_offsets_pass_them() -> None:
    async def test() -> None:
        undecodable = UndecodableBatch(2, 2, "UnsupportedCodecError: lz4")
        broker = Broker(inputs=[b"not json", None, undecodable, b"", b"{}", None])
        broker.keys = {1: b"k1", 5: b"k5"}
        h = await _start(broker, interval_events=6)
        await h.until(lambda: broker.commits() == [6], "the commit past every record")
        await h.finish()
        dead = [(v, h) for topic, _, v, h in broker.acked if topic == DEAD]
        assert [k for topic, k, _, _ in broker.acked if topic == DEAD] == [
            *(None, b"k1", None, None, None, b"k5")
        ]
        assert [(v, h["driftline.reason"], int(h["driftline.source.offset"])) for v, h in dead] == [
            (b"not json", b"invalid_json", 0),
            (None, b"null_value", 1),
            (b"", b"undecodable_record", 2),  # no key either: empty, not null
            (b"", b"invalid_json", 3),
            (b"{}", b"missing_field", 4),
            (None, b"null_value", 5),
        ]
        assert dead[2][1]["driftline.source.last_offset"] == b"2"
        assert dead[2][1]["driftline.message"] == b"UnsupportedCodecError: lz4"
        assert all("content-type" not in headers for _, headers in dead)
        [head] = _heads(broker)
        restored = Pipeline(build_plan(_settings(6), {}))
        _restore_latest(restored, broker)
        assert restored.counters.dead_letters == {
            "invalid_json": 2,
            "missing_field": 1,
            "null_value": 2,
            "undecodable_record": 1,
        }
        assert head.next_offset == 6

    _run(test)

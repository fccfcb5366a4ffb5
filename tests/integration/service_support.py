"""Helpers for service tests: topics, producing a scenario, running `driftline run`, reading
output topics, and the replay reference to compare against."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from driftline.config import Settings, parse_settings
from driftline.demo.scenario import (
    Drift,
    credit_scoring_scenario,
    event_lines,
    write_reference_csv,
)
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import save_profile
from driftline.profile_io import build_profile_from_file
from driftline.service.topics import create_topics

MODELS = ("credit-a", "credit-b", "credit-c")


@dataclass
class Deployment:
    """A unique set of topics and a group, a config file and its parsed settings."""

    root: Path
    config: Path
    settings: Settings
    raw: dict[str, Any]


def make_deployment(
    root: Path,
    bootstrap: str,
    unique: str,
    *,
    partitions: int = 3,
    models: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> Deployment:
    """``models``: the ``models`` setting (default: the credit scenario's three models, their
    reference profiles built here)."""
    profiles = [] if models is None else models
    for model in MODELS if models is None else ():
        scenario = credit_scoring_scenario(events=10, model_id=model, model_version="1", drifts=())
        data = root / f"{model}.csv"
        write_reference_csv(scenario, 5_000, data)
        profile = build_profile_from_file(data, model_id=model, model_version="1")
        path = root / f"{model}.profile.json"
        save_profile(profile, path)
        profiles.append({"model_id": model, "reference_profile": str(path)})
    raw: dict[str, Any] = {
        "deployment": "it",
        "window": {"events": 500},
        "models": profiles,
        "kafka": {
            "bootstrap_servers": bootstrap,
            "group_id": f"{unique}-group",
            "input_topics": [f"{unique}-in"],
            "alerts_topic": f"{unique}-alerts",
            "retrain_topic": f"{unique}-retrain",
            "dead_letter_topic": f"{unique}-dead",
            "state_topic": f"{unique}-state",
            "partitions": partitions,
            "replication_factor": 1,
            "max_batch_records": 700,
        },
        "checkpoint": {"interval_seconds": 1.0, "interval_events": 2_000},
        "http": {"port": 0},
    }
    for key, value in extra.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    config = root / "driftline.yaml"
    config.write_text(yaml.safe_dump(raw))
    settings = parse_settings(raw)
    asyncio.run(create_topics(settings))
    return Deployment(root, config, settings, raw)


def scenario_events(per_model: int = 6_000) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs: three models interleaved, each drifting from its middle."""
    streams = []
    for i, model in enumerate(MODELS):
        scenario = credit_scoring_scenario(
            events=per_model,
            model_id=model,
            model_version="1",
            seed=i,
            rate=100.0,
            drifts=(Drift("amount", "mean_shift", start=per_model // 2, magnitude=1.5),),
        )
        streams.append([(model.encode(), line) for line in event_lines(scenario)])
    merged = [pair for group in zip(*streams, strict=True) for pair in group]
    return merged


async def _produce(bootstrap: str, topic: str, pairs: Sequence[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in pairs]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def produce(deployment: Deployment, pairs: Sequence[tuple[bytes, bytes]]) -> None:
    kafka = deployment.settings.kafka
    asyncio.run(_produce(kafka.bootstrap_servers, kafka.input_topics[0], pairs))


@dataclass
class Record:
    key: bytes | None
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)
    partition: int = 0


async def _read_all(bootstrap: str, topic: str) -> list[Record]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await _partitions(bootstrap, topic)
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        out: list[Record] = []
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batch.items():
                out.extend(Record(r.key, r.value, dict(r.headers), tp.partition) for r in records)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return out
    finally:
        await _stop(consumer)


async def _partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def _stop(consumer: AIOKafkaConsumer) -> None:
    # aiokafka#647: stop() soon after start() can raise CancelledError from an internal task.
    with contextlib.suppress(asyncio.CancelledError):
        await consumer.stop()


def read_topic(deployment: Deployment, topic: str) -> list[Record]:
    return asyncio.run(_read_all(deployment.settings.kafka.bootstrap_servers, topic))


async def _committed_total(settings: Settings) -> int:
    kafka = settings.kafka
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=kafka.group_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        topic = kafka.input_topics[0]
        tps = await _partitions(kafka.bootstrap_servers, topic)
        total = 0
        for tp in tps:
            total += await consumer.committed(tp) or 0
        return total
    finally:
        await _stop(consumer)


def committed_total(deployment: Deployment) -> int:
    return asyncio.run(_committed_total(deployment.settings))


class ServiceProcess:
    """`python -m driftline run --config FILE` as a child process."""

    def __init__(
        self,
        deployment: Deployment,
        log_name: str = "service",
        env: dict[str, str] | None = None,
        *,
        module: str = "driftline",
    ) -> None:
        """``env``: environment variables to set on top of this process's; ``module``: what
        ``python -m`` runs with ``run --config FILE`` (a test wrapper of the CLI, e.g.
        ``tests.integration.torn_checkpoint 3 2``)."""
        self.log = deployment.root / f"{log_name}.log"
        self.handle = self.log.open("wb")
        env = {**self.child_env(), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *module.split(), "run", "--config", str(deployment.config)],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.port = self._wait_for_port()

    @staticmethod
    def child_env() -> dict[str, str]:
        """This process's environment for a ``python -m driftline`` child: unbuffered, the
        tests package importable."""
        root = str(Path(__file__).resolve().parents[2])  # the tests package's parent
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}

    def _wait_for_port(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(rb"http: [\d.]+:(\d+)", self.log.read_bytes())
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited early:\n{self.output()}")
            time.sleep(0.1)
        raise AssertionError(f"service printed no HTTP port:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def metric(self, name: str) -> float:
        """Sum of a metric's samples (all labels) from /metrics."""
        _, body = self.get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get("/readyz")[0] == 200:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited:\n{self.output()}")
            time.sleep(0.2)
        raise AssertionError(f"service never became ready:\n{self.output()}")

    def wait_consumed(self, events: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.metric("driftline_events_consumed_total") >= events:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited:\n{self.output()}")
            time.sleep(0.2)
        raise AssertionError(f"service did not consume {events} events:\n{self.output()}")

    def terminate(self, timeout: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.handle.close()
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)
        self.handle.close()


def wait_committed(deployment: Deployment, events: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if committed_total(deployment) >= events:
            return
        time.sleep(0.5)
    raise AssertionError(f"committed offsets never reached {events}")


def replay_reference(deployment: Deployment, values: Iterable[bytes]) -> dict[str, list[bytes]]:
    """What `driftline replay` produces for the same events (alerts, retrain, dead letters)."""
    pipeline = Pipeline(build_plan(deployment.settings))
    alerts: list[bytes] = []
    retrain: list[bytes] = []
    dead: list[bytes] = []
    batch: list[bytes] = []
    for value in [*values, None]:
        if value is not None:
            batch.append(value)
        if len(batch) == 1000 or (value is None and batch):
            output = pipeline.process(batch)
            alerts += [a.to_json() for a in output.alerts]
            retrain += [r.to_json() for r in output.retrain_requests]
            dead += [d.payload for d in output.dead_letters]
            batch = []
    return {"alerts": alerts, "retrain": retrain, "dead": dead}


def dedup(values: Iterable[bytes]) -> list[bytes]:
    """Distinct events by CloudEvents id, first occurrence order."""
    seen: set[str] = set()
    out = []
    for value in values:
        event_id = orjson.loads(value)["id"]
        if event_id not in seen:
            seen.add(event_id)
            out.append(value)
    return out


def by_key_order(values: Iterable[bytes], key: str) -> dict[str, list[str]]:
    """Ids per alert fingerprint (or retrain subject) in order: the per-key sequence."""
    out: dict[str, list[str]] = {}
    for value in values:
        event = orjson.loads(value)
        k = event["data"]["fingerprint"] if key == "fingerprint" else event["subject"]
        out.setdefault(k, []).append(event["id"])
    return out


# -- chaos-test helpers (tests/integration/test_chaos.py) -----------------------------------


class StreamProducer:
    """Produce ``pairs`` from a background thread in chunks, pausing between chunks, so the
    stream keeps arriving while a test breaks things. ``produced`` counts acknowledged
    records; ``join()`` waits for the end and re-raises a producer failure."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        pairs: Sequence[tuple[bytes, bytes]],
        *,
        chunk: int = 1_000,
        pause: float = 0.1,
    ) -> None:
        import threading

        self.bootstrap = bootstrap
        self.topic = topic
        self.pairs = pairs
        self.chunk = chunk
        self.pause = pause
        self.produced = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="stream-producer", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by join()
            self.error = exc

    async def _run(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, linger_ms=5, enable_idempotence=True
        )
        await producer.start()
        try:
            for start in range(0, len(self.pairs), self.chunk):
                part = self.pairs[start : start + self.chunk]
                futures = [await producer.send(self.topic, v, key=k) for k, v in part]
                await asyncio.gather(*futures)
                self.produced += len(part)
                await asyncio.sleep(self.pause)
        finally:
            await producer.stop()

    def join(self, timeout: float = 300.0) -> None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise AssertionError(f"producer still running after {timeout} s")
        if self.error is not None:
            raise self.error


def service_status(service: ServiceProcess) -> dict[str, Any]:
    code, body = service.get("/v1/status")
    assert code == 200, body
    result: dict[str, Any] = orjson.loads(body)
    return result


def status_next_offsets(service: ServiceProcess) -> int:
    """Sum of the next offsets of the partitions the service holds (0 when it holds none)."""
    try:
        partitions = service_status(service)["partitions"]
    except (OSError, AssertionError):
        return 0
    return sum(p["next_offset"] or 0 for p in partitions)


def status_counts(*services: ServiceProcess) -> tuple[dict[str, int], dict[str, int]]:
    """Events per model version and dead letters per reason, summed over the partitions the
    services hold (counts are part of the checkpointed state, so they cover each partition
    from its first event)."""
    events: dict[str, int] = {}
    dead: dict[str, int] = {}
    for service in services:
        for partition in service_status(service)["partitions"]:
            for key, n in partition["events"].items():
                events[key] = events.get(key, 0) + n
            for reason, n in partition["dead_letters"].items():
                dead[reason] = dead.get(reason, 0) + n
    return events, dead


def wait_processed(
    deployment: Deployment, services: Sequence[ServiceProcess], events: int, timeout: float
) -> None:
    """Until the services' partitions together cover ``events`` input records and the group's
    committed offsets reached them too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for service in services:
            if service.proc.poll() is not None:
                raise AssertionError(f"service exited:\n{service.output()}")
        if sum(status_next_offsets(s) for s in services) >= events:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"services did not process {events} events in {timeout} s")
    wait_committed(deployment, events, timeout=max(deadline - time.monotonic(), 10.0))


@dataclass
class ReplayResult:
    """`driftline replay`'s outputs and counters for a list of values."""

    outputs: dict[str, list[bytes]]
    events: dict[str, int]
    dead_letters: dict[str, int]


def replay_with_counts(deployment: Deployment, values: Sequence[bytes]) -> ReplayResult:
    pipeline = Pipeline(build_plan(deployment.settings))
    outputs: dict[str, list[bytes]] = {"alerts": [], "retrain": [], "dead": []}
    for start in range(0, len(values), 1000):
        output = pipeline.process(values[start : start + 1000])
        outputs["alerts"] += [a.to_json() for a in output.alerts]
        outputs["retrain"] += [r.to_json() for r in output.retrain_requests]
        outputs["dead"] += [d.payload for d in output.dead_letters]
    counters = pipeline.counters
    return ReplayResult(
        outputs,
        {f"{k[0]}/{k[1]}": n for k, n in counters.events.items()},
        dict(counters.dead_letters),
    )


def assert_outputs_equal(
    deployment: Deployment, expected: dict[str, list[bytes]], alerts_read: Iterable[bytes] = ()
) -> None:
    """The deduplicated alert and retrain sequences equal ``expected`` (replay's), as a set
    and per key in order; ``alerts_read`` are alerts read earlier (e.g. before the topic was
    deleted), prepended to what the alerts topic holds now."""
    kafka = deployment.settings.kafka
    alerts = dedup([*alerts_read, *(r.value for r in read_topic(deployment, kafka.alerts_topic))])
    retrain = dedup(r.value for r in read_topic(deployment, kafka.retrain_topic))
    assert expected["alerts"], "the scenario must produce alerts"
    assert sorted(alerts) == sorted(expected["alerts"])
    assert by_key_order(alerts, "fingerprint") == by_key_order(expected["alerts"], "fingerprint")
    assert sorted(retrain) == sorted(expected["retrain"])
    assert by_key_order(retrain, "subject") == by_key_order(expected["retrain"], "subject")


async def _committed_offsets(settings: Settings) -> dict[int, int]:
    kafka = settings.kafka
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id=kafka.group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = await _partitions(kafka.bootstrap_servers, kafka.input_topics[0])
        return {tp.partition: (await consumer.committed(tp) or 0) for tp in tps}
    finally:
        await _stop(consumer)


def committed_offsets(deployment: Deployment) -> dict[int, int]:
    """The group's committed offset per input partition (0 where none)."""
    return asyncio.run(_committed_offsets(deployment.settings))


async def _read_by_partition(bootstrap: str, topic: str) -> dict[int, list[bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await _partitions(bootstrap, topic)
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        out: dict[int, list[bytes]] = {tp.partition: [] for tp in tps}
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batch.items():
                for r in records:
                    assert r.offset == len(out[tp.partition]), "offsets must be contiguous"
                    out[tp.partition].append(b"" if r.value is None else r.value)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return out
    finally:
        await _stop(consumer)


def read_by_partition(deployment: Deployment, topic: str) -> dict[int, list[bytes]]:
    """Values of every partition of ``topic`` by offset (offsets must be 0, 1, 2, ...)."""
    return asyncio.run(_read_by_partition(deployment.settings.kafka.bootstrap_servers, topic))


def first_alert_offsets(deployment: Deployment, values: Sequence[bytes]) -> int | None:
    """Offset of the first event of one partition's ``values`` that makes the core emit an
    alert (chunks of 200, then one by one from the chunk's saved state), or None."""
    pipeline = Pipeline(build_plan(deployment.settings))
    for start in range(0, len(values), 200):
        saved = pipeline.to_state()
        if pipeline.process(values[start : start + 200]).alerts:
            exact = Pipeline(build_plan(deployment.settings))
            exact.restore(saved)
            for offset in range(start, min(start + 200, len(values))):
                if exact.process([values[offset]]).alerts:
                    return offset
            raise AssertionError("alert not reproduced event by event")
    return None

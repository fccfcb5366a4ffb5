"""The Kafka service under load: throughput, its raw ceiling, alert latency and memory.

Run: ``.venv/bin/python load_tests/bench_kafka.py [--events 500000] [--quick]
[--bootstrap HOST:PORT] [--profile]``. Starts a local broker (``driftline.localkafka``) in a
temporary directory unless ``--bootstrap`` names one; every run uses topics and groups of
its own. Prints one markdown table (stdout; progress goes to stderr):

1. **throughput**: ``--events`` events (20 numeric features, default detectors, a reference
   profile per model) of 10 models, keyed by ``model_id``, are produced to a 6-partition
   input topic first; then ``python -m driftline run`` (a subprocess, checkpoint defaults)
   consumes them. Rate = events from its first ``/metrics`` scrape showing consumption to
   ``driftline_events_consumed`` reaching N (a batch is counted only after its outputs
   were acknowledged); the time until every offset is committed is reported too. The
   service's CPU time (``/proc/<pid>/stat``) gives its share of one core.
2. **ceiling**: a bare aiokafka consumer in a group of its own, ``getmany`` +
   ``orjson.loads`` per record, on the same topic, once with aiokafka's default fetch
   settings and once with the service's; the faster run is the ceiling.
3. **latency**: a fresh service; events produced at a steady 0.5 x the measured service
   rate with drift switched on and off every three windows per model (alert cooldown 0),
   so alerts keep firing and resolving. Latency per alert = when it was read from the
   alerts topic - when the event that closed its window (``evidence.event_id``) was
   produced. Alerts fire only at window close (every 1,000 events of a model).
4. **memory**: a fresh service monitoring 100 models x 50 numeric features (profiles for
   all; 2,000 events each, 300 with ``--quick`` so no window closes there), VmRSS / VmHWM
   from ``/proc/<pid>/status`` once every event was consumed.

``--profile`` adds a cProfile of an in-process :class:`MonitorService` over the
throughput topic (a group of its own) and prints where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import io
import itertools
import os
import platform
import pstats
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import aiokafka
import numpy as np
import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from bench_core import cpu_model
from driftline.config import Settings, parse_settings
from driftline.demo.scenario import (
    NumericFeature,
    event_lines,
    reference_rows,
    wide_numeric_model,
    wide_numeric_scenario,
)
from driftline.localkafka import KAFKA_VERSION, LocalKafka
from driftline.planning import build_plan
from driftline.profile import ProfileSource, build_profile, save_profile
from driftline.service.app import MonitorService
from driftline.service.kafka_clients import (
    INPUT_FETCH_BYTES_PER_PARTITION,
    INPUT_FETCH_MIN_BYTES,
    INPUT_FETCH_WAIT_MS,
)
from driftline.service.metrics import ServiceMetrics
from driftline.service.topics import create_topics

REPO = Path(__file__).resolve().parent.parent
FEATURES = 20
MODELS = 10
PARTITIONS = 6
WINDOW = 1000
RSS_MODELS = 100
RSS_FEATURES = 50
CONSUMED = "driftline_events_consumed_total"
REPLICATION = [1]
"""Replication factor of the topics created (``--replication-factor``)."""
GOAL_RATE = 100_000
GOAL_SHARE = 0.5
GOAL_P99 = 1.0
GOAL_RSS_MB = 500


def progress(message: str) -> None:
    print(f"[bench_kafka {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak RSS) of a process, in MB (10^6 bytes)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024 / 1e6
    return out


# --------------------------------------------------------------------------- deployments


@dataclasses.dataclass
class Deployment:
    """Topics, group and config file of one benchmark phase."""

    root: Path
    config: Path
    settings: Settings
    raw: dict[str, Any]

    @property
    def input_topic(self) -> str:
        return self.settings.kafka.input_topics[0]


def model_ids(count: int) -> list[str]:
    width = len(str(count - 1))
    return [f"m{i:0{width}d}" for i in range(count)]


def write_profiles(root: Path, models: list[str], features: int) -> list[dict[str, str]]:
    """One reference profile per model (same training data, its own ``model_id``)."""
    scenario = wide_numeric_scenario(features=features, events=1, prediction=False)
    base = build_profile(
        reference_rows(scenario, 20_000),
        model_id=models[0],
        model_version=scenario.model_version,
        source=ProfileSource(kind="file", sha256="0" * 64),
    )
    entries = []
    for model in models:
        path = root / f"{model}-{features}.profile.json"
        if not path.exists():
            save_profile(dataclasses.replace(base, model_id=model), path)
        entries.append({"model_id": model, "reference_profile": str(path)})
    return entries


def make_deployment(
    root: Path,
    bootstrap: str,
    name: str,
    models: list[dict[str, str]],
    **extra: Any,
) -> Deployment:
    unique = f"bench-{name}-{uuid.uuid4().hex[:8]}"
    directory = root / name
    directory.mkdir()
    raw: dict[str, Any] = {
        "deployment": "bench",
        "models": models,
        "kafka": {
            "bootstrap_servers": bootstrap,
            "group_id": f"{unique}-group",
            "input_topics": [f"{unique}-in"],
            "alerts_topic": f"{unique}-alerts",
            "retrain_topic": f"{unique}-retrain",
            "dead_letter_topic": f"{unique}-dead",
            "state_topic": f"{unique}-state",
            "partitions": PARTITIONS,
            "replication_factor": REPLICATION[0],
        },
        "http": {"port": 0},
        **extra,
    }
    config = directory / "driftline.yaml"
    config.write_text(yaml.safe_dump(raw))
    settings = parse_settings(raw)
    asyncio.run(create_topics(settings))
    return Deployment(directory, config, settings, raw)


# --------------------------------------------------------------------------- Kafka helpers


class KeyedBatches:
    """Fills one aiokafka batch per partition (murmur2 of the key, as ``send()`` would):
    far cheaper per message than ``send()``, so the benchmark's producer keeps up."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.partitions = list(range(PARTITIONS))
        self.partition_of: dict[bytes, int] = {}
        self.open: dict[int, Any] = {}
        self.pending: list[asyncio.Future[Any]] = []

    async def add(self, key: bytes, value: bytes) -> None:
        partition = self.partition_of.get(key)
        if partition is None:
            partition = DefaultPartitioner()(key, self.partitions, self.partitions)
            self.partition_of[key] = partition
        batch = self.open.get(partition)
        if batch is None:
            batch = self.open[partition] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:  # full
            await self._submit(partition)
            batch = self.open[partition] = self.producer.create_batch()
            batch.append(key=key, value=value, timestamp=None)

    async def _submit(self, partition: int) -> None:
        batch = self.open.pop(partition)
        batch.close()
        self.pending.append(await self.producer.send_batch(batch, self.topic, partition=partition))
        if len(self.pending) > 200:
            await asyncio.gather(*self.pending)
            self.pending = []

    async def flush(self) -> None:
        """Submit every open batch (without waiting for the acknowledgements)."""
        for partition in list(self.open):
            await self._submit(partition)

    async def acknowledged(self) -> None:
        await self.flush()
        await asyncio.gather(*self.pending)
        self.pending = []


async def _produce(bootstrap: str, topic: str, pairs: Iterable[tuple[bytes, bytes]]) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    sent = 0
    try:
        batches = KeyedBatches(producer, topic)
        for key, value in pairs:
            await batches.add(key, value)
            sent += 1
        await batches.acknowledged()
    finally:
        await producer.stop()
    return sent


def produce(bootstrap: str, topic: str, pairs: Iterable[tuple[bytes, bytes]]) -> tuple[int, float]:
    """Produce (key, value) pairs; return (count, seconds)."""
    started = time.perf_counter()
    count = asyncio.run(_produce(bootstrap, topic, pairs))
    return count, time.perf_counter() - started


def interleaved_events(
    models: list[str], per_model: int, features: int
) -> Iterator[tuple[bytes, bytes]]:
    """Each model's scenario stream, round-robin, keyed by model id (generated lazily)."""
    streams = [
        zip(
            itertools.repeat(model.encode()),
            event_lines(
                wide_numeric_scenario(
                    features=features,
                    events=per_model,
                    seed=i,
                    model_id=model,
                    prediction=False,
                )
            ),
            strict=False,
        )
        for i, model in enumerate(models)
    ]
    for group in zip(*streams, strict=True):
        yield from group


async def _partition_ends(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        total = 0
        for partition in range(PARTITIONS):
            total += await consumer.committed(TopicPartition(topic, partition)) or 0
        return total
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


def committed_total(deployment: Deployment) -> int:
    kafka = deployment.settings.kafka
    return asyncio.run(_committed(kafka.bootstrap_servers, kafka.group_id, deployment.input_topic))


# --------------------------------------------------------------------------- the service


class ServiceProcess:
    """``python -m driftline run --config FILE`` as a child process."""

    def __init__(self, deployment: Deployment) -> None:
        self.log = deployment.root / "service.log"
        self.handle = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "driftline", "run", "--config", str(deployment.config)],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=REPO,
        )
        self.port = self._wait_for_port()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_for_port(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(rb"http: [\d.]+:(\d+)", self.log.read_bytes())
            if match:
                return int(match.group(1))
            self._check_alive()
            time.sleep(0.05)
        raise RuntimeError(f"the service printed no HTTP port:\n{self.output()}")

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the service exited ({self.proc.returncode}):\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return int(r.status), bytes(r.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def consumed(self) -> float:
        """``driftline_events_consumed`` summed over topics."""
        _, body = self.get("/metrics")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith((CONSUMED + "{", CONSUMED + " ")):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.get("/readyz")[0] == 200:
                return
            self._check_alive()
            time.sleep(0.1)
        raise RuntimeError(f"the service never became ready:\n{self.output()}")

    def wait_consumed(self, events: int, timeout: float, interval: float = 0.25) -> float:
        """Poll until ``events`` were consumed; return when (perf_counter)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.consumed() >= events:
                return time.perf_counter()
            self._check_alive()
            time.sleep(interval)
        raise RuntimeError(f"the service did not consume {events:,} events:\n{self.output()}")

    def terminate(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.handle.close()
        return self.proc.returncode


# --------------------------------------------------------------------------- 1. throughput


@dataclasses.dataclass
class Throughput:
    events: int
    seconds: float
    rate: float
    cpu_share: float
    """Service CPU seconds / wall seconds over the measured span (1.0 = one core busy)."""
    committed_seconds: float | None
    committed: int
    rss_mb: float
    partitions_used: int
    produce_rate: float


def measure_throughput(deployment: Deployment, events: int, quick: bool) -> Throughput:
    kafka = deployment.settings.kafka
    models = model_ids(MODELS)
    per_model = events // MODELS
    progress(f"producing {per_model * MODELS:,} events of {MODELS} models to {PARTITIONS} parts")
    total, produce_seconds = produce(
        kafka.bootstrap_servers,
        deployment.input_topic,
        interleaved_events(models, per_model, FEATURES),
    )
    ends = asyncio.run(_partition_ends(kafka.bootstrap_servers, deployment.input_topic))
    used = sum(1 for n in ends.values() if n > 0)
    progress(f"produced in {produce_seconds:.1f} s; per partition {ends}; starting the service")
    service = ServiceProcess(deployment)
    try:
        # Find the start of consumption (scrapes are cheap while nothing is consumed).
        deadline = time.monotonic() + 120
        while True:
            seen = service.consumed()
            if seen > 0:
                started, cpu_started, seen_at_start = (
                    time.perf_counter(),
                    cpu_seconds(service.pid),
                    seen,
                )
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service consumed nothing:\n{service.output()}")
            service._check_alive()
            time.sleep(0.05)
        finished = service.wait_consumed(total, timeout=1200)
        cpu_used = cpu_seconds(service.pid) - cpu_started
        rss = memory_mb(service.pid)["VmRSS"]
        seconds = finished - started
        rate = (total - seen_at_start) / seconds
        progress(f"service: {rate:,.0f} events/s over {seconds:.1f} s; waiting for commits")
        committed_seconds = None
        if not quick:
            limit = time.monotonic() + deployment.settings.checkpoint.interval_seconds + 20
            while time.monotonic() < limit:
                if committed_total(deployment) >= total:
                    committed_seconds = time.perf_counter() - started
                    break
                time.sleep(0.25)
        code = service.terminate()
        if code != 0:
            raise RuntimeError(f"the service exited {code}:\n{service.output()}")
    finally:
        service.terminate()
    committed = committed_total(deployment)
    return Throughput(
        events=total,
        seconds=seconds,
        rate=rate,
        cpu_share=cpu_used / seconds,
        committed_seconds=committed_seconds,
        committed=committed,
        rss_mb=rss,
        partitions_used=used,
        produce_rate=total / produce_seconds,
    )


# --------------------------------------------------------------------------- 2. ceiling


#: Fetch settings the ceiling is measured with: aiokafka's defaults (1 MiB per partition,
#: answer at once) and the service's (``make_consumer``); the faster one is the ceiling.
CEILING_FETCHES = {
    "aiokafka defaults": {"max_partition_fetch_bytes": 1024 * 1024},
    "the service's": {
        "max_partition_fetch_bytes": INPUT_FETCH_BYTES_PER_PARTITION,
        "fetch_min_bytes": INPUT_FETCH_MIN_BYTES,
        "fetch_max_wait_ms": INPUT_FETCH_WAIT_MS,
    },
}


async def _ceiling(
    deployment: Deployment, total: int, fetch: dict[str, int]
) -> tuple[float, float]:
    """Raw consume + decode of the throughput topic: (events/s, CPU share of one core)."""
    kafka = deployment.settings.kafka
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=f"{kafka.group_id}-ceiling-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=50 * 1024 * 1024,
        **fetch,
    )
    await consumer.start()
    consumer.subscribe([deployment.input_topic])
    count = 0
    started = cpu_started = 0.0
    seen_at_start = 0
    try:
        while count < total:
            batch = await consumer.getmany(timeout_ms=500, max_records=kafka.max_batch_records)
            for records in batch.values():
                for record in records:
                    orjson.loads(record.value)
                count += len(records)
            if count and not started:
                started, cpu_started, seen_at_start = (
                    time.perf_counter(),
                    time.process_time(),
                    count,
                )
        seconds = time.perf_counter() - started
        return (total - seen_at_start) / seconds, (time.process_time() - cpu_started) / seconds
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


def measure_ceiling(deployment: Deployment, total: int) -> tuple[float, float, str]:
    """The faster of :data:`CEILING_FETCHES`: (events/s, its CPU share, every run's rate)."""
    runs = {
        name: asyncio.run(_ceiling(deployment, total, fetch))
        for name, fetch in CEILING_FETCHES.items()
    }
    best = max(runs, key=lambda name: runs[name][0])
    rates = ", ".join(f"{name} fetches {rate:,.0f}" for name, (rate, _) in runs.items())
    return runs[best][0], runs[best][1], rates


# --------------------------------------------------------------------------- 3. latency


@dataclasses.dataclass
class Latency:
    target_rate: float
    achieved_rate: float
    produced: int
    consumed: float
    alerts: int
    unmatched: int
    p50: float
    p99: float
    worst: float
    service_p50: float
    service_p99: float
    """Of the latency, up to the alert record's timestamp (set by the service's producer)."""


class DriftingTraffic:
    """Events of several models from their features' normal distributions, round-robin;
    the first five features shift by 3 standard deviations in windows 0-2, 6-8, ... of
    each model, so its alerts fire and resolve again and again (with cooldown 0).

    The feature values of one drift period (6 windows) are drawn and serialised once, at
    construction; an event is its ids and timestamp put in front of one of them, so the
    benchmark's producer costs about a microsecond per event and keeps up with the
    target rate on a machine it shares with the broker and the service."""

    PERIOD = 6
    DRIFTED_WINDOWS = 3

    def __init__(self, models: list[str], features: int, seed: int = 7) -> None:
        specs = [f for f in wide_numeric_model(features).features if isinstance(f, NumericFeature)]
        names = [f.name for f in specs]
        means = np.array([f.params[0] for f in specs])
        stds = np.array([f.params[1] for f in specs])
        shift = np.zeros(len(specs))
        shift[:5] = 3.0 * stds[:5]
        rng = np.random.default_rng(seed)
        period = self.PERIOD * WINDOW
        values = rng.normal(size=(period, len(names))) * stds + means
        values[: self.DRIFTED_WINDOWS * WINDOW] += shift
        # '"features":{...}}' of each position in the period (the dict without its "{").
        self.bodies = [
            orjson.dumps({"features": dict(zip(names, row, strict=True))})[1:]
            for row in np.round(values, 4).tolist()
        ]
        self.models = models
        self.keys = [m.encode() for m in models]
        self.sequence = [0] * len(models)
        self.next_model = 0
        self.produced_at: list[list[float]] = [[] for _ in models]

    def generate(self, count: int, now: float) -> list[tuple[bytes, bytes]]:
        """``count`` more events (event time ``now``); call :meth:`produced` once sent."""
        timestamp = int(now * 1000)
        period = len(self.bodies)
        out = []
        for _ in range(count):
            m = self.next_model
            self.next_model = (m + 1) % len(self.models)
            seq = self.sequence[m]
            self.sequence[m] = seq + 1
            model = self.models[m]
            head = (
                f'{{"event_id":"{model}-{seq}","model_id":"{model}","model_version":"1",'
                f'"timestamp":{timestamp},'
            ).encode()
            out.append((self.keys[m], head + self.bodies[seq % period]))
        return out

    def produced(self, count: int, when: float) -> None:
        """The last ``count`` generated events were handed to the producer at ``when``."""
        first = sum(len(times) for times in self.produced_at)
        for k in range(first, first + count):
            self.produced_at[k % len(self.models)].append(when)

    def produced_time(self, event_id: str) -> float | None:
        model, _, seq = event_id.rpartition("-")
        try:
            return self.produced_at[self.models.index(model)][int(seq)]
        except (ValueError, IndexError):
            return None


#: Events per hand-over in the latency run (about 10 ms of traffic at 50,000 events/s).
PIECE_EVENTS = 500


def prebuilt_pieces(
    traffic: DriftingTraffic, producer: AIOKafkaProducer, total: int, size: int
) -> list[list[tuple[int, Any, int]]]:
    """``total`` events in pieces of ``size``, each piece as one closed batch per partition
    (partition, batch, events): built before the run, so the timed loop only hands over
    batches and the benchmark's producer keeps up with the target rate."""
    partitioner = DefaultPartitioner()
    partitions = list(range(PARTITIONS))
    partition_of = {key: partitioner(key, partitions, partitions) for key in traffic.keys}
    pieces = []
    for first in range(0, total, size):
        batches: dict[int, tuple[Any, int]] = {}
        for key, value in traffic.generate(min(size, total - first), time.time()):
            partition = partition_of[key]
            batch, count = batches.get(partition) or (producer.create_batch(), 0)
            if batch.append(key=key, value=value, timestamp=None) is None:
                raise RuntimeError("a latency-run batch is full; lower PIECE_EVENTS")
            batches[partition] = (batch, count + 1)
        for batch, _ in batches.values():
            batch.close()
        pieces.append([(p, batch, count) for p, (batch, count) in batches.items()])
    return pieces


async def _latency_run(
    deployment: Deployment, service: ServiceProcess, rate: float, duration: float
) -> Latency:
    kafka = deployment.settings.kafka
    traffic = DriftingTraffic(model_ids(MODELS), FEATURES)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        linger_ms=0,
        acks=1,
        max_batch_size=1024 * 1024,
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await producer.start()
    progress(f"latency: building {int(rate * duration):,} events in batches")
    pieces = prebuilt_pieces(traffic, producer, int(rate * duration), PIECE_EVENTS)
    await consumer.start()
    consumer.assign([TopicPartition(kafka.alerts_topic, p) for p in range(PARTITIONS)])
    latencies: list[float] = []
    to_service: list[float] = []  # produced -> the service's producer stamped the alert
    unmatched = 0
    done = asyncio.Event()

    async def read_alerts() -> None:
        nonlocal unmatched
        while not done.is_set():
            batch = await consumer.getmany(timeout_ms=50)
            now = time.time()
            for records in batch.values():
                for record in records:
                    event_id = orjson.loads(record.value)["data"]["evidence"].get("event_id")
                    produced = None if event_id is None else traffic.produced_time(event_id)
                    if produced is None:
                        unmatched += 1
                    else:
                        latencies.append(now - produced)
                        to_service.append(record.timestamp / 1000 - produced)

    reader = asyncio.create_task(read_alerts())
    try:
        # Each piece (PIECE_EVENTS events, one batch per partition) is handed to the
        # producer when due at the target rate, its events stamped at that moment. A
        # producer that falls behind sends late (the achieved rate says so).
        topic = kafka.input_topics[0]
        pending: list[asyncio.Future[Any]] = []
        started = time.time()
        sent = 0
        for piece in pieces:
            delay = started + sent / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            traffic.produced(sum(count for _, _, count in piece), time.time())
            for partition, batch, count in piece:
                pending.append(await producer.send_batch(batch, topic, partition=partition))
                sent += count
            if len(pending) > 600:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        achieved = sent / (time.time() - started)
        loop = asyncio.get_running_loop()
        consumed = 0.0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            consumed = await loop.run_in_executor(None, service.consumed)
            if consumed >= sent:
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(1.5)  # alerts of the last batches
    finally:
        done.set()
        await reader
        await producer.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()
    values = np.array(latencies) if latencies else np.array([np.nan])
    inside = np.array(to_service) if to_service else np.array([np.nan])
    return Latency(
        target_rate=rate,
        achieved_rate=achieved,
        produced=sent,
        consumed=consumed,
        alerts=len(latencies),
        unmatched=unmatched,
        p50=float(np.percentile(values, 50)),
        p99=float(np.percentile(values, 99)),
        worst=float(values.max()),
        service_p50=float(np.percentile(inside, 50)),
        service_p99=float(np.percentile(inside, 99)),
    )


def measure_latency(deployment: Deployment, rate: float, duration: float) -> Latency:
    service = ServiceProcess(deployment)
    try:
        service.wait_ready()
        time.sleep(1.0)
        progress(f"latency: producing at {rate:,.0f} events/s for {duration:.0f} s")
        return asyncio.run(_latency_run(deployment, service, rate, duration))
    finally:
        service.terminate()


# --------------------------------------------------------------------------- 4. memory


@dataclasses.dataclass
class Memory:
    events: int
    idle_mb: float
    rss_mb: float
    peak_mb: float
    models_monitoring: int
    features_monitored: int


def measure_memory(deployment: Deployment, per_model: int) -> Memory:
    kafka = deployment.settings.kafka
    models = model_ids(RSS_MODELS)
    progress(f"memory: producing {per_model * RSS_MODELS:,} events ({RSS_FEATURES} features)")
    total, _ = produce(
        kafka.bootstrap_servers,
        deployment.input_topic,
        interleaved_events(models, per_model, RSS_FEATURES),
    )
    service = ServiceProcess(deployment)
    try:
        idle = memory_mb(service.pid)["VmRSS"]
        service.wait_consumed(total, timeout=1200)
        time.sleep(1.0)
        memory = memory_mb(service.pid)
        _, body = service.get("/v1/status")
        status = orjson.loads(body)
    finally:
        service.terminate()
    monitoring, features = _monitoring(status)
    return Memory(total, idle, memory["VmRSS"], memory["VmHWM"], monitoring, features)


def _monitoring(status: Any) -> tuple[int, int]:
    """(model versions in state ``monitoring``, their monitored features) from /v1/status."""
    models = [m for m in status["models"] if m["state"] == "monitoring"]
    return len(models), sum(len(m["monitored_features"]) for m in models)


# --------------------------------------------------------------------------- profile


async def _profiled(settings: Settings, total: int, profiler: cProfile.Profile) -> float:
    service = MonitorService(settings, build_plan(settings), ServiceMetrics())
    stop = asyncio.Event()
    started = 0.0

    async def watch() -> None:
        nonlocal started
        while True:
            done = sum(p.next_offset or 0 for p in service.partitions.values())
            if done and not started:
                started = time.perf_counter()
            if done >= total:
                stop.set()
                return
            await asyncio.sleep(0.05)

    profiler.enable()
    try:
        await asyncio.gather(service.run(stop), watch())
    finally:
        profiler.disable()
    return time.perf_counter() - started


def profile_service(deployment: Deployment, total: int) -> str:
    raw = dict(deployment.raw)
    raw["kafka"] = {**raw["kafka"], "group_id": f"{raw['kafka']['group_id']}-profile"}
    settings = parse_settings(raw)
    profiler = cProfile.Profile()
    progress("profiling an in-process MonitorService (cProfile)")
    seconds = asyncio.run(_profiled(settings, total, profiler))
    stats = pstats.Stats(profiler)
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    whole = sum(v[2] for v in entries.values())

    def cumulative(fragment: str, name: str) -> float:
        return float(
            sum(v[3] for (path, _, func), v in entries.items() if fragment in path and func == name)
        )

    parts = [
        ("Pipeline.process (the core)", cumulative("driftline/pipeline.py", "process")),
        ("  decode_batch (JSON -> columns)", cumulative("driftline/events.py", "decode_batch")),
        ("  ModelMonitor.process (detectors)", cumulative("driftline/monitor.py", "process")),
        ("MonitorService._send_acked (produce + ack)", cumulative("service/app.py", "_send_acked")),
        ("MonitorService._checkpoint", cumulative("service/app.py", "_checkpoint")),
        ("ServiceMetrics.batch_processed", cumulative("service/metrics.py", "batch_processed")),
        (
            "RecordReader.read (records from the fetch buffers)",
            cumulative("service/records.py", "read"),
        ),
    ]
    out = io.StringIO()
    out.write(
        f"\ncProfile of an in-process MonitorService: {total:,} events in {seconds:.1f} s "
        f"under the profiler ({total / seconds:,.0f} events/s; total profiled "
        f"{whole:.1f} CPU-s)\n\n| part | seconds (cumulative) | share |\n|---|--:|--:|\n"
    )
    for label, value in parts:
        out.write(f"| {label} | {value:.2f} | {value / whole:.0%} |\n")
    out.write("\ntop functions by own time:\n\n```\n")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(18)
    body = text.getvalue()
    out.write(body[body.find("   ncalls") :].rstrip() + "\n```\n")
    return out.getvalue()


# --------------------------------------------------------------------------- report


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=None, help="throughput events (500,000)")
    parser.add_argument("--quick", action="store_true", help="a reduced run (< 90 s)")
    parser.add_argument("--bootstrap", help="an existing broker instead of a local one")
    parser.add_argument("--replication-factor", type=int, default=1, help="of created topics")
    parser.add_argument("--latency-seconds", type=float, default=None, help="default 30 (10)")
    parser.add_argument("--rss-events-per-model", type=int, default=None, help="2,000 (300)")
    parser.add_argument("--profile", action="store_true", help="also cProfile an in-process run")
    args = parser.parse_args()
    events = args.events or (100_000 if args.quick else 500_000)
    latency_seconds = args.latency_seconds or (10.0 if args.quick else 30.0)
    rss_per_model = args.rss_events_per_model or (300 if args.quick else 2_000)
    REPLICATION[0] = args.replication_factor
    load = os.getloadavg()[0]
    begun = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        if args.bootstrap:
            bootstrap, broker_note = args.bootstrap, f"at {args.bootstrap}"
        else:
            progress("starting a local Kafka broker")
            broker = LocalKafka(root / "kafka")
            broker.start()
            stack.callback(broker.stop)
            bootstrap, broker_note = broker.bootstrap, "local, from Maven jars"
        profiles = write_profiles(root, model_ids(MODELS), FEATURES)

        main_deployment = make_deployment(root, bootstrap, "throughput", profiles)
        throughput = measure_throughput(main_deployment, events, args.quick)

        progress("ceiling: aiokafka getmany + orjson.loads")
        ceiling, ceiling_cpu, ceiling_rates = measure_ceiling(main_deployment, throughput.events)

        latency_deployment = make_deployment(
            root, bootstrap, "latency", profiles, alerts={"cooldown_seconds": 0}
        )
        latency = measure_latency(latency_deployment, throughput.rate / 2, latency_seconds)

        rss_profiles = write_profiles(root, model_ids(RSS_MODELS), RSS_FEATURES)
        memory_deployment = make_deployment(root, bootstrap, "memory", rss_profiles)
        memory = measure_memory(memory_deployment, rss_per_model)

        profile_text = profile_service(main_deployment, throughput.events) if args.profile else ""

    t, lat, mem = throughput, latency, memory
    share = t.rate / ceiling
    per_cpu = t.rate / t.cpu_share if t.cpu_share > 0 else float("nan")
    committed = (
        f"{t.events / t.committed_seconds:,.0f} events/s to all offsets committed "
        f"({t.committed_seconds:.1f} s; checkpoint defaults: every "
        f"{main_deployment.settings.checkpoint.interval_seconds:g} s or "
        f"{main_deployment.settings.checkpoint.interval_events:,} events per partition)"
        if t.committed_seconds is not None
        else "time to commit not waited for in --quick"
    )
    rows = [
        (
            "machine",
            f"{cpu_model()}, {os.cpu_count()} logical CPUs (shared; load avg {load:.1f} at "
            f"start), Python {platform.python_version()}, aiokafka {aiokafka.__version__}, "
            f"Apache Kafka {KAFKA_VERSION} broker ({broker_note})",
            "",
            "",
        ),
        (
            "1. service throughput (`driftline run` subprocess)",
            f"**{t.rate:,.0f} events/s** ({t.events:,} events, {MODELS} models x {FEATURES} "
            f"numeric features, default detectors, {t.partitions_used}/{PARTITIONS} partitions "
            f"with data, {t.seconds:.1f} s); service CPU {t.cpu_share:.0%} of one core = "
            f"{per_cpu:,.0f} events per CPU-second; {committed}; committed after SIGTERM: "
            f"{t.committed:,}/{t.events:,}; RSS {t.rss_mb:.0f} MB; pre-produce "
            f"{t.produce_rate:,.0f} events/s",
            f">= {GOAL_RATE:,} events/s on one core",
            verdict(t.rate >= GOAL_RATE),
        ),
        (
            "2. raw ceiling (aiokafka getmany + orjson.loads)",
            f"**{ceiling:,.0f} events/s** (the faster of {ceiling_rates}; consumer CPU "
            f"{ceiling_cpu:.0%} of one core); "
            f"service / ceiling = **{share:.0%}**",
            f">= {GOAL_SHARE:.0%} of the ceiling",
            verdict(share >= GOAL_SHARE),
        ),
        (
            "3. produce -> alert visible",
            f"p50 **{lat.p50 * 1000:,.0f} ms**, p99 **{lat.p99 * 1000:,.0f} ms**, max "
            f"{lat.worst * 1000:,.0f} ms over {lat.alerts:,} alerts ({lat.unmatched} unmatched); "
            f"of which until the service's producer stamped the alert: p50 "
            f"{lat.service_p50 * 1000:,.0f} ms, p99 {lat.service_p99 * 1000:,.0f} ms; "
            f"target {lat.target_rate:,.0f} events/s (0.5 x service), achieved "
            f"{lat.achieved_rate:,.0f} events/s for {latency_seconds:.0f} s; "
            f"{lat.consumed:,.0f}/{lat.produced:,} consumed at the end",
            f"p99 <= {GOAL_P99:g} s",
            verdict(lat.alerts > 0 and lat.p99 <= GOAL_P99),
        ),
        (
            f"4. RSS, {RSS_MODELS} models x {RSS_FEATURES} features",
            f"**{mem.rss_mb:,.0f} MB** VmRSS after {mem.events:,} events "
            f"({mem.events // RSS_MODELS:,} per model; peak VmHWM "
            f"{mem.peak_mb:,.0f} MB; {mem.idle_mb:,.0f} MB at start; /v1/status: "
            f"{mem.models_monitoring} models monitoring {mem.features_monitored:,} features)",
            f"<= {GOAL_RSS_MB} MB",
            verdict(mem.rss_mb <= GOAL_RSS_MB),
        ),
    ]
    print("| measurement | result | goal | met |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n(total run {time.monotonic() - begun:.0f} s{', --quick' if args.quick else ''})")
    if profile_text:
        print(profile_text)


if __name__ == "__main__":
    main()

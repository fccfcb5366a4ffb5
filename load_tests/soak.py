"""Soak test of the Kafka service: does memory, lag or latency creep up over time?

Run: ``.venv/bin/python load_tests/soak.py [--duration 600] [--rate EVENTS_PER_S]
[--output load_tests/soak.png] [--bootstrap HOST:PORT]``. Starts a local broker
(``driftline.localkafka``) in a temporary directory unless ``--bootstrap`` names one; every
run uses topics and groups of its own (``bench_kafka.make_deployment``).

Traffic, from the scenario generators of ``driftline.demo.scenario``: 4 models x 2 versions
(each model 25% of the events, version 1 70% of them and version 2 30%, keyed by
``model_id`` over 6 partitions): ``credit-a`` and ``credit-b`` are the credit-scoring model
(numeric, categorical and boolean features, RFC 3339 timestamps), ``wide-a`` and ``wide-b``
a 30-feature numeric one (epoch-millisecond timestamps); every version has a reference
profile. Each version's drift is switched on for ~20 s and off again every ~80 s (staggered
between versions; mean shifts, a category surge, a missing-value surge, a doubled spread),
so alerts keep firing and resolving. ~0.5% of the messages are malformed (dead letters).
Events are stamped with the current time as they are produced. Each version's events come
from a pool of ``POOL_SECONDS`` (10) of its traffic, every drift variant included,
generated before the soak starts and cycled (event ids repeat), so that the generator,
which shares the machine with the broker and the service, costs little CPU and never
stalls its producer.

1. **max rate** (skipped with ``--rate``): ``--ramp-events`` of this traffic are produced to
   a topic of their own first; a ``driftline run`` subprocess drains them; the max
   sustained rate is its consumption rate (first ``/metrics`` scrape showing consumption to
   the last event consumed). The soak rate is ``--load`` (0.7) times that.
2. **soak**: a fresh ``driftline run`` subprocess; events produced at the steady soak rate
   for ``--duration`` seconds. Every ``--interval`` (5) s: the service's VmRSS
   (``/proc/<pid>/status``), ``driftline_consumer_lag`` summed over partitions, p50 / p95 /
   p99 of ``driftline_processing_latency_seconds{source="event_time"}`` over the interval
   (from the histogram's bucket deltas, interpolated within a bucket as Prometheus'
   ``histogram_quantile`` does; the service observes it once per batch: now - the batch's
   newest event time, once its outputs were acknowledged), events consumed per second, the
   service's CPU share and the machine's load average.

At the end a markdown table (stdout; progress goes to stderr) gives RSS, lag, latency and
throughput over the first, middle and last tenth of the run, the least-squares slopes of
RSS and lag over the second half, and the verdict. **Flat** means: RSS growth over the
second half (fitted slope x its span / fitted RSS at its start) < 10%, and lag not growing
(second-half mean lag < 2 x first-half mean + 1,000). Exit 0 when flat, 1 when not, 2 when
the run itself failed. The series are plotted to ``--output`` (PNG).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import gc
import math
import os
import platform
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import aiokafka
import numpy as np
from aiokafka import AIOKafkaProducer

from bench_kafka import (
    PARTITIONS,
    Deployment,
    KeyedBatches,
    ServiceProcess,
    cpu_model,
    cpu_seconds,
    make_deployment,
    memory_mb,
    produce,
)
from driftline.demo.scenario import (
    BLOCK_SIZE,
    Drift,
    Scenario,
    credit_scoring_scenario,
    event_lines,
    reference_rows,
    wide_numeric_scenario,
)
from driftline.localkafka import KAFKA_VERSION, PRODUCTION_JVM_OPTIONS, LocalKafka
from driftline.profile import ProfileSource, build_profile, save_profile

REPO = Path(__file__).resolve().parent.parent
WIDE_FEATURES = 30
BAD_SHARE = 0.005
RSS_GROWTH_LIMIT = 0.10
LAG_FACTOR = 2.0
LAG_ALLOWANCE = 1_000.0
DRIFT_ON_SECONDS = 20.0
DRIFT_PERIOD_SECONDS = 80.0
MIN_DRIFT_EVENTS = 4_000
"""A drift episode lasts at least this many events of its version (4 windows of 1,000)."""

Kind = Literal["credit", "wide"]


def progress(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- traffic


@dataclasses.dataclass(frozen=True)
class Version:
    model_id: str
    model_version: str
    kind: Kind
    share: float
    """Of all events."""
    seed: int


MIX = (
    Version("credit-a", "1", "credit", 0.25 * 0.7, 1),
    Version("credit-a", "2", "credit", 0.25 * 0.3, 2),
    Version("credit-b", "1", "credit", 0.25 * 0.7, 3),
    Version("credit-b", "2", "credit", 0.25 * 0.3, 4),
    Version("wide-a", "1", "wide", 0.25 * 0.7, 5),
    Version("wide-a", "2", "wide", 0.25 * 0.3, 6),
    Version("wide-b", "1", "wide", 0.25 * 0.7, 7),
    Version("wide-b", "2", "wide", 0.25 * 0.3, 8),
)

BAD_PAYLOADS = (
    b'{"event_id": "bad-json", "model_id": "credit-a"',  # invalid_json
    b"[1, 2, 3]",  # not_an_object
    b'{"event_id": "bad-missing", "model_id": "wide-a", "timestamp": 1}',  # missing_field
    b'{"event_id": "bad-ts", "model_id": "credit-b", "model_version": "1", '
    b'"timestamp": "yesterday", "features": {"amount": 1.0}}',  # invalid_timestamp
    b'{"event_id": "bad-nan", "model_id": "wide-b", "model_version": "1", '
    b'"timestamp": 1704067200000, "features": {"f00": NaN}}',  # non_finite_number
    b'{"event_id": "bad-value", "model_id": "credit-a", "model_version": "2", '
    b'"timestamp": 1704067200000, "features": {"amount": [1]}}',  # invalid_feature_value
    b"\xff\xfe not utf-8",  # invalid_utf8
)


def drift_variants(kind: Kind) -> list[tuple[Drift, ...]]:
    """The drifts an episode switches on (from the scenario's first event), by variant."""
    if kind == "wide":
        return [
            tuple(Drift(name, "mean_shift", 0, 1.0) for name in ("f00", "f01", "f02")),
            (Drift("f03", "scale", 0, 2.0),),
        ]
    return [
        (
            Drift("amount", "mean_shift", 0, 1.0),
            Drift("country", "category_surge", 0, 0.2, category="BR"),
        ),
        (Drift("income", "missing_surge", 0, 0.25),),
        (Drift("employment", "category_surge", 0, 0.2, category="unemployed"),),
    ]


@dataclasses.dataclass(frozen=True)
class Episode:
    start: int
    end: int
    """Events ``[start, end)`` of the version come from drift variant ``variant``."""
    variant: int


def drift_schedule(kind: Kind, index: int, version_rate: float, events: int) -> list[Episode]:
    """Drift on for ~:data:`DRIFT_ON_SECONDS` every ~:data:`DRIFT_PERIOD_SECONDS` (in events
    of this version at ``version_rate``), staggered by the version's ``index``; the variants
    take turns."""
    on = max(int(DRIFT_ON_SECONDS * version_rate), MIN_DRIFT_EVENTS)
    period = max(int(DRIFT_PERIOD_SECONDS * version_rate), 3 * on)
    start = on // 2 + (index * period) // len(MIX)
    variants = len(drift_variants(kind))
    episodes = []
    while start < events:
        episodes.append(Episode(start, start + on, (len(episodes) + index) % variants))
        start += period
    return episodes


def make_scenario(version: Version, events: int, drifts: Sequence[Drift] = ()) -> Scenario:
    if version.kind == "credit":
        return credit_scoring_scenario(
            events=events,
            drifts=drifts,
            seed=version.seed,
            model_id=version.model_id,
            model_version=version.model_version,
            timestamp_format="rfc3339",
        )
    return wide_numeric_scenario(
        features=WIDE_FEATURES,
        events=events,
        drifts=drifts,
        seed=version.seed,
        model_id=version.model_id,
        model_version=version.model_version,
        timestamp_format="epoch_ms",
    )


POOL_SECONDS = 10.0
"""Each version's traffic cycles through this many seconds of its scenario's events."""


class VersionStream:
    """One version's scenario events, drift-free except during its episodes, whose events
    come from the same scenario with a drift (the same draws, transformed: the scenario
    generator's guarantee). The timestamp is cut out so that the current time goes in when
    the event is produced.

    The events are drawn from a pool of :data:`POOL_SECONDS` of the version's traffic (every
    variant), generated before the soak starts and cycled (event ids repeat every cycle):
    generating scenario events costs several microseconds of Python per event, which at
    this rate would take most of a core from the 2 the broker and the service share, and
    stall the producer's event loop between stamping events and sending them."""

    def __init__(self, version: Version, index: int, version_rate: float, events: int) -> None:
        self.pool = min(events, max(1_000, int(version_rate * POOL_SECONDS)))
        variants = [(), *drift_variants(version.kind)]
        self.heads: list[list[bytes]] = []
        self.tails: list[list[bytes]] = []
        for drifts in variants:
            heads, tails = [], []
            for line in event_lines(make_scenario(version, self.pool, drifts), 0, self.pool):
                cut = line.index(b'"timestamp":') + 12
                heads.append(line[:cut])
                tails.append(line[line.index(b',"features":', cut) :])
            self.heads.append(heads)
            self.tails.append(tails)
        self.rfc3339 = make_scenario(version, 1).timestamp_format == "rfc3339"
        self.episodes = drift_schedule(version.kind, index, version_rate, events)
        self.key = version.model_id.encode()
        self.position = 0

    def _variant(self, position: int) -> tuple[int, int]:
        """The variant of the event at ``position`` (0: no drift, k: drift variant k - 1)
        and the first position at which that may change."""
        for episode in self.episodes:
            if position < episode.start:
                return 0, episode.start
            if position < episode.end:
                return episode.variant + 1, episode.end
        return 0, position + self.pool

    def take(self, count: int, stamp: bytes) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        key = self.key
        stop = self.position + count
        while self.position < stop:
            variant, change = self._variant(self.position)
            first = self.position % self.pool
            n = min(stop, change) - self.position
            n = min(n, self.pool - first)  # up to the end of the pool
            heads = self.heads[variant][first : first + n]
            tails = self.tails[variant][first : first + n]
            out += [(key, head + stamp + tail) for head, tail in zip(heads, tails, strict=True)]
            self.position += n
        return out


class Traffic:
    """The soak's mix: every version's share of each request, plus ~0.5% malformed ones."""

    def __init__(self, rate: float, seconds: float, seed: int = 11) -> None:
        self.streams = []
        for index, version in enumerate(MIX):
            version_rate = rate * version.share
            events = int(version_rate * seconds * 1.2) + 2 * BLOCK_SIZE
            self.streams.append(VersionStream(version, index, version_rate, events))
        self.owed = [0.0] * len(MIX)
        self.rng = np.random.default_rng(seed)
        self.sent = 0
        self.bad = 0

    def take(self, count: int, clock: Callable[[], float]) -> list[tuple[bytes, bytes]]:
        """``count`` more messages stamped with ``clock()`` (epoch seconds), read once the
        events are generated: the time the generator takes is not counted as latency."""
        counts = []
        for k, version in enumerate(MIX):
            self.owed[k] += version.share * count
            counts.append(int(self.owed[k]))
            self.owed[k] -= counts[-1]
        short = count - sum(counts)
        for k in np.argsort(self.owed)[::-1][:short]:  # the rounding remainder
            counts[k] += 1
            self.owed[k] -= 1
        millis = int(clock() * 1000)
        stamps = {
            True: time.strftime('"%Y-%m-%dT%H:%M:%S', time.gmtime(millis // 1000)).encode()
            + f'.{millis % 1000:03d}Z"'.encode(),
            False: str(millis).encode(),
        }
        out: list[tuple[bytes, bytes]] = []
        for stream, n in zip(self.streams, counts, strict=True):
            if n > 0:
                out += stream.take(n, stamps[stream.rfc3339])
        bad = int(self.rng.binomial(count, BAD_SHARE))
        for position in self.rng.choice(count, size=bad, replace=False):
            key = out[position][0]
            out[position] = (key, BAD_PAYLOADS[int(self.rng.integers(len(BAD_PAYLOADS)))])
        self.sent += count
        self.bad += bad
        return out


def write_profiles(root: Path) -> list[dict[str, str]]:
    """A reference profile per model version (20,000 drift-free rows of its model)."""
    bases = {}
    kinds: tuple[Kind, ...] = ("credit", "wide")
    for kind in kinds:
        scenario = make_scenario(Version("x", "1", kind, 1.0, 0), 1)
        bases[kind] = build_profile(
            reference_rows(scenario, 20_000),
            model_id="x",
            model_version="1",
            source=ProfileSource(kind="file", sha256="0" * 64),
        )
    entries = []
    for v in MIX:
        path = root / f"{v.model_id}-{v.model_version}.profile.json"
        profile = dataclasses.replace(
            bases[v.kind], model_id=v.model_id, model_version=v.model_version
        )
        save_profile(profile, path)
        entries.append(
            {
                "model_id": v.model_id,
                "model_version": v.model_version,
                "reference_profile": str(path),
            }
        )
    return entries


# --------------------------------------------------------------------------- 1. max rate


def measure_max_rate(deployment: Deployment, events: int) -> float:
    kafka = deployment.settings.kafka
    traffic = Traffic(rate=events / 60.0, seconds=60.0)
    progress(f"max rate: producing {events:,} events of the mix")

    def pairs() -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        while len(out) < events:
            out += traffic.take(min(10_000, events - len(out)), time.time)
        return out

    total, seconds = produce(kafka.bootstrap_servers, deployment.input_topic, pairs())
    progress(f"produced in {seconds:.1f} s; draining them with a service")
    service = ServiceProcess(deployment)
    try:
        deadline = time.monotonic() + 120
        while (seen := service.consumed()) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service consumed nothing:\n{service.output()}")
            service._check_alive()
            time.sleep(0.05)
        started = time.perf_counter()
        finished = service.wait_consumed(total, timeout=1200, interval=0.1)
    finally:
        service.terminate()
    drained = total - int(seen)
    rate = drained / (finished - started)
    progress(f"max rate: {rate:,.0f} events/s ({drained:,} in {finished - started:.1f} s)")
    return rate


# --------------------------------------------------------------------------- 2. soak


@dataclasses.dataclass
class Sample:
    t: float
    """Seconds since the steady production began."""
    rss_mb: float
    lag: float
    p50: float
    p95: float
    p99: float
    consumed_per_s: float
    produced_per_s: float
    cpu_share: float
    """Service CPU seconds per wall second over the interval (1.0 = one core)."""
    load1: float
    consumed: float
    buckets: dict[float, float]
    """Cumulative event_time latency histogram (upper bound -> count) at the sample."""


_LABELS = re.compile(r'(\w+)="([^"]*)"')


@dataclasses.dataclass
class Scrape:
    consumed: float = 0.0
    lag: float = 0.0
    dead_letters: float = 0.0
    alerts: float = 0.0
    retrain: float = 0.0
    buckets: dict[float, float] = dataclasses.field(default_factory=dict)
    """``driftline_processing_latency_seconds{source="event_time"}``: cumulative counts."""
    service_buckets: dict[float, float] = dataclasses.field(default_factory=dict)
    """The same histogram's ``consume_time`` source: from the batch's consumption to its
    outputs acknowledged (the service's own part of the latency)."""


def parse_metrics(text: str) -> Scrape:
    """The sums the soak needs from a Prometheus text exposition."""
    out = Scrape()
    sums = {
        "driftline_events_consumed_total": "consumed",
        "driftline_consumer_lag": "lag",
        "driftline_dead_letters_total": "dead_letters",
        "driftline_alerts_total": "alerts",
        "driftline_retrain_requests_total": "retrain",
    }
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition("{")
        if not rest:
            name = line.split(" ", 1)[0]
        value = float(line.rsplit(" ", 1)[1])
        if name in sums:
            setattr(out, sums[name], getattr(out, sums[name]) + value)
        elif name == "driftline_processing_latency_seconds_bucket":
            labels = dict(_LABELS.findall(rest))
            if labels.get("source") == "event_time":
                out.buckets[float(labels["le"])] = value
            elif labels.get("source") == "consume_time":
                out.service_buckets[float(labels["le"])] = value
    return out


def quantile(q: float, buckets: dict[float, float]) -> float:
    """The ``q`` quantile of a histogram of cumulative counts per upper bound, interpolated
    linearly within its bucket (Prometheus' ``histogram_quantile``); NaN when empty.

    >>> quantile(0.5, {1.0: 0.0, 3.0: 10.0, 5.0: 10.0, math.inf: 10.0})
    2.0
    >>> quantile(0.99, {1.0: 1.0, math.inf: 2.0})
    1.0
    """
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower  # as Prometheus: the highest finite bound
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def delta(after: dict[float, float], before: dict[float, float]) -> dict[float, float]:
    return {le: count - before.get(le, 0.0) for le, count in after.items()}


class Sampler(threading.Thread):
    """Scrapes the service every ``interval`` seconds until stopped."""

    def __init__(
        self, service: ServiceProcess, traffic: Traffic, interval: float, seconds: float
    ) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.count = round(seconds / interval) + 1
        """Samples at 0, ``interval``, ... up to the end of the production."""
        self.service = service
        self.traffic = traffic
        self.interval = interval
        self.samples: list[Sample] = []
        self.last: Scrape = Scrape()
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.error: BaseException | None = None
        self._previous: tuple[float, float, float, int] | None = None

    def run(self) -> None:
        try:
            for k in range(self.count):
                if self.stop.wait(self.started + k * self.interval - time.monotonic()):
                    return
                self.sample()
                if k % 12 == 0:
                    s = self.samples[-1]
                    progress(
                        f"t={s.t:.0f} s: RSS {s.rss_mb:.1f} MB, lag {s.lag:,.0f}, "
                        f"p99 {s.p99 * 1000:,.0f} ms, {s.consumed_per_s:,.0f} events/s consumed"
                    )
        except BaseException as error:  # reported by the main thread
            self.error = error

    def sample(self) -> None:
        now = time.monotonic()
        _, body = self.service.get("/metrics")
        scrape = parse_metrics(body.decode())
        rss = memory_mb(self.service.pid)["VmRSS"]
        cpu = cpu_seconds(self.service.pid)
        sent = self.traffic.sent
        if self._previous is None:
            seconds = 0.0
            consumed_rate = produced_rate = cpu_share = math.nan
            interval = {le: 0.0 for le in scrape.buckets}
        else:
            at, cpu_before, consumed_before, sent_before = self._previous
            seconds = max(now - at, 1e-9)
            consumed_rate = (scrape.consumed - consumed_before) / seconds
            produced_rate = (sent - sent_before) / seconds
            cpu_share = (cpu - cpu_before) / seconds
            interval = delta(scrape.buckets, self.last.buckets)
        self._previous = (now, cpu, scrape.consumed, sent)
        self.last = scrape
        self.samples.append(
            Sample(
                t=now - self.started,
                rss_mb=rss,
                lag=scrape.lag,
                p50=quantile(0.50, interval),
                p95=quantile(0.95, interval),
                p99=quantile(0.99, interval),
                consumed_per_s=consumed_rate,
                produced_per_s=produced_rate,
                cpu_share=cpu_share,
                load1=os.getloadavg()[0],
                consumed=scrape.consumed,
                buckets=scrape.buckets,
            )
        )


async def produce_steadily(
    bootstrap: str, topic: str, traffic: Traffic, rate: float, seconds: float
) -> float:
    """Produce ``traffic`` at ``rate`` events/s for ``seconds``; return the achieved rate."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024, acks=1
    )
    await producer.start()
    try:
        batches = KeyedBatches(producer, topic)
        started = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(rate * elapsed) - sent
            if due > 0:
                for key, value in traffic.take(due, time.time):
                    await batches.add(key, value)
                await batches.flush()
                sent += due
            await asyncio.sleep(0.01)
        await batches.acknowledged()
        return sent / (time.monotonic() - started)
    finally:
        await producer.stop()


@dataclasses.dataclass
class Soak:
    samples: list[Sample]
    achieved_rate: float
    final: Scrape
    exit_code: int
    produced: int
    bad: int


def run_soak(deployment: Deployment, rate: float, seconds: float, interval: float) -> Soak:
    kafka = deployment.settings.kafka
    progress("soak: preparing the traffic and starting the service")
    traffic = Traffic(rate, seconds)
    # The pools are millions of bytes objects that live for the whole run: out of the
    # collector's sight, or its full collections would stall the generator for a good part
    # of a second (events stamped, not yet sent: counted as latency).
    gc.collect()
    gc.freeze()
    service = ServiceProcess(deployment)
    sampler = Sampler(service, traffic, interval, seconds)
    try:
        service.wait_ready()
        progress(f"soak: producing {rate:,.0f} events/s for {seconds:,.0f} s")
        sampler.started = time.monotonic()
        sampler.start()
        achieved = asyncio.run(
            produce_steadily(
                kafka.bootstrap_servers, deployment.input_topic, traffic, rate, seconds
            )
        )
        sampler.join(max(sampler.started + seconds + 30 - time.monotonic(), 1))
        if sampler.error is not None:
            raise sampler.error
        service._check_alive()
        _, body = service.get("/metrics")
        final = parse_metrics(body.decode())
    finally:
        sampler.stop.set()
        code = service.terminate()
    if code != 0:
        progress(f"the service exited {code}:\n{service.output()}")
    return Soak(sampler.samples, achieved, final, code, traffic.sent, traffic.bad)


# --------------------------------------------------------------------------- report


@dataclasses.dataclass
class Verdict:
    flat: bool
    rss_growth: float
    rss_slope_mb_per_min: float
    lag_slope_per_s: float
    lag_first_half: float
    lag_second_half: float
    rss_ok: bool
    lag_ok: bool


def _fit(t: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept); (0, mean) for fewer than two points."""
    if len(t) < 2:
        return 0.0, float(np.mean(y)) if len(y) else math.nan
    slope, intercept = np.polyfit(np.asarray(t), np.asarray(y), 1)
    return float(slope), float(intercept)


def judge(samples: Sequence[Sample]) -> Verdict:
    end = samples[-1].t
    middle = end / 2
    first = [s for s in samples if s.t < middle]
    second = [s for s in samples if s.t >= middle]
    t2 = [s.t for s in second]
    rss_slope, rss_intercept = _fit(t2, [s.rss_mb for s in second])
    lag_slope, _ = _fit(t2, [s.lag for s in second])
    start_fit = rss_slope * t2[0] + rss_intercept
    growth = rss_slope * (t2[-1] - t2[0]) / start_fit
    lag1 = float(np.mean([s.lag for s in first])) if first else 0.0
    lag2 = float(np.mean([s.lag for s in second]))
    rss_ok = growth < RSS_GROWTH_LIMIT
    lag_ok = lag2 < LAG_FACTOR * lag1 + LAG_ALLOWANCE
    return Verdict(rss_ok and lag_ok, growth, rss_slope * 60, lag_slope, lag1, lag2, rss_ok, lag_ok)


def phase(samples: Sequence[Sample], lo: float, hi: float) -> dict[str, float]:
    """RSS, lag (means), latency percentiles and consumption rate over ``[lo, hi]`` of the
    run (fractions of its length)."""
    end = samples[-1].t
    inside = [s for s in samples if lo * end <= s.t <= hi * end]
    if len(inside) < 2:  # at least one interval
        k = min(range(len(samples)), key=lambda i: abs(samples[i].t - (lo + hi) / 2 * end))
        inside = samples[max(k - 1, 0) : max(k - 1, 0) + 2]
    a, b = inside[0], inside[-1]
    buckets = delta(b.buckets, a.buckets)
    return {
        "rss": float(np.mean([s.rss_mb for s in inside])),
        "lag": float(np.mean([s.lag for s in inside])),
        "p50": quantile(0.5, buckets),
        "p95": quantile(0.95, buckets),
        "p99": quantile(0.99, buckets),
        "rate": (b.consumed - a.consumed) / max(b.t - a.t, 1e-9),
        "from": a.t,
        "to": b.t,
    }


def args_interval(samples: Sequence[Sample]) -> str:
    """The sampling interval, as text."""
    return f"{samples[1].t - samples[0].t:.0f}" if len(samples) > 1 else "?"


def _ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:,.0f} ms"


def report(
    soak: Soak,
    verdict: Verdict,
    rate: float,
    rate_note: str,
    seconds: float,
    loads: tuple[float, float],
    broker_note: str,
) -> str:
    samples = soak.samples
    phases = {
        "start (first 10%)": phase(samples, 0.0, 0.1),
        "middle (45-55%)": phase(samples, 0.45, 0.55),
        "end (last 10%)": phase(samples, 0.9, 1.0),
        "whole run": phase(samples, 0.0, 1.0),
    }
    cpu = [s.cpu_share for s in samples if not math.isnan(s.cpu_share)]
    load_mean = float(np.mean([s.load1 for s in samples]))
    lines = [
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, shared: load average "
        f"{loads[0]:.1f} at start, {load_mean:.1f} mean over the soak, {loads[1]:.1f} at the "
        f"end; Python {platform.python_version()}, aiokafka {aiokafka.__version__}, Apache "
        f"Kafka {KAFKA_VERSION} broker ({broker_note})",
        "",
        f"traffic: {len(MIX)} model versions (credit-scoring x 4, {WIDE_FEATURES}-feature "
        f"numeric x 4), {PARTITIONS} partitions, drift on/off every ~{DRIFT_PERIOD_SECONDS:.0f}"
        f" s per version, {BAD_SHARE:.1%} malformed; target {rate:,.0f} events/s "
        f"({rate_note}), achieved {soak.achieved_rate:,.0f} events/s for {seconds:,.0f} s "
        f"({soak.produced:,} produced, {soak.bad:,} malformed); service CPU "
        f"{np.mean(cpu) if cpu else math.nan:.0%} of one core on average",
        "",
        "| phase | RSS | consumer lag | latency p50 | p95 | p99 | consumed |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for name, p in phases.items():
        lines.append(
            f"| {name} ({p['from']:.0f}-{p['to']:.0f} s) | {p['rss']:,.1f} MB | "
            f"{p['lag']:,.0f} | {_ms(p['p50'])} | {_ms(p['p95'])} | {_ms(p['p99'])} | "
            f"{p['rate']:,.0f} events/s |"
        )
    final = soak.final
    worst_lag = max(samples, key=lambda s: s.lag)
    worst_p99 = max(samples, key=lambda s: -1.0 if math.isnan(s.p99) else s.p99)
    lines += [
        "",
        f"worst {args_interval(samples)} s sample: lag {worst_lag.lag:,.0f} at "
        f"t={worst_lag.t:.0f} s (service CPU {worst_lag.cpu_share:.0%} of a core, load "
        f"average {worst_lag.load1:.1f}); p99 {_ms(worst_p99.p99)} at t={worst_p99.t:.0f} s",
        "",
        f"second half: RSS slope {verdict.rss_slope_mb_per_min:+.2f} MB/min, growth "
        f"{verdict.rss_growth:+.1%} (limit {RSS_GROWTH_LIMIT:.0%}: "
        f"{'ok' if verdict.rss_ok else 'GROWING'}); lag slope {verdict.lag_slope_per_s:+.1f} "
        f"events/s, mean lag {verdict.lag_first_half:,.0f} (first half) -> "
        f"{verdict.lag_second_half:,.0f} (second half; limit 2 x first + 1,000: "
        f"{'ok' if verdict.lag_ok else 'GROWING'})",
        f"outputs: {final.consumed:,.0f} consumed, {final.dead_letters:,.0f} dead letters, "
        f"{final.alerts:,.0f} alert events, {final.retrain:,.0f} retrain requests; service "
        f"exit code {soak.exit_code} after SIGTERM",
        "latency = now - the batch's newest event time when its outputs were acknowledged "
        '(driftline_processing_latency_seconds{source="event_time"}, one observation per '
        "batch, interpolated within buckets)",
        "the service's own part over the whole run, from a batch's consumption to its outputs "
        'acknowledged (source="consume_time"): p50 '
        f"{_ms(quantile(0.5, final.service_buckets))}, p95 "
        f"{_ms(quantile(0.95, final.service_buckets))}, p99 "
        f"{_ms(quantile(0.99, final.service_buckets))}",
        "",
        f"verdict: **{'flat' if verdict.flat else 'NOT flat'}**",
    ]
    return "\n".join(lines)


def plot(samples: Sequence[Sample], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(10, 10), sharex=True)
    axes[0].plot(t, [s.rss_mb for s in samples], color="tab:blue")
    axes[0].set_ylabel("service RSS (MB)")
    axes[0].set_ylim(bottom=0)
    axes[1].plot(t, [s.lag for s in samples], color="tab:red")
    axes[1].set_ylabel("consumer lag (events)")
    axes[1].set_ylim(bottom=0)
    for attr, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
        axes[2].plot(t, [getattr(s, attr) for s in samples], style, label=attr)
    axes[2].set_ylabel("latency, event time (s)")
    axes[2].set_ylim(bottom=0)
    axes[2].legend(loc="upper left")
    axes[3].plot(t, [s.consumed_per_s for s in samples], label="consumed")
    axes[3].plot(t, [s.produced_per_s for s in samples], "--", label="produced")
    axes[3].set_ylabel("events/s")
    axes[3].set_ylim(bottom=0)
    axes[3].legend(loc="lower right")
    axes[3].set_xlabel("seconds since the start of the soak")
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_csv(samples: Sequence[Sample], path: Path) -> None:
    fields = [f.name for f in dataclasses.fields(Sample) if f.name != "buckets"]
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(fields)
        for s in samples:
            writer.writerow([getattr(s, name) for name in fields])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (600)")
    parser.add_argument("--rate", type=float, help="events/s (default: --load x measured max)")
    parser.add_argument("--load", type=float, default=0.7, help="share of the max rate (0.7)")
    parser.add_argument("--ramp-events", type=int, default=150_000, help="to measure the max")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--output", type=Path, default=REPO / "load_tests" / "soak.png")
    parser.add_argument("--csv", type=Path, help="also write the samples as CSV")
    parser.add_argument("--bootstrap", help="an existing broker instead of a local one")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    begun = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        if args.bootstrap:
            bootstrap, broker_note = args.bootstrap, f"at {args.bootstrap}"
        else:
            progress("starting a local Kafka broker (JVM options of kafka-server-start.sh)")
            broker = LocalKafka(root / "kafka", jvm_options=PRODUCTION_JVM_OPTIONS)
            broker.start()
            stack.callback(broker.stop)
            bootstrap, broker_note = broker.bootstrap, "local, from Maven jars"
        profiles = write_profiles(root)
        if args.rate:
            rate, rate_note = args.rate, "--rate"
        else:
            ramp = make_deployment(root, bootstrap, "ramp", profiles)
            top = measure_max_rate(ramp, args.ramp_events)
            rate = args.load * top
            rate_note = f"{args.load:.0%} of the measured max {top:,.0f} events/s"
        deployment = make_deployment(root, bootstrap, "soak", profiles)
        soak = run_soak(deployment, rate, args.duration, args.interval)
    if len(soak.samples) < 4:
        progress("too few samples to judge")
        return 2
    verdict = judge(soak.samples)
    loads = (load_start, os.getloadavg()[0])
    print(report(soak, verdict, rate, rate_note, args.duration, loads, broker_note))
    print(f"\n(total run {time.monotonic() - begun:.0f} s)")
    title = (
        f"driftline soak: {rate:,.0f} events/s for {args.duration:,.0f} s, "
        f"{'flat' if verdict.flat else 'NOT flat'} (RSS {verdict.rss_growth:+.1%} over the "
        f"second half)"
    )
    plot(soak.samples, args.output, title)
    progress(f"plot: {args.output}")
    if args.csv:
        write_csv(soak.samples, args.csv)
    if soak.exit_code != 0:
        return 2
    return 0 if verdict.flat else 1


if __name__ == "__main__":
    sys.exit(main())

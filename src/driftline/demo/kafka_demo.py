"""``driftline demo``: a credit-scoring model's live traffic through Kafka, drift and all.

The demo starts a local Apache Kafka broker (or uses ``--bootstrap``), creates driftline's
topics, builds the model's reference profile from synthetic training data, writes the
config a user would write, and runs the monitor in this process, as ``driftline run``
would. It then streams prediction events into the input topic at a steady rate, event
time = wall time, each one's label as a feedback event 1 to 5 s later on the same topic,
a concept drift at a quarter of the run and input drift at half and three quarters of it,
and a few malformed events. Alerts, retrain requests and dead letters are read back from their
topics as they arrive: shown in a live view, or logged one per line with ``--no-live``.
After ``--duration`` seconds (or Ctrl-C) it drains, stops the producer, the monitor (which
checkpoints and commits) and the broker, and prints a summary. It exits 0 when at least one
alert and one retrain request arrived, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler

from driftline.config import ConfigError, Settings, load_settings
from driftline.demo.live_view import (
    RETRAIN_STYLE,
    DemoSnapshot,
    OutputLine,
    ScheduledDrift,
    alert_line,
    feature_statuses,
    performance_statuses,
    render,
    retrain_line,
)
from driftline.demo.options import (
    DEFAULT_DIRECTORY,
    DEFAULT_DURATION,
    DEFAULT_RATE,
    add_arguments,
)
from driftline.demo.replay_demo import (
    CONCEPT_DESCRIPTION,
    MALFORMED,
    MODEL_ID,
    MODEL_VERSION,
    TRAINING_ROWS,
    build_demo_profile,
    concept_drift,
    describe_reference,
    run_replay_demo,
)
from driftline.demo.scenario import (
    ConceptDrift,
    Drift,
    credit_scoring_scenario,
    stream_lines,
)
from driftline.localkafka import KAFKA_VERSION, LocalKafka, LocalKafkaError
from driftline.planning import build_plan
from driftline.profile import ProfileError
from driftline.service.app import MonitorService
from driftline.service.http import start_http
from driftline.service.kafka_clients import make_consumer, make_producer
from driftline.service.metrics import ServiceMetrics
from driftline.service.topics import TopicError, create_topics

log = logging.getLogger(__name__)

EVENTS_FOR_AN_ALERT = 4_000
"""Events after a drift until its alert is surely out. The input drifts reach their
critical thresholds, so they are alerted on the first window of 1,000 after the change (at
most 2,000 events); a rise at warning level, as the concept drift's error rate may be,
needs 3 breaching windows of 1,000, plus one."""
LABEL_DELAY = (1.0, 5.0)
"""Seconds from a prediction to its label (uniform; event time = wall time here, so the
offline demo's 30 s to 10 min would not fit in a minute's run)."""

_TICK = 0.02  # producer pacing and stop checks, seconds
_READY_TIMEOUT = 60.0
_DRAIN_TIMEOUT = 5.0
_FINAL_READ_TIMEOUT = 5.0
_PROGRESS_EVERY = 5.0  # --no-live progress lines, seconds
_RATE_WINDOW = 2.0  # seconds over which the view's rates are measured


class DemoError(RuntimeError):
    """The demo could not run (the monitor failed or never became ready)."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``driftline demo`` was asked to do."""

    duration: float = DEFAULT_DURATION
    rate: float = DEFAULT_RATE
    live: bool = True
    bootstrap: str | None = None
    """An existing Kafka cluster (topics get a run-unique suffix); None starts a broker."""
    directory: Path = DEFAULT_DIRECTORY


@dataclass(frozen=True, slots=True)
class DriftStep:
    """Drifts injected together, ``at`` seconds after the first event: of the inputs
    (``drifts``) or of the world (``concept_drifts``)."""

    at: float
    drifts: tuple[Drift, ...]
    description: str
    concept_drifts: tuple[ConceptDrift, ...] = ()

    @property
    def start(self) -> int:
        """Index of the first prediction it changes."""
        return min([d.start for d in self.drifts] + [c.start for c in self.concept_drifts])

    @property
    def alerted_features(self) -> tuple[str, ...]:
        """The features whose alerts tell of it (``__error__``: the model's error)."""
        return tuple(d.feature for d in self.drifts) + (
            ("__error__",) if self.concept_drifts else ()
        )


def drift_schedule(duration: float, rate: float) -> tuple[DriftStep, ...]:
    """The injected incident: at a quarter of the run self-employed applicants start
    defaulting half of the time whatever their score (a concept drift, seen only in the
    labels); at half of it ``amount`` shifts up by one standard deviation and a new
    ``country`` (MX) takes 25% of the traffic; at three quarters ``income`` goes missing in
    25% of the events (from 1%).

    >>> [(s.at, s.start) for s in drift_schedule(40.0, 1000.0)]
    [(10.0, 10000), (20.0, 20000), (30.0, 30000)]
    """
    times = (duration / 4, duration / 2, 3 * duration / 4)
    concept, first, second = (round(t * rate) for t in times)
    return (
        DriftStep(times[0], (), CONCEPT_DESCRIPTION, (concept_drift(concept),)),
        DriftStep(
            times[1],
            (
                Drift("amount", "mean_shift", start=first, magnitude=1.0),
                Drift("country", "category_surge", start=first, magnitude=0.25, category="MX"),
            ),
            "`amount` +1 sd; new `country` MX at 25%",
        ),
        DriftStep(
            times[2],
            (Drift("income", "missing_surge", start=second, magnitude=0.25),),
            "`income` missing 1% -> 25%",
        ),
    )


def malformed_positions(events: int) -> tuple[int, ...]:
    """Indices of the prediction events each malformed message is sent just before.

    >>> malformed_positions(1000)
    (250, 500, 750)
    """
    parts = len(MALFORMED) + 1
    return tuple(events * k // parts for k in range(1, parts))


def demo_config(profile: str, bootstrap: str, run_id: str | None = None) -> dict[str, Any]:
    """The config a user would write: the model and its profile, plus where Kafka is.

    With ``run_id`` (a shared cluster) the topics and the group get a unique name.

    >>> demo_config("p.json", "127.0.0.1:9092")["models"]
    [{'model_id': 'credit-scorer', 'reference_profile': 'p.json'}]
    >>> demo_config("p.json", "k:9092", "ab12")["kafka"]["alerts_topic"]
    'driftline.demo-ab12.alerts'
    """
    kafka: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "partitions": 1,
        "replication_factor": 1,
    }
    if run_id is not None:
        prefix = f"driftline.demo-{run_id}"
        kafka |= {
            "group_id": f"driftline-demo-{run_id}",
            "input_topics": [f"{prefix}.predictions"],
            "alerts_topic": f"{prefix}.alerts",
            "retrain_topic": f"{prefix}.retrain-requests",
            "dead_letter_topic": f"{prefix}.dead-letters",
            "state_topic": f"{prefix}.state",
        }
    return {
        "models": [{"model_id": MODEL_ID, "reference_profile": profile}],
        "kafka": kafka,
        "http": {"port": 0},
    }


@dataclass
class DemoTally:
    """What the demo produced and what came back on the output topics."""

    produced: int = 0
    """Messages acknowledged by Kafka on the input topic (predictions, feedback and
    malformed)."""
    feedback: int = 0
    malformed: int = 0
    consumed: int = 0
    """Input messages the monitor processed (its ``driftline_events_consumed`` counter)."""
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Distinct alert events by CloudEvents id (delivery is at least once)."""
    retrain_requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    dead_letters: Counter[str] = field(default_factory=Counter)
    """Distinct dead letters by reason."""
    alert_lines: list[OutputLine] = field(default_factory=list)
    retrain_lines: list[OutputLine] = field(default_factory=list)
    first_firing: dict[str, float] = field(default_factory=dict)
    """Feature -> seconds after the first event when its first firing alert arrived."""
    alert_latencies: list[float] = field(default_factory=list)
    """Seconds from the event time of each alert's triggering event to its arrival."""
    elapsed: float = 0.0
    interrupted: bool = False
    dead_letter_positions: set[tuple[int, int]] = field(default_factory=set)
    """(partition, offset) of the dead letters counted."""

    def add_dead_letter(self, partition: int, offset: int, reason: str) -> bool:
        """Count a dead letter once; whether it was new."""
        if (partition, offset) in self.dead_letter_positions:
            return False
        self.dead_letter_positions.add((partition, offset))
        self.dead_letters[reason] += 1
        return True

    @property
    def succeeded(self) -> bool:
        """At least one alert and one retrain request arrived."""
        return bool(self.alerts) and bool(self.retrain_requests)


# --------------------------------------------------------------------------- entry points


def run_demo(args: argparse.Namespace, console: Console) -> int:
    """Run the demo the parsed options of :func:`~driftline.demo.options.add_arguments` ask
    for."""
    if args.offline:
        return run_replay_demo(args.output_dir, args.events, console)
    options = DemoOptions(
        duration=args.duration,
        rate=args.rate,
        live=not args.no_live,
        bootstrap=args.bootstrap,
        directory=args.output_dir,
    )
    return run_kafka_demo(options, console)


def main(argv: Sequence[str] | None = None) -> int:
    """``driftline demo`` as a function: ``main(["--duration", "30", "--no-live"])``."""
    parser = argparse.ArgumentParser(
        prog="driftline demo", description="A drifting model's traffic, monitored on Kafka."
    )
    add_arguments(parser)
    return run_demo(parser.parse_args(argv), Console(stderr=True))


def run_kafka_demo(options: DemoOptions, console: Console) -> int:
    """Run the Kafka demo; return the exit code (0: an alert and a retrain request arrived)."""
    if not (math.isfinite(options.duration) and options.duration > 0):
        _say(console, "error: --duration must be a positive number of seconds", style="red")
        return 2
    if not (math.isfinite(options.rate) and options.rate > 0):
        _say(console, "error: --rate must be a positive number of events per second", style="red")
        return 2
    steps = drift_schedule(options.duration, options.rate)
    tally: DemoTally | None = None
    with _demo_logging(console) as startup_noise:
        try:
            tally = _run(options, steps, console, startup_noise)
        except KeyboardInterrupt:
            _say(console, "interrupted")
        except LocalKafkaError as exc:
            _say(console, f"error: {exc}", style="red")
            _say(console, "(`driftline demo --offline` runs the demo without Kafka)")
        except (KafkaError, TopicError, DemoError, ConfigError, ProfileError, OSError) as exc:
            _say(console, f"error: {exc}", style="red")
    if tally is None:
        return 1
    print_summary(tally, steps, console)
    _print_rerun(options.directory, options.bootstrap is None, console)
    return 0 if tally.succeeded else 1


def _run(
    options: DemoOptions,
    steps: Sequence[DriftStep],
    console: Console,
    startup_noise: _StartupNoise,
) -> DemoTally:
    directory = options.directory
    directory.mkdir(parents=True, exist_ok=True)
    console.rule(f"driftline demo: {MODEL_ID} v{MODEL_VERSION} on Kafka")
    _explain(options, steps, console)
    profile = _build_profile(directory, console)
    with _kafka(options.bootstrap, console) as bootstrap:
        run_id = None if options.bootstrap is None else uuid.uuid4().hex[:8]
        config = directory / "driftline.yaml"
        _write_config(config, demo_config(profile.name, bootstrap, run_id))
        _say(console, f"config: {config}")
        live = options.live and console.is_terminal
        run = DemoRun(
            load_settings(config), options, steps, console, live=live, startup_noise=startup_noise
        )
        return asyncio.run(run.run())


@contextlib.contextmanager
def _kafka(bootstrap: str | None, console: Console) -> Iterator[str]:
    """``bootstrap`` when given; otherwise a local broker in a temporary directory, stopped
    and removed on exit."""
    if bootstrap is not None:
        yield bootstrap
        return
    scratch = Path(tempfile.mkdtemp(prefix="driftline-demo-kafka-"))
    broker = LocalKafka(scratch)
    started = time.monotonic()
    try:
        with console.status(f"starting Apache Kafka {KAFKA_VERSION} ..."):
            broker.start()  # kills what it started when it fails
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    _say(
        console,
        f"Kafka {KAFKA_VERSION} broker at {broker.bootstrap}, up in "
        f"{time.monotonic() - started:.1f} s (data and log in {scratch})",
    )
    try:
        yield broker.bootstrap
    finally:
        try:
            with console.status("stopping the Kafka broker ..."):
                broker.stop()
        except KeyboardInterrupt:  # a second Ctrl-C: no more waiting
            broker.kill()
        _say(console, "Kafka broker stopped")
        shutil.rmtree(scratch, ignore_errors=True)


class _StartupNoise(logging.Filter):
    """Drops the Kafka clients' log records until the monitor is ready: on a new broker,
    topics without a leader yet and a group coordinator still starting are logged as
    errors, and are retried."""

    def __init__(self) -> None:
        super().__init__()
        self.starting = True

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.starting and record.name.startswith("aiokafka"))


@contextlib.contextmanager
def _demo_logging(console: Console) -> Iterator[_StartupNoise]:
    """Warnings and errors of the monitor and Kafka clients, printed above the live view."""
    noise = _StartupNoise()
    root = logging.getLogger()
    if root.handlers:  # the application configured logging already
        yield noise
        return
    handler = RichHandler(console=console, level=logging.WARNING, show_path=False)
    handler.addFilter(noise)
    root.addHandler(handler)
    try:
        yield noise
    finally:
        root.removeHandler(handler)


def _explain(options: DemoOptions, steps: Sequence[DriftStep], console: Console) -> None:
    events = round(options.duration * options.rate)
    low, high = LABEL_DELAY
    _say(
        console,
        f"{events:,} prediction events over {options.duration:g} s ({options.rate:,.0f}/s, "
        f"event time = now), each one's label as a feedback event {low:g} to {high:g} s "
        f"later, and {len(MALFORMED)} malformed ones",
    )
    for step in steps:
        _say(console, f"  at {step.at:4.1f} s: {step.description}")
    after_last = (options.duration - steps[-1].at) * options.rate
    if after_last < EVENTS_FOR_AN_ALERT:
        _say(
            console,
            f"note: an alert needs about {EVENTS_FOR_AN_ALERT:,} events after a drift "
            f"(3 windows of 1,000 at warning level); the last drift gets {after_last:,.0f}. "
            "Raise --duration or --rate to see every alert.",
            style="yellow",
        )


def _build_profile(directory: Path, console: Console) -> Path:
    path = directory / f"{MODEL_ID}-v{MODEL_VERSION}.profile.json"
    profile = build_demo_profile(directory / "training.csv", path)
    _say(console, f"reference {describe_reference(profile)}, from {TRAINING_ROWS:,} training rows")
    _say(console, f"  -> {path}")
    return path


def _write_config(path: Path, config: dict[str, Any]) -> None:
    header = (
        "# Written by `driftline demo`. Rerun the monitor on a Kafka cluster with\n"
        f"#   driftline topics create --config {path}\n"
        f"#   driftline run --config {path}\n"
        "# (set kafka.bootstrap_servers, or DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS=host:port)\n"
    )
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))


# --------------------------------------------------------------------------- the run


class DemoRun:
    """Monitor, producer, output reader and view of one demo run, on one event loop."""

    def __init__(
        self,
        settings: Settings,
        options: DemoOptions,
        steps: Sequence[DriftStep],
        console: Console,
        *,
        live: bool,
        startup_noise: _StartupNoise | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.steps = tuple(steps)
        self.console = console
        self.live = live
        self.startup_noise = startup_noise
        self.tally = DemoTally()
        self.stop = asyncio.Event()
        """Set by Ctrl-C / SIGTERM: end the run early."""
        self.started: float | None = None
        """Event-loop time of the first event."""
        self.metrics = ServiceMetrics()
        self.service: MonitorService | None = None
        self.producer: AIOKafkaProducer | None = None
        self._service_task: asyncio.Task[None] | None = None
        self._rates: deque[tuple[float, int, int]] = deque()
        self._sinks: dict[str, BinaryIO] = {}

    # -- orchestration -----------------------------------------------------------------

    async def run(self) -> DemoTally:
        """Set everything up, stream for the duration, shut down in order; the tally."""
        loop = asyncio.get_running_loop()
        handled = self._catch_signals(loop)
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._start(stack)
                await self._stream()
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)
        return self.tally

    def _catch_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        handled: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self._interrupt)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
                continue
            handled.append(signum)
        return handled

    def _interrupt(self) -> None:
        if not self.stop.is_set():
            self.tally.interrupted = True
            self.stop.set()

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        """Topics, monitor, output reader and producer; their shutdown pushed on ``stack``
        (it runs in reverse: producer, monitor, reader, HTTP)."""
        settings, kafka = self.settings, self.settings.kafka
        for line in await create_topics(settings):
            log.debug("topics: %s", line)
        for name in ("alerts", "retrain-requests"):
            handle = (self.options.directory / f"{name}.jsonl").open("wb")
            stack.callback(handle.close)
            self._sinks[name] = handle

        plan = build_plan(settings)  # loads and checks the profile
        service = MonitorService(settings, plan, self.metrics)
        self.metrics.watch(service)
        self.service = service
        runner, port = await start_http(service, settings.http.host, settings.http.port)
        stack.push_async_callback(runner.cleanup)
        url = f"http://{settings.http.host}:{port}"
        _say(self.console, f"monitor running in this process: {url}/v1/status, {url}/metrics")

        outputs = make_consumer(kafka, group=False)
        await outputs.start()
        stack.push_async_callback(_stop_consumer, outputs)
        topics = (kafka.alerts_topic, kafka.retrain_topic, kafka.dead_letter_topic)
        partitions = [TopicPartition(t, p) for t in topics for p in range(kafka.partitions)]
        outputs.assign(partitions)
        finish_reading = asyncio.Event()
        reader = asyncio.create_task(self._read_outputs(outputs, partitions, finish_reading))
        stack.push_async_callback(_finish, reader, finish_reading)

        service_stop = asyncio.Event()
        self._service_task = asyncio.create_task(service.run(service_stop))
        stack.push_async_callback(self._stop_service, service_stop)

        self.producer = make_producer(kafka)
        await self.producer.start()
        stack.push_async_callback(self.producer.stop)

    async def _stream(self) -> None:
        await self._wait_ready()
        if self.stop.is_set():
            return
        view: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.live:
            view = Live(console=self.console, auto_refresh=False, transient=False)
        with view as live:
            show = asyncio.create_task(self._show(live))
            try:
                await self._produce()
                if not self.stop.is_set():
                    await self._drain()
            finally:
                show.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await show
                if live is not None:
                    live.update(self._render(), refresh=True)
        if self.tally.interrupted:
            _say(self.console, "interrupted: shutting down")
        self._report_progress()

    async def _wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _READY_TIMEOUT
        assert self.service is not None
        with self.console.status("monitor joining its consumer group ..."):
            while not self.service.ready and not self.stop.is_set():
                self._check_service()
                if loop.time() > deadline:
                    raise DemoError(
                        f"the monitor was not ready (partitions assigned) within "
                        f"{_READY_TIMEOUT:.0f} s"
                    )
                await self._pause(0.1)
        if self.startup_noise is not None:
            self.startup_noise.starting = False

    def _check_service(self) -> None:
        task = self._service_task
        assert task is not None
        if task.done():
            task.result()  # raises the monitor's error
            raise DemoError("the monitor stopped unexpectedly")

    async def _stop_service(self, service_stop: asyncio.Event) -> None:
        """Stop the monitor as SIGTERM stops ``driftline run``: checkpoint, commit, leave."""
        service_stop.set()
        task = self._service_task
        assert task is not None
        done, _ = await asyncio.wait({task}, timeout=30.0)
        if not done:
            log.warning("the monitor did not stop within 30 s; cancelling it")
            task.cancel()
            await asyncio.wait({task})
        elif not task.cancelled() and task.exception() is not None:
            log.debug("the monitor had failed: %r", task.exception())
        else:
            _say(self.console, "monitor stopped (state checkpointed, offsets committed)")

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` or until the run is stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    # -- producing ---------------------------------------------------------------------

    async def _produce(self) -> None:
        """Send prediction ``i`` at ``i / rate`` s after the first (event time = that
        moment), and each feedback event at its event time, until the last prediction."""
        loop = asyncio.get_running_loop()
        rate = self.options.rate
        total = round(self.options.duration * rate)
        first_ms = round(time.time() * 1000.0)
        scenario = credit_scoring_scenario(
            events=total,
            model_id=MODEL_ID,
            model_version=MODEL_VERSION,
            start_time=first_ms / 1000.0,
            rate=rate,
            labels=True,
            label_delay=LABEL_DELAY,
            drifts=[drift for step in self.steps for drift in step.drifts],
            concept_drifts=[c for step in self.steps for c in step.concept_drifts],
        )
        last_ms = round(scenario.event_time(total - 1) * 1000.0) if total else first_ms
        lines = stream_lines(scenario, labels_until_ms=last_ms)
        bad_at = malformed_positions(total)
        announced = [step.start for step in self.steps]
        topic = self.settings.kafka.input_topics[0]
        key = MODEL_ID.encode()
        assert self.producer is not None
        self.started = loop.time()
        self._note(f"streaming {total:,} predictions and their labels to {topic} at {rate:,.0f}/s")
        bad = 0
        upcoming = next(lines, None)
        while upcoming is not None and not self.stop.is_set():
            self._check_service()
            due_ms = first_ms + (loop.time() - self.started) * 1000.0
            pending = []
            while upcoming is not None and upcoming.time_ms <= due_ms:
                if not upcoming.feedback:
                    while bad < len(bad_at) and bad_at[bad] <= upcoming.index:
                        pending.append(await self.producer.send(topic, MALFORMED[bad], key=key))
                        bad += 1
                    for i, start in enumerate(announced):
                        if start == upcoming.index:
                            self._note(f"drift injected: {self.steps[i].description}")
                pending.append(await self.producer.send(topic, upcoming.line, key=key))
                self.tally.feedback += upcoming.feedback
                upcoming = next(lines, None)
            if pending:
                await asyncio.gather(*pending)
                self.tally.produced += len(pending)
                self.tally.malformed = bad
            await self._pause(_TICK)
        self.tally.elapsed = loop.time() - self.started

    async def _drain(self) -> None:
        """Wait (a little) until the monitor has processed everything produced."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _DRAIN_TIMEOUT
        while self._consumed() < self.tally.produced and loop.time() < deadline:
            self._check_service()
            await self._pause(0.1)
            if self.stop.is_set():
                return

    # -- outputs -----------------------------------------------------------------------

    async def _read_outputs(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition], finish: asyncio.Event
    ) -> None:
        """Read the output topics until ``finish`` is set and their ends are reached."""
        loop = asyncio.get_running_loop()
        ends: dict[TopicPartition, int] | None = None
        deadline = math.inf
        while True:
            if finish.is_set():
                if ends is None:
                    ends = await consumer.end_offsets(partitions)
                    deadline = loop.time() + _FINAL_READ_TIMEOUT
                positions = {tp: await consumer.position(tp) for tp in partitions}
                if all(positions[tp] >= ends[tp] for tp in partitions):
                    return
                if loop.time() > deadline:
                    log.warning("output topics not read to their end within the time limit")
                    return
            batch = await consumer.getmany(*partitions, timeout_ms=200)
            for tp, records in batch.items():
                for record in records:
                    self._on_output(tp, record)

    def _on_output(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        kafka = self.settings.kafka
        value: bytes = record.value or b""
        if tp.topic == kafka.dead_letter_topic:
            reason = dict(record.headers).get("driftline.reason", b"?").decode()
            if self.tally.add_dead_letter(tp.partition, record.offset, reason):
                self._note(f"DEAD     {reason}: {value[:60]!r}", style="dim")
            return
        event = orjson.loads(value)
        if tp.topic == kafka.alerts_topic and event["id"] not in self.tally.alerts:
            self.tally.alerts[event["id"]] = event
            triggered = datetime.fromisoformat(event["time"]).timestamp()
            self.tally.alert_latencies.append(time.time() - triggered)
            self._sinks["alerts"].write(value + b"\n")
            text, style = alert_line(event)
            data = event["data"]
            if data["status"] == "firing":
                self.tally.first_firing.setdefault(data["labels"]["feature"], self._elapsed())
            self._arrived(self.tally.alert_lines, OutputLine(self._elapsed(), text, style))
        elif tp.topic == kafka.retrain_topic and event["id"] not in self.tally.retrain_requests:
            self.tally.retrain_requests[event["id"]] = event
            self._sinks["retrain-requests"].write(value + b"\n")
            line = OutputLine(self._elapsed(), retrain_line(event), RETRAIN_STYLE)
            self._arrived(self.tally.retrain_lines, line)

    def _arrived(self, lines: list[OutputLine], line: OutputLine) -> None:
        lines.append(line)
        if not self.live:
            self._log_line(line)

    def _note(self, text: str, style: str = "bold") -> None:
        if not self.live:
            self._log_line(OutputLine(self._elapsed(), text, style))

    def _log_line(self, line: OutputLine) -> None:
        _say(
            self.console,
            f"[{line.elapsed:6.1f} s] {line.text}",
            style=line.style,
        )

    # -- view --------------------------------------------------------------------------

    def _elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return asyncio.get_running_loop().time() - self.started

    def _consumed(self) -> int:
        registry = self.metrics.registry
        total = 0.0
        for topic in self.settings.kafka.input_topics:
            value = registry.get_sample_value("driftline_events_consumed_total", {"topic": topic})
            total += value or 0.0
        self.tally.consumed = int(total)
        return self.tally.consumed

    async def _show(self, live: Live | None) -> None:
        """Refresh the live view 4 times a second, or log progress every few seconds."""
        last_log = 0.0
        while True:
            if live is not None:
                live.update(self._render(), refresh=True)
                await asyncio.sleep(0.25)
            else:
                await asyncio.sleep(0.5)
                if self._elapsed() - last_log >= _PROGRESS_EVERY:
                    last_log = self._elapsed()
                    self._report_progress()

    def _report_progress(self) -> None:
        if self.live:
            return
        tally = self.tally
        dead = sum(tally.dead_letters.values())
        self._log_line(
            OutputLine(
                self._elapsed(),
                f"produced {tally.produced:,}, consumed {self._consumed():,}, dead letters "
                f"{dead}, alerts {len(tally.alerts)}, retrain requests "
                f"{len(tally.retrain_requests)}",
                "dim",
            )
        )

    def _render(self) -> Any:
        now = asyncio.get_running_loop().time()
        consumed = self._consumed()
        self._rates.append((now, self.tally.produced, consumed))
        while len(self._rates) > 2 and now - self._rates[1][0] >= _RATE_WINDOW:
            self._rates.popleft()
        t0, produced0, consumed0 = self._rates[0]
        span = now - t0
        tally = self.tally
        snapshot = DemoSnapshot(
            title=f"driftline demo: {MODEL_ID} v{MODEL_VERSION} on Kafka (Ctrl-C to stop)",
            elapsed=self._elapsed(),
            duration=self.options.duration,
            produced=tally.produced,
            produced_rate=(tally.produced - produced0) / span if span > 0 else 0.0,
            consumed=consumed,
            consumed_rate=(consumed - consumed0) / span if span > 0 else 0.0,
            dead_letters=sum(tally.dead_letters.values()),
            drifts=[ScheduledDrift(s.at, s.description) for s in self.steps],
            alerts=tally.alert_lines,
            retrain_requests=tally.retrain_lines,
            alert_count=len(tally.alerts),
            retrain_count=len(tally.retrain_requests),
        )
        assert self.service is not None
        pipelines = [part.pipeline for part in self.service.partitions.values()]
        return render(
            snapshot,
            feature_statuses(pipelines, (MODEL_ID, MODEL_VERSION)),
            performance_statuses(pipelines, MODEL_ID),
        )


async def _stop_consumer(consumer: AIOKafkaConsumer) -> None:
    # aiokafka#647: stop() soon after start() can raise CancelledError from an internal task.
    with contextlib.suppress(asyncio.CancelledError):
        await consumer.stop()


async def _finish(reader: asyncio.Task[None], finish: asyncio.Event) -> None:
    """Let the output reader read its topics to their end, then wait for it (bounded)."""
    finish.set()
    done, _ = await asyncio.wait({reader}, timeout=2 * _FINAL_READ_TIMEOUT)
    if not done:
        log.warning("the output reader did not finish; cancelling it")
        reader.cancel()
        await asyncio.wait({reader})
    elif not reader.cancelled() and reader.exception() is not None:
        log.error("reading the output topics failed: %r", reader.exception())


# --------------------------------------------------------------------------- summary


def _say(console: Console, text: str, style: str | None = None) -> None:
    """Print plain text (no markup), never wrapped: lines stay whole for scripts."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def print_summary(tally: DemoTally, steps: Sequence[DriftStep], console: Console) -> None:
    """The end-of-run summary, plain lines (scripts may read them)."""

    def row(name: str, value: str) -> None:
        _say(console, f"  {name:<20} {value}")

    console.rule("summary" + (" (interrupted)" if tally.interrupted else ""))
    rate = tally.produced / tally.elapsed if tally.elapsed > 0 else 0.0
    row(
        "events produced",
        f"{tally.produced:,} ({tally.produced - tally.feedback - tally.malformed:,} "
        f"predictions + {tally.feedback:,} feedback + {tally.malformed} malformed) in "
        f"{tally.elapsed:.1f} s, {rate:,.0f}/s",
    )
    row("events consumed", f"{tally.consumed:,}")
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(tally.dead_letters.items()))
    dead = sum(tally.dead_letters.values())
    row("dead letters", f"{dead}" + (f" ({reasons})" if reasons else ""))
    by_kind = Counter(
        (e["data"]["labels"]["severity"], e["data"]["status"]) for e in tally.alerts.values()
    )
    kinds = ", ".join(f"{sev} {status} {n}" for (sev, status), n in sorted(by_kind.items()))
    row("alerts", f"{len(tally.alerts)}" + (f" ({kinds})" if kinds else ""))
    row("retrain requests", f"{len(tally.retrain_requests)}")
    if tally.alert_latencies:
        latencies = sorted(tally.alert_latencies)
        row(
            "alert latency",
            f"median {latencies[len(latencies) // 2]:.2f} s, max {latencies[-1]:.2f} s "
            "(triggering event's time -> alert read from its topic)",
        )
    for step in steps:
        delays = []
        if tally.elapsed < step.at:
            row(f"drift @{step.at:.0f} s", "not injected (the run ended before)")
            continue
        for feature in step.alerted_features:
            arrived = tally.first_firing.get(feature)
            shown = "no alert" if arrived is None else f"{arrived - step.at:.1f} s"
            delays.append(f"`{feature}` {shown}")
        row(f"drift @{step.at:.0f} s alerted", ", ".join(delays))
    for line in tally.alert_lines:
        _say(console, f"  {line.text}", style=line.style)
    for line in tally.retrain_lines:
        _say(console, f"  {line.text}", style=line.style)


def _print_rerun(directory: Path, own_broker: bool, console: Console) -> None:
    config = directory / "driftline.yaml"
    _say(
        console,
        f"\nfiles in {directory}/: training.csv, the reference profile, driftline.yaml, "
        "alerts.jsonl, retrain-requests.jsonl",
    )
    where = (
        "the demo's broker is gone: point kafka.bootstrap_servers at your cluster"
        if own_broker
        else "it points at the same cluster and topics"
    )
    _say(
        console,
        f"to run the monitor yourself ({where}):\n"
        f"  driftline topics create --config {config}\n  driftline run --config {config}",
    )

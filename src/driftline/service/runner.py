"""Process entry of ``driftline run``: logging, HTTP, signals, the service, clean exit."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time
from collections.abc import Callable

import orjson
from aiokafka.errors import KafkaError

from driftline.config import Settings
from driftline.planning import build_plan
from driftline.service.app import MonitorService
from driftline.service.http import start_http
from driftline.service.metrics import ServiceMetrics

log = logging.getLogger(__name__)


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class RepeatFilter(logging.Filter):
    """Let each of a library's message templates through at most once per ``interval``
    seconds; the next one that passes says how many were dropped.

    While the broker is away aiokafka logs the same connection error many times a second.

    >>> now = [0.0]
    >>> repeats = RepeatFilter("aiokafka", interval=10, clock=lambda: now[0])
    >>> def record(name):
    ...     return logging.LogRecord(name, logging.ERROR, "", 0, "broken: %s", ("x",), None)
    >>> [repeats.filter(record("aiokafka.client")) for _ in range(3)]
    [True, False, False]
    >>> repeats.filter(record("driftline.service.app"))
    True
    >>> now[0] = 11.0
    >>> again = record("aiokafka.client")
    >>> repeats.filter(again), again.getMessage()
    (True, 'broken: x (2 similar messages dropped)')
    """

    def __init__(
        self, prefix: str, *, interval: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.prefix = prefix
        self.interval = interval
        self.clock = clock
        self.last: dict[tuple[str, int, str], float] = {}
        self.dropped: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefix):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        last = self.last.get(key)
        if last is not None and now - last < self.interval:
            self.dropped[key] = self.dropped.get(key, 0) + 1
            return False
        self.last[key] = now
        dropped = self.dropped.pop(key, 0)
        if dropped:
            record.msg = f"{record.msg} ({dropped} similar messages dropped)"
        return True


def setup_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.logging.json_lines:
        handler.setFormatter(JsonLinesFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter("aiokafka"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.logging.level)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Run the service until ``stop`` is set (or it fails)."""
    plan = build_plan(settings)  # loads and checks the reference profiles
    metrics = ServiceMetrics()
    service = MonitorService(settings, plan, metrics)
    metrics.watch(service)
    runner, port = await start_http(service, settings.http.host, settings.http.port)
    print(f"http: {settings.http.host}:{port}", flush=True)
    try:
        await service.run(stop)
    finally:
        await runner.cleanup()


#: Allocations between collections of the youngest generation (CPython's default: 700).
GC_YOUNG_THRESHOLD = 5_000


def tune_garbage_collection() -> None:
    """Make the cyclic garbage collector cheaper for a long-running consumer.

    Every batch allocates a record object and a payload per input event; with CPython's
    defaults that starts a collection every 700 allocations, and the older generations,
    which also scan everything imported and loaded at start-up, follow every 10. Objects
    that exist now (modules, settings) are moved out of the collector's sight
    (``gc.freeze``) and the youngest generation is collected every ``GC_YOUNG_THRESHOLD``
    allocations. Measured with ``load_tests/bench_kafka.py`` (see RESULTS.md): about 30%
    more events per CPU-second for about 70 MB more resident memory; larger thresholds
    gained little more speed and cost much more memory.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def run_service(settings: Settings) -> int:
    """Blocking entry point; SIGTERM/SIGINT drain, checkpoint, commit and exit 0.

    A non-retriable Kafka error is logged and re-raised (``driftline run`` prints it and
    exits 1); a broker outage is not one: the service waits, not ready, and reconnects.
    """
    setup_logging(settings)
    tune_garbage_collection()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    try:
        asyncio.run(main())
    except KafkaError as exc:
        # Retriable errors (broker away, leader moving, topic recreated) are retried inside
        # the service; what reaches here cannot be fixed by waiting (authorization,
        # authentication, a record too large): say so and exit non-zero.
        log.critical("stopping on a Kafka error that retrying cannot fix: %s", exc)
        raise
    log.info("stopped")
    return 0

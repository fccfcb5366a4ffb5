"""``driftline alertmanager-bridge``: the alerts topic -> Alertmanager's ``POST /api/v2/alerts``.

At start the bridge reads the alerts topic from its beginning to its end (as of the start)
to learn the current state of every alert (:class:`~.delivery.Deliveries`), then follows
the topic. Every Alertmanager URL is pushed on its own task: the alerts it has not
accepted yet, and every firing alert again each ``resend_interval_seconds``. A failed push
(connection error, timeout, any answer but 2xx or 400) is retried with exponential backoff
(``retry_initial_seconds`` doubling up to ``retry_max_seconds``) until it is accepted.

At least once: the consumer group ``alertmanager_group_id`` commits an offset only after
every configured Alertmanager accepted all alerts before it, so a bridge that stops or
crashes resends, after its restart, whatever an Alertmanager had not accepted.

Alertmanager answers 400 to an alert it finds invalid. Retrying cannot change that, so the
push is split to find the rejected alert, which is logged (an error) and dropped; the
others are delivered. Alert events of driftline are always valid; a 400 means a foreign
or damaged record.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from driftline.alertmanager.delivery import Deliveries, Positions, Push
from driftline.alertmanager.payload import AlertEventError, parse_alert_event, to_alertmanager
from driftline.alertmanager.settings import AlertmanagerSettings
from driftline.config import ConfigError, Settings
from driftline.service.kafka_clients import connection_options, make_admin

log = logging.getLogger(__name__)

ALERTS_PATH = "/api/v2/alerts"
#: How long one read from Kafka waits for records (also how often commits are checked).
READ_TIMEOUT_MS = 500
#: Most records applied per read.
READ_MAX_RECORDS = 5_000


class PushError(Exception):
    """An Alertmanager did not accept a push; retrying may help."""


def ssl_context(settings: AlertmanagerSettings) -> ssl.SSLContext | None:
    """The TLS context for ``https://`` URLs (``None`` when every URL is ``http://``)."""
    if not any(url.startswith("https://") for url in settings.urls):
        return None
    tls = settings.tls
    try:
        context = ssl.create_default_context(
            cafile=None if tls.ca_file is None else str(tls.ca_file)
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"alertmanager.tls.ca_file: cannot load {tls.ca_file}: {exc}") from None
    if tls.cert_file is not None:
        try:
            context.load_cert_chain(
                str(tls.cert_file), None if tls.key_file is None else str(tls.key_file)
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"alertmanager.tls.cert_file: cannot load {tls.cert_file} "
                f"(key {tls.key_file}): {exc}"
            ) from None
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def auth_headers(settings: AlertmanagerSettings) -> dict[str, str]:
    """The ``Authorization`` header of every push (empty without authentication)."""
    if settings.bearer_token is not None:
        return {"Authorization": f"Bearer {settings.bearer_token.get_secret_value()}"}
    if settings.username is not None and settings.password is not None:
        pair = f"{settings.username}:{settings.password.get_secret_value()}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    return {}


class AlertmanagerClient:
    """Pushes alerts to one Alertmanager URL."""

    def __init__(self, session: aiohttp.ClientSession, url: str, headers: dict[str, str]):
        self.session = session
        self.url = url
        self._headers = headers
        self.rejected = 0
        """Alerts this Alertmanager rejected as invalid (HTTP 400), dropped."""

    async def deliver(self, alerts: Sequence[dict[str, Any]]) -> None:
        """Push ``alerts``; raises :class:`PushError` unless all were accepted (or
        rejected as invalid, one by one)."""
        status, text = await self._post(alerts)
        if 200 <= status < 300:
            return
        if status == 400:
            if len(alerts) == 1:
                self.rejected += 1
                log.error(
                    "%s rejected alert %s as invalid, dropping it: %s",
                    self.url,
                    alerts[0]["labels"],
                    text,
                )
                return
            middle = len(alerts) // 2
            await self.deliver(alerts[:middle])
            await self.deliver(alerts[middle:])
            return
        hint = ""
        if status in (401, 403):
            hint = " (check alertmanager.username/password or bearer_token)"
        raise PushError(f"HTTP {status}{hint}: {text}")

    async def _post(self, alerts: Sequence[dict[str, Any]]) -> tuple[int, str]:
        try:
            async with self.session.post(
                self.url + ALERTS_PATH, json=list(alerts), headers=self._headers
            ) as response:
                return response.status, (await response.text())[:300].strip()
        except TimeoutError:
            raise PushError("timed out") from None
        except aiohttp.ClientError as exc:
            raise PushError(f"{type(exc).__name__}: {exc}") from None


class AlertmanagerBridge:
    """The bridge's Kafka and HTTP loop; :meth:`run` until ``stop`` is set."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        if not settings.alertmanager.urls:
            raise ConfigError("alertmanager.urls: at least one Alertmanager URL is required")
        self.settings = settings
        self.config = settings.alertmanager
        self.topic = settings.kafka.alerts_topic
        self.clock = clock
        self._ssl = ssl_context(self.config)
        self._wake = {url: asyncio.Event() for url in self.config.urls}
        self._committed: Positions = {}

    # -- start: the state of every alert from the topic ---------------------------------

    async def _partitions(self, stop: asyncio.Event) -> list[int]:
        """The alerts topic's partitions, once it exists."""
        admin = make_admin(self.settings.kafka)
        await admin.start()
        waited = False
        try:
            while not stop.is_set():
                if self.topic in set(await admin.list_topics()):
                    [described] = await admin.describe_topics([self.topic])
                    partitions = sorted(p["partition"] for p in described["partitions"])
                    if partitions:
                        return partitions
                if not waited:
                    log.warning("waiting for the alerts topic %s to exist", self.topic)
                    waited = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)
        finally:
            await admin.close()
        return []

    async def _rebuild(
        self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], stop: asyncio.Event
    ) -> Deliveries:
        """Read the topic from its beginning to its end as of now into the state."""
        beginning = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        start: Positions = {}
        new_group: set[int] = set()  # partitions without a committed offset
        for tp in tps:
            committed = await consumer.committed(tp)
            if committed is None:
                # A new group: nothing before now was delivered by it; the firing alerts
                # of the topic are (re)sent below, older resolved ones are not needed.
                start[tp.partition] = end[tp]
                new_group.add(tp.partition)
                continue
            if committed < beginning[tp]:
                log.warning(
                    "%s: records %d..%d were deleted (retention) before the bridge delivered "
                    "them; their alerts cannot be sent",
                    tp,
                    committed,
                    beginning[tp] - 1,
                )
            start[tp.partition] = committed
        deliveries = Deliveries(self.config.urls, start)
        if beginning != {tp: 0 for tp in tps}:
            log.info(
                "the alerts topic begins at offsets %s (older records were deleted): alerts "
                "that fired before then and were not resolved since are not known",
                {tp.partition: offset for tp, offset in beginning.items()},
            )
        await consumer.seek_to_beginning(*tps)
        records = 0
        remaining = {tp for tp in tps if end[tp] > beginning[tp]}
        while remaining and not stop.is_set():
            batch = await consumer.getmany(*remaining, timeout_ms=READ_TIMEOUT_MS)
            for tp, items in batch.items():
                records += len(items)
                for record in items:
                    if record.offset < end[tp]:
                        self._apply(deliveries, tp.partition, record.offset, record.value)
            # Records at and beyond ``end`` are read again by the main loop.
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
                    consumer.seek(tp, end[tp])
        firing = deliveries.resend_firing()
        log.info(
            "read %d records of %s: %d alerts firing, %d to deliver to each Alertmanager",
            records,
            self.topic,
            firing,
            deliveries.pending_count(self.config.urls[0]),
        )
        self._committed = {p: o for p, o in start.items() if p not in new_group}
        return deliveries

    @staticmethod
    def _apply(deliveries: Deliveries, partition: int, offset: int, value: bytes | None) -> None:
        try:
            alert = parse_alert_event(value)
        except AlertEventError as exc:
            log.warning("skipping record %d:%d of the alerts topic: %s", partition, offset, exc)
            deliveries.skip(partition, offset)
            return
        deliveries.apply(partition, offset, alert)

    # -- pushing ------------------------------------------------------------------------

    def _bodies(self, push: Push) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            to_alertmanager(
                alert,
                now=now,
                valid_for=self.config.alert_validity_seconds,
                generator_base_url=self.config.generator_base_url,
            )
            for alert in push.alerts
        ]

    async def _push_loop(
        self, deliveries: Deliveries, client: AlertmanagerClient, stop: asyncio.Event
    ) -> None:
        wake = self._wake[client.url]
        delay = self.config.retry_initial_seconds
        failures = 0
        while not stop.is_set():
            push = deliveries.pending(client.url)
            if not push.alerts:
                wake.clear()
                await _first(wake.wait(), stop.wait())
                continue
            bodies = self._bodies(push)
            try:
                size = self.config.max_alerts_per_request
                for i in range(0, len(bodies), size):
                    await client.deliver(bodies[i : i + size])
            except PushError as exc:
                failures += 1
                log.warning(
                    "push of %d alerts to %s failed (%s); retry %d in %.1f s",
                    len(bodies),
                    client.url,
                    exc,
                    failures,
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, self.config.retry_max_seconds)
                continue
            deliveries.accepted(push)
            firing = sum(alert.status == "firing" for alert in push.alerts)
            log.info(
                "pushed %d alerts to %s (%d firing, %d resolved)%s",
                len(bodies),
                client.url,
                firing,
                len(bodies) - firing,
                f" after {failures} failed attempts" if failures else "",
            )
            delay, failures = self.config.retry_initial_seconds, 0

    async def _commit(self, consumer: AIOKafkaConsumer, deliveries: Deliveries) -> None:
        positions = deliveries.committable()
        advanced = {
            TopicPartition(self.topic, partition): offset
            for partition, offset in positions.items()
            if offset > self._committed.get(partition, -1)
        }
        if not advanced:
            return
        try:
            await consumer.commit(advanced)
        except KafkaError as exc:
            log.warning("committing offsets failed (retried with the next ones): %s", exc)
            return
        for tp, offset in advanced.items():
            self._committed[tp.partition] = offset
        log.debug("committed %s", {tp.partition: o for tp, o in advanced.items()})

    # -- the loop -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            **connection_options(self.settings.kafka),
            group_id=self.settings.alertmanager_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        timeout = aiohttp.ClientTimeout(
            total=self.config.timeout_seconds, sock_connect=self.config.connect_timeout_seconds
        )
        await consumer.start()
        pushers: list[asyncio.Task[None]] = []
        try:
            partitions = await self._partitions(stop)
            if stop.is_set():
                return
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            deliveries = await self._rebuild(consumer, tps, stop)
            if stop.is_set():
                return
            async with aiohttp.ClientSession(
                timeout=timeout, connector=aiohttp.TCPConnector(ssl=self._ssl or True)
            ) as session:
                headers = auth_headers(self.config)
                for url in self.config.urls:
                    client = AlertmanagerClient(session, url, headers)
                    pushers.append(asyncio.create_task(self._push_loop(deliveries, client, stop)))
                await self._follow(consumer, deliveries, pushers, stop)
                for task in pushers:
                    task.cancel()
                await asyncio.gather(*pushers, return_exceptions=True)
                await self._commit(consumer, deliveries)
        finally:
            for task in pushers:
                task.cancel()
            await consumer.stop()
        log.info("stopped; committed offsets %s", self._committed)

    async def _follow(
        self,
        consumer: AIOKafkaConsumer,
        deliveries: Deliveries,
        pushers: list[asyncio.Task[None]],
        stop: asyncio.Event,
    ) -> None:
        next_resend = time.monotonic() + self.config.resend_interval_seconds
        self._wake_all()
        while not stop.is_set():
            for task in pushers:
                if task.done():
                    task.result()  # a pusher that failed unexpectedly stops the bridge
            batch = await consumer.getmany(timeout_ms=READ_TIMEOUT_MS, max_records=READ_MAX_RECORDS)
            for tp, records in batch.items():
                for record in records:
                    self._apply(deliveries, tp.partition, record.offset, record.value)
            if batch:
                self._wake_all()
            if time.monotonic() >= next_resend:
                next_resend = time.monotonic() + self.config.resend_interval_seconds
                firing = deliveries.resend_firing()
                log.log(
                    logging.INFO if firing else logging.DEBUG, "re-sending %d firing alerts", firing
                )
                self._wake_all()
            await self._commit(consumer, deliveries)

    def _wake_all(self) -> None:
        for event in self._wake.values():
            event.set()


async def _first(*waits: Any) -> None:
    """Wait until the first of ``waits`` (coroutines) finishes; cancel the rest."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


def run_bridge(settings: Settings) -> int:
    """Blocking entry point of ``driftline alertmanager-bridge``; SIGTERM/SIGINT commit what
    every Alertmanager accepted and exit 0."""
    import signal

    from driftline.service.runner import setup_logging

    setup_logging(settings)
    bridge = AlertmanagerBridge(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await bridge.run(stop)

    asyncio.run(main())
    return 0

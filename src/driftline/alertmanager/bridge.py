"""``driftline alertmanager-bridge``: the alerts topic -> Alertmanager's ``POST /api/v2/alerts``.

At start the bridge reads the alerts topic from its beginning to its end (as of the start)
to learn the current state of every alert (:class:`~.delivery.Deliveries`), then follows
the topic. Every Alertmanager URL is pushed on its own task: the alerts it has not
accepted yet, and every firing alert again each ``resend_interval_seconds`` (a timer task
of its own: re-sending never waits for Kafka, so firing alerts stay active in Alertmanager
while Kafka is down). A failed push (connection error, timeout, any answer but 2xx or an
invalid-alert 400) is retried with exponential backoff (``retry_initial_seconds`` doubling
up to ``retry_max_seconds``) until it is accepted. The topic's partitions are checked every
``PARTITION_CHECK_SECONDS``; partitions added while the bridge runs are read from their
beginning.

At least once: the consumer group ``alertmanager_group_id`` commits an offset only after
every configured Alertmanager accepted all alerts before it, so a bridge that stops or
crashes resends, after its restart, whatever an Alertmanager had not accepted. Commits run
one at a time on a task of their own (aiokafka retries a commit without limit while the
group coordinator is unreachable); on stop the last commit is waited for at most
``STOP_TIMEOUT_SECONDS``.

Alertmanager answers 400 with the reason as a JSON string to an alert it finds invalid
(``INVALID_ALERT_REASONS``); retrying cannot change that, so the push is split to find the
rejected alert, which is logged (an error, with its labels) and dropped; the others are
delivered. Any other 400 (a proxy's, say) is a failed push, retried; so is a push of
several alerts that Alertmanager rejects every one of (something is wrong with all, not
with one). Alert events of driftline are always valid; a dropped alert means a foreign or
damaged record.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
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
#: How often the alerts topic is checked for partitions added while the bridge runs.
PARTITION_CHECK_SECONDS = 60.0
#: Longest a look at the topic's partitions may take (Kafka may be down).
PARTITION_CHECK_TIMEOUT_SECONDS = 30.0
#: Longest the bridge waits, on stop, for its last commit and for the consumer to close.
STOP_TIMEOUT_SECONDS = 10.0
#: The beginnings of the reasons Alertmanager (types.Alert.Validate, 0.25) answers, as a
#: JSON string with HTTP 400, to an alert it finds invalid.
INVALID_ALERT_REASONS = (
    "start time missing",
    "end time missing",
    "start time must be before end time",
    "invalid label set: ",
    "at least one label pair required",
    "invalid annotations: ",
)


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


def warn_plain_http_credentials(settings: AlertmanagerSettings) -> None:
    """Warn (once, at start) when a password or token would cross the network in clear."""
    if settings.bearer_token is None and settings.password is None:
        return
    plain = [url for url in settings.urls if url.startswith("http://")]
    if plain:
        kind = "bearer token" if settings.bearer_token is not None else "basic-auth password"
        log.warning(
            "alertmanager: the %s is sent unencrypted to %s (http://, not https://)",
            kind,
            ", ".join(plain),
        )


def invalid_alert_reason(status: int, body: str) -> str | None:
    """Alertmanager's reason when ``status`` and ``body`` reject alerts as invalid, else
    ``None`` (a 400 from anything else: a proxy, a body that was not parsed).

    >>> invalid_alert_reason(400, '"at least one label pair required"')
    'at least one label pair required'
    >>> invalid_alert_reason(400, "<html>400 Bad Request</html>") is None
    True
    """
    if status != 400:
        return None
    try:
        reason = json.loads(body)
    except ValueError:
        return None
    if isinstance(reason, str) and reason.startswith(INVALID_ALERT_REASONS):
        return reason
    return None


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
        """Push ``alerts``; raises :class:`PushError` unless all were accepted, or some
        rejected one by one as invalid by Alertmanager's own validation (dropped, logged)."""
        rejected = await self._rejected(alerts)
        if rejected and len(rejected) == len(alerts) > 1:
            raise PushError(
                f"Alertmanager rejected every one of {len(alerts)} alerts as invalid, "
                f"e.g. {rejected[0][1]!r}"
            )
        for alert, reason in rejected:
            self.rejected += 1
            log.error(
                "%s rejected alert %s as invalid, dropping it (%d dropped so far): %s",
                self.url,
                alert["labels"],
                self.rejected,
                reason,
            )

    async def _rejected(self, alerts: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
        """Push ``alerts``; the ones Alertmanager rejected as invalid, with the reason."""
        status, text = await self._post(alerts)
        if 200 <= status < 300:
            return []
        reason = invalid_alert_reason(status, text)
        if reason is not None:
            if len(alerts) == 1:
                return [(alerts[0], reason)]
            # Alertmanager keeps the valid alerts of the push: pushing them again is harmless.
            middle = len(alerts) // 2
            return await self._rejected(alerts[:middle]) + await self._rejected(alerts[middle:])
        hint = ""
        if status in (401, 403):
            hint = " (check alertmanager.username/password or bearer_token)"
        elif status == 400:
            hint = " (not Alertmanager's answer to an invalid alert: a proxy?)"
        raise PushError(f"HTTP {status}{hint}: {text[:300].strip()}")

    async def _post(self, alerts: Sequence[dict[str, Any]]) -> tuple[int, str]:
        try:
            async with self.session.post(
                self.url + ALERTS_PATH, json=list(alerts), headers=self._headers
            ) as response:
                return response.status, (await response.read()).decode(errors="replace")
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
        self._commit_task: asyncio.Task[None] | None = None
        self._topic_partition_ids: set[int] = set()
        """The topic's partitions as last seen by the partition check."""
        warn_plain_http_credentials(self.config)

    # -- start: the state of every alert from the topic ---------------------------------

    async def _topic_partitions(self) -> list[int]:
        """The alerts topic's partitions now (none while it does not exist)."""
        admin = make_admin(self.settings.kafka)
        await admin.start()
        try:
            if self.topic not in set(await admin.list_topics()):
                return []
            [described] = await admin.describe_topics([self.topic])
            return sorted(p["partition"] for p in described["partitions"])
        finally:
            await admin.close()

    async def _partitions(self, stop: asyncio.Event) -> list[int]:
        """The alerts topic's partitions, once it exists."""
        waited = False
        while not stop.is_set():
            partitions = await self._topic_partitions()
            if partitions:
                return partitions
            if not waited:
                log.warning("waiting for the alerts topic %s to exist", self.topic)
                waited = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)
        return []

    async def _watch_partitions(self, stop: asyncio.Event) -> None:
        """Every ``PARTITION_CHECK_SECONDS``, the topic's partitions into
        ``_topic_partition_ids`` (the follow loop reads the new ones)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PARTITION_CHECK_SECONDS)
            if stop.is_set():
                return
            try:
                partitions = await asyncio.wait_for(
                    self._topic_partitions(), PARTITION_CHECK_TIMEOUT_SECONDS
                )
            except (KafkaError, OSError, TimeoutError) as exc:
                log.debug("checking the partitions of %s failed: %r", self.topic, exc)
                continue
            self._topic_partition_ids.update(partitions)

    async def _rebuild(
        self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], stop: asyncio.Event
    ) -> Deliveries:
        """Read the topic from its beginning to its end as of now into the state."""
        beginning = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        start: Positions = {}
        uncommitted: set[int] = set()  # partitions without a (usable) committed offset
        committed_offsets: dict[TopicPartition, int | None] = {}
        for tp in tps:
            committed = await consumer.committed(tp)
            if committed is not None and committed > end[tp]:
                log.warning(
                    "%s: the committed offset %d lies beyond the end of the partition (%d): "
                    "the topic was recreated or truncated; treated as no committed offset",
                    tp,
                    committed,
                    end[tp],
                )
                committed = None
            committed_offsets[tp] = committed
        known_group = any(offset is not None for offset in committed_offsets.values())
        for tp, committed in committed_offsets.items():
            if committed is None:
                uncommitted.add(tp.partition)
                if known_group:
                    # A partition added to the topic since the group last committed: all
                    # of its records are new to the bridge.
                    start[tp.partition] = beginning[tp]
                else:
                    # A new group: nothing before now was delivered by it; the firing
                    # alerts of the topic are (re)sent below, older resolved ones are not
                    # needed.
                    start[tp.partition] = end[tp]
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
        self._committed = {p: o for p, o in start.items() if p not in uncommitted}
        self._topic_partition_ids = {tp.partition for tp in tps}
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

    def _start_commit(self, consumer: AIOKafkaConsumer, deliveries: Deliveries) -> None:
        """Commit what every Alertmanager accepted on a task, unless one still runs."""
        task = self._commit_task
        if task is not None:
            if not task.done():
                return  # Kafka is slow or down: the next turn commits the newest offsets
            task.result()  # an unexpected failure stops the bridge
        self._commit_task = asyncio.create_task(self._commit(consumer, deliveries))

    async def _last_commit(self, consumer: AIOKafkaConsumer, deliveries: Deliveries) -> None:
        """On stop: the running commit, then one with the newest offsets, for at most
        ``STOP_TIMEOUT_SECONDS`` in all."""

        async def commit() -> None:
            if self._commit_task is not None:
                await self._commit_task
            await self._commit(consumer, deliveries)

        if not await _bounded(commit(), STOP_TIMEOUT_SECONDS):
            log.warning(
                "could not commit offsets within %.0f s (is Kafka down?); alerts after the "
                "last committed offsets %s are pushed again after a restart",
                STOP_TIMEOUT_SECONDS,
                self._committed,
            )

    # -- the loop -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            **connection_options(self.settings.kafka),
            group_id=self.settings.alertmanager_group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            partitions = await self._partitions(stop)
            if stop.is_set():
                return
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            deliveries = await self._rebuild(consumer, tps, stop)
            if stop.is_set():
                return
            await self._deliver(consumer, deliveries, stop)
        finally:
            if not await _bounded(consumer.stop(), STOP_TIMEOUT_SECONDS):
                log.warning("the Kafka consumer did not close within %.0f s", STOP_TIMEOUT_SECONDS)
        log.info("stopped; committed offsets %s", self._committed)

    async def _deliver(
        self, consumer: AIOKafkaConsumer, deliveries: Deliveries, stop: asyncio.Event
    ) -> None:
        """Push, re-send, follow the topic and commit until ``stop``."""
        timeout = aiohttp.ClientTimeout(
            total=self.config.timeout_seconds, sock_connect=self.config.connect_timeout_seconds
        )
        tasks: list[asyncio.Task[None]] = []
        async with aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(ssl=self._ssl or True)
        ) as session:
            headers = auth_headers(self.config)
            try:
                for url in self.config.urls:
                    client = AlertmanagerClient(session, url, headers)
                    tasks.append(asyncio.create_task(self._push_loop(deliveries, client, stop)))
                tasks.append(asyncio.create_task(self._resend_loop(deliveries, stop)))
                tasks.append(asyncio.create_task(self._watch_partitions(stop)))
                self._wake_all()
                await self._follow(consumer, deliveries, tasks, stop)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        await self._last_commit(consumer, deliveries)

    async def _resend_loop(self, deliveries: Deliveries, stop: asyncio.Event) -> None:
        """Every ``resend_interval_seconds``, make every firing alert pending again."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.resend_interval_seconds)
            if stop.is_set():
                return
            firing = deliveries.resend_firing()
            log.log(
                logging.INFO if firing else logging.DEBUG, "re-sending %d firing alerts", firing
            )
            self._wake_all()

    async def _follow(
        self,
        consumer: AIOKafkaConsumer,
        deliveries: Deliveries,
        tasks: list[asyncio.Task[None]],
        stop: asyncio.Event,
    ) -> None:
        while not stop.is_set():
            for task in tasks:
                if task.done():
                    task.result()  # a task that failed unexpectedly stops the bridge
            await self._read_new_partitions(consumer)
            batch = await consumer.getmany(timeout_ms=READ_TIMEOUT_MS, max_records=READ_MAX_RECORDS)
            for tp, records in batch.items():
                for record in records:
                    self._apply(deliveries, tp.partition, record.offset, record.value)
            if batch:
                self._wake_all()
            self._start_commit(consumer, deliveries)

    async def _read_new_partitions(self, consumer: AIOKafkaConsumer) -> None:
        """Assign the partitions the partition check found, from their beginning."""
        assigned = consumer_assignment(consumer)
        added = sorted(self._topic_partition_ids - {tp.partition for tp in assigned})
        if not added:
            return
        positions = {tp: await consumer.position(tp) for tp in assigned}
        new = [TopicPartition(self.topic, p) for p in added]
        consumer.assign(assigned + new)
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        await consumer.seek_to_beginning(*new)
        log.info(
            "partitions %s were added to %s: reading them from the beginning", added, self.topic
        )

    def _wake_all(self) -> None:
        for event in self._wake.values():
            event.set()


def consumer_assignment(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
    """The consumer's partitions, ordered."""
    return sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition))


async def _bounded(work: Awaitable[Any], timeout: float) -> bool:
    """Await ``work`` for at most ``timeout`` seconds (then cancel it); whether it ended."""
    try:
        await asyncio.wait_for(work, timeout)
    except TimeoutError:
        return False
    return True


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

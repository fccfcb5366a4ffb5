"""The Alertmanager bridge against a real Kafka broker and a real Alertmanager (0.25, Debian's
``prometheus-alertmanager``): alerts made by driftline's own alert policy are produced to
the alerts topic; ``driftline alertmanager-bridge`` runs as a child process."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from driftline.config import Settings, parse_settings
from driftline.policy.alerts import Alert
from tests.alertmanager.alert_events import AlertMaker
from tests.integration.alertmanager_support import (
    BridgeProcess,
    LocalAlertmanager,
    WebhookReceiver,
    alertmanager_available,
    alertmanager_config,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.alertmanager]

PARTITIONS = 2
GENERATOR_BASE_URL = "http://driftline.example.com:8000"
RUNBOOK = "https://runbooks.example.com/drift"


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def alertmanager(tmp_path: Path, webhook: WebhookReceiver) -> Iterator[LocalAlertmanager]:
    problem = alertmanager_available()
    root = tmp_path / "alertmanager"
    root.mkdir()
    manager = LocalAlertmanager(root, alertmanager_config(webhook.url))
    if problem is None:
        try:
            manager.start()
        except RuntimeError as error:
            problem = str(error)
    if problem is not None:
        pytest.fail(f"Alertmanager did not start: {problem}", pytrace=False)
    yield manager
    manager.stop()


@dataclass
class Setup:
    config: Path
    settings: Settings
    root: Path

    @property
    def topic(self) -> str:
        return self.settings.kafka.alerts_topic

    def bridge(self) -> BridgeProcess:
        return BridgeProcess(self.config, self.root / "bridge.log")

    def produce(self, alerts: Sequence[Alert]) -> None:
        asyncio.run(_produce(self.settings, alerts))

    def committed(self) -> dict[int, int]:
        return asyncio.run(_committed(self.settings))


async def _produce(settings: Settings, alerts: Sequence[Alert]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers, enable_idempotence=True
    )
    await producer.start()
    try:
        for alert in alerts:  # as the service does: keyed by fingerprint
            await producer.send_and_wait(
                settings.kafka.alerts_topic, alert.to_json(), key=alert.key.encode()
            )
    finally:
        await producer.stop()


async def _committed(settings: Settings) -> dict[int, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=settings.alertmanager_group_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        out = {}
        for partition in range(PARTITIONS):
            offset = await consumer.committed(
                TopicPartition(settings.kafka.alerts_topic, partition)
            )
            out[partition] = offset or 0
        return out
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


async def _end_offsets(settings: Settings) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.kafka.alerts_topic, p) for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await consumer.stop()


async def _create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()


@pytest.fixture
def setup(
    tmp_path: Path,
    kafka_bootstrap: str,
    topic_name: Callable[[str], str],
    group_id: Callable[[str], str],
    alertmanager: LocalAlertmanager,
) -> Setup:
    raw: dict[str, Any] = {
        "kafka": {
            "bootstrap_servers": kafka_bootstrap,
            "group_id": group_id("bridge"),
            "alerts_topic": topic_name("alerts"),
        },
        "alertmanager": {
            "urls": [alertmanager.url],
            "generator_base_url": GENERATOR_BASE_URL,
            "resend_interval_seconds": 1.0,
            "retry_initial_seconds": 0.2,
            "retry_max_seconds": 1.0,
            "timeout_seconds": 5.0,
        },
        "logging": {"level": "INFO"},
    }
    config = tmp_path / "bridge.yaml"
    config.write_text(yaml.safe_dump(raw))
    settings = parse_settings(raw)
    asyncio.run(_create_topic(kafka_bootstrap, settings.kafka.alerts_topic))
    return Setup(config, settings, tmp_path)


def _time(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def _makers() -> AlertMaker:
    """Alerts whose event time lies an hour back, as for a service that runs live."""
    return AlertMaker(t0=time.time() - 3600, runbook_url=RUNBOOK)


def _all_committed(setup: Setup) -> bool:
    return setup.committed() == asyncio.run(_end_offsets(setup.settings))


def test_firing_alert_reaches_alertmanager_and_the_webhook_and_resolved_ends_it(
    setup: Setup, alertmanager: LocalAlertmanager, webhook: WebhookReceiver
) -> None:
    maker = _makers()
    amount, age = maker.fire("amount"), maker.fire("age")
    setup.produce([amount, age])
    bridge = setup.bridge()
    try:
        wait_for(
            "both alerts in Alertmanager",
            lambda: alertmanager.alert("amount") and alertmanager.alert("age"),
        )
        shown = alertmanager.alert("amount")
        assert shown is not None
        assert shown["labels"] == amount.labels
        assert shown["annotations"] == amount.event["data"]["annotations"]
        assert shown["annotations"]["runbook_url"] == RUNBOOK
        assert shown["generatorURL"] == f"{GENERATOR_BASE_URL}/v1/report/fraud/7"
        assert _time(shown["startsAt"]) == pytest.approx(amount.starts_at, abs=0.001)
        assert shown["status"]["state"] == "active"
        assert _time(shown["endsAt"]) > time.time()  # active until re-sent or resolved

        # The pager's path: Alertmanager's route notifies the webhook receiver.
        paged = wait_for(
            "the webhook's firing notification",
            lambda: [a for a in webhook.alerts("firing") if a["labels"] == amount.labels],
        )
        assert paged[0]["generatorURL"] == f"{GENERATOR_BASE_URL}/v1/report/fraud/7"
        assert paged[0]["annotations"]["summary"] == amount.event["data"]["annotations"]["summary"]

        resolved = maker.resolve("amount")
        setup.produce([resolved])
        wait_for("the resolved alert to end", lambda: alertmanager.alert("amount") is None)
        assert alertmanager.alert("age") is not None  # still firing
        ended = wait_for(
            "the webhook's resolved notification",
            lambda: [a for a in webhook.alerts("resolved") if a["labels"] == amount.labels],
        )
        assert _time(ended[0]["endsAt"]) == pytest.approx(resolved.ends_at, abs=0.001)
        wait_for("offsets committed to the end of the topic", lambda: _all_committed(setup))
    finally:
        assert bridge.stop() == 0, bridge.output()
    assert "pushed 1 alerts to" in bridge.output()


def test_alertmanager_down_and_restarted_loses_nothing(
    setup: Setup, alertmanager: LocalAlertmanager
) -> None:
    maker = _makers()
    before = maker.fire("before")
    setup.produce([before])
    bridge = setup.bridge()
    try:
        wait_for("the first alert", lambda: alertmanager.alert("before"))
        wait_for("its offset committed", lambda: _all_committed(setup))
        committed = setup.committed()

        alertmanager.stop()
        during = [maker.fire("during"), maker.resolve("before"), maker.fire("during2")]
        setup.produce(during)
        wait_for(
            "a failed push of the three new states",
            lambda: re.search(r"push of 3 alerts to \S+ failed", bridge.output()),
        )
        ends = asyncio.run(_end_offsets(setup.settings))
        assert sum(ends.values()) == 4
        assert setup.committed() == committed  # nothing committed while it is down

        alertmanager.start()  # same port, fresh storage: it lost every alert
        wait_for(
            "the alerts produced while Alertmanager was down",
            lambda: alertmanager.alert("during") and alertmanager.alert("during2"),
        )
        wait_for("all offsets committed", lambda: _all_committed(setup))
        assert alertmanager.alert("before") is None  # resolved while it was down
    finally:
        assert bridge.stop() == 0, bridge.output()
    assert "failed attempts" in bridge.output()


def test_restarted_bridge_rebuilds_the_firing_set_and_keeps_re_sending(
    setup: Setup, alertmanager: LocalAlertmanager
) -> None:
    maker = _makers()
    setup.produce([maker.fire("kept"), maker.fire("gone")])
    first = setup.bridge()
    try:
        wait_for("both alerts", lambda: alertmanager.alert("kept") and alertmanager.alert("gone"))
        setup.produce([maker.resolve("gone")])
        wait_for("the resolve", lambda: alertmanager.alert("gone") is None)
        wait_for("all offsets committed", lambda: _all_committed(setup))
    finally:
        assert first.stop() == 0, first.output()
    committed = setup.committed()

    # An Alertmanager that lost its alerts meanwhile (restarted, or expired them): only the
    # firing set rebuilt from the topic can bring "kept" back; nothing is pending.
    alertmanager.stop()
    alertmanager.start()
    assert alertmanager.alerts() == []
    second = setup.bridge()
    try:
        kept = wait_for("the firing alert re-sent", lambda: alertmanager.alert("kept"))
        assert alertmanager.alert("gone") is None
        ends = _time(kept["endsAt"])
        wait_for(
            "a later re-send extending the alert",
            lambda: (a := alertmanager.alert("kept")) and _time(a["endsAt"]) > ends + 0.5,
        )
        assert setup.committed() == committed
    finally:
        assert second.stop() == 0, second.output()
    assert "3 records" in second.output() and "1 alerts firing" in second.output()

"""The bridge's loop with Kafka stand-ins: re-sending does not depend on Kafka, stop is
prompt, partitions added while running are read."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiokafka import TopicPartition

from driftline.alertmanager import bridge as bridge_module
from driftline.alertmanager.bridge import AlertmanagerBridge
from driftline.config import parse_settings
from tests.alertmanager.alert_events import AlertMaker
from tests.alertmanager.fakes import FakeAlertmanager, FakeConsumer

TOPIC = "driftline.alerts"


def _bridge(url: str, consumer: FakeConsumer, partitions: list[int]) -> AlertmanagerBridge:
    settings = parse_settings(
        {
            "kafka": {"alerts_topic": TOPIC},
            "alertmanager": {"urls": [url], "resend_interval_seconds": 0.05},
        }
    )
    bridge = AlertmanagerBridge(settings)

    async def topic_partitions(*args: Any) -> list[int]:
        return sorted(consumer.records)

    bridge._partitions = topic_partitions  # type: ignore[method-assign]
    bridge._topic_partitions = topic_partitions  # type: ignore[method-assign]
    return bridge


async def _wait(what: str, check: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_firing_alerts_are_re_sent_and_stop_completes_while_commits_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bridge_module, "STOP_TIMEOUT_SECONDS", 0.5, raising=False)
    firing = AlertMaker().fire("amount").to_json()
    consumer = FakeConsumer(TOPIC, {0: [firing]})
    consumer.commits_hang = True

    async def scenario() -> None:
        alertmanager = FakeAlertmanager()
        url = await alertmanager.start()
        try:
            monkeypatch.setattr(bridge_module, "AIOKafkaConsumer", lambda **kw: consumer)
            stop = asyncio.Event()
            task = asyncio.create_task(_bridge(url, consumer, [0]).run(stop))
            await _wait("a commit", lambda: consumer.commit_calls > 0)
            # The commit never returns; the firing alert is still re-sent each interval.
            await _wait("3 more pushes", lambda: len(alertmanager.requests) >= 4)
            assert all(
                [a["labels"]["feature"] for a in body] == ["amount"]
                for body in alertmanager.requests
            )
            stop.set()
            try:
                await asyncio.wait_for(task, 10)
            except TimeoutError:
                pytest.fail("the bridge did not stop while a commit hung")
        finally:
            await alertmanager.close()

    asyncio.run(scenario())


def _run_until(
    monkeypatch: pytest.MonkeyPatch,
    consumer: FakeConsumer,
    steps: Any,
    **alertmanager: Any,
) -> None:
    """Run the bridge on ``consumer`` against a fake Alertmanager; ``steps(alertmanager)``
    (a coroutine function) drives the scenario, then the bridge is stopped."""
    monkeypatch.setattr(bridge_module, "AIOKafkaConsumer", lambda **kw: consumer)

    async def scenario() -> None:
        alertmanager = FakeAlertmanager()
        url = await alertmanager.start()
        try:
            stop = asyncio.Event()
            task = asyncio.create_task(_bridge(url, consumer, []).run(stop))
            try:
                await steps(alertmanager)
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
        finally:
            await alertmanager.close()

    asyncio.run(scenario())


def _features(alertmanager: FakeAlertmanager) -> set[str]:
    return {a["labels"]["feature"] for body in alertmanager.requests for a in body}


def test_a_partition_added_while_running_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge_module, "PARTITION_CHECK_SECONDS", 0.05)
    maker = AlertMaker()
    consumer = FakeConsumer(TOPIC, {0: [maker.fire("amount").to_json()]})
    consumer.committed_offsets[TopicPartition(TOPIC, 0)] = 0

    async def steps(alertmanager: FakeAlertmanager) -> None:
        await _wait("the first alert", lambda: "amount" in _features(alertmanager))
        consumer.add_partition(1, [maker.fire("age").to_json()])
        await _wait("the added partition's alert", lambda: "age" in _features(alertmanager))
        await _wait(
            "its commit", lambda: consumer.committed_offsets.get(TopicPartition(TOPIC, 1)) == 1
        )

    _run_until(monkeypatch, consumer, steps)


def test_a_committed_offset_beyond_the_end_counts_as_none(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The topic was recreated: the group's old offset 7 lies beyond its end (1)."""
    consumer = FakeConsumer(TOPIC, {0: [AlertMaker().fire("amount").to_json()]})
    tp = TopicPartition(TOPIC, 0)
    consumer.committed_offsets[tp] = 7

    async def steps(alertmanager: FakeAlertmanager) -> None:
        await _wait("the firing alert", lambda: "amount" in _features(alertmanager))
        await _wait("a commit of offset 1", lambda: consumer.committed_offsets[tp] == 1)

    with caplog.at_level(logging.WARNING, logger="driftline.alertmanager.bridge"):
        _run_until(monkeypatch, consumer, steps)
    assert any("beyond the end" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("url", "secret", "warned"),
    [
        ("http://am:9093", {"bearer_token": "tok-Zq1"}, True),
        ("http://am:9093", {"username": "u", "password": "pw-Zq1"}, True),
        ("https://am:9093", {"bearer_token": "tok-Zq1"}, False),
        ("http://am:9093", {}, False),
    ],
)
def test_credentials_over_plain_http_are_warned_about(
    url: str, secret: dict[str, str], warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    settings = parse_settings({"alertmanager": {"urls": [url], **secret}})
    with caplog.at_level(logging.WARNING, logger="driftline.alertmanager.bridge"):
        AlertmanagerBridge(settings)
    messages = [r.getMessage() for r in caplog.records if "unencrypted" in r.getMessage()]
    assert len(messages) == (1 if warned else 0)
    assert not any("Zq1" in m for m in messages)

"""A real Prometheus scrapes a running `driftline run` with the shipped rules loaded."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from tests.deploy.promql import RULES, exported_metric_names, load_rules
from tests.integration.prometheus_support import PrometheusProcess
from tests.integration.service_support import (
    ServiceProcess,
    make_deployment,
    produce,
    scenario_events,
    wait_committed,
)

pytestmark = pytest.mark.kafka

T = TypeVar("T")

BAD = [b'{"event_id": "bad-1"', b"[1, 2, 3]", b"\xff\xfe not utf-8"]


def _until(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result is not None:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout} s")


def test_prometheus_scrapes_the_service_and_evaluates_the_rules(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    deployment = make_deployment(tmp_path, kafka_bootstrap, f"prom-{uuid.uuid4().hex[:10]}")
    pairs = scenario_events(4_000)
    for i, bad in enumerate(BAD):
        pairs.insert(500 + i * 1_000, (b"credit-a", bad))
    produce(deployment, pairs)
    service = ServiceProcess(deployment)
    prometheus = None
    try:
        service.wait_ready()
        wait_committed(deployment, len(pairs))
        prometheus = PrometheusProcess(
            tmp_path / "prometheus",
            job="driftline",
            targets=[f"127.0.0.1:{service.port}"],
            rules=[RULES],
        )

        def target_up() -> dict[str, str] | None:
            targets = prometheus.api("targets")["activeTargets"]
            assert len(targets) <= 1, targets
            return targets[0] if targets and targets[0]["health"] == "up" else None

        target = _until("the driftline target is up", target_up)
        assert target["labels"]["job"] == "driftline"
        assert target["scrapeUrl"] == f"http://127.0.0.1:{service.port}/metrics"
        assert prometheus.value('up{job="driftline"}') == 1

        # What the service counted, as Prometheus stored it.
        consumed = _until(
            "events consumed scraped",
            lambda: prometheus.value("sum(driftline_events_consumed_total)"),
        )
        assert consumed == len(pairs)
        assert prometheus.value("sum(driftline_dead_letters_total)") == len(BAD)
        assert prometheus.value("driftline_ready") == 1
        assert (prometheus.value("sum(driftline_alerts_total)") or 0) > 0
        assert (prometheus.value("sum(driftline_batch_size_count)") or 0) > 0
        assert prometheus.value("max(driftline_consumer_lag)") == 0
        partitions = prometheus.query("driftline_checkpoint_age_seconds")
        assert len(partitions) == deployment.settings.kafka.partitions
        statistics = prometheus.query("driftline_drift_statistic")
        assert {s["metric"]["model_id"] for s in statistics} == {
            "credit-a",
            "credit-b",
            "credit-c",
        }

        # Every driftline series Prometheus holds is one the metrics module registers.
        names = {n for n in prometheus.api("label/__name__/values") if n.startswith("driftline_")}
        assert names - exported_metric_names() == set()
        assert "driftline_processing_latency_seconds_bucket" in names

        # The shipped rules loaded and evaluate without errors. For this healthy service
        # every one settles inactive (DriftlineAbsent is pending until the first scrape).
        expected = {rule["alert"] for rule in load_rules()}

        def settled() -> list[dict[str, str]] | None:
            [group] = prometheus.api("rules")["groups"]
            rules: list[dict[str, str]] = group["rules"]
            for rule in rules:
                assert rule["health"] in ("ok", "unknown"), rule
                assert not rule.get("lastError"), rule
            return rules if all(r["state"] == "inactive" for r in rules) else None

        rules = _until("every rule inactive", settled)
        assert {r["name"] for r in rules} == expected
        assert all(r["health"] == "ok" for r in rules), rules
        for rule in load_rules():
            prometheus.query(rule["expr"])  # valid against the real series
        assert prometheus.api("alerts")["alerts"] == []
    finally:
        if prometheus is not None:
            prometheus.stop()
        assert service.terminate() == 0, service.output()

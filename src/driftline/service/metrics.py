"""Prometheus metrics of the service, on a registry of its own.

Event counters and latency histograms are updated once per batch. Detector statistics,
consumer lag and checkpoint ages are read at scrape time by a custom collector. Label
cardinality is bounded: ``topic``/``partition`` by the input partitions; ``reason``,
``severity``, ``status`` by fixed sets; ``model_id``/``model_version``/``feature``/
``detector`` by the monitored series, capped at ``max_series`` (series beyond the cap are
not exported and counted in ``driftline_statistic_series_dropped``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from driftline.comparisons import VERDICTS
from driftline.events import DeadLetterReason
from driftline.findings import Finding
from driftline.pipeline import PipelineOutput
from driftline.service.snapshot import Observable, ServiceSnapshot

# Fine around the 250 ms latency goal, so a p99 read off the histogram means something.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75,
    1, 1.5, 2, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip
BATCH_BUCKETS = (1, 10, 50, 100, 500, 1000, 2000, 5000, 10000)


class ServiceMetrics:
    """Counters and histograms updated by the service."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.wall_clock = wall_clock
        r = self.registry
        self.events = Counter(
            "driftline_events_consumed", "Input messages consumed.", ["topic"], registry=r
        )
        self.dead_letters = Counter(
            "driftline_dead_letters", "Messages dead-lettered, by reason.", ["reason"], registry=r
        )
        self.alerts = Counter(
            "driftline_alerts", "Alert events produced.", ["severity", "status"], registry=r
        )
        self.retrain_requests = Counter(
            "driftline_retrain_requests", "Retrain requests produced.", registry=r
        )
        self.batch_size = Histogram(
            "driftline_batch_size",
            "Records per processed batch.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "driftline_processing_latency_seconds",
            "Seconds from the batch's newest event time (source=event_time) or from its "
            "consumption (source=consume_time) until its outputs were acknowledged.",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.checkpoint_duration = Histogram(
            "driftline_checkpoint_duration_seconds",
            "Seconds to write a checkpoint and commit its offset.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.checkpoint_bytes = Counter(
            "driftline_checkpoint_bytes", "Bytes of checkpoint records written.", registry=r
        )

    def batch_processed(
        self,
        tp: TopicPartition,
        events: int,
        output: PipelineOutput,
        *,
        consumed_at: float,
        rejected: Iterable[DeadLetterReason] = (),
    ) -> None:
        """``rejected``: the reasons of records dead-lettered before the pipeline."""
        self.events.labels(tp.topic).inc(events)
        self.batch_size.observe(events)
        for dead in output.dead_letters:
            self.dead_letters.labels(dead.reason.value).inc()
        for reason in rejected:
            self.dead_letters.labels(reason.value).inc()
        for alert in output.alerts:
            self.alerts.labels(alert.severity, alert.status).inc()
        if output.retrain_requests:
            self.retrain_requests.inc(len(output.retrain_requests))
        now = self.wall_clock()
        self.latency.labels("consume_time").observe(max(now - consumed_at, 0.0))
        if output.latest_event_time is not None:
            self.latency.labels("event_time").observe(max(now - output.latest_event_time, 0.0))

    def checkpoint_written(self, size: int, *, seconds: float) -> None:
        self.checkpoint_duration.observe(seconds)
        self.checkpoint_bytes.inc(size)

    def watch(self, service: Observable, *, max_series: int = 10_000) -> None:
        """Export the service's live state (lag, checkpoints, statistics) at scrape time."""
        self.registry.register(ServiceCollector(service.snapshot, max_series=max_series))


class ServiceCollector(Collector):
    """Reads a snapshot of the service's partitions and pipelines when Prometheus scrapes."""

    def __init__(self, snapshot: Callable[[], ServiceSnapshot], *, max_series: int) -> None:
        self.snapshot = snapshot
        self.max_series = max_series

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot()
        ready = GaugeMetricFamily("driftline_ready", "1 when partitions are assigned and restored.")
        ready.add_metric([], 1.0 if snapshot.ready else 0.0)
        yield ready
        lag = GaugeMetricFamily(
            "driftline_consumer_lag",
            "Records behind the partition's end.",
            labels=["topic", "partition"],
        )
        age = GaugeMetricFamily(
            "driftline_checkpoint_age_seconds",
            "Seconds since the partition's last checkpoint.",
            labels=["topic", "partition"],
        )
        for part in sorted(snapshot.partitions, key=lambda p: (p.topic, p.partition)):
            labels = [part.topic, str(part.partition)]
            if part.highwater is not None and part.next_offset is not None:
                lag.add_metric(labels, max(part.highwater - part.next_offset, 0))
            age.add_metric(labels, snapshot.taken_at - part.last_checkpoint)
            for joined in part.feedback:  # feedback partitions: lag only
                if joined.highwater is not None and joined.next_offset is not None:
                    lag.add_metric(
                        [joined.topic, str(joined.partition)],
                        max(joined.highwater - joined.next_offset, 0),
                    )
        yield lag
        yield age
        statistic = GaugeMetricFamily(
            "driftline_drift_statistic",
            "Latest value of each detector's statistic per monitored feature.",
            labels=["model_id", "model_version", "feature", "detector"],
        )
        firing = GaugeMetricFamily(
            "driftline_alerts_firing",
            "Alerts currently firing.",
            labels=["model_id", "model_version", "severity"],
        )
        series = dropped = 0
        # A model version whose events are not keyed by model_id lives in several partitions:
        # export the newest value per series, never two samples with the same labels.
        newest: dict[tuple[str, str, str, str], Finding] = {}
        for part in snapshot.partitions:
            for key, findings in part.pipeline.findings.items():
                for finding in findings:
                    series_key = (*key, finding.feature, finding.detector)
                    known = newest.get(series_key)
                    if known is None or finding.window_end > known.window_end:
                        newest[series_key] = finding
        for series_key, finding in sorted(newest.items(), key=lambda item: item[0]):
            if series >= self.max_series:
                dropped += 1
                continue
            statistic.add_metric(list(series_key), finding.value)
            series += 1
        counts: dict[tuple[str, ...], int] = {}
        for part in snapshot.partitions:
            for version in part.pipeline.versions:
                for alert in version.firing:
                    firing_key: tuple[str, ...] = (*version.key, alert.severity)
                    counts[firing_key] = counts.get(firing_key, 0) + 1
        for firing_key, count in sorted(counts.items()):
            firing.add_metric(list(firing_key), count)
        yield statistic
        yield firing
        yield from _ground_truth_families(snapshot)
        yield from _comparison_families(snapshot)
        dropped_family = GaugeMetricFamily(
            "driftline_statistic_series_dropped",
            "Statistic series not exported because of the series cap.",
        )
        dropped_family.add_metric([], dropped)
        yield dropped_family


#: The performance metrics exported (a bounded set: per-class recalls stay in /v1/status).
EXPORTED_PERFORMANCE_METRICS = (
    "error_rate",
    "accuracy",
    "log_loss",
    "brier",
    "mae",
    "rmse",
    "bias",
    "expected_error_rate",
)
#: The label join's counts exported per model version.
JOIN_OUTCOMES = ("joined", "inline", "expired", "unmatched", "duplicate", "late", "pending_now")


def _ground_truth_families(snapshot: ServiceSnapshot) -> Iterator[Metric]:
    """Model performance and the label join, per model version with ground truth."""
    performance = GaugeMetricFamily(
        "driftline_model_performance",
        "Model performance per version: the reference profile's (kind=reference), the last "
        "window of joined labels' (realized) and the last window's estimate from the "
        "model's probabilities before labels arrive (estimated).",
        labels=["model_id", "model_version", "metric", "kind"],
    )
    join = GaugeMetricFamily(
        "driftline_label_join",
        "Label join per model version: labels joined (inline ones included), predictions "
        "expired without a label, labels unmatched, duplicate or late (cumulative), and "
        "predictions pending now.",
        labels=["model_id", "model_version", "outcome"],
    )
    seen: set[tuple[str, str]] = set()
    for part in snapshot.partitions:
        for version in part.pipeline.versions:
            status = version.performance
            if not status or not status.get("started") or version.key in seen:
                continue
            seen.add(version.key)
            for kind, values in status["metrics"].items():
                for metric in EXPORTED_PERFORMANCE_METRICS:
                    if metric in values:
                        performance.add_metric([*version.key, metric, kind], values[metric])
            for outcome in JOIN_OUTCOMES:
                join.add_metric([*version.key, outcome], status[outcome])
    yield performance
    yield join


def _comparison_families(snapshot: ServiceSnapshot) -> Iterator[Metric]:
    """Champion / challenger comparisons: the verdict, the pairs and the difference."""
    labels = ["model_id", "champion", "challenger"]
    verdict = GaugeMetricFamily(
        "driftline_comparison_verdict",
        "1 for the current verdict of each champion / challenger comparison, 0 for the others.",
        labels=[*labels, "verdict"],
    )
    pairs = GaugeMetricFamily(
        "driftline_comparison_pairs",
        "Joined outcome pairs compared (paired by request_id or matched over the same span).",
        labels=labels,
    )
    difference = GaugeMetricFamily(
        "driftline_comparison_difference",
        "Champion's metric minus the challenger's (positive: the challenger is better): the "
        "estimate and the confidence sequence's bounds, valid under continuous monitoring.",
        labels=[*labels, "bound"],
    )
    for status in snapshot.comparisons():
        key = [status["model_id"], status["champion"], status["challenger"]]
        for name in VERDICTS:
            verdict.add_metric([*key, name], 1.0 if status["verdict"] == name else 0.0)
        pairs.add_metric(key, status["pairs"])
        interval = status["difference"]
        if interval is not None:
            for bound in ("estimate", "lower", "upper"):
                difference.add_metric([*key, bound], interval[bound])
    yield verdict
    yield pairs
    yield difference

"""Human-readable run summaries (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from driftline.pipeline import Pipeline


def print_summary(pipeline: Pipeline, console: Console) -> None:
    counters = pipeline.counters
    monitors = pipeline.monitors()
    processed = sum(counters.events.values())
    ignored = sum(counters.ignored.values())
    dead = sum(counters.dead_letters.values())

    feedback = sum(counters.feedback.values())
    overview = Table(title="driftline replay", show_header=False)
    overview.add_row(
        "events", f"{processed + ignored + dead + feedback + counters.feedback_unknown:,}"
    )
    overview.add_row("  processed", f"{processed:,}")
    if feedback or counters.feedback_unknown:
        overview.add_row("  feedback (labels)", f"{feedback:,}")
    if counters.feedback_unknown:
        overview.add_row("  feedback of unknown model versions", f"{counters.feedback_unknown:,}")
    if ignored:
        overview.add_row("  ignored (unconfigured models)", f"{ignored:,}")
    overview.add_row("  dead letters", f"{dead:,}")
    overview.add_row("alerts", f"{sum(counters.alerts.values()):,}")
    overview.add_row("retrain requests", f"{counters.retrain_requests:,}")
    console.print(overview)

    models = Table(title="per model version")
    for column in ("model", "version", "events", "state", "features", "firing alerts"):
        models.add_column(column)
    for key, events in sorted(counters.events.items()):
        monitor = monitors[key]
        version = pipeline.versions[key]
        firing = len(version.alerts.firing()) if version is not None else 0
        state = "warming up" if monitor.warming_up else "monitoring"
        if key in pipeline.quarantined:
            state = "quarantined"
        models.add_row(key[0], key[1], f"{events:,}", state, str(len(monitor.windows)), str(firing))
    console.print(models)

    if pipeline.quarantined or counters.quarantined:
        quarantine = Table(title="quarantined model versions (internal errors)")
        for column in ("model", "version", "dead-lettered events", "error"):
            quarantine.add_column(column)
        for key in sorted(set(pipeline.quarantined) | set(counters.quarantined)):
            error = (
                pipeline.quarantine_message(key)
                if key in pipeline.quarantined
                else "(before a restart)"
            )
            quarantine.add_row(key[0], key[1], f"{counters.quarantined[key]:,}", error)
        console.print(quarantine)

    if counters.dead_letters:
        dead_table = Table(title="dead letters by reason")
        dead_table.add_column("reason")
        dead_table.add_column("count", justify="right")
        for reason, count in sorted(counters.dead_letters.items()):
            dead_table.add_row(reason, f"{count:,}")
        console.print(dead_table)

    if counters.alerts:
        alert_table = Table(title="alerts by severity and status")
        alert_table.add_column("severity")
        alert_table.add_column("status")
        alert_table.add_column("count", justify="right")
        for (severity, status), count in sorted(counters.alerts.items()):
            alert_table.add_row(severity, status, f"{count:,}")
        console.print(alert_table)

    _print_performance(pipeline, console)


def _print_performance(pipeline: Pipeline, console: Console) -> None:
    """Ground truth per model version: the join's counts and the performance metrics."""
    rows = []
    for version in pipeline.snapshot().versions:
        status = version.performance
        if status is None:
            continue
        if not status["started"]:
            rows.append((*version.key, "not started", status["reason"], "", "", ""))
            continue
        metrics = status["metrics"]
        primary = "mae" if status["task"] == "regression" else "error_rate"
        delay = status["label_delay_seconds"]
        rows.append(
            (
                *version.key,
                status["task"],
                f"{status['joined']:,} joined, {status['pending_now']:,} pending, "
                f"{status['expired']:,} expired, {status['unmatched']:,} unmatched, "
                f"{status['duplicate']:,} duplicate, {status['late']:,} late",
                "" if delay is None else f"{delay['p50']:,.0f} / {delay['p95']:,.0f} s",
                " / ".join(
                    _metric(metrics[kind].get(primary))
                    for kind in ("reference", "realized", "estimated")
                ),
                primary,
            )
        )
    if not rows:
        return
    table = Table(title="model performance (ground truth)")
    for column in (
        "model",
        "version",
        "task",
        "labels",
        "label delay p50 / p95",
        "reference / realized / estimated",
        "metric",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"

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

    overview = Table(title="driftline replay", show_header=False)
    overview.add_row("events", f"{processed + ignored + dead:,}")
    overview.add_row("  processed", f"{processed:,}")
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

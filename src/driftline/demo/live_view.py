"""The live terminal view of ``driftline demo``: traffic, drift statistics, model
performance, alerts.

Everything here is a pure function of a :class:`DemoSnapshot` (what the demo counted) and
the monitor's pipelines (their latest findings and firing alerts, and each version's ground
truth as its snapshot shows it), so the view can be rendered and tested without Kafka.
:func:`alert_line` and :func:`retrain_line` are the one-line texts shown for output events,
in the live view and in ``--no-live`` logs alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Group, JustifyMethod, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from driftline.detectors.catalog import DETECTORS
from driftline.performance.detectors import ERROR_FEATURE, ESTIMATED_ERROR_FEATURE
from driftline.pipeline import Pipeline
from driftline.plan import ModelKey
from driftline.policy.alert_text import format_number
from driftline.policy.alerts import Thresholds
from driftline.policy.states import Severity

ALERT_LINES_SHOWN = 8
RETRAIN_LINES_SHOWN = 3
_STYLES: dict[str | None, str] = {"critical": "bold red", "warning": "yellow", None: "green"}
RETRAIN_STYLE = "bold magenta"
_MODEL_AND_WINDOW = re.compile(r" of \S+ v\S+ over [\d,]+ events ending [^`]*$")
RESOLVED_STYLE = "green"


@dataclass(frozen=True, slots=True)
class OutputLine:
    """An alert or retrain request as the demo received it."""

    elapsed: float
    """Seconds since the producer started when the line arrived."""
    text: str
    style: str = ""
    """A rich style for the text (e.g. ``bold red`` for a critical alert)."""


@dataclass(frozen=True, slots=True)
class ScheduledDrift:
    """A drift the demo injects at ``at`` seconds after the producer started."""

    at: float
    description: str


@dataclass(frozen=True, slots=True)
class DemoSnapshot:
    """What the view shows besides the monitor's statistics."""

    title: str
    elapsed: float
    duration: float
    produced: int
    produced_rate: float
    consumed: int
    consumed_rate: float
    dead_letters: int
    drifts: Sequence[ScheduledDrift]
    alerts: Sequence[OutputLine]
    retrain_requests: Sequence[OutputLine]
    alert_count: int
    retrain_count: int
    footer: str = ""


@dataclass(frozen=True, slots=True)
class FeatureStatus:
    """The most telling detector of one feature in the latest window."""

    feature: str
    detector: str
    value: float
    thresholds: Thresholds
    level: Severity | None
    """Severity the latest window breaches, if any."""
    firing: Severity | None
    """Severity of the firing alert of this feature and detector, if any."""
    window_end: float


@dataclass(frozen=True, slots=True)
class PerformanceStatus:
    """Model performance of one model version, as its ground truth reports it."""

    model_version: str
    metric: str
    """``error_rate`` (classifiers) or ``mae`` (regression)."""
    joined: int
    """Prediction/label pairs joined so far."""
    pending: int
    """Predictions waiting for their label."""
    reference: float | None
    realized: float | None
    """Of the last closed window of joined pairs."""
    estimated: float | None
    """Estimated error rate from the calibrated probabilities (no labels needed)."""
    label_delay_p50: float | None
    """Seconds, over the latest joined pairs."""
    firing: Severity | None
    """Severity of the firing PerformanceDrift alert, if any."""
    estimated_firing: Severity | None
    """Severity of the firing EstimatedPerformanceDrift alert, if any."""


def performance_statuses(pipelines: Iterable[Pipeline], model_id: str) -> list[PerformanceStatus]:
    """Per version of ``model_id`` whose ground truth has started, its performance, read
    from the pipelines' snapshots; by version. A version spread over several pipelines
    (partitions) adds up their counts and shows the metrics of the one with the most
    joined pairs."""
    found: dict[str, list[PerformanceStatus]] = {}
    for pipeline in pipelines:
        for version in pipeline.snapshot().versions:
            status = version.performance
            if version.model_id != model_id or status is None or not status["started"]:
                continue
            metric = "mae" if status["task"] == "regression" else "error_rate"
            metrics = status["metrics"]
            delays = status["label_delay_seconds"]
            firing = _highest(a.severity for a in version.firing if a.feature == ERROR_FEATURE)
            estimated_firing = _highest(
                a.severity for a in version.firing if a.feature == ESTIMATED_ERROR_FEATURE
            )
            found.setdefault(version.model_version, []).append(
                PerformanceStatus(
                    model_version=version.model_version,
                    metric=metric,
                    joined=int(status["joined"]),
                    pending=int(status["pending_now"]),
                    reference=metrics["reference"].get(metric),
                    realized=metrics["realized"].get(metric),
                    estimated=metrics["estimated"].get("error_rate"),
                    label_delay_p50=None if delays is None else float(delays["p50"]),
                    firing=firing,
                    estimated_firing=estimated_firing,
                )
            )
    statuses = []
    for name in sorted(found):
        parts = found[name]
        best = max(parts, key=lambda part: part.joined)
        statuses.append(
            replace(
                best,
                joined=sum(part.joined for part in parts),
                pending=sum(part.pending for part in parts),
            )
        )
    return statuses


def _highest(severities: Iterable[Severity]) -> Severity | None:
    ordered = sorted(severities, key=lambda s: s == "critical")
    return ordered[-1] if ordered else None


def catalog_thresholds(feature: str, detector: str) -> Thresholds:
    """A detector's default thresholds (the demo's config overrides none).

    >>> catalog_thresholds("amount", "psi")
    Thresholds(warning=0.1, critical=0.25, direction='above')
    """
    spec = DETECTORS[detector]
    return Thresholds(warning=spec.warning, critical=spec.critical, direction=spec.direction)


def drift_score(value: float, thresholds: Thresholds) -> float:
    """How far ``value`` is towards its warning threshold (1 = at it, above 1 = beyond).

    >>> drift_score(0.05, Thresholds(0.1, 0.25)), drift_score(0.01, Thresholds(0.05, 0.01, "below"))
    (0.5, 5.0)
    >>> drift_score(2.0, Thresholds(0.0, None))
    inf
    """
    threshold = thresholds.clear_threshold
    if threshold is None or not math.isfinite(value):
        return 0.0
    above = thresholds.direction == "above"
    numerator, denominator = (value, threshold) if above else (threshold, value)
    if denominator > 0:
        return numerator / denominator
    return math.inf if thresholds.breaches(value, threshold) else 0.0


def feature_statuses(pipelines: Iterable[Pipeline], model: ModelKey) -> list[FeatureStatus]:
    """Per feature of ``model``, the detector that is firing at the highest severity or,
    when none is, the one nearest to (or furthest beyond) its threshold; sorted by name."""
    rank = {None: 0, "warning": 1, "critical": 2}
    best: dict[str, tuple[tuple[int, float], FeatureStatus]] = {}
    for pipeline in pipelines:
        version = pipeline.versions.get(model)
        firing: dict[tuple[str, str], Severity] = {}
        if version is not None:
            for alert in version.alerts.firing():
                firing[(alert.feature, alert.detector)] = alert.severity
        for (feature, detector), finding in pipeline.latest.get(model, {}).items():
            thresholds = catalog_thresholds(feature, detector)
            status = FeatureStatus(
                feature=feature,
                detector=detector,
                value=finding.value,
                thresholds=thresholds,
                level=thresholds.level(finding.value),
                firing=firing.get((feature, detector)),
                window_end=finding.window_end,
            )
            order = (rank[status.firing], drift_score(finding.value, thresholds))
            current = best.get(feature)
            if current is None or order > current[0]:
                best[feature] = (order, status)
    return [best[name][1] for name in sorted(best)]


def alert_line(event: Mapping[str, Any]) -> tuple[str, str]:
    """``(text, style)`` of an alert CloudEvent: status marker, severity and summary.

    >>> alert_line({"data": {"status": "firing", "labels": {"severity": "critical"},
    ...     "annotations": {"summary": "PSI 4.62 > 0.25 on `amount`"}}})
    ('FIRING   critical PSI 4.62 > 0.25 on `amount`', 'bold red')
    """
    data = event["data"]
    severity = str(data["labels"]["severity"])
    firing = data["status"] == "firing"
    marker = "FIRING  " if firing else "resolved"
    style = _STYLES.get(severity, "") if firing else RESOLVED_STYLE
    return f"{marker} {severity:<8} {data['annotations']['summary']}", style


def retrain_line(event: Mapping[str, Any]) -> str:
    """One line for a retrain-request CloudEvent.

    >>> retrain_line({"data": {"model_id": "m", "model_version": "3",
    ...     "reason": {"text": "Critical drift on `amount`"},
    ...     "drifted_features": [{"feature": "amount"}], "idempotency_key": "0123456789abcdef0"}})
    'RETRAIN  m v3: Critical drift on `amount` (features: amount; key 0123456789abcdef…)'
    """
    data = event["data"]
    features = ", ".join(f["feature"] for f in data["drifted_features"])
    return (
        f"RETRAIN  {data['model_id']} v{data['model_version']}: {data['reason']['text']} "
        f"(features: {features}; key {data['idempotency_key'][:16]}…)"
    )


def short_summary(text: str) -> str:
    """An alert line without its model and window (the view shows one model, live).

    >>> short_summary("PSI 4.6 > 0.25 on `amount` of m v3 over 1,000 events ending 2024-01-01")
    'PSI 4.6 > 0.25 on `amount`'
    """
    return _MODEL_AND_WINDOW.sub("", text)


def render(
    snapshot: DemoSnapshot,
    features: Sequence[FeatureStatus],
    performance: Sequence[PerformanceStatus] = (),
) -> RenderableType:
    """The whole view: traffic header, drift statistics, model performance, alerts, retrain
    requests."""
    parts: list[RenderableType] = [
        _traffic(snapshot),
        _statistics(features),
        performance_table(performance),
        _outputs(
            f"alerts ({snapshot.alert_count:,}), as they arrive on the alerts topic",
            snapshot.alerts[-ALERT_LINES_SHOWN:],
            "no alert yet",
        ),
        _outputs(
            f"retrain requests ({snapshot.retrain_count:,})",
            snapshot.retrain_requests[-RETRAIN_LINES_SHOWN:],
            "no retrain request yet",
        ),
    ]
    if snapshot.footer:
        parts.append(Text(snapshot.footer, style="dim"))
    return Group(*parts)


def _traffic(snapshot: DemoSnapshot) -> RenderableType:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    remaining = max(snapshot.duration - snapshot.elapsed, 0.0)
    grid.add_row(
        "time", f"{snapshot.elapsed:5.1f} s of {snapshot.duration:.0f} s ({remaining:.0f} s left)"
    )
    grid.add_row("produced", f"{snapshot.produced:>9,} events  {snapshot.produced_rate:>7,.0f} /s")
    grid.add_row("consumed", f"{snapshot.consumed:>9,} events  {snapshot.consumed_rate:>7,.0f} /s")
    grid.add_row("dead letters", f"{snapshot.dead_letters:>9,}")
    for drift in snapshot.drifts:
        started = snapshot.elapsed >= drift.at
        mark = Text("active ", style="bold red") if started else Text("pending", style="dim")
        grid.add_row(f"drift @{drift.at:.0f} s", Text.assemble(mark, " ", drift.description))
    return Panel(grid, title=snapshot.title, title_align="left")


def _statistics(features: Sequence[FeatureStatus]) -> RenderableType:
    table = Table(title="drift statistics of the latest window", title_justify="left", expand=True)
    for name in ("feature", "detector", "value", "warning", "critical", "status"):
        justify: JustifyMethod = "right" if name in ("value", "warning", "critical") else "left"
        table.add_column(name, justify=justify, no_wrap=name != "detector", overflow="ellipsis")
    if not features:
        table.add_row("(waiting for the first window of 1,000 events)", "", "", "", "", "")
    for status in features:
        thresholds = status.thresholds
        comparison = "<" if thresholds.direction == "below" else ">"
        if status.firing is not None:
            label = Text(f"FIRING {status.firing}", style=_STYLES[status.firing])
        elif status.level is not None:
            label = Text(f"breach ({status.level})", style=_STYLES[status.level])
        else:
            label = Text("ok", style="green")
        table.add_row(
            status.feature,
            status.detector,
            Text(format_number(status.value), style=_STYLES[status.level]),
            "–" if thresholds.warning is None else f"{comparison} {thresholds.warning:g}",
            "–" if thresholds.critical is None else f"{comparison} {thresholds.critical:g}",
            label,
        )
    return table


def performance_table(statuses: Sequence[PerformanceStatus]) -> Table:
    """Each version's joined pairs, pending predictions, label delay and error rate (MAE
    for regression): the reference's, the last window's, and the estimate without
    labels."""
    table = Table(
        title="model performance (labels joined to predictions)", title_justify="left", expand=True
    )
    names = (
        "version",
        "metric",
        "joined",
        "pending",
        "label delay",
        "reference",
        "realized",
        "estimated",
        "status",
    )
    for name in names:
        justify: JustifyMethod = "left" if name in ("version", "metric", "status") else "right"
        table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis")
    if not statuses:
        table.add_row("(waiting for the version's ground truth)", *[""] * (len(names) - 1))
    for status in statuses:
        if status.firing is not None:
            label = Text(f"FIRING {status.firing}", style=_STYLES[status.firing])
        elif status.estimated_firing is not None:
            label = Text(f"estimate {status.estimated_firing}", style=_STYLES["warning"])
        else:
            label = Text("ok", style="green")
        delay = status.label_delay_p50
        table.add_row(
            f"v{status.model_version}",
            status.metric,
            f"{status.joined:,}",
            f"{status.pending:,}",
            "–" if delay is None else f"{delay:,.0f} s",
            _metric(status.reference),
            Text(_metric(status.realized), style=_STYLES[status.firing]),
            Text(_metric(status.estimated), style=_STYLES[status.estimated_firing]),
            label,
        )
    return table


def _metric(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _outputs(title: str, lines: Sequence[OutputLine], empty: str) -> RenderableType:
    body = Text(no_wrap=True, overflow="ellipsis")
    for i, line in enumerate(lines):
        if i:
            body.append("\n")
        body.append(f"{line.elapsed:5.1f} s  ", style="dim")
        body.append(short_summary(line.text), style=line.style)
    if not lines:
        body.append(empty, style="dim")
    return Panel(body, title=title, title_align="left")

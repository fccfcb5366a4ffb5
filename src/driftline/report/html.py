"""The drift report as one self-contained HTML page: styles, plotly.js and every chart inline.

Charts are drawn by plotly.js, taken from the ``plotly`` Python package (which ships it in
its wheel), so the page needs no network when opened and the repository vendors no
JavaScript. The page embeds plotly.js once and one JSON spec per chart (``data`` and
``layout`` as plotly.js reads them); a small inline script draws them all and sets
``data-rendered`` on ``<body>`` to the number of charts once plotly.js has drawn them. A
Content-Security-Policy meta tag forbids the page any request: nothing can load from
anywhere, even by mistake.

A version's page is a list of sections (see :data:`SECTIONS`); adding one (e.g. model
performance) is adding a renderer there.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from driftline.report.model import (
    CategoryBars,
    DetectorSeries,
    DriftReport,
    FeatureReport,
    Histogram,
    Status,
    SummaryRow,
    VersionReport,
)

#: Colours (Okabe-Ito where it matters: readable by colour-blind people).
REFERENCE_COLOUR = "#8c8c8c"
CURRENT_COLOUR = "#0072b2"
WARNING_COLOUR = "#e69f00"
CRITICAL_COLOUR = "#d55e00"

CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:"
)


@functools.cache
def plotly_js() -> str:
    """plotly.js, minified, as shipped inside the ``plotly`` package (about 4.8 MB)."""
    from plotly.offline import get_plotlyjs

    script: str = get_plotlyjs()
    return script.replace("</script", "<\\/script")


def render(report: DriftReport, *, title: str, generated: str, note: str = "") -> str:
    """The whole page. ``generated`` says when (and from what) it was made."""
    charts = _Charts()
    body = [
        "<header>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='meta'>{_e(generated)}</p>",
        f"<p class='meta'>{_e(note)}</p>" if note else "",
        _legend(),
        "</header>",
        _summary(report),
    ]
    if not report.versions:
        body.append("<p class='empty'>No monitored model version in this report.</p>")
    for version in report.versions:
        body.append(_version(version, charts))
    specs = orjson.dumps(charts.specs).decode().replace("<", "\\u003c")
    return "".join(
        [
            page_head(),
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
            *body,
            f"<script type='application/json' id='driftline-charts'>{specs}</script>",
            f"<script>{_DRAW}</script>",
            "</body></html>\n",
        ]
    )


@functools.cache
def page_head() -> str:
    """How every page begins, plotly.js included (the same for every report, so a server
    can compress it once)."""
    return "".join(
        [
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>",
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">",
            "<meta name='viewport' content='width=device-width, initial-scale=1'>",
            f"<script>{plotly_js()}</script>",
        ]
    )


# -- page parts ---------------------------------------------------------------------------


def _summary(report: DriftReport) -> str:
    alarming = [r for r in report.summary if r.series.status <= Status.WARNING]
    quiet = [r for r in report.summary if r.series.status > Status.WARNING]
    head = (
        "<tr><th>status</th><th>model</th><th>version</th><th>feature</th><th>statistic</th>"
        "<th>latest</th><th>warning</th><th>critical</th><th>latest window end</th>"
        "<th>firing since</th></tr>"
    )
    parts = ["<section id='summary'><h2>Summary</h2>"]
    if alarming:
        parts.append(f"<table class='summary'>{head}")
        parts.extend(_summary_row(r) for r in alarming)
        parts.append("</table>")
    else:
        parts.append("<p class='calm'>No statistic beyond its thresholds.</p>")
    if quiet:
        parts.append(
            f"<details><summary>{len(quiet)} statistics within their thresholds or without "
            f"data</summary><table class='summary'>{head}"
        )
        parts.extend(_summary_row(r) for r in quiet)
        parts.append("</table></details>")
    parts.append("</section>")
    return "".join(parts)


def _summary_row(row: SummaryRow) -> str:
    series = row.series
    latest = series.latest
    anchor = _feature_anchor(row.model_id, row.model_version, row.feature)
    since = "" if series.firing is None else _time(series.firing.starts_at)
    cells = [
        _badge(series.status),
        _e(row.model_id),
        _e(row.model_version),
        f"<a href='#{anchor}'>{_e(row.feature)}</a>",
        f"{_e(series.display_name)} <span class='dim'>({_e(series.detector)})</span>",
        "" if latest is None else _number(latest.value),
        _threshold(series.thresholds.warning),
        _threshold(series.thresholds.critical),
        "" if latest is None else _time(latest.window_end),
        since,
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _version(version: VersionReport, charts: _Charts) -> str:
    state = "warming up" if version.warming_up else "monitoring"
    if version.quarantined is not None:
        state = "quarantined"
    parts = [
        f"<section class='version' id='{version.anchor}'>",
        f"<h2>{_e(version.model_id)} <span class='dim'>version</span> "
        f"{_e(version.model_version)}</h2>",
        f"<p class='meta'>{state} · {version.events:,} events · reference profile "
        f"{_e(version.profile_id or 'none yet')}</p>",
    ]
    if version.quarantined is not None:
        parts.append(f"<p class='problem'>Stopped by an internal error: {_e(version.quarantined)}")
    if version.warming_up:
        parts.append(
            "<p class='empty'>Learning the reference from the first events: no statistic yet.</p>"
        )
    for section in SECTIONS:
        parts.append(section(version, charts))
    parts.append("</section>")
    return "".join(parts)


def _prediction_section(version: VersionReport, charts: _Charts) -> str:
    if not version.prediction:
        return ""
    cards = "".join(_feature(version, f, charts) for f in version.prediction)
    return f"<h3>Prediction</h3>{cards}"


def _features_section(version: VersionReport, charts: _Charts) -> str:
    if not version.features:
        return ""
    cards = "".join(_feature(version, f, charts) for f in version.features)
    return f"<h3>Features</h3>{cards}"


def _performance_section(version: VersionReport, charts: _Charts) -> str:
    status = version.performance_status
    if status is None:
        return ""
    if not status["started"]:
        return f"<h3>Model performance</h3><p class='empty'>Not started: {_e(status['reason'])}</p>"
    metrics = status["metrics"]
    names = sorted({n for kind in metrics.values() for n in kind if not n.startswith("recall.")})
    rows = "".join(
        f"<tr><td>{_e(name)}</td>"
        + "".join(
            f"<td>{'' if name not in metrics[kind] else _number(metrics[kind][name])}</td>"
            for kind in ("reference", "realized", "estimated")
        )
        + "</tr>"
        for name in names
    )
    delay = status["label_delay_seconds"]
    counts = (
        f"{status['task']} · {status['joined']:,} labels joined ({status['inline']:,} inline) · "
        f"{status['pending_now']:,} predictions pending · {status['expired']:,} expired · "
        f"{status['unmatched']:,} unmatched · {status['duplicate']:,} duplicate · "
        f"{status['late']:,} late"
        + (
            ""
            if delay is None
            else f" · label delay p50 {_number(delay['p50'])} s, p95 {_number(delay['p95'])} s"
        )
    )
    table = (
        "<table class='metrics'><tr><th>metric</th><th>reference</th><th>realized (last "
        f"window)</th><th>estimated (last window)</th></tr>{rows}</table>"
    )
    cards = "".join(
        _feature(version, f, charts, with_distribution=False) for f in version.performance
    )
    return f"<h3>Model performance</h3><p class='meta'>{counts}</p>{table}{cards}"


SECTIONS: tuple[Callable[[VersionReport, _Charts], str], ...] = (
    _prediction_section,
    _performance_section,
    _features_section,
)
"""The sections of a version, in page order."""


def _feature(
    version: VersionReport,
    feature: FeatureReport,
    charts: _Charts,
    *,
    with_distribution: bool = True,
) -> str:
    anchor = _feature_anchor(version.model_id, version.model_version, feature.name)
    parts = [
        f"<article class='feature' id='{anchor}'>",
        f"<h4>{_e(feature.name)} <span class='dim'>{_e(feature.kind)}</span> ",
        f"{_badge(feature.status)}</h4><div class='charts'>",
    ]
    distribution = feature.distribution if with_distribution else None
    if with_distribution and distribution is None:
        parts.append("<div class='nochart'>No closed window yet: no current distribution.</div>")
    elif distribution is not None:
        parts.append(charts.add(_distribution_spec(feature)))
    for series in feature.series:
        parts.append(charts.add(_series_spec(series)))
    parts.append("</div>")
    if distribution is not None:
        notes = [
            f"last window: {distribution.window_events:,} events, "
            f"{_time(distribution.window_start)} – {_time(distribution.window_end)} UTC",
            f"missing: reference {_percent(distribution.reference_missing_rate)}, "
            f"last window {_percent(distribution.current_missing_rate)}",
        ]
        chart = distribution.chart
        if isinstance(chart, Histogram):
            notes.append(
                f"outside the reference range: {_percent(chart.below_share)} below its "
                f"minimum, {_percent(chart.above_share)} above its maximum"
            )
            if chart.beyond_view > 0 or chart.view != (chart.lower[0], chart.upper[-1]):
                notes.append(
                    f"histogram cut to the reference's long-tail-free range "
                    f"[{_number(chart.view[0])}, {_number(chart.view[1])}]: "
                    f"{_percent(chart.beyond_view)} of the last window lie outside it"
                )
        elif chart.unseen:
            seen = ", ".join(f"{_e(name)} ({count:,})" for name, count in chart.unseen[:8])
            notes.append(f"categories outside the reference's top {len(chart.categories)}: {seen}")
        parts.append("<p class='note'>" + " · ".join(notes) + "</p>")
    parts.append("</article>")
    return "".join(parts)


def _legend() -> str:
    return (
        "<p class='legend'>Distributions: <span style='color:"
        f"{REFERENCE_COLOUR}'>■ reference</span> vs <span style='color:{CURRENT_COLOUR}'>"
        "■ last closed window</span>. Statistics per closed window, with the "
        f"<span style='color:{WARNING_COLOUR}'>warning</span> and "
        f"<span style='color:{CRITICAL_COLOUR}'>critical</span> thresholds dashed and alert "
        "episodes shaded (from the first breaching window to the resolution).</p>"
    )


# -- chart specs (plotly.js figures) -----------------------------------------------------


class _Charts:
    """The page's chart specs, by the id their ``<div>`` refers to."""

    def __init__(self) -> None:
        self.specs: dict[str, dict[str, Any]] = {}

    def add(self, spec: dict[str, Any]) -> str:
        chart_id = f"c{len(self.specs)}"
        self.specs[chart_id] = spec
        return f"<div class='chart' data-chart='{chart_id}'></div>"


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 13}, "x": 0.02, "xanchor": "left"},
        "height": 260,
        "margin": {"l": 55, "r": 15, "t": 36, "b": 40},
        "showlegend": False,
        "paper_bgcolor": "white",
        "plot_bgcolor": "#fafafa",
        "font": {"family": "system-ui, sans-serif", "size": 11},
    }
    layout.update(extra)
    return layout


def _distribution_spec(feature: FeatureReport) -> dict[str, Any]:
    assert feature.distribution is not None
    chart = feature.distribution.chart
    if isinstance(chart, Histogram):
        return _histogram_spec(feature.name, chart)
    return _bars_spec(feature.name, chart)


def _histogram_spec(name: str, chart: Histogram) -> dict[str, Any]:
    centres = [(a + b) / 2 for a, b in zip(chart.lower, chart.upper, strict=True)]
    widths = [b - a for a, b in zip(chart.lower, chart.upper, strict=True)]
    traces = []
    for label, density, shares, colour in (
        ("reference", chart.reference_density, chart.reference_shares, REFERENCE_COLOUR),
        ("last window", chart.current_density, chart.current_shares, CURRENT_COLOUR),
    ):
        traces.append(
            {
                "type": "bar",
                "name": label,
                "x": centres,
                "y": _finite(density),
                "width": widths,
                "marker": {"color": colour, "opacity": 0.55},
                "customdata": [
                    [a, b, s * 100]
                    for a, b, s in zip(chart.lower, chart.upper, shares, strict=True)
                ],
                "hovertemplate": (
                    f"{label}<br>[%{{customdata[0]:.4g}}, %{{customdata[1]:.4g}}): "
                    "%{customdata[2]:.1f}%<extra></extra>"
                ),
            }
        )
    return {
        "data": traces,
        "layout": _layout(
            "reference vs last window",
            barmode="overlay",
            bargap=0,
            showlegend=True,
            legend={"orientation": "h", "y": 1.0, "x": 1, "xanchor": "right", "yanchor": "bottom"},
            xaxis={"range": list(chart.view)},
            yaxis={"title": {"text": "density"}},
        ),
    }


def _bars_spec(name: str, chart: CategoryBars) -> dict[str, Any]:
    traces = [
        {
            "type": "bar",
            "name": label,
            "x": list(chart.categories),
            "y": [round(s * 100, 4) for s in shares],
            "marker": {"color": colour},
            "hovertemplate": f"{label}<br>%{{x}}: %{{y:.1f}}%<extra></extra>",
        }
        for label, shares, colour in (
            ("reference", chart.reference_shares, REFERENCE_COLOUR),
            ("last window", chart.current_shares, CURRENT_COLOUR),
        )
    ]
    return {
        "data": traces,
        "layout": _layout(
            "reference vs last window",
            barmode="group",
            showlegend=True,
            legend={"orientation": "h", "y": 1.0, "x": 1, "xanchor": "right", "yanchor": "bottom"},
            xaxis={"type": "category"},
            yaxis={"title": {"text": "share (%)"}, "rangemode": "tozero"},
        ),
    }


def _series_spec(series: DetectorSeries) -> dict[str, Any]:
    points = series.points
    thresholds = series.thresholds
    x = [_plot_time(p.window_end) for p in points]
    colours = []
    for p in points:
        level = thresholds.level(p.value) if math.isfinite(p.value) else None
        colours.append(
            CRITICAL_COLOUR
            if level == "critical"
            else WARNING_COLOUR
            if level == "warning"
            else CURRENT_COLOUR
        )
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    last_end = points[-1].window_end if points else None
    for episode in series.episodes:
        end = episode.ends_at if episode.ends_at is not None else last_end
        if end is None:
            end = episode.starts_at
        colour = CRITICAL_COLOUR if episode.severity == "critical" else WARNING_COLOUR
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": _plot_time(episode.breach_start),
                "x1": _plot_time(end),
                "y0": 0,
                "y1": 1,
                "fillcolor": colour,
                "opacity": 0.14,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        annotations.append(
            {
                "x": _plot_time(episode.starts_at),
                "y": 1,
                "xref": "x",
                "yref": "paper",
                "yanchor": "bottom",
                "text": episode.severity + (" (firing)" if episode.ends_at is None else ""),
                "showarrow": False,
                "font": {"size": 9, "color": colour},
            }
        )
    for name, value, colour in (
        ("warning", thresholds.warning, WARNING_COLOUR),
        ("critical", thresholds.critical, CRITICAL_COLOUR),
    ):
        if value is None:
            continue
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": value,
                "y1": value,
                "line": {"color": colour, "dash": "dash", "width": 1.2},
            }
        )
        annotations.append(
            {
                "xref": "paper",
                "x": 1,
                "xanchor": "right",
                "yref": "y",
                "y": value,
                "yanchor": "bottom",
                "text": f"{name} {value:g}",
                "showarrow": False,
                "font": {"size": 9, "color": colour},
            }
        )
    below = thresholds.direction == "below"
    yaxis: dict[str, Any] = {"title": {"text": series.statistic}}
    if below:
        yaxis["type"] = "log"
        yaxis["exponentformat"] = "power"
    else:
        yaxis["rangemode"] = "tozero"
        top = max([p.value for p in points if math.isfinite(p.value)] or [0.0])
        limits = [v for v in (thresholds.warning, thresholds.critical) if v is not None]
        yaxis["range"] = [0, max([top, *limits, 1e-9]) * 1.15]
    values = [p.value if math.isfinite(p.value) else None for p in points]
    if below:  # a log axis cannot show 0: the smallest positive double instead
        values = [None if v is None else max(v, 1e-300) for v in values]
    trace = {
        "type": "scatter",
        "mode": "lines+markers",
        "name": series.display_name,
        "x": x,
        "y": values,
        "line": {"color": CURRENT_COLOUR, "width": 1.3},
        "marker": {"color": colours, "size": 5},
        "customdata": [[p.sample_size, p.sequence] for p in points],
        "hovertemplate": (
            "window ending %{x}<br>value %{y:.4g}<br>%{customdata[0]} values, "
            "event #%{customdata[1]}<extra></extra>"
        ),
    }
    return {
        "data": [trace],
        "layout": _layout(
            f"{series.display_name} <span style='color:#888'>({series.detector})</span>",
            xaxis={"type": "date", "title": {"text": "window end (event time, UTC)"}},
            yaxis=yaxis,
            shapes=shapes,
            annotations=annotations,
        ),
    }


# -- small helpers ------------------------------------------------------------------------


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _feature_anchor(model_id: str, model_version: str, feature: str) -> str:
    raw = f"f-{model_id}-{model_version}-{feature}"
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in raw)


def _badge(status: Status) -> str:
    return f"<span class='badge s{status.value}'>{_e(status.label)}</span>"


def _number(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def _threshold(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _plot_time(epoch: float) -> str:
    """A time as plotly.js reads it on a date axis (UTC, milliseconds)."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _finite(values: tuple[float, ...]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values]


def iter_chart_ids(page: str) -> Iterator[str]:
    """The chart ids of a rendered page, in page order (for tests and tools)."""
    marker = "data-chart='"
    start = page.find(marker)
    while start >= 0:
        end = page.index("'", start + len(marker))
        yield page[start + len(marker) : end]
        start = page.find(marker, end)


_DRAW = """
(function () {
  var specs = JSON.parse(document.getElementById('driftline-charts').textContent);
  var config = {displaylogo: false, responsive: true, displayModeBar: false};
  var drawn = [];
  document.querySelectorAll('[data-chart]').forEach(function (div) {
    var spec = specs[div.getAttribute('data-chart')];
    drawn.push(Plotly.newPlot(div, spec.data, spec.layout, config));
  });
  Promise.all(drawn).then(function () {
    document.body.setAttribute('data-rendered', String(drawn.length));
  }, function (error) {
    document.body.setAttribute('data-rendered', 'error');
    console.error('driftline: a chart could not be drawn', error);
  });
})();
"""

_STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1380px;
padding:16px 24px;color:#222;background:#fff}
h1{margin:0 0 4px;font-size:24px}h2{margin:28px 0 6px;font-size:20px}
h3{margin:22px 0 8px;font-size:17px;border-bottom:1px solid #ddd;padding-bottom:4px}
h4{margin:0 0 6px;font-size:15px}
.meta,.legend,.note{color:#555;font-size:13px;margin:4px 0}.dim{color:#888;font-weight:normal}
table.summary,table.metrics{border-collapse:collapse;font-size:13px;margin:8px 0}
table.summary{width:100%}
table.summary th,table.summary td,table.metrics th,table.metrics td{border-bottom:1px solid
#e5e5e5;padding:4px 8px;text-align:left;white-space:nowrap}
table.summary th,table.metrics th{background:#f4f4f4}details{margin:8px 0;font-size:13px}
.badge{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600}
.s0{background:#d55e00;color:#fff}.s1{background:#e69f00;color:#111}
.s2{border:1px solid #d55e00;color:#a63f00}.s3{border:1px solid #e69f00;color:#8a5a00}
.s4{background:#e6f2ea;color:#1b5e20}.s5{background:#eee;color:#666}
article.feature{border:1px solid #e2e2e2;border-radius:6px;padding:10px 12px;margin:12px 0}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:8px}
.chart{min-height:260px}.nochart{color:#777;font-size:13px;padding:20px}
.problem{color:#b00020}.empty,.calm{color:#555}
"""

"""``driftline report`` makes one HTML file that a real browser renders offline."""

from __future__ import annotations

import re

from driftline.cli import main
from driftline.config import load_settings
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.report.html import iter_chart_ids
from tests.report.browser import visit
from tests.report.conftest import DriftingModel


def test_report_file_renders_offline_in_chromium(drifting: DriftingModel) -> None:
    output = drifting.root / "report.html"
    assert (
        main(["report", str(drifting.events), "-c", str(drifting.config), "-o", str(output)]) == 0
    )
    page = output.read_text(encoding="utf-8")
    charts = list(iter_chart_ids(page))
    # One distribution and one chart per detector for each monitored feature.
    pipeline = Pipeline(build_plan(load_settings(drifting.config)))
    pipeline.process(drifting.events.read_bytes().splitlines())
    monitor = pipeline.monitors()[("credit-scorer", "3")]
    expected = len(monitor.windows) + len(monitor.monitored())
    assert len(charts) == expected
    assert "__prediction__" in monitor.windows
    # Nothing is loaded from anywhere: no src/href to a resource, a CSP that forbids it.
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)=""", page)
    assert "default-src 'none'" in page

    shot = drifting.root / "report.png"
    seen = visit(output.as_uri(), shot)
    assert seen.rendered == str(expected), seen.console_errors
    assert seen.drawn == charts  # every chart container holds plotly's SVG
    assert seen.chart_svgs >= expected
    assert seen.console_errors == []
    assert seen.outside_requests() == []
    assert shot.stat().st_size > 50_000  # a page of charts, not a blank one
    # The summary at the top leads with the firing critical alerts.
    summary = seen.dom[seen.dom.index('id="summary"') :]
    first_row = summary[
        summary.index("<tr><td>") : summary.index("</tr>", summary.index("<tr><td>"))
    ]
    assert "firing: critical" in first_row
    assert "amount" in seen.dom and "country" in seen.dom

"""The drift report's model performance section (issue 10): realized and estimated
performance and label drift, with the join's counts, in the summary and on the page."""

from __future__ import annotations

from driftline.findings import Finding
from driftline.report.history import FindingHistory
from driftline.report.html import render
from driftline.report.model import drift_report, pipeline_reports
from tests.test_ground_truth import _pipeline, _stream


def test_performance_statistics_are_reported_and_ranked_with_the_features() -> None:
    pipeline = _pipeline()
    history = FindingHistory(500)
    events = _stream(30_000, change=15_000)
    for start in range(0, len(events), 1_000):
        history.observe(pipeline.process(events[start : start + 1_000]))
    [version] = pipeline_reports(pipeline, history)
    names = {f.name for f in version.performance}
    assert "__error__" in names and not names & {f.name for f in version.features}
    [error] = [f for f in version.performance if f.name == "__error__"]
    detectors = {s.detector for s in error.series}
    assert {"error_rate", "log_loss", "adwin", "page_hinkley"} <= detectors
    # The statistics over time are the pipeline's findings for __error__.
    [rate] = [s for s in error.series if s.detector == "error_rate"]
    assert [p.value for p in rate.points] == [
        f.value for f in _error_rate_findings(events) if f.detector == "error_rate"
    ]
    assert version.performance_status is not None and version.performance_status["joined"] > 0
    report = drift_report([version])
    assert report.summary[0].feature in {"__error__", "__label__"}  # firing first
    page = render(report, title="t", generated="now")
    assert "<h3>Model performance</h3>" in page and "labels joined" in page


def _error_rate_findings(events: list[bytes]) -> list[Finding]:
    pipeline = _pipeline()
    found: list[Finding] = []
    for start in range(0, len(events), 1_000):
        found += [
            f
            for f in pipeline.process(events[start : start + 1_000]).findings
            if f.feature == "__error__"
        ]
    assert found
    return found

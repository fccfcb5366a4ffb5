"""``driftline report``: replay a JSONL file of events and draw the drift of every version."""

from __future__ import annotations

import os
from pathlib import Path

from driftline.config import Settings
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.replay import DEFAULT_BATCH_SIZE, ReplaySinks, replay
from driftline.report.history import FindingHistory
from driftline.report.html import render
from driftline.report.model import drift_report, pipeline_reports


def report_page(
    settings: Settings,
    events: Path,
    *,
    generated: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> str:
    """The HTML report of ``events`` replayed through the core with ``settings`` (the same
    outputs as ``driftline replay``; alerts are not written anywhere)."""
    pipeline = Pipeline(build_plan(settings))
    history = FindingHistory(settings.report.history_windows)
    with open(os.devnull, "wb") as discard:
        replay(
            pipeline,
            events,
            ReplaySinks(discard, None, None),
            batch_size,
            observe=history.observe,
        )
    report = drift_report(pipeline_reports(pipeline, history))
    return render(
        report,
        title=f"driftline drift report: {events.name}",
        generated=generated,
        note=f"deployment {settings.deployment} · statistics of the last "
        f"{settings.report.history_windows:,} closed windows at most",
    )

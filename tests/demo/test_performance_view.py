"""The demo's view of model performance, read from the pipeline's snapshot
(driftline.demo.live_view, driftline.snapshot.VersionSnapshot.performance)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from rich.console import Console

from driftline.config import parse_settings
from driftline.demo.live_view import performance_statuses, performance_table
from driftline.demo.replay_demo import MODEL_ID, build_demo_profile, offline_scenario
from driftline.demo.scenario import stream_lines
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import ReferenceProfile

PREDICTIONS = 24_000  # the concept drift at 6,000 (and no input drift)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> ReferenceProfile:
    root = tmp_path_factory.mktemp("view")
    return build_demo_profile(root / "training.csv", root / "p.json")


def _pipeline(reference: ReferenceProfile | None) -> Pipeline:
    settings = parse_settings({"models": [{"model_id": MODEL_ID}]})
    return Pipeline(build_plan(settings, {} if reference is None else {0: reference}))


def _text(table: object) -> str:
    console = Console(record=True, width=160, color_system=None)
    console.print(table)
    return console.export_text()


def test_the_snapshot_carries_each_versions_ground_truth(reference: ReferenceProfile) -> None:
    pipeline = _pipeline(reference)
    concept_only = replace(offline_scenario(PREDICTIONS), drifts=())
    lines = [item.line for item in stream_lines(concept_only)]
    for start in range(0, len(lines), 1_000):
        pipeline.process(lines[start : start + 1_000])
    (version,) = pipeline.snapshot().versions
    truth = pipeline.versions[(MODEL_ID, "3")]
    assert truth is not None and truth.ground_truth is not None
    assert version.performance == {"started": True, **truth.ground_truth.status()}
    assert version.performance is not truth.ground_truth.status()  # a copy each time

    (status,) = performance_statuses([pipeline], MODEL_ID)
    assert status.joined == PREDICTIONS and status.pending == 0
    assert status.reference == pytest.approx(reference.performance.metrics["error_rate"])  # type: ignore[union-attr]
    assert status.realized is not None and status.realized > status.reference + 0.03
    assert status.estimated is not None and abs(status.estimated - status.reference) < 0.02
    assert status.firing is not None and status.estimated_firing is None
    assert performance_statuses([pipeline], "another-model") == []
    text = _text(performance_table([status]))
    assert re.search(
        rf"v3\s+│ error_rate\s+│\s+{PREDICTIONS:,} │\s+0 │\s+[\d,]+ s "
        rf"│\s+0\.\d{{3}} │\s+0\.\d{{3}} │\s+0\.\d{{3}} │ FIRING {status.firing}",
        text,
    ), text


def test_a_version_without_ground_truth_shows_none() -> None:
    pipeline = _pipeline(None)  # warming up: no profile, so no task yet
    pipeline.process([item.line for item in stream_lines(offline_scenario(400))][:400])
    (version,) = pipeline.snapshot().versions
    assert version.performance is None
    assert performance_statuses([pipeline], MODEL_ID) == []
    assert "(waiting for the version's ground truth)" in _text(performance_table([]))

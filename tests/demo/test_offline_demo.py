"""``driftline demo --offline`` end to end: delayed labels, a concept drift only the labels
can tell (PerformanceDrift), then input drift (driftline.demo.replay_demo)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from driftline.demo.replay_demo import MODEL_ID, offline_scenario, run_replay_demo
from driftline.profile import load_profile

EVENTS = 60_000  # the default of --offline


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    directory = tmp_path_factory.mktemp("demo")
    console = Console(record=True, width=200, color_system=None)
    assert run_replay_demo(directory, EVENTS, console) == 0
    return directory, console.export_text()


def _events(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_the_reference_profile_records_the_reference_performance(demo: tuple[Path, str]) -> None:
    directory, printed = demo
    performance = load_profile(directory / f"{MODEL_ID}-v3.profile.json").performance
    assert performance is not None and performance.calibration is not None
    assert performance.task.task.value == "binary" and performance.pairs == 20_000
    assert "reference performance (binary, 20,000 labelled rows): error rate 0." in printed


def test_the_stream_has_every_label_as_a_feedback_event(demo: tuple[Path, str]) -> None:
    directory, _ = demo
    lines = (directory / "events.jsonl").read_bytes().splitlines()
    feedback = [line for line in lines if b'"label"' in line]
    assert len(feedback) == EVENTS and all(b'"features"' not in line for line in feedback)
    assert len(lines) == 2 * EVENTS + 3  # and three malformed lines
    assert len(_events(directory / "dead-letters.jsonl")) == 3


def test_performance_drift_fires_after_the_concept_drift_and_never_before(
    demo: tuple[Path, str],
) -> None:
    directory, printed = demo
    scenario = offline_scenario(EVENTS)
    (concept,) = scenario.concept_drifts
    concept_time = scenario.event_time(concept.start)
    input_time = scenario.event_time(min(d.start for d in scenario.drifts))
    alerts = [event["data"] for event in _events(directory / "alerts.jsonl")]
    firing = [a for a in alerts if a["status"] == "firing"]

    def named(name: str) -> list[dict[str, Any]]:
        return [a for a in firing if a["labels"]["alertname"] == name]

    performance = named("PerformanceDrift")
    assert performance, alerts
    # None before the change: every breach that fired started after it ...
    assert min(_seconds(a["breach_started_at"]) for a in performance) > concept_time
    # ... and the first fired before the input drift: it is the concept drift's.
    first = min(performance, key=lambda a: _seconds(a["starts_at"]))
    assert _seconds(first["starts_at"]) < input_time
    assert first["labels"]["feature"] == "__error__"
    assert first["evidence"]["current"] > first["evidence"]["reference"]
    assert 30 <= first["evidence"]["label_delay_p50_seconds"] <= 600
    # Concept drift is invisible to the inputs and to the estimate without labels: no
    # other alert until the input drift, which the estimate does see.
    early = [a for a in firing if _seconds(a["starts_at"]) < input_time]
    assert {a["labels"]["alertname"] for a in early} == {"PerformanceDrift"}
    estimated = named("EstimatedPerformanceDrift")
    assert estimated and min(_seconds(a["starts_at"]) for a in estimated) > input_time
    assert {"FeatureDrift", "DataQuality"} <= {a["labels"]["alertname"] for a in firing}
    # The best reason to retrain comes first.
    requests = [e["data"] for e in _events(directory / "retrain-requests.jsonl")]
    assert requests[0]["reason"]["code"] == "performance_drift"
    # What the console shows.
    assert "FIRING   PerformanceDrift" in printed
    assert "model performance (labels joined to predictions)" in printed

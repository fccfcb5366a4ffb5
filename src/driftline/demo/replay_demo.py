"""``driftline demo --offline``: a credit-scoring model's traffic with drift injected,
replayed end to end.

It writes everything it uses into one directory, so each step can be rerun by hand:
training data with the model's predictions and the true outcomes (CSV) -> ``profile
build`` (which records the reference performance) -> a two-line config -> events (JSONL:
predictions, their labels as feedback events 30 s to 10 min later, a few malformed lines)
-> ``replay`` -> alerts, retrain requests and dead letters (JSONL). Each step calls the
library functions behind the command of the same name.

The story, in prediction events (``N`` of them, 10 a second): from ``N/4`` self-employed
applicants default half of the time whatever their score (a concept drift: inputs and
predictions do not change, only the outcomes do, so only the labels can tell: a
``PerformanceDrift`` alert once enough of them are back); from ``N/2`` ``amount`` shifts up
by one standard deviation and ``country`` BR gains 25 points (input drift, which also
moves the error rate); from ``3N/4`` ``income`` goes missing in a quarter of the events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from driftline.config import ConfigError, load_settings
from driftline.demo.live_view import performance_statuses, performance_table
from driftline.demo.scenario import (
    ConceptDrift,
    Drift,
    Scenario,
    credit_scoring_scenario,
    stream_lines,
    write_reference_csv,
)
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import ProfileError, ReferenceProfile, save_profile
from driftline.profile_io import build_profile_from_file
from driftline.replay import ReplaySinks, replay
from driftline.summary import print_summary

MALFORMED = (
    b'{"event_id": "bad-1", "model_id": "credit-scorer"',
    b'{"event_id": "bad-2", "model_id": "credit-scorer", "model_version": "3", '
    b'"timestamp": "yesterday", "features": {"amount": 10}}',
    b'{"event_id": "bad-3", "model_id": "credit-scorer", "model_version": "3", '
    b'"timestamp": 1704067200, "features": {"amount": {"value": 10}}}',
)
MODEL_ID = "credit-scorer"
MODEL_VERSION = "3"
OFFLINE_RATE = 10.0
"""Prediction events per second of event time in the offline demo."""
OFFLINE_LABEL_DELAY = (30.0, 600.0)
"""Seconds of event time from a prediction to its label (uniform), in the offline demo."""
TRAINING_ROWS = 20_000
CONCEPT_SEGMENT = ("employment", "self_employed")
"""Where the world changes: self-employed applicants (18% of them)."""
CONCEPT_POSITIVE_RATE = 0.5
"""Their default rate after the change, whatever the model's score (about 0.2 before)."""
CONCEPT_DESCRIPTION = "self-employed applicants default at 50% whatever their score"


def concept_drift(start: int) -> ConceptDrift:
    """The demo's concept drift, from prediction ``start`` on."""
    feature, category = CONCEPT_SEGMENT
    return ConceptDrift(start, feature, category, CONCEPT_POSITIVE_RATE)


def offline_scenario(events: int) -> Scenario:
    """The offline demo's traffic: ``events`` predictions, labels as feedback, the concept
    drift at a quarter, input drift at half and three quarters."""
    quarter, half, three_quarters = events // 4, events // 2, 3 * events // 4
    return credit_scoring_scenario(
        events=events,
        model_id=MODEL_ID,
        model_version=MODEL_VERSION,
        rate=OFFLINE_RATE,
        labels=True,
        label_delay=OFFLINE_LABEL_DELAY,
        concept_drifts=(concept_drift(quarter),),
        drifts=(
            Drift("amount", "mean_shift", start=half, magnitude=1.0),
            Drift("country", "category_surge", start=half, magnitude=0.25, category="BR"),
            Drift("income", "missing_surge", start=three_quarters, magnitude=0.25),
        ),
    )


def build_demo_profile(training: Path, profile: Path) -> ReferenceProfile:
    """Training data with the model's predictions and the outcomes, and its profile (the
    reference performance included)."""
    scenario = credit_scoring_scenario(
        events=1, model_id=MODEL_ID, model_version=MODEL_VERSION, drifts=(), labels=True
    )
    write_reference_csv(scenario, TRAINING_ROWS, training)
    reference = build_profile_from_file(training, model_id=MODEL_ID, model_version=MODEL_VERSION)
    save_profile(reference, profile)
    return reference


def describe_reference(reference: ReferenceProfile) -> str:
    """One line: the profile and the model's performance on the training data."""
    text = (
        f"profile {reference.profile_id} for {reference.model_id} v{reference.model_version}: "
        f"{reference.row_count:,} rows, {len(reference.features)} columns"
    )
    performance = reference.performance
    if performance is not None:
        metrics = performance.metrics
        text += (
            f"; reference performance ({performance.task.task.value}, "
            f"{performance.pairs:,} labelled rows): error rate {metrics['error_rate']:.3f}, "
            f"log loss {metrics['log_loss']:.3f}"
        )
    return text


def run_replay_demo(directory: Path, events: int, console: Console) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    scenario = offline_scenario(events)
    training = directory / "training.csv"
    profile = directory / f"{MODEL_ID}-v{MODEL_VERSION}.profile.json"
    config = directory / "driftline.yaml"
    stream = directory / "events.jsonl"
    console.rule(f"driftline demo: {MODEL_ID} v{MODEL_VERSION}")
    low, high = OFFLINE_LABEL_DELAY
    _say(
        console,
        f"{events:,} predictions at {OFFLINE_RATE:g}/s, each one's label (default or not) "
        f"back as a feedback event {low:g} s to {high / 60:g} min later;\n"
        f"  from prediction {events // 4:,}: {CONCEPT_DESCRIPTION} (concept drift: the "
        "inputs do not move)\n"
        f"  from prediction {events // 2:,}: `amount` +1 sd and `country`=BR +25 points\n"
        f"  from prediction {3 * events // 4:,}: `income` missing 1% -> 25%",
    )
    try:
        reference = build_demo_profile(training, profile)
    except (ConfigError, ProfileError, OSError) as exc:
        return _failed(exc, console)
    _say(console, f"{describe_reference(reference)} -> {profile}")
    config.write_text(f"models:\n  - model_id: {MODEL_ID}\n    reference_profile: {profile.name}\n")
    lines = _write_stream(scenario, stream)
    _say(
        console, f"{lines:,} lines (predictions, feedback, {len(MALFORMED)} malformed) -> {stream}"
    )
    alerts = directory / "alerts.jsonl"
    retrain = directory / "retrain-requests.jsonl"
    dead_letters = directory / "dead-letters.jsonl"
    try:
        pipeline = Pipeline(build_plan(load_settings(config)))
        with alerts.open("wb") as a, retrain.open("wb") as r, dead_letters.open("wb") as d:
            replay(pipeline, stream, ReplaySinks(a, r, d))
    except (ConfigError, ProfileError, OSError) as exc:
        return _failed(exc, console)
    print_summary(pipeline, console)
    console.print(performance_table(performance_statuses([pipeline], MODEL_ID)))
    console.rule("alerts, as the on-call engineer reads them")
    for line in alerts.read_bytes().splitlines():
        event = orjson.loads(line)
        _say(console, alert_text(event))
    for line in retrain.read_bytes().splitlines():
        data = orjson.loads(line)["data"]
        features = ", ".join(f["feature"] for f in data["drifted_features"])
        _say(
            console,
            f"RETRAIN {data['model_id']} v{data['model_version']}: {data['reason']['text']} "
            f"(features: {features}; key {data['idempotency_key'][:16]}…)",
        )
    console.print(f"\nall files are in {directory}/ — rerun any step by hand.")
    return 0


def alert_text(event: dict[str, Any]) -> str:
    """An alert event as one line: status, alert name, summary."""
    data = event["data"]
    marker = "FIRING  " if data["status"] == "firing" else "resolved"
    name = data["labels"]["alertname"]
    return f"{marker} {name:<26} {data['annotations']['summary']}"


def _write_stream(scenario: Scenario, path: Path) -> int:
    """The stream as JSONL, the malformed lines spread over it; lines written."""
    spacing = scenario.events // (len(MALFORMED) + 1)
    written = 0
    with path.open("wb") as out:
        for item in stream_lines(scenario):
            if not item.feedback and item.index and spacing and item.index % spacing == 0:
                bad = item.index // spacing
                if bad <= len(MALFORMED):
                    out.write(MALFORMED[bad - 1] + b"\n")
                    written += 1
            out.write(item.line + b"\n")
            written += 1
    return written


def _say(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _failed(exc: Exception, console: Console) -> int:
    console.print(f"error: {exc}", style="red", highlight=False, markup=False)
    return 1

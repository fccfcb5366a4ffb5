"""``driftline demo``: a credit-scoring model's traffic with drift injected, replayed end to end.

It writes everything it uses into one directory, so each step can be rerun by hand:
training data (CSV) -> ``profile build`` -> a two-line config -> events (JSONL, with a few
malformed ones) -> ``replay`` -> alerts, retrain requests and dead letters (JSONL). Each step
calls the library functions behind the command of the same name.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from rich.console import Console

from driftline.config import ConfigError, load_settings
from driftline.demo.scenario import (
    Drift,
    credit_scoring_scenario,
    event_lines,
    write_reference_csv,
)
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import ProfileError, save_profile
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


def run_replay_demo(directory: Path, events: int, console: Console) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    third = events // 3
    scenario = credit_scoring_scenario(
        events=events,
        model_id="credit-scorer",
        model_version="3",
        rate=100.0,
        drifts=(
            Drift("amount", "mean_shift", start=third, magnitude=1.0),
            Drift("country", "category_surge", start=third, magnitude=0.25, category="BR"),
            Drift("income", "missing_surge", start=2 * third, magnitude=0.25),
        ),
    )
    training = directory / "training.csv"
    profile = directory / "credit-scorer-v3.profile.json"
    config = directory / "driftline.yaml"
    stream = directory / "events.jsonl"
    console.rule("driftline demo: credit-scorer v3")
    console.print(
        f"{events:,} events at 100/s; from event {third:,}: `amount` +1 sd and `country`=BR "
        f"+25 points; from event {2 * third:,}: `income` missing 1% -> 25%"
    )
    write_reference_csv(scenario, 20_000, training)
    try:
        reference = build_profile_from_file(training, model_id="credit-scorer", model_version="3")
        save_profile(reference, profile)
    except (ConfigError, ProfileError, OSError) as exc:
        return _failed(exc, console)
    console.print(
        f"profile {reference.profile_id} for {reference.model_id} v{reference.model_version}: "
        f"{reference.row_count:,} rows, {len(reference.features)} features -> {profile}"
    )
    config.write_text(
        f"models:\n  - model_id: credit-scorer\n    reference_profile: {profile.name}\n"
    )
    with stream.open("wb") as out:
        spacing = events // (len(MALFORMED) + 1)
        for i, line in enumerate(event_lines(scenario)):
            if i and i % spacing == 0 and i // spacing <= len(MALFORMED):
                out.write(MALFORMED[i // spacing - 1] + b"\n")
            out.write(line + b"\n")
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
    console.rule("alerts (first of each, as the on-call engineer reads them)")
    for line in alerts.read_bytes().splitlines():
        data = orjson.loads(line)["data"]
        marker = "FIRING " if data["status"] == "firing" else "resolved"
        console.print(f"{marker} {data['annotations']['summary']}", markup=False, highlight=False)
    for line in retrain.read_bytes().splitlines():
        data = orjson.loads(line)["data"]
        features = ", ".join(f["feature"] for f in data["drifted_features"])
        console.print(
            f"RETRAIN {data['model_id']} v{data['model_version']}: {data['reason']['text']} "
            f"(features: {features}; key {data['idempotency_key'][:16]}…)",
            markup=False,
            highlight=False,
        )
    console.print(f"\nall files are in {directory}/ — rerun any step by hand.")
    return 0


def _failed(exc: Exception, console: Console) -> int:
    console.print(f"error: {exc}", style="red", highlight=False, markup=False)
    return 1

"""`driftline replay` end to end, through the command line, on a scenario with known drift."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from driftline.cli import main
from driftline.demo.scenario import (
    Drift,
    credit_scoring_scenario,
    event_lines,
    write_reference_csv,
)

EVENTS = 40_000
SHIFT_AT = 15_000
MISSING_AT = 25_000
DRIFTED = {"amount", "country", "income"}
BAD_LINES = [
    b'{"event_id": "x", "model_id": "credit-scorer"',
    b'"just a string"',
    b'{"event_id": "y", "model_id": "credit-scorer", "model_version": "3", '
    b'"timestamp": "2024-01-01T00:00:00", "features": {"amount": 1}}',
]


@pytest.fixture(scope="module")
def scenario_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("replay")
    scenario = credit_scoring_scenario(
        events=EVENTS,
        model_id="credit-scorer",
        model_version="3",
        rate=100.0,
        drifts=(
            Drift("amount", "mean_shift", start=SHIFT_AT, magnitude=1.0),
            Drift("country", "category_surge", start=SHIFT_AT, magnitude=0.25, category="BR"),
            Drift("income", "missing_surge", start=MISSING_AT, magnitude=0.25),
        ),
    )
    training = root / "training.csv"
    write_reference_csv(scenario, 20_000, training)
    profile = root / "profile.json"
    build = ["profile", "build", str(training), "--model-id", "credit-scorer"]
    assert main([*build, "--model-version", "3", "-o", str(profile), "--no-progress"]) == 0
    config = root / "driftline.yaml"
    config.write_text("models:\n  - model_id: credit-scorer\n    reference_profile: profile.json\n")
    events = root / "events.jsonl"
    with events.open("wb") as out:
        for i, line in enumerate(event_lines(scenario)):
            if i in (100, 20_000, 39_000):
                out.write(BAD_LINES[(100, 20_000, 39_000).index(i)] + b"\n\n")
            out.write(line + b"\n")
    return {"root": root, "config": config, "events": events}


def _replay(files: dict[str, Path], tag: str) -> dict[str, bytes]:
    outputs = {k: files["root"] / f"{tag}-{k}.jsonl" for k in ("alerts", "retrain", "dead")}
    args = ["replay", str(files["events"]), "--config", str(files["config"])]
    args += ["--alerts-out", str(outputs["alerts"]), "--retrain-out", str(outputs["retrain"])]
    args += ["--dead-letters-out", str(outputs["dead"])]
    assert main(args) == 0
    return {k: p.read_bytes() for k, p in outputs.items()}


def test_replay_alerts_on_drifted_features_after_their_drift_points(
    scenario_files: dict[str, Path],
) -> None:
    out = _replay(scenario_files, "a")
    alerts = [orjson.loads(line) for line in out["alerts"].splitlines()]
    firing = [a["data"] for a in alerts if a["data"]["status"] == "firing"]
    features = {a["labels"]["feature"] for a in firing}
    # The prediction is a function of the drifted inputs, so it may drift too.
    assert DRIFTED <= features <= DRIFTED | {"__prediction__"}
    for alert in firing:
        start = MISSING_AT if alert["labels"]["feature"] == "income" else SHIFT_AT
        assert start < alert["evidence"]["sequence"] <= start + 20_000
    requests = [orjson.loads(line) for line in out["retrain"].splitlines()]
    assert requests, "drift on several features must request retraining"
    first_alert_time = min(a["time"] for a in alerts)
    assert requests[0]["time"] >= first_alert_time
    ranked = [f["feature"] for f in requests[0]["data"]["drifted_features"]]
    assert "amount" in ranked
    assert requests[0]["data"]["reference_profile"]["sha256"]
    dead = [orjson.loads(line) for line in out["dead"].splitlines()]
    assert [d["reason"] for d in dead] == ["invalid_json", "not_an_object", "invalid_timestamp"]


def test_replaying_twice_gives_byte_identical_output(scenario_files: dict[str, Path]) -> None:
    first = _replay(scenario_files, "b")
    second = _replay(scenario_files, "c")
    assert first["alerts"] and first == second

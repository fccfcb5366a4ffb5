"""Config validated completely before anything runs: what ``config check`` accepts runs,
what it rejects is rejected by ``replay`` too, naming the key, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline.cli import main
from driftline.demo.scenario import credit_scoring_scenario, event_lines, write_reference_csv


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("complete")
    scenario = credit_scoring_scenario(
        events=3_000, model_id="credit", model_version="3", rate=100.0, drifts=()
    )
    write_reference_csv(scenario, 2_000, root / "training.csv")
    build = ["profile", "build", str(root / "training.csv"), "--model-id", "credit"]
    assert main([*build, "--model-version", "3", "-o", str(root / "p.json"), "--no-progress"]) == 0
    events = root / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in event_lines(scenario)))
    return {"root": root, "events": events}


def _model(**extra: Any) -> dict[str, Any]:
    return {"models": [{"model_id": "credit", "reference_profile": "p.json", **extra}]}


STREAM = {"numeric": ["psi", "adwin", "page_hinkley"]}

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("adwin-buckets", {"adwin": {"max_buckets": 1}}, "adwin.max_buckets"),
    ("adwin-delta", {"adwin": {"delta": 1.5}}, "adwin.delta"),
    ("adwin-clock", {"adwin": {"clock": 2**31}}, "adwin.clock"),
    ("ph-delta", {"page_hinkley": {"delta": -1}, "detectors": STREAM}, "page_hinkley.delta"),
    ("ph-threshold", {"page_hinkley": {"threshold": float("inf")}}, "page_hinkley.threshold"),
    ("ph-alpha", {"page_hinkley": {"alpha": 0}}, "page_hinkley.alpha"),
    ("psi-warning", {"thresholds": {"psi": {"warning": 0.3}}}, "thresholds.psi"),
    (
        "feature-kind",
        _model(features={"country": {"detectors": ["adwin"]}}),
        "models.0.features.country.detectors",
    ),
    (
        "feature-kind-boolean",
        _model(features={"has_mortgage": {"detectors": ["ks"]}}),
        "models.0.features.has_mortgage.detectors",
    ),
    ("kind", {"detectors": {"categorical": ["ks"]}}, "detectors.categorical"),
    ("categories", {"warmup_max_categories": 5}, "warmup_max_categories"),
    ("sample", {"warmup_sample_values": 10}, "warmup_sample_values"),
    ("alerts", {"alerts": {"fire_after": 0}}, "alerts.fire_after"),
    ("alerts-critical", {"alerts": {"critical_fire_after": 0}}, "alerts.critical_fire_after"),
    ("retrain", {"retrain": {"min_drifted_share": 2}}, "retrain.min_drifted_share"),
    ("performance", {"performance": {"detectors": ["psi"]}}, "performance.detectors"),
    (
        "performance-on-a-feature",
        _model(features={"amount": {"detectors": ["error_rate"]}}),
        "models.0.features.amount.detectors",
    ),
    ("labels", {"labels": {"max_pending": 0}}, "labels.max_pending"),
    ("threshold", _model(decision_threshold=1.5), "models.0.decision_threshold"),
    (
        "feedback-topics",
        {"kafka": {"input_topics": ["a", "b"], "feedback_topics": ["f"]}},
        "kafka",
    ),
]

GOOD: list[tuple[str, dict[str, Any]]] = [
    ("defaults", {}),
    ("profile", _model()),
    ("stream-everywhere", {"detectors": STREAM, "adwin": {"max_buckets": 2}, **_model()}),
    ("ph-delta-zero", {"page_hinkley": {"delta": 0}, "detectors": STREAM}),
    (
        "feature-lists",
        _model(
            features={
                "amount": {"detectors": ["ks", "adwin", "page_hinkley"]},
                "country": {"detectors": ["chi_square", "psi"]},
                "has_mortgage": {"detectors": ["quality_type"]},
            }
        ),
    ),
    (
        "feature-lists-warmup",  # kinds learned: lists are checked by name only
        {
            "warmup_events": 500,
            "models": [
                {
                    "model_id": "credit",
                    "features": {
                        "country": {"detectors": ["adwin", "chi_square"]},
                        "amount": {"detectors": ["chi_square", "ks"]},
                    },
                }
            ],
        },
    ),
    (
        "small-warmup",
        {
            "warmup_events": 300,
            "warmup_sample_values": 100,
            "warmup_max_categories": 20,
            "window": {"events": 100},
        },
    ),
]


def _write(root: Path, name: str, config: dict[str, Any]) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(("name", "config", "key"), BAD, ids=[b[0] for b in BAD])
def test_bad_configs_are_rejected_by_check_and_replay(
    files: dict[str, Path],
    name: str,
    config: dict[str, Any],
    key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _write(files["root"], name, config)
    assert main(["config", "check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{key}:" in err.replace("\n", "") and "Traceback" not in err
    out = files["root"] / f"{name}.alerts"
    replay = ["replay", str(files["events"]), "--config", str(path), "--alerts-out", str(out)]
    assert main(replay) == 2
    err = capsys.readouterr().err
    assert f"{key}:" in err.replace("\n", "") and "Traceback" not in err


@pytest.mark.parametrize("case", BAD[:4], ids=[b[0] for b in BAD[:4]])
def test_bad_configs_through_the_real_command(
    files: dict[str, Path], case: tuple[str, dict[str, Any], str]
) -> None:
    name, config, key = case
    path = _write(files["root"], f"sub-{name}", config)
    run = subprocess.run(
        [sys.executable, "-m", "driftline", "replay", str(files["events"]), "-c", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert key in run.stderr.replace("\n", "") and "Traceback" not in run.stderr


@pytest.mark.parametrize(("name", "config"), GOOD, ids=[g[0] for g in GOOD])
def test_accepted_configs_process_events(
    files: dict[str, Path], name: str, config: dict[str, Any]
) -> None:
    path = _write(files["root"], name, config)
    assert main(["config", "check", "--config", str(path)]) == 0
    out = files["root"] / f"{name}.alerts"
    dead = files["root"] / f"{name}.dead"
    replay = ["replay", str(files["events"]), "-c", str(path), "--alerts-out", str(out)]
    assert main([*replay, "--dead-letters-out", str(dead), "--batch-size", "250"]) == 0
    assert dead.read_bytes() == b""

"""The ``driftline`` command line: exit codes, error messages and what each command prints."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from driftline import __version__
from driftline.cli import _parser, main
from driftline.demo.options import add_arguments
from driftline.demo.scenario import credit_scoring_scenario, event_lines, write_reference_csv
from driftline.performance.task import Task
from driftline.profile import load_profile


@pytest.fixture(scope="module")
def scenario_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    scenario = credit_scoring_scenario(
        events=2_000, model_id="credit-scorer", model_version="3", rate=100.0, drifts=()
    )
    training = root / "training.csv"
    write_reference_csv(scenario, 2_000, training)
    profile = root / "profile.json"
    build = ["profile", "build", str(training), "--model-id", "credit-scorer"]
    assert main([*build, "--model-version", "3", "-o", str(profile), "--no-progress"]) == 0
    config = root / "driftline.yaml"
    config.write_text("models:\n  - model_id: credit-scorer\n    reference_profile: profile.json\n")
    events = root / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in event_lines(scenario)))
    return {"root": root, "config": config, "events": events}


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"driftline {__version__}\n"


def test_the_demo_command_takes_the_demo_modules_options() -> None:
    """One home per option: ``driftline demo`` parses exactly what the demo module defines."""
    alone = argparse.ArgumentParser()
    add_arguments(alone)
    argv = ["--duration", "5", "--rate", "10", "--no-live", "--offline", "--events", "9"]
    assert vars(_parser().parse_args(["demo", *argv])) == {
        "command": "demo",
        **vars(alone.parse_args(argv)),
    }
    assert vars(_parser().parse_args(["demo"])) == {"command": "demo", **vars(alone.parse_args([]))}


def test_profile_build_rejects_an_unknown_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = ["profile", "build", "x.csv", "--model-id", "m", "--model-version", "1"]
    with pytest.raises(SystemExit) as exited:
        main([*build, "-o", str(tmp_path / "p.json"), "--kind", "amount=fuzzy"])
    assert exited.value.code == 2
    assert "unknown kind 'fuzzy'" in capsys.readouterr().err


def test_bad_config_exits_non_zero_naming_the_key(
    scenario_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - model_id: credit-scorer\n    reference_profil: p.json\n")
    assert main(["replay", str(scenario_files["events"]), "--config", str(bad)]) == 2
    assert "models.0.reference_profil: unknown key" in capsys.readouterr().err


def test_missing_profile_and_missing_input_exit_non_zero(
    scenario_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("models:\n  - model_id: m\n    reference_profile: nowhere.json\n")
    assert main(["replay", str(scenario_files["events"]), "--config", str(config)]) == 2
    assert "models.0.reference_profile" in capsys.readouterr().err
    good = str(scenario_files["config"])
    assert main(["replay", str(tmp_path / "none.jsonl"), "--config", good]) == 2
    assert "none.jsonl" in capsys.readouterr().err


def test_config_check_prints_effective_settings(
    scenario_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", "--config", str(scenario_files["config"])]) == 0
    printed = capsys.readouterr().out
    assert "fire_after: 3" in printed
    assert "credit-scorer" in printed


# --------------------------------------------------------------------------- profile build


def _labelled_training(path: Path, rows: int = 3_000) -> Path:
    """Training data with the model's ``__prediction__`` (a probability) and ``__label__``."""
    scenario = credit_scoring_scenario(events=1, drifts=(), labels=True)
    write_reference_csv(scenario, rows, path)
    return path


def _build(data: Path, output: Path, *extra: str) -> int:
    argv = ["profile", "build", str(data), "--model-id", "m", "--model-version", "1"]
    return main([*argv, "-o", str(output), "--no-progress", *extra])


def test_profile_build_records_the_reference_performance_of_labelled_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _labelled_training(tmp_path / "training.csv")
    assert _build(data, tmp_path / "p.json") == 0
    performance = load_profile(tmp_path / "p.json").performance
    assert performance is not None
    assert performance.task.task is Task.BINARY
    assert performance.task.prediction_kind == "probability"
    assert performance.task.decision_threshold == 0.5
    assert performance.pairs == 3_000 and performance.calibration is not None
    assert 0.0 < performance.metrics["error_rate"] < 0.5
    err = capsys.readouterr().err
    assert "reference performance (binary, probability predictions, 3,000 pairs)" in err
    # Without labels there is nothing to measure: no performance section.
    unlabelled = tmp_path / "unlabelled.csv"
    write_reference_csv(credit_scoring_scenario(events=1, drifts=()), 500, unlabelled)
    assert _build(unlabelled, tmp_path / "q.json") == 0
    assert load_profile(tmp_path / "q.json").performance is None


def test_profile_build_takes_the_task_and_decision_threshold(tmp_path: Path) -> None:
    data = _labelled_training(tmp_path / "training.csv")
    assert _build(data, tmp_path / "low.json", "--decision-threshold", "0.1") == 0
    assert _build(data, tmp_path / "half.json") == 0
    low, half = (load_profile(tmp_path / name).performance for name in ("low.json", "half.json"))
    assert low is not None and half is not None
    assert low.task.decision_threshold == 0.1
    assert low.metrics["error_rate"] != half.metrics["error_rate"]
    assert _build(data, tmp_path / "r.json", "--task", "regression") == 0
    regression = load_profile(tmp_path / "r.json").performance
    assert regression is not None and regression.task.task is Task.REGRESSION
    assert "mae" in regression.metrics and "error_rate" not in regression.metrics


def test_profile_build_asks_for_the_task_when_the_data_cannot_tell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "scores.csv"  # 0/1 labels, scores outside [0, 1]: which task?
    data.write_text(
        "x,__prediction__,__label__\n"
        + "".join(f"{i},{i * 0.7 - 3:.2f},{i % 2}\n" for i in range(20))
    )
    assert _build(data, tmp_path / "p.json") == 2
    assert "__prediction__ and __label__" in capsys.readouterr().err
    assert _build(data, tmp_path / "p.json", "--task", "regression") == 0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--task", "ranking", "invalid Task value: 'ranking'"),
        ("--decision-threshold", "1", "strictly between 0 and 1, got '1'"),
        ("--decision-threshold", "half", "strictly between 0 and 1, got 'half'"),
    ],
)
def test_profile_build_rejects_a_bad_task_or_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        _build(tmp_path / "x.csv", tmp_path / "p.json", option, value)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err

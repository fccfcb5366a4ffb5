"""The ``driftline`` command line: exit codes, error messages and what each command prints."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from driftline import __version__
from driftline.cli import _parser, main
from driftline.demo.options import add_arguments
from driftline.demo.scenario import credit_scoring_scenario, event_lines, write_reference_csv


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

"""A drifting model's events, its reference profile and a config, written once per module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from driftline.demo.scenario import credit_scoring_scenario, event_lines, write_reference_csv
from driftline.profile import save_profile
from driftline.profile_io import build_profile_from_file


@dataclass(frozen=True)
class DriftingModel:
    root: Path
    events: Path
    config: Path
    profile: Path


@pytest.fixture(scope="module")
def drifting(tmp_path_factory: pytest.TempPathFactory) -> DriftingModel:
    """credit-scorer v3: 12,000 events; from the 6,000th `amount` shifts up one standard
    deviation and `country` BR gains 20 points (the demo's incident)."""
    root = tmp_path_factory.mktemp("report")
    scenario = credit_scoring_scenario(
        events=12_000, model_id="credit-scorer", model_version="3", rate=100.0
    )
    training = root / "training.csv"
    write_reference_csv(scenario, 5_000, training)
    profile = root / "credit-scorer-v3.profile.json"
    save_profile(
        build_profile_from_file(training, model_id="credit-scorer", model_version="3"), profile
    )
    events = root / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in event_lines(scenario)))
    config = root / "driftline.yaml"
    config.write_text(f"models:\n  - model_id: credit-scorer\n    reference_profile: {profile}\n")
    return DriftingModel(root, events, config, profile)

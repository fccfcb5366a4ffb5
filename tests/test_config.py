from pathlib import Path

import pytest

from driftline.config import ConfigError, load_settings, parse_settings
from driftline.profile import FeatureKind


def test_minimal_config_gets_documented_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  - model_id: m\n    reference_profile: p.json\n")
    settings = load_settings(path)
    assert settings.window.events == 1000
    assert settings.window.duration_seconds is None
    assert settings.alerts.fire_after == 3
    assert settings.detectors[FeatureKind.NUMERIC][0] == "psi"
    assert settings.models[0].reference_profile == tmp_path / "p.json"
    assert settings.source == "/driftline/driftline"


def test_example_config_is_valid() -> None:
    example = Path(__file__).parents[1] / "config" / "driftline.example.yaml"
    settings = load_settings(example)
    assert settings.models[0].model_id == "credit-scorer"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"windw": {}}, "windw: unknown key"),
        ({"window": {"events": 0}}, "window.events"),
        ({"window": {"events": 10, "duration_seconds": 5}}, "not both"),
        ({"models": [{"reference_profile": "x"}]}, "models.0.model_id"),
        ({"detectors": {"numeric": ["psi", "nope"]}}, "unknown detector 'nope'"),
        ({"detectors": {"categorical": ["ks"]}}, "does not apply to categorical"),
        ({"thresholds": {"bogus": {"warning": 1}}}, "unknown detector 'bogus'"),
        ({"alerts": {"fire_after": -1}}, "alerts.fire_after"),
        ({"models": [{"model_id": "a"}, {"model_id": "a"}]}, "duplicate entry"),
        ([1, 2], "top level must be a mapping"),
    ],
)
def test_bad_config_names_the_key(data: object, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(data, origin="c.yaml")
    assert expected in str(info.value)
    assert str(info.value).startswith("c.yaml")


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)


def test_numeric_model_version_is_read_as_text() -> None:
    settings = parse_settings({"models": [{"model_id": "m", "model_version": 7}]})
    assert settings.models[0].model_version == "7"

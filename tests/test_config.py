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
    assert settings.alerts.critical_fire_after == 1
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
        ({"alerts": {"critical_fire_after": 0}}, "alerts.critical_fire_after"),
        ({"alerts": {"critical_fire_after": "once"}}, "alerts.critical_fire_after"),
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


def test_environment_overrides_nested_keys() -> None:
    settings = parse_settings(
        {"kafka": {"group_id": "from-file"}},
        environ={
            "DRIFTLINE_KAFKA__GROUP_ID": "from-env",
            "DRIFTLINE_KAFKA__INPUT_TOPICS": "[a, b]",
            "DRIFTLINE_ALERTS__FIRE_AFTER": "5",
            "DRIFTLINE_UNRELATED": "x",
            "OTHER": "y",
        },
    )
    assert settings.kafka.group_id == "from-env"
    assert settings.kafka.input_topics == ("a", "b")
    assert settings.alerts.fire_after == 5


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"alerts\.fire_after"):
        parse_settings({}, environ={"DRIFTLINE_ALERTS__FIRE_AFTER": "many"})


def test_sasl_needs_credentials_and_secrets_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="sasl_mechanism is required"):
        parse_settings({"kafka": {"security": {"security_protocol": "SASL_SSL"}}})
    secret = "s3cr3t-Pa55"
    settings = parse_settings(
        {
            "kafka": {
                "security": {
                    "security_protocol": "SASL_PLAINTEXT",
                    "sasl_mechanism": "SCRAM-SHA-256",
                    "sasl_username": "monitor",
                    "sasl_password": secret,
                }
            }
        }
    )
    from driftline.cli import effective_settings

    assert secret not in effective_settings(settings)
    assert secret not in repr(settings)
    assert secret not in str(settings.model_dump())
    password = settings.kafka.security.sasl_password
    assert password is not None and password.get_secret_value() == secret


def test_kafka_compression_type_defaults_to_none_and_names_the_key_when_wrong() -> None:
    assert parse_settings({}).kafka.compression_type == "none"
    assert parse_settings({"kafka": {"compression_type": "zstd"}}).kafka.compression_type == "zstd"
    with pytest.raises(ConfigError, match=r"kafka\.compression_type") as info:
        parse_settings({"kafka": {"compression_type": "brotli"}})
    assert "lz4" in str(info.value)  # the allowed values are listed

"""Settings -> the core's plan: resolution, precedence and start-up validation."""

from __future__ import annotations

import pytest

from driftline.config import ConfigError, parse_settings
from driftline.plan import Plan
from driftline.planning import build_plan


def _plan(config: dict[str, object]) -> Plan:
    return build_plan(parse_settings(config), {})


def test_version_entry_wins_over_model_entry_and_unconfigured() -> None:
    plan = _plan(
        {
            "models": [
                {"model_id": "m", "thresholds": {"psi": {"warning": 0.05}}},
                {"model_id": "m", "model_version": "2", "thresholds": {"psi": {"warning": 0.2}}},
            ]
        }
    )
    assert plan.entries[0].plan is plan.for_version(("m", "1"))
    assert plan.entries[1].plan is plan.for_version(("m", "2"))
    assert plan.for_version(("other", "1")) is plan.unconfigured
    threshold = plan.for_version(("m", "2"))
    assert threshold is not None
    assert threshold.thresholds("x", "psi").warning == 0.2
    assert plan.unconfigured.thresholds("x", "psi").warning == 0.1  # the detector's default


def test_ignored_unconfigured_models_have_no_plan() -> None:
    plan = _plan({"unconfigured_models": "ignore", "models": [{"model_id": "m"}]})
    assert plan.for_version(("other", "1")) is None
    assert plan.for_version(("m", "7")) is not None


def test_feature_thresholds_override_only_what_they_set() -> None:
    plan = _plan(
        {
            "thresholds": {"psi": {"critical": 0.5}},
            "models": [
                {
                    "model_id": "m",
                    "features": {"x": {"thresholds": {"psi": {"warning": 0.3}}}},
                }
            ],
        }
    )
    version = plan.for_version(("m", "1"))
    assert version is not None
    x = version.thresholds("x", "psi")
    assert (x.warning, x.critical) == (0.3, 0.5)
    y = version.thresholds("y", "psi")
    assert (y.warning, y.critical) == (0.1, 0.5)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"thresholds": {"psi": {"warning": 0.3}}}, "thresholds.psi"),
        (
            {"models": [{"model_id": "m", "thresholds": {"ks": {"critical": 0.01}}}]},
            "models.0.thresholds.ks",
        ),
        (
            {
                "models": [
                    {
                        "model_id": "m",
                        "features": {"f": {"thresholds": {"chi_square": {"warning": 1e-20}}}},
                    }
                ]
            },
            "models.0.features.f.thresholds.chi_square",
        ),
    ],
)
def test_inconsistent_thresholds_stop_start_up_naming_the_key(
    config: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _plan(config)
    assert str(info.value).startswith(f"{key}: warning threshold must be")

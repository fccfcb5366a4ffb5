"""``comparisons[]`` in the config: defaults, and errors that name the key."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.config import ConfigError, parse_settings
from driftline.planning import build_plan


def _plan(config: dict[str, Any]) -> Any:
    return build_plan(parse_settings(config), {})


def test_a_pair_needs_only_the_model_and_two_versions() -> None:
    plan = _plan({"comparisons": [{"model_id": "m", "champion": 7, "challenger": "8"}]})
    (comparison,) = plan.comparisons
    assert (comparison.champion, comparison.challenger) == ("7", "8")
    assert (comparison.alpha, comparison.min_effect, comparison.metric) == (0.05, 0.01, None)


@pytest.mark.parametrize(
    ("comparisons", "models", "message"),
    [
        (
            [{"model_id": "m", "champion": "1", "challenger": "1"}],
            [],
            r"comparisons\.0: challenger",
        ),
        (
            [
                {"model_id": "m", "champion": "1", "challenger": "2"},
                {"model_id": "m", "champion": "2", "challenger": "1"},
            ],
            [],
            r"comparisons\.1: .* comparisons\.0 already",
        ),
        (
            [{"model_id": "m", "champion": "1", "challenger": "2", "metric": "mae"}],
            [{"model_id": "m", "task": "binary"}],
            r"comparisons\.0\.metric: 'mae' does not measure a binary model",
        ),
        (
            [{"model_id": "m", "champion": "1", "challenger": "2"}],
            [
                {"model_id": "m", "model_version": "2", "task": "regression"},
                {"model_id": "m", "task": "binary"},
            ],
            r"comparisons\.0\.challenger: its task \(regression\)",
        ),
        (
            [{"model_id": "m", "champion": "1", "challenger": "2", "alpha": 1.5}],
            [],
            r"comparisons\.0\.alpha",
        ),
    ],
)
def test_bad_comparisons_are_refused_naming_the_key(
    comparisons: list[dict[str, Any]], models: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _plan({"comparisons": comparisons, "models": models})


def test_a_compared_version_must_be_monitored() -> None:
    with pytest.raises(ConfigError, match=r"comparisons\.0\.champion: .* not monitored"):
        _plan(
            {
                "unconfigured_models": "ignore",
                "comparisons": [{"model_id": "m", "champion": "1", "challenger": "2"}],
            }
        )

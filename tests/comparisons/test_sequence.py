"""The confidence sequence: split-independent, exact state, valid at every moment."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.comparisons.sequence import MeanConfidenceSequence
from tests.comparisons.simulation import clopper_pearson


def _run(values: np.ndarray, cuts: list[int]) -> tuple[np.ndarray, np.ndarray, list[object]]:
    sequence = MeanConfidenceSequence(0.05)
    lows, highs = [], []
    for part in np.split(values, sorted(set(cuts))):
        low, high = sequence.update(part)
        lows.append(low)
        highs.append(high)
        # a restore between any two parts continues exactly
        sequence = MeanConfidenceSequence.from_state(
            orjson.loads(orjson.dumps(sequence.to_state())), 0.05
        )
    return np.concatenate(lows), np.concatenate(highs), sequence.to_state()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=300),
    st.lists(st.integers(0, 300), max_size=6),
)
def test_intervals_do_not_depend_on_how_values_are_split_nor_on_restores(
    values: list[float], cuts: list[int]
) -> None:
    data = np.array(values)
    whole = _run(data, [])
    split = _run(data, cuts)
    assert np.array_equal(whole[0], split[0]) and np.array_equal(whole[1], split[1])
    assert whole[2] == split[2]


def test_the_interval_shrinks_around_the_mean() -> None:
    rng = np.random.default_rng(3)
    low, high = MeanConfidenceSequence(0.05).update((rng.random(20_000) < 0.3).astype(float))
    assert np.all(np.diff(low) >= 0) and np.all(np.diff(high) <= 0)
    assert low[-1] < 0.3 < high[-1]
    assert high[-1] - low[-1] < 0.04  # ~2.6 times a fixed-n 95% interval (0.0127)
    assert (low[0], high[0]) == (0.0, 1.0)


def test_values_outside_the_unit_interval_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        MeanConfidenceSequence(0.05).update(np.array([0.5, 1.5]))


@pytest.mark.slow
def test_the_interval_misses_the_mean_at_some_moment_in_at_most_alpha_of_streams() -> None:
    """Time-uniform coverage on 400 streams of 20,000 skewed values (Bernoulli 0.1)."""
    rng = np.random.default_rng(11)
    streams, missed = 400, 0
    for _ in range(streams):
        low, high = MeanConfidenceSequence(0.05).update((rng.random(20_000) < 0.1).astype(float))
        missed += bool(np.any((low > 0.1) | (high < 0.1)))
    assert clopper_pearson(missed, streams)[1] < 0.05

"""The comparison's statistical promises, measured on simulated error streams
(:mod:`tests.comparisons.simulation`; numbers in README "Champion vs challenger" and
load_tests/RESULTS.md, from ``load_tests/comparison_power.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.comparisons.simulation import clopper_pearson, error_streams, first_verdicts

ALPHA, MIN_EFFECT, MIN_PAIRS = 0.05, 0.01, 100


@pytest.mark.slow
@pytest.mark.parametrize("paired", [True, False])
def test_equally_good_versions_are_almost_never_called_better(paired: bool) -> None:
    """A/A: 400 streams of 50,000 pairs at a 20% error rate; a ``*_better`` verdict at any
    moment in at most alpha of them (the upper end of the 95% Clopper-Pearson interval of
    the measured rate is below alpha)."""
    rng = np.random.default_rng(2026 + paired)
    streams, better = 400, 0
    for _ in range(streams):
        champion, challenger = error_streams(rng, 50_000, 0.2, 0.2, paired)
        first = first_verdicts(
            champion, challenger, alpha=ALPHA, min_effect=MIN_EFFECT, min_pairs=MIN_PAIRS
        )
        better += first["challenger_better"] is not None or first["champion_better"] is not None
    assert clopper_pearson(better, streams)[1] < ALPHA


@pytest.mark.slow
@pytest.mark.parametrize(("paired", "within"), [(True, 8_000), (False, 20_000)])
def test_a_challenger_three_points_better_is_found(paired: bool, within: int) -> None:
    """20% vs 17% errors: 100 streams, found in at least 90 within ``within`` pairs, and
    never called worse."""
    rng = np.random.default_rng(7 + paired)
    found = []
    for _ in range(100):
        champion, challenger = error_streams(rng, within, 0.2, 0.17, paired)
        first = first_verdicts(
            champion, challenger, alpha=ALPHA, min_effect=MIN_EFFECT, min_pairs=MIN_PAIRS
        )
        assert first["champion_better"] is None
        found.append(first["challenger_better"] is not None)
    assert sum(found) >= 90

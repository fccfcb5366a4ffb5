"""Window-vs-reference statistics checked against independent implementations (scipy)."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from driftline.detectors.distribution import (
    chi_square_p_value,
    jensen_shannon,
    ks_binned,
    psi,
    wasserstein_binned,
)

RNG = np.random.default_rng(7)


def _random_counts(k: int) -> np.ndarray:
    return RNG.integers(0, 500, size=k).astype(np.int64)


@pytest.mark.parametrize("k", [2, 5, 11, 40])
def test_jensen_shannon_matches_scipy(k: int) -> None:
    for _ in range(20):
        ref, win = _random_counts(k), _random_counts(k)
        expected = distance.jensenshannon(ref / ref.sum(), win / win.sum(), base=2)
        assert jensen_shannon(ref, win) == pytest.approx(expected, abs=1e-12)


def test_psi_matches_formula_with_half_count_smoothing() -> None:
    ref, win = _random_counts(10), _random_counts(10)
    ref[3] = 0
    r = (ref + 0.5) / (ref.sum() + 5.0)
    w = (win + 0.5) / (win.sum() + 5.0)
    expected = sum((wi - ri) * np.log(wi / ri) for wi, ri in zip(w, r, strict=True))
    assert psi(ref, win) == pytest.approx(expected, rel=1e-12)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-15)


def test_ks_binned_equals_exact_ks_when_values_sit_on_bin_points() -> None:
    # With every value exactly at a bin's lower edge, the ECDF jumps only at edges, so the
    # binned statistic is the exact two-sample KS statistic.
    edges = np.arange(1.0, 20.0)
    a = RNG.integers(0, 20, size=3000).astype(float)
    b = RNG.integers(2, 20, size=2000).astype(float)

    def counts(x: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(edges, x, side="right"), minlength=20)

    assert ks_binned(counts(a), counts(b)) == pytest.approx(stats.ks_2samp(a, b).statistic)


def test_wasserstein_binned_matches_scipy_for_evenly_spread_bins() -> None:
    edges = np.array([-1.0, 0.0, 0.5, 2.0])
    low, high = -3.0, 4.0
    bounds = np.concatenate(([low], edges, [high]))
    ref = np.array([10, 40, 20, 25, 5])
    win = np.array([2, 10, 30, 40, 18])

    def spread(counts: np.ndarray) -> np.ndarray:
        # 200 evenly spaced points per counted value: uniform within each bin.
        parts = []
        for i, c in enumerate(counts):
            m = int(c) * 200
            parts.append(bounds[i] + (np.arange(m) + 0.5) / m * (bounds[i + 1] - bounds[i]))
        return np.concatenate(parts)

    expected = stats.wasserstein_distance(spread(ref), spread(win))
    got = wasserstein_binned(edges, ref, win, low=low, high=high, scale=1.0)
    assert got == pytest.approx(expected, rel=1e-3)
    assert wasserstein_binned(edges, ref, win, low=low, high=high, scale=2.0) == pytest.approx(
        got / 2
    )


def test_chi_square_p_value_matches_scipy_and_flags_a_shift() -> None:
    ref = np.array([5000, 3000, 2000])
    win = np.array([480, 320, 200])
    expected = stats.chisquare(win, (ref + 0.5) / (ref.sum() + 1.5) * win.sum()).pvalue
    assert chi_square_p_value(ref, win) == pytest.approx(expected)
    assert chi_square_p_value(ref, np.array([200, 300, 500])) < 1e-12

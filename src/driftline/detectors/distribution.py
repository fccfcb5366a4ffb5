"""Distribution statistics of a window against the reference, computed from bin counts.

All functions take the reference's and the window's counts over the same bins (numeric
bins from the profile, or categories plus "other") and are pure and vectorised.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats

Counts = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


def _shares_smoothed(counts: Counts) -> Floats:
    """Shares with a pseudo-count of 0.5 per bin, so no share is zero (PSI needs logs)."""
    c = counts.astype(np.float64) + 0.5
    out: Floats = c / c.sum()
    return out


def smoothed_shares(counts: Counts) -> Floats:
    """The shares :func:`psi` compares (precompute them once for a fixed reference)."""
    return _shares_smoothed(counts)


def psi_against(reference_shares: Floats, window: Counts) -> float:
    """:func:`psi` with the reference's :func:`smoothed_shares` precomputed."""
    w = _shares_smoothed(window)
    return float(np.sum((w - reference_shares) * np.log(w / reference_shares)))


def psi_against_rows(reference_shares: Floats, windows: Counts) -> Floats:
    """:func:`psi_against` of each row of ``windows`` against the same row of
    ``reference_shares``, in a few numpy calls for all rows.

    Bit for bit the 1-D result: the elementwise steps are the same, and a row reduction of
    a C-contiguous array sums the row as the 1-D sum does (``tests/test_window_close.py``).

    >>> ref = smoothed_shares(np.array([500, 500]))
    >>> windows = np.array([[500, 500], [900, 100]])
    >>> rows = psi_against_rows(np.stack([ref, ref]), windows)
    >>> [float(v) == psi_against(ref, w) for v, w in zip(rows, windows)]
    [True, True]
    """
    c = windows.astype(np.float64) + 0.5
    w = c / c.sum(axis=1, keepdims=True)
    out: Floats = np.sum((w - reference_shares) * np.log(w / reference_shares), axis=1)
    return out


def psi(reference: Counts, window: Counts) -> float:
    """Population stability index ``sum((w - r) * ln(w / r))`` over bins.

    >>> round(psi(np.array([500, 500]), np.array([500, 500])), 6)
    0.0
    >>> round(psi(np.array([500, 500]), np.array([900, 100])), 3)
    0.876
    """
    return psi_against(_shares_smoothed(reference), window)


def jensen_shannon(reference: Counts, window: Counts) -> float:
    """Jensen-Shannon distance (square root of the divergence, base 2), in [0, 1].

    >>> jensen_shannon(np.array([5, 5]), np.array([1, 1]))
    0.0
    >>> jensen_shannon(np.array([1, 0]), np.array([0, 1]))
    1.0
    """
    r = reference.astype(np.float64) / max(int(reference.sum()), 1)
    w = window.astype(np.float64) / max(int(window.sum()), 1)
    m = (r + w) / 2.0
    divergence = 0.0
    for p in (r, w):
        nz = p > 0
        divergence += 0.5 * float(np.sum(p[nz] * np.log2(p[nz] / m[nz])))
    return math.sqrt(min(max(divergence, 0.0), 1.0))


def ks_binned(reference: Counts, window: Counts) -> float:
    """Kolmogorov-Smirnov statistic evaluated at the bin edges (a lower bound of the exact one).

    >>> ks_binned(np.array([50, 50]), np.array([100, 0]))
    0.5
    """
    r = np.cumsum(reference, dtype=np.float64) / max(int(reference.sum()), 1)
    w = np.cumsum(window, dtype=np.float64) / max(int(window.sum()), 1)
    return float(np.max(np.abs(r - w)))


def wasserstein_binned(
    edges: Floats,
    reference: Counts,
    window: Counts,
    *,
    low: float,
    high: float,
    scale: float,
) -> float:
    """Wasserstein-1 distance between two binned distributions, divided by ``scale``.

    Within each bin both CDFs are taken as linear (values spread evenly); the outer bins span
    ``[low, edges[0]]`` and ``[edges[-1], high]``. ``W1 = integral |F_ref - F_win| dx``.

    >>> e = np.array([1.0, 2.0])
    >>> wasserstein_binned(e, np.array([0, 10, 0]), np.array([0, 10, 0]), low=0, high=3, scale=1)
    0.0
    >>> wasserstein_binned(e, np.array([10, 0, 0]), np.array([0, 0, 10]), low=0, high=3, scale=1)
    2.0
    """
    points = np.concatenate(([min(low, edges[0])], edges, [max(high, edges[-1])]))
    r = np.concatenate(([0.0], np.cumsum(reference) / max(int(reference.sum()), 1)))
    w = np.concatenate(([0.0], np.cumsum(window) / max(int(window.sum()), 1)))
    d0 = (r - w)[:-1]
    d1 = (r - w)[1:]
    width = np.diff(points)
    same_sign = d0 * d1 >= 0
    # |linear| integral: trapezoid when the sign is constant, two triangles when it crosses.
    area_same = width * (np.abs(d0) + np.abs(d1)) / 2.0
    denom = np.where(same_sign, 1.0, np.abs(d0) + np.abs(d1))
    area_cross = width * (d0 * d0 + d1 * d1) / (2.0 * denom)
    total = float(np.sum(np.where(same_sign, area_same, area_cross)))
    return total / scale if scale > 0 else total


def chi_square_p_value(reference: Counts, window: Counts) -> float:
    """p-value of a chi-square goodness-of-fit test of the window against reference shares.

    Bins the reference never saw get a pseudo-count of 0.5 so the test stays defined.

    >>> chi_square_p_value(np.array([500, 500]), np.array([50, 50]))
    1.0
    """
    n = int(window.sum())
    if n == 0 or len(window) < 2:
        return 1.0
    expected = _shares_smoothed(reference) * n
    result = stats.chisquare(window.astype(np.float64), expected)
    return float(result.pvalue)

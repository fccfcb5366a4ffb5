"""What windowed detectors compare a numeric window with: the reference's bins, precomputed.

A numeric window is counted on fine bins (the reference's percentile edges plus its range);
those counts fold exactly onto the reference's percentile and decile (coarse) bins.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from driftline.detectors.distribution import psi_against, smoothed_shares
from driftline.profile import FeatureProfile

Counts = npt.NDArray[np.int64]


class NumericReference:
    """What numeric detectors need from a feature's profile, precomputed once."""

    def __init__(self, profile: FeatureProfile) -> None:
        summary = profile.numeric
        if summary is None:
            raise ValueError(f"feature {profile.name!r}: numeric profile has no numeric summary")
        self.fine_edges = np.array(summary.fine_bins.edges, dtype=np.float64)
        self.fine_counts = np.array(summary.fine_bins.counts, dtype=np.int64)
        self.coarse_edges = np.array(summary.bins.edges, dtype=np.float64)
        self.coarse_counts = np.array(summary.bins.counts, dtype=np.int64)
        self.minimum = summary.minimum
        self.maximum = summary.maximum
        self.std = summary.std
        self.missing_rate = profile.missing_rate
        # The window is counted on the percentile edges plus the reference's minimum and just
        # above its maximum, so its first bin counts the values below the reference range and
        # its last bin those above it. (The 1st percentile may equal the minimum: then the
        # first percentile bin already is "below the minimum".)
        above = np.nextafter(self.maximum, np.inf)
        inner = self.fine_edges
        lower = [self.minimum] if inner.size == 0 or inner[0] > self.minimum else []
        upper = [above] if inner.size == 0 or inner[-1] < above else []
        self.window_edges = np.concatenate((lower, inner, upper)).astype(np.float64)
        # Every window bin lies inside one percentile bin, and every decile edge is a
        # percentile edge, so window counts fold exactly onto both binnings.
        starts = np.concatenate(([-np.inf], self.window_edges))
        self.fine_of_window = np.searchsorted(self.fine_edges, starts, side="right")
        self.coarse_of_window = np.searchsorted(self.coarse_edges, starts, side="right")
        # Constant parts of every window's statistics and evidence, computed once.
        self.coarse_smoothed = smoothed_shares(self.coarse_counts)
        self.coarse_edges_rounded: list[float] = np.round(self.coarse_edges, 6).tolist()
        self.coarse_shares = shares(self.coarse_counts)
        # The reference on the window's bins (for pictures): each inner window bin is the
        # in-range part of one percentile bin; nothing of the reference is out of range.
        on_window = self.fine_counts[np.minimum(self.fine_of_window, len(self.fine_counts) - 1)]
        on_window[0] = on_window[-1] = 0
        self.window_reference_counts: Counts = on_window

    def fine(self, window: Counts) -> Counts:
        """Window counts folded onto the reference's percentile bins."""
        return fold(self.fine_of_window, window, len(self.fine_counts))

    def coarse(self, window: Counts) -> Counts:
        """Window counts folded onto the reference's coarse (decile) bins."""
        return fold(self.coarse_of_window, window, len(self.coarse_counts))


class CoarseWindow(NamedTuple):
    """A window's counts on the reference's coarse bins, with the statistics on them
    (computed for several features at once by ``feature_window.NumericBatch``)."""

    counts: Counts
    psi: float
    shares: list[float]
    total: int
    below: int
    above: int


def fold(index: npt.NDArray[np.intp], counts: Counts, size: int) -> Counts:
    """Add ``counts`` into ``size`` bins: count ``k`` goes to bin ``index[k]``."""
    out: Counts = np.bincount(index, weights=counts, minlength=size).astype(np.int64)
    return out


def shares(counts: Counts) -> list[float]:
    """Each bin's share of the total (1 for an empty window), rounded to 6 decimals."""
    total = max(int(counts.sum()), 1)
    out: list[float] = np.round(counts / total, 6).tolist()
    return out


def shares_rows(counts: Counts, totals: Counts) -> list[list[float]]:
    """:func:`shares` of each row, given each row's ``max(sum, 1)``."""
    out: list[list[float]] = np.round(counts / totals[:, None], 6).tolist()
    return out


def coarse_window(
    reference: NumericReference, counts: Counts, total: int, below: int, above: int
) -> CoarseWindow:
    """One window's :class:`CoarseWindow` (the batch computes the same for many at once)."""
    folded = reference.coarse(counts)
    return CoarseWindow(
        folded,
        psi_against(reference.coarse_smoothed, folded),
        shares(folded),
        total,
        below,
        above,
    )

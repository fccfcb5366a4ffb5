"""One feature's state over the current window, and the statistics computed when it closes.

Windowed detectors compare the window with the reference profile. Their state is a pair of
mergeable sketches (:mod:`driftline.sketches`) plus a few counters; the stream detectors
(ADWIN, Page-Hinkley) keep running across windows and report their detections per window.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from driftline.detectors import ADWIN, PageHinkley
from driftline.detectors.catalog import DETECTORS
from driftline.detectors.distribution import (
    chi_square_p_value,
    jensen_shannon,
    ks_binned,
    psi,
    psi_against,
    psi_against_rows,
    smoothed_shares,
    wasserstein_binned,
)
from driftline.features import CategoryColumn, NumericColumn
from driftline.profile import FeatureKind, FeatureProfile
from driftline.sketches import BinCounts, CategoryCounts

Counts = npt.NDArray[np.int64]


@dataclass(slots=True)
class Statistic:
    """A statistic of one detector over one closed window."""

    detector: str
    statistic: str
    value: float
    sample_size: int
    evidence: dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _r(x: float) -> float:
    return round(float(x), 6)


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
        self.coarse_shares = _shares(self.coarse_counts)

    def fine(self, window: Counts) -> Counts:
        return _fold(self.fine_of_window, window, len(self.fine_counts))

    def coarse(self, window: Counts) -> Counts:
        return _fold(self.coarse_of_window, window, len(self.coarse_counts))


class CoarseWindow(NamedTuple):
    """A window's counts on the reference's coarse bins, with the statistics on them
    (computed for several features at once by :class:`NumericBatch`)."""

    counts: Counts
    psi: float
    shares: list[float]
    total: int
    below: int
    above: int


class NumericBatch:
    """Numeric windows of one model with the same number of coarse bins, closed together.

    Closing a window is dominated by numpy's per-call overhead on arrays of ~10 bins, once
    per feature. Here the folding onto the coarse bins, PSI and the window's shares are a
    few calls for all the features. Every value is bit for bit the per-feature one: the
    folds add integers, elementwise steps are the same, and a row reduction sums like the
    1-D one (``tests/test_window_close.py`` checks it).
    """

    def __init__(self, windows: Sequence[NumericWindow]) -> None:
        sizes = {len(w.reference.coarse_counts) for w in windows}
        if len(sizes) != 1:
            raise ValueError("a batch needs windows with the same number of coarse bins")
        self.windows = list(windows)
        self.bins = sizes.pop()
        refs = [w.reference for w in self.windows]
        self.fold_index = np.concatenate(
            [ref.coarse_of_window + k * self.bins for k, ref in enumerate(refs)]
        )
        self.reference_shares = np.stack([ref.coarse_smoothed for ref in refs])
        window_bins = np.array([len(ref.window_edges) + 1 for ref in refs])
        self.last_bin = np.cumsum(window_bins) - 1
        self.first_bin = self.last_bin - window_bins + 1

    def evaluate(self) -> list[CoarseWindow]:
        """Each window's :class:`CoarseWindow`, in the order of :attr:`windows`."""
        counts = np.concatenate([w.bins.counts_view for w in self.windows])
        rows = len(self.windows)
        coarse = _fold(self.fold_index, counts, rows * self.bins).reshape(rows, self.bins)
        psis = psi_against_rows(self.reference_shares, coarse).tolist()
        totals = coarse.sum(axis=1)
        shares = _shares_rows(coarse, np.maximum(totals, 1))
        below = counts[self.first_bin].tolist()
        above = counts[self.last_bin].tolist()
        return [
            CoarseWindow(coarse[k], psis[k], shares[k], t, below[k], above[k])
            for k, t in enumerate(totals.tolist())
        ]


def numeric_batches(windows: Sequence[FeatureWindow]) -> list[NumericBatch]:
    """The numeric windows that compare coarse bins (PSI, Jensen-Shannon), grouped into
    batches by their number of coarse bins."""
    groups: dict[int, list[NumericWindow]] = {}
    for window in windows:
        if isinstance(window, NumericWindow) and (
            "psi" in window.detectors or "jensen_shannon" in window.detectors
        ):
            groups.setdefault(len(window.reference.coarse_counts), []).append(window)
    return [NumericBatch(group) for group in groups.values()]


def _fold(index: npt.NDArray[np.intp], counts: Counts, size: int) -> Counts:
    out: Counts = np.bincount(index, weights=counts, minlength=size).astype(np.int64)
    return out


class NumericWindow:
    """Window state of a numeric feature."""

    def __init__(
        self,
        profile: FeatureProfile,
        detectors: tuple[str, ...],
        adwin: dict[str, Any],
        page_hinkley: dict[str, Any],
    ) -> None:
        self.reference = NumericReference(profile)
        self.detectors = detectors
        self.bins = BinCounts(self.reference.window_edges)
        self.violations = 0
        self.adwin = ADWIN(**adwin) if "adwin" in detectors else None
        self.page_hinkley = PageHinkley(**page_hinkley) if "page_hinkley" in detectors else None
        self.stream_hits: dict[str, list[int]] = {"adwin": [], "page_hinkley": []}

    def update(self, column: NumericColumn, start: int, stop: int, first_sequence: int) -> None:
        """Add rows ``start:stop`` of ``column``; ``first_sequence`` numbers row ``start``."""
        values = column.values[start:stop]
        self.bins.update(values)
        if column.violations is not None:
            self.violations += int(np.count_nonzero(column.violations[start:stop]))
        for name, detector in (("adwin", self.adwin), ("page_hinkley", self.page_hinkley)):
            present = values[~np.isnan(values)] if detector is not None else values[:0]
            if detector is not None and present.size:
                hits = detector.update_many(present)
                if hits.size:
                    rows = np.flatnonzero(~np.isnan(values))[hits]
                    self.stream_hits[name].extend(int(first_sequence + r) for r in rows)

    def evaluate(self, rows: int, coarse: CoarseWindow | None = None) -> list[Statistic]:
        """The window's statistics; ``coarse`` is this window's part of its
        :class:`NumericBatch` when the batch already computed it."""
        ref = self.reference
        counts = self.bins.counts_view
        if coarse is None:
            below, above = int(counts[0]), int(counts[-1])
            n = int(counts.sum())
        else:
            n, below, above = coarse.total, coarse.below, coarse.above
        out: list[Statistic] = []
        for name in self.detectors:
            spec = DETECTORS[name]
            value: float
            size = n
            evidence: dict[str, Any] = {}
            if name == "psi" or name == "jensen_shannon":
                if coarse is None:
                    folded = ref.coarse(counts)
                    coarse = CoarseWindow(
                        folded,
                        psi_against(ref.coarse_smoothed, folded),
                        _shares(folded),
                        n,
                        below,
                        above,
                    )
                if name == "psi":
                    value = coarse.psi
                else:
                    value = jensen_shannon(ref.coarse_counts, coarse.counts)
                evidence = {
                    "bin_edges": ref.coarse_edges_rounded,
                    "reference_shares": ref.coarse_shares,
                    "window_shares": coarse.shares,
                }
            elif name == "ks":
                value = ks_binned(ref.fine_counts, ref.fine(counts))
            elif name == "wasserstein":
                low = min(ref.minimum, self.bins.minimum) if n else ref.minimum
                high = max(ref.maximum, self.bins.maximum) if n else ref.maximum
                value = (
                    wasserstein_binned(
                        ref.fine_edges,
                        ref.fine_counts,
                        ref.fine(counts),
                        low=low,
                        high=high,
                        scale=ref.std,
                    )
                    if ref.fine_edges.size
                    else 0.0
                )
            elif name == "quality_missing":
                missing = self.bins.missing - self.violations
                value, size, evidence = _missing(missing, rows, ref.missing_rate)
            elif name == "quality_out_of_range":
                value = (below + above) / n if n else 0.0
                evidence = {
                    "below_min": below,
                    "above_max": above,
                    "reference_min": ref.minimum,
                    "reference_max": ref.maximum,
                }
            elif name == "quality_type":
                size = n + self.violations
                value = self.violations / size if size else 0.0
                evidence = {"violations": self.violations}
            else:  # stream detectors
                hits = self.stream_hits[name]
                value = float(len(hits))
                evidence = {"detection_sequences": hits[:10]}
            out.append(Statistic(name, spec.statistic, _r(value), size, evidence))
        return out

    def reset(self) -> None:
        self.bins.clear()
        self.violations = 0
        self.stream_hits = {"adwin": [], "page_hinkley": []}

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state (bin edges are the profile's, so they are not repeated)."""
        bins = self.bins.to_dict()
        del bins["edges"]
        return {
            "bins": bins,
            "violations": self.violations,
            "adwin": None if self.adwin is None else _b64(self.adwin.to_bytes()),
            "page_hinkley": None
            if self.page_hinkley is None
            else _b64(self.page_hinkley.to_bytes()),
            "stream_hits": self.stream_hits,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.bins = BinCounts.from_dict({**state["bins"], "edges": self.reference.window_edges})
        self.violations = int(state["violations"])
        if self.adwin is not None and state["adwin"] is not None:
            self.adwin = ADWIN.from_bytes(base64.b64decode(state["adwin"]))
        if self.page_hinkley is not None and state["page_hinkley"] is not None:
            self.page_hinkley = PageHinkley.from_bytes(base64.b64decode(state["page_hinkley"]))
        self.stream_hits = {k: [int(x) for x in v] for k, v in state["stream_hits"].items()}


class CategoryWindow:
    """Window state of a categorical or boolean feature."""

    def __init__(self, profile: FeatureProfile, detectors: tuple[str, ...]) -> None:
        summary = profile.categories
        if summary is None:
            raise ValueError(f"feature {profile.name!r}: {profile.kind} profile has no categories")
        self.kind = profile.kind
        self.detectors = detectors
        self.categories = list(summary.categories)
        self.reference_counts = np.array(
            [*summary.categories.values(), summary.other_count], dtype=np.int64
        )
        self.reference_other_rate = summary.other_count / profile.count if profile.count else 0.0
        self.reference_missing_rate = profile.missing_rate
        self.counts = CategoryCounts(self.categories)
        self.violations = 0

    def update(self, column: CategoryColumn, start: int, stop: int, first_sequence: int) -> None:
        self.counts.update(column.keys[start:stop])
        if column.violations is not None:
            self.violations += int(np.count_nonzero(column.violations[start:stop]))

    def evaluate(self, rows: int) -> list[Statistic]:
        window = np.array([*self.counts.counts, self.counts.other], dtype=np.int64)
        n = int(window.sum())
        out: list[Statistic] = []
        for name in self.detectors:
            spec = DETECTORS[name]
            value: float
            size = n
            evidence: dict[str, Any] = {}
            if name in ("psi", "jensen_shannon", "chi_square"):
                value = _CATEGORY_STATISTICS[name](self.reference_counts, window)
                evidence = _category_evidence(self.categories, self.reference_counts, window)
            elif name == "quality_missing":
                missing = self.counts.missing - self.violations
                value, size, evidence = _missing(missing, rows, self.reference_missing_rate)
            elif name == "quality_unseen_category":
                rate = self.counts.other / n if n else 0.0
                value = rate - self.reference_other_rate
                evidence = {
                    "unseen_rate": _r(rate),
                    "reference_unseen_rate": _r(self.reference_other_rate),
                    "examples": dict(list(self.counts.unseen.items())[:5]),
                }
            elif name == "quality_type":
                size = n + self.violations
                value = self.violations / size if size else 0.0
                evidence = {"violations": self.violations}
            else:  # pragma: no cover - config validation rejects other detectors
                raise ValueError(f"detector {name!r} does not apply to {self.kind} features")
            out.append(Statistic(name, spec.statistic, _r(value), size, evidence))
        return out

    def reset(self) -> None:
        self.counts.clear()
        self.violations = 0

    def to_state(self) -> dict[str, Any]:
        counts = self.counts.to_dict()
        del counts["categories"]
        return {"counts": counts, "violations": self.violations}

    def restore(self, state: dict[str, Any]) -> None:
        self.counts = CategoryCounts.from_dict({**state["counts"], "categories": self.categories})
        self.violations = int(state["violations"])


_CATEGORY_STATISTICS = {
    "psi": psi,
    "jensen_shannon": jensen_shannon,
    "chi_square": chi_square_p_value,
}


def _missing(missing: int, rows: int, reference_rate: float) -> tuple[float, int, dict[str, Any]]:
    rate = missing / rows if rows else 0.0
    evidence = {"missing_rate": _r(rate), "reference_missing_rate": _r(reference_rate)}
    return rate - reference_rate, rows, evidence


def _shares(counts: Counts) -> list[float]:
    total = max(int(counts.sum()), 1)
    shares: list[float] = np.round(counts / total, 6).tolist()
    return shares


def _shares_rows(counts: Counts, totals: Counts) -> list[list[float]]:
    """:func:`_shares` of each row, given each row's ``max(sum, 1)``."""
    shares: list[list[float]] = np.round(counts / totals[:, None], 6).tolist()
    return shares


def _category_evidence(categories: list[str], ref: Counts, win: Counts) -> dict[str, Any]:
    """The five categories whose share moved most (``"__other__"`` = outside the top-K)."""
    names = [*categories, "__other__"]
    r = np.array(_shares(ref))
    w = np.array(_shares(win))
    order = sorted(range(len(names)), key=lambda i: (-abs(w[i] - r[i]), names[i]))[:5]
    return {
        "top_changes": [
            {"category": names[i], "reference_share": float(r[i]), "window_share": float(w[i])}
            for i in order
        ]
    }


FeatureWindow = NumericWindow | CategoryWindow


def feature_window(
    profile: FeatureProfile,
    detectors: tuple[str, ...],
    adwin: dict[str, Any],
    page_hinkley: dict[str, Any],
) -> FeatureWindow:
    if profile.kind is FeatureKind.NUMERIC:
        return NumericWindow(profile, detectors, adwin, page_hinkley)
    return CategoryWindow(profile, detectors)

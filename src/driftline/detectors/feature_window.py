"""One feature's state over the current window, and the statistics computed when it closes.

Windowed detectors compare the window with the reference profile. Their state is a pair of
mergeable sketches (:mod:`driftline.sketches`) plus a few counters; the stream detectors
(ADWIN, Page-Hinkley) keep running across windows and report their detections per window.
Which statistic each detector computes is up to its class (:mod:`driftline.detectors.catalog`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from driftline.detectors.base import (
    CategorySample,
    Detector,
    NumericSample,
    Statistic,
)
from driftline.detectors.catalog import DETECTORS, STREAM_DETECTORS
from driftline.detectors.closed_window import CategoryDistribution, NumericDistribution
from driftline.detectors.distribution import psi_against_rows
from driftline.detectors.reference import (
    CoarseWindow,
    Counts,
    NumericReference,
    fold,
    shares_rows,
)
from driftline.detectors.stream import StreamDetections
from driftline.features import CategoryColumn, NumericColumn
from driftline.profile import FeatureKind, FeatureProfile
from driftline.sketches import BinCounts, CategoryCounts

__all__ = [
    "CategoryWindow",
    "CoarseWindow",
    "FeatureWindow",
    "NumericBatch",
    "NumericReference",
    "NumericWindow",
    "Statistic",
    "feature_window",
    "numeric_batches",
]


def _create(names: tuple[str, ...], parameters: dict[str, dict[str, Any]]) -> list[Detector]:
    """The detectors ``names`` for one feature; ``parameters`` holds settings by name."""
    return [DETECTORS[name].create(parameters.get(name, {})) for name in names]


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
        coarse = fold(self.fold_index, counts, rows * self.bins).reshape(rows, self.bins)
        psis = psi_against_rows(self.reference_shares, coarse).tolist()
        totals = coarse.sum(axis=1)
        window_shares = shares_rows(coarse, np.maximum(totals, 1))
        below = counts[self.first_bin].tolist()
        above = counts[self.last_bin].tolist()
        return [
            CoarseWindow(coarse[k], psis[k], window_shares[k], t, below[k], above[k])
            for k, t in enumerate(totals.tolist())
        ]


def numeric_batches(windows: Sequence[FeatureWindow]) -> list[NumericBatch]:
    """The numeric windows with a detector that compares coarse bins (PSI, Jensen-Shannon),
    grouped into batches by their number of coarse bins."""
    groups: dict[int, list[NumericWindow]] = {}
    for window in windows:
        if isinstance(window, NumericWindow) and window.uses_coarse_bins:
            groups.setdefault(len(window.reference.coarse_counts), []).append(window)
    return [NumericBatch(group) for group in groups.values()]


class NumericWindow:
    """Window state of a numeric feature.

    ``adwin`` and ``page_hinkley`` are the parameters of those stream detectors.
    """

    def __init__(
        self,
        profile: FeatureProfile,
        detectors: tuple[str, ...],
        adwin: dict[str, Any],
        page_hinkley: dict[str, Any],
    ) -> None:
        self.reference = NumericReference(profile)
        self.detectors = _create(detectors, {"adwin": adwin, "page_hinkley": page_hinkley})
        self.stream = {d.name: d for d in self.detectors if isinstance(d, StreamDetections)}
        """The stateful detectors, by name."""
        self.uses_coarse_bins = any(d.uses_coarse_bins for d in self.detectors)
        self.bins = BinCounts(self.reference.window_edges)
        self.violations = 0

    def update(self, column: NumericColumn, start: int, stop: int, first_sequence: int) -> None:
        """Add rows ``start:stop`` of ``column``; ``first_sequence`` numbers row ``start``."""
        values = column.values[start:stop]
        self.bins.update(values)
        if column.violations is not None:
            self.violations += int(np.count_nonzero(column.violations[start:stop]))
        if self.stream:
            is_present = ~np.isnan(values)
            present = values[is_present]
            if present.size:
                for detector in self.stream.values():
                    detector.update(present, is_present, first_sequence)

    def evaluate(self, rows: int, coarse: CoarseWindow | None = None) -> list[Statistic]:
        """The window's statistics; ``coarse`` is this window's part of its
        :class:`NumericBatch` when the batch already computed it."""
        sample = self.sample(rows, coarse)
        return [detector.evaluate_numeric(sample) for detector in self.detectors]

    def sample(self, rows: int, coarse: CoarseWindow | None = None) -> NumericSample:
        """What the detectors read from the window, closed after ``rows`` events."""
        bins = self.bins
        counts = bins.counts_view
        if coarse is None:
            below, above = int(counts[0]), int(counts[-1])
            n = int(counts.sum())
        else:
            n, below, above = coarse.total, coarse.below, coarse.above
        violations = self.violations
        return NumericSample(
            self.reference,
            counts,
            rows,
            n,
            below,
            above,
            bins.minimum,
            bins.maximum,
            bins.missing - violations,
            violations,
            coarse,
        )

    def distribution(self, rows: int) -> NumericDistribution:
        """The window's values next to the reference's, closed after ``rows`` events."""
        reference = self.reference
        bins = self.bins
        return NumericDistribution(
            edges=reference.window_edges,
            reference=reference.window_reference_counts,
            current=bins.counts,
            reference_missing_rate=reference.missing_rate,
            missing=bins.missing - self.violations,
            violations=self.violations,
            rows=rows,
        )

    def reset(self) -> None:
        self.bins.clear()
        self.violations = 0
        for detector in self.stream.values():
            detector.reset()

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state (bin edges are the profile's, so they are not repeated)."""
        bins = self.bins.to_dict()
        del bins["edges"]
        state: dict[str, Any] = {"bins": bins, "violations": self.violations}
        # Every stream detector has a key (None when not configured), in registry order.
        for cls in STREAM_DETECTORS:
            detector = self.stream.get(cls.name)
            state[cls.name] = None if detector is None else detector.detector_state()
        state["stream_hits"] = {
            cls.name: self.stream[cls.name].hits if cls.name in self.stream else []
            for cls in STREAM_DETECTORS
        }
        return state

    def restore(self, state: dict[str, Any]) -> None:
        self.bins = BinCounts.from_dict({**state["bins"], "edges": self.reference.window_edges})
        self.violations = int(state["violations"])
        hits = state["stream_hits"]
        for name, detector in self.stream.items():
            detector.restore(state.get(name), [int(x) for x in hits.get(name, [])])


class CategoryWindow:
    """Window state of a categorical or boolean feature."""

    def __init__(self, profile: FeatureProfile, detectors: tuple[str, ...]) -> None:
        summary = profile.categories
        if summary is None:
            raise ValueError(f"feature {profile.name!r}: {profile.kind} profile has no categories")
        self.kind = profile.kind
        self.detectors = _create(detectors, {})
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
        """The window's statistics."""
        sample = self.sample(rows)
        return [detector.evaluate_categories(sample) for detector in self.detectors]

    def sample(self, rows: int) -> CategorySample:
        """What the detectors read from the window, closed after ``rows`` events."""
        counts = self.counts
        window: Counts = np.array([*counts.counts, counts.other], dtype=np.int64)
        return CategorySample(
            self.categories,
            self.reference_counts,
            window,
            rows=rows,
            unseen=counts.unseen,
            reference_other_rate=self.reference_other_rate,
            missing=counts.missing - self.violations,
            violations=self.violations,
            reference_missing_rate=self.reference_missing_rate,
        )

    def distribution(self, rows: int) -> CategoryDistribution:
        """The window's categories next to the reference's, closed after ``rows`` events."""
        counts = self.counts
        return CategoryDistribution(
            categories=tuple(self.categories),
            reference=self.reference_counts,
            current=np.array([*counts.counts, counts.other], dtype=np.int64),
            unseen=counts.unseen,
            reference_missing_rate=self.reference_missing_rate,
            missing=counts.missing - self.violations,
            violations=self.violations,
            rows=rows,
        )

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


FeatureWindow = NumericWindow | CategoryWindow


def feature_window(
    profile: FeatureProfile,
    detectors: tuple[str, ...],
    adwin: dict[str, Any],
    page_hinkley: dict[str, Any],
) -> FeatureWindow:
    """The window of a feature monitored with ``detectors`` (names in the catalog)."""
    if profile.kind is FeatureKind.NUMERIC:
        return NumericWindow(profile, detectors, adwin, page_hinkley)
    return CategoryWindow(profile, detectors)

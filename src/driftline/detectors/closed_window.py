"""What the last closed window of a model version held, per feature, next to its reference.

The detectors turn a closed window into statistics and then the window is reset. Pictures
need the distribution itself: :class:`ClosedWindow` keeps each feature's counts of the last
closed window (the data its latest statistics were computed on) beside the reference's
counts on the same bins. It is a read-only value, replaced at every window close, and not
part of the checkpointed state (after a restore it is absent until the next close).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Counts = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class NumericDistribution:
    """A numeric feature in the reference and in one closed window, on the same bins.

    Bin 0 holds values below the reference minimum (``edges[0]``), the last bin values
    above its maximum; bin ``k`` in between is ``[edges[k-1], edges[k])``: the reference's
    percentile bins, so each holds about 1% of the reference.
    """

    edges: npt.NDArray[np.float64]
    reference: Counts
    """Reference values per bin (0 in the two out-of-range bins)."""
    current: Counts
    """Window values per bin."""
    reference_missing_rate: float
    missing: int
    """Window events without a value (values of the wrong type excluded)."""
    violations: int
    """Window values of the wrong type."""
    rows: int
    """Events in the window."""


@dataclass(frozen=True, slots=True)
class CategoryDistribution:
    """A categorical or boolean feature in the reference and in one closed window."""

    categories: tuple[str, ...]
    """The reference's top-K categories; counts have one more entry: every other category."""
    reference: Counts
    current: Counts
    unseen: Mapping[str, int]
    """A sample of the window's categories outside the top-K, with their counts."""
    reference_missing_rate: float
    missing: int
    violations: int
    rows: int


FeatureDistribution = NumericDistribution | CategoryDistribution


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """The last closed window of a model version."""

    start: float
    """Event time of its first event (epoch seconds)."""
    end: float
    """Event time of its last event."""
    events: int
    sequence: int
    """Stream position of its last event."""
    features: Mapping[str, FeatureDistribution]

"""The contracts of detectors: what a window hands them and what they give back.

A detector is a class (see :mod:`driftline.detectors.windowed` and
:mod:`driftline.detectors.stream`) registered in :mod:`driftline.detectors.catalog`. It
declares its statistic, the feature kinds it applies to, its default thresholds and
direction, and the text that explains it in an alert; at each window close it turns the
window's :class:`NumericSample` or :class:`CategorySample` into one :class:`Statistic`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, Self

import numpy as np
import numpy.typing as npt

from driftline.detectors.reference import (
    CoarseWindow,
    Counts,
    NumericReference,
    coarse_window,
)
from driftline.profile import FeatureKind

Direction = Literal["above", "below"]


@dataclass(slots=True)
class Statistic:
    """A statistic of one detector over one closed window."""

    detector: str
    statistic: str
    value: float
    sample_size: int
    evidence: dict[str, Any]


class StreamDetector(Protocol):
    """An incremental change detector over one stream of numbers (ADWIN, Page-Hinkley).

    Semantics follow river's ``river.base.DriftDetector``: after the value at which a
    drift is detected, ``drift_detected`` is true until the next update, which first resets
    the detector to a completely fresh state.
    """

    @property
    def drift_detected(self) -> bool: ...

    def update(self, x: float) -> None:
        """Consume one value (same as river's ``update``)."""

    def update_many(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Consume ``values`` in order; return the positions within ``values`` at which a
        drift was detected. Equal to calling :meth:`update` once per value."""

    def to_bytes(self) -> bytes:
        """Serialise the full state (parameters included)."""

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Rebuild a detector from :meth:`to_bytes`; it continues exactly where it was."""


class WindowSample:
    """What every detector may read from a closed window (the quality counters)."""

    __slots__ = ("missing", "reference_missing_rate", "rows", "total", "violations")

    def __init__(
        self, rows: int, total: int, missing: int, violations: int, reference_missing_rate: float
    ) -> None:
        self.rows = rows
        """Events in the window."""
        self.total = total
        """Values of the right type in the window."""
        self.missing = missing
        """Events without a value (values of the wrong type excluded)."""
        self.violations = violations
        """Values of the wrong type."""
        self.reference_missing_rate = reference_missing_rate


class NumericSample(WindowSample):
    """A closed numeric window: counts on the reference's fine bins, and its coarse view."""

    __slots__ = ("_coarse", "above", "below", "counts", "maximum", "minimum", "reference")

    def __init__(
        self,
        reference: NumericReference,
        counts: Counts,
        rows: int,
        total: int,
        below: int,
        above: int,
        minimum: float,
        maximum: float,
        missing: int,
        violations: int,
        coarse: CoarseWindow | None,
    ) -> None:
        # WindowSample's fields set here, not by super().__init__: this runs per feature
        # at every window close
        self.rows = rows
        self.total = total
        self.missing = missing
        self.violations = violations
        self.reference_missing_rate = reference.missing_rate
        self.reference = reference
        self.counts = counts
        """Counts on ``reference.window_edges`` (first bin: below the reference minimum,
        last bin: above its maximum)."""
        self.below = below
        self.above = above
        self.minimum = minimum
        """Smallest value of the window (meaningless when ``total`` is 0)."""
        self.maximum = maximum
        self._coarse = coarse

    @property
    def coarse(self) -> CoarseWindow:
        """The window on the reference's coarse bins (given by the batch, else computed)."""
        if self._coarse is None:
            self._coarse = coarse_window(
                self.reference, self.counts, self.total, self.below, self.above
            )
        return self._coarse


class CategorySample(WindowSample):
    """A closed categorical or boolean window: counts of the reference's top-K and other."""

    __slots__ = (
        "categories",
        "counts",
        "other",
        "reference_counts",
        "reference_other_rate",
        "unseen",
    )

    def __init__(
        self,
        categories: list[str],
        reference_counts: Counts,
        counts: Counts,
        *,
        rows: int,
        unseen: Mapping[str, int],
        reference_other_rate: float,
        missing: int,
        violations: int,
        reference_missing_rate: float,
    ) -> None:
        total = int(counts.sum())
        super().__init__(rows, total, missing, violations, reference_missing_rate)
        self.categories = categories
        self.reference_counts = reference_counts
        """Reference counts of ``categories``, then of every other category."""
        self.counts = counts
        """Window counts, aligned with :attr:`reference_counts`."""
        self.other = int(counts[-1])
        self.unseen = unseen
        """Counts of some categories outside the top-K, by category."""
        self.reference_other_rate = reference_other_rate


class Detector:
    """A detector: its catalog entry (class attributes) and its evaluation.

    Subclasses set the class attributes and override :meth:`evaluate_numeric` and/or
    :meth:`evaluate_categories` for the kinds they declare. Windowed detectors are stateless;
    stream detectors (:class:`driftline.detectors.stream.StreamDetections`) keep state
    across windows.
    """

    name: ClassVar[str]
    """Name in configs and findings."""
    statistic: ClassVar[str]
    """Name of the statistic it reports."""
    display_name: ClassVar[str]
    """Human name of the statistic, in alert texts."""
    meaning: ClassVar[str]
    """One sentence that explains the statistic in an alert description."""
    kinds: ClassVar[frozenset[FeatureKind]]
    """Feature kinds it applies to."""
    warning: ClassVar[float | None]
    critical: ClassVar[float | None]
    direction: ClassVar[Direction] = "above"
    """Whether values above (or below) the thresholds breach them."""
    uses_coarse_bins: ClassVar[bool] = False
    """Whether it reads :attr:`NumericSample.coarse`: then the model's numeric windows
    compute it for all features at once (``feature_window.NumericBatch``)."""

    @classmethod
    def create(cls, parameters: Mapping[str, Any]) -> Self:
        """A detector for one feature; ``parameters`` are its settings (none here)."""
        return cls()

    def evaluate(self, sample: NumericSample | CategorySample) -> Statistic:
        """The statistic of one closed window."""
        if isinstance(sample, NumericSample):
            return self.evaluate_numeric(sample)
        return self.evaluate_categories(sample)

    def evaluate_numeric(self, sample: NumericSample) -> Statistic:
        """The statistic of a closed numeric window."""
        raise ValueError(f"detector {self.name!r} does not apply to numeric features")

    def evaluate_categories(self, sample: CategorySample) -> Statistic:
        """The statistic of a closed categorical or boolean window."""
        raise ValueError(f"detector {self.name!r} does not apply to categorical features")

    def result(self, value: float, sample_size: int, evidence: dict[str, Any]) -> Statistic:
        """A :class:`Statistic` of this detector (``value`` rounded to 6 decimals)."""
        return Statistic(self.name, self.statistic, round(float(value), 6), sample_size, evidence)

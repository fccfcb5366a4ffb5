"""Reference profiles: what a model version's training data looked like, per feature.

A profile is versioned JSON (``schema_version``). Numeric features keep percentile
quantiles and two binnings of the reference data: ``bins`` (deciles, for PSI and
Jensen-Shannon) and ``fine_bins`` (percentiles, for KS and Wasserstein). Bin convention
everywhere: ``edges`` are the sorted, unique inner edges and a value ``x`` falls in bin
``numpy.searchsorted(edges, x, side="right")``, so there are ``len(edges) + 1`` bins.
Categorical and boolean features keep their top-K category counts plus an "other" count.
Boolean features use the categories ``"true"`` and ``"false"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SCHEMA_VERSION = 1


class FeatureKind(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class Binning:
    edges: tuple[float, ...]
    """Sorted unique inner edges."""
    counts: tuple[int, ...]
    """Reference count per bin; ``len(edges) + 1`` entries."""


@dataclass(frozen=True, slots=True)
class NumericSummary:
    minimum: float
    maximum: float
    mean: float
    std: float
    quantiles: tuple[float, ...]
    """101 values: the 0th, 1st, ..., 100th percentile (linear interpolation)."""
    bins: Binning
    """Decile bins (PSI, Jensen-Shannon)."""
    fine_bins: Binning
    """Percentile bins (Kolmogorov-Smirnov, Wasserstein)."""


@dataclass(frozen=True, slots=True)
class CategorySummary:
    categories: dict[str, int]
    """Top-K categories by count (ties broken by name), with their counts."""
    other_count: int
    """Non-missing values whose category is not among ``categories``."""
    distinct_count: int
    """Number of distinct categories in the reference data."""


@dataclass(frozen=True, slots=True)
class FeatureProfile:
    name: str
    kind: FeatureKind
    count: int
    """Non-missing values."""
    missing_count: int
    numeric: NumericSummary | None = None
    """Set for numeric features."""
    categories: CategorySummary | None = None
    """Set for categorical and boolean features."""

    @property
    def missing_rate(self) -> float:
        total = self.count + self.missing_count
        return self.missing_count / total if total else 0.0


@dataclass(frozen=True, slots=True)
class ProfileSource:
    kind: str
    """``file`` (built by ``driftline profile build``) or ``warmup`` (learned online)."""
    sha256: str
    """SHA-256 of the input file; for warm-up, of the canonical JSON of the warm-up rows."""
    path: str | None = None
    format: str | None = None
    """``csv``, ``parquet`` or ``jsonl``."""


@dataclass(frozen=True, slots=True)
class ReferenceProfile:
    model_id: str
    model_version: str
    row_count: int
    source: ProfileSource
    features: dict[str, FeatureProfile]
    schema_version: int = SCHEMA_VERSION

    @property
    def profile_id(self) -> str:
        """Deterministic id: the first 16 hex digits of the SHA-256 of the canonical JSON."""
        raise NotImplementedError

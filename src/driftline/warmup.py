"""Warm-up: a model version's first events, summarised in bounded form into its profile.

A model version without a configured reference profile learns one from its first
``warmup_events`` events. :class:`WarmupSketch` keeps what :func:`driftline.profile.build_profile`
needs from them, in memory and checkpoint state bounded independently of ``warmup_events``:

* per column: the count of non-missing values (missing = rows - present);
* while every value of a column is a number (it may become a numeric feature): the first
  ``sample_values`` numbers as they are, plus exact running aggregates over all numbers
  (count, minimum, maximum, and sums of ``x - shift`` and its square, ``shift`` being the
  first number, for the mean and the population standard deviation). When a number
  arrives beyond the sample, the sample's percentiles become the profile's quantiles and
  bin edges, and from then on only the percentile-bin counts are kept (the sample is
  dropped). So a column with at most ``sample_values`` numbers is profiled exactly as
  :func:`~driftline.profile.build_profile` does; a longer one has the sample's inner
  quantiles (the 0th and 100th are the exact minimum and maximum) and exact counts of every
  value in the bins they bound;
* once a column holds a non-number (a string or a boolean: it is categorical or boolean):
  the exact count of each of its first ``max_categories`` distinct categories (in stream
  order); values of further categories are counted together and end up in the profile's
  ``other_count``, and ``distinct_count`` counts the tracked categories. Numbers seen before
  the column turned out not to be numeric are counted as categories when they are still in
  the sample, else as untracked.

The profile's ``source.sha256`` is a SHA-256 chain over the warm-up rows:
``h_0`` = 32 zero bytes, ``h_i = SHA-256(h_{i-1} || row_i)`` where ``row_i`` is the compact
JSON object of the row's non-null values with sorted keys; the hex of the last ``h``.

Every step depends on the rows in stream order only (sums are strictly sequential, category
caps follow first appearance), so the learned profile does not depend on how the stream is
cut into batches, and a sketch restored from :meth:`WarmupSketch.to_state` continues
exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from driftline.categories import category_key
from driftline.events import Scalar
from driftline.profile import (
    QUANTILE_LEVELS,
    Binning,
    FeatureKind,
    FeatureProfile,
    NumericSummary,
    ProfileError,
    ProfileSource,
    ReferenceProfile,
    category_summary,
    numeric_summary,
)

__all__ = ["DEFAULT_MAX_CATEGORIES", "DEFAULT_SAMPLE_VALUES", "STATE_FORMAT", "WarmupSketch"]

DEFAULT_SAMPLE_VALUES = 1_000
DEFAULT_MAX_CATEGORIES = 1_000
STATE_FORMAT = 2
"""``format`` of :meth:`WarmupSketch.to_state` (format 1: the raw columns, see
:meth:`WarmupSketch.from_state`)."""

_NUMBER_TYPES = frozenset({int, float, type(None)})
_ZERO_DIGEST = bytes(32)


def _sequential_sum(start: float, values: npt.NDArray[np.float64]) -> float:
    """``start + values[0] + values[1] + ...`` strictly left to right (``cumsum`` is
    sequential, unlike ``sum``), so splitting ``values`` never changes the result."""
    if not values.size:
        return start
    return float(np.cumsum(np.concatenate(([start], values)))[-1])


class NumberSketch:
    """The numbers of one column: see the module docstring."""

    __slots__ = (
        "count",
        "fine_counts",
        "maximum",
        "minimum",
        "quantiles",
        "sample",
        "shift",
        "size",
        "sum",
        "sum_squares",
    )

    def __init__(self, size: int) -> None:
        self.size = size
        self.sample: list[float] = []
        self.quantiles: npt.NDArray[np.float64] | None = None
        """The sample's percentiles, once the sample is summarised."""
        self.fine_counts: npt.NDArray[np.int64] | None = None
        """Counts of every number in the percentile bins, once the sample is summarised."""
        self.count = 0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.shift: float | None = None
        self.sum = 0.0
        self.sum_squares = 0.0

    @property
    def held_values(self) -> int:
        if self.quantiles is None or self.fine_counts is None:
            return len(self.sample)
        return len(self.quantiles) + len(self.fine_counts)

    def add(self, x: npt.NDArray[np.float64]) -> None:
        """Add finite numbers, in stream order."""
        if not x.size:
            return
        self.count += int(x.size)
        self.minimum = min(self.minimum, float(x.min()))
        self.maximum = max(self.maximum, float(x.max()))
        if self.shift is None:
            self.shift = float(x[0])
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: inf, kept as such
            d = x - self.shift
            self.sum = _sequential_sum(self.sum, d)
            self.sum_squares = _sequential_sum(self.sum_squares, d * d)
        if self.quantiles is None:
            room = self.size - len(self.sample)
            self.sample.extend(x[:room].tolist())
            x = x[room:]
            if not x.size:
                return
            self._summarise_sample()
        self._count_bins(x)

    def _summarise_sample(self) -> None:
        sample = np.array(self.sample, dtype=np.float64)
        quantiles = np.maximum.accumulate(np.quantile(sample, QUANTILE_LEVELS))
        self.quantiles = quantiles
        self.fine_counts = np.zeros(len(self._fine_edges()) + 1, dtype=np.int64)
        self.sample = []
        self._count_bins(sample)

    def _fine_edges(self) -> npt.NDArray[np.float64]:
        assert self.quantiles is not None
        return np.unique(self.quantiles[1:100])

    def _count_bins(self, x: npt.NDArray[np.float64]) -> None:
        assert self.fine_counts is not None
        edges = self._fine_edges()
        idx = np.searchsorted(edges, x, side="right")
        self.fine_counts += np.bincount(idx, minlength=len(edges) + 1)

    def summary(self, name: str) -> NumericSummary:
        """The profile's numeric summary (``count`` > 0)."""
        if self.quantiles is None or self.fine_counts is None:
            return numeric_summary(name, self.sample)  # every number: exactly as from a file
        assert self.shift is not None
        quantiles = self.quantiles.copy()
        quantiles[0], quantiles[100] = self.minimum, self.maximum
        quantiles = np.maximum.accumulate(quantiles)
        n = self.count
        mean = self.shift + self.sum / n
        variance = max(0.0, (self.sum_squares - self.sum * self.sum / n) / n)
        std = math.sqrt(variance) if math.isfinite(variance) else math.inf
        if not (np.isfinite(quantiles).all() and math.isfinite(mean) and math.isfinite(std)):
            raise ProfileError(f"feature {name!r} has values too large to summarise")
        fine_edges = self._fine_edges()
        coarse_edges = np.unique(quantiles[10:100:10])
        # Every coarse edge is a fine edge, so a fine bin lies in one coarse bin: the one
        # of its lower edge (bin 0: coarse bin 0).
        coarse_of_fine = np.concatenate(
            ([0], np.searchsorted(coarse_edges, fine_edges, side="right"))
        )
        coarse_counts = np.zeros(len(coarse_edges) + 1, dtype=np.int64)
        np.add.at(coarse_counts, coarse_of_fine, self.fine_counts)
        return NumericSummary(
            minimum=float(quantiles[0]),
            maximum=float(quantiles[100]),
            mean=float(mean),
            std=std,
            quantiles=tuple(float(q) for q in quantiles),
            bins=Binning(tuple(coarse_edges.tolist()), tuple(coarse_counts.tolist())),
            fine_bins=Binning(tuple(fine_edges.tolist()), tuple(self.fine_counts.tolist())),
        )

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "count": self.count,
            "minimum": self.minimum if self.count else None,
            "maximum": self.maximum if self.count else None,
            "shift": self.shift,
            "sum": _json_float(self.sum),
            "sum_squares": _json_float(self.sum_squares),
        }
        if self.quantiles is None or self.fine_counts is None:
            state["sample"] = self.sample
        else:
            state["quantiles"] = [_json_float(q) for q in self.quantiles.tolist()]
            state["fine_counts"] = self.fine_counts.tolist()
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any], size: int) -> NumberSketch:
        sketch = cls(size)
        sketch.count = int(state["count"])
        if sketch.count:
            sketch.minimum = float(state["minimum"])
            sketch.maximum = float(state["maximum"])
        shift = state["shift"]
        sketch.shift = None if shift is None else float(shift)
        sketch.sum = float(state["sum"])
        sketch.sum_squares = float(state["sum_squares"])
        if "sample" in state:
            sketch.sample = [float(v) for v in state["sample"]]
        else:
            sketch.quantiles = np.array([float(q) for q in state["quantiles"]], dtype=np.float64)
            sketch.fine_counts = np.array(state["fine_counts"], dtype=np.int64)
        return sketch


def _json_float(x: float) -> float | str:
    """``x`` for JSON: finite numbers as they are; ``inf``, ``-inf`` and ``nan`` (sums of
    huge values overflow) as text, which ``float()`` reads back (JSON has no such numbers)."""
    return x if math.isfinite(x) else str(x)


class ColumnSketch:
    """One warm-up column: numeric until its first non-number, then categories."""

    __slots__ = (
        "bad",
        "booleans",
        "categories",
        "max_categories",
        "numbers",
        "present",
        "untracked",
    )

    def __init__(self, sample_values: int, max_categories: int) -> None:
        self.max_categories = max_categories
        self.present = 0
        self.numbers: NumberSketch | None = NumberSketch(sample_values)
        """Set while every value is a number; ``None`` once the column holds categories."""
        self.bad: str | None = None
        """Why the numbers cannot be summarised (an integer too large for a float, a
        non-finite number): the profile build fails with it if the column is numeric."""
        self.categories: dict[str, int] = {}
        self.untracked = 0
        """Values of categories beyond ``max_categories`` (and numbers no longer known)."""
        self.booleans = 0

    @property
    def held_values(self) -> int:
        return len(self.categories) if self.numbers is None else self.numbers.held_values

    def add(self, values: Sequence[Scalar], array: npt.NDArray[np.float64] | None) -> None:
        """Add one column of rows; ``array`` is ``values`` as float64 (NaN: missing) when
        every value is a number or null."""
        if self.numbers is not None:
            if array is not None:
                present = array[~np.isnan(array)]
                self.present += int(present.size)
                self._add_numbers(present)
                return
            first = _first_non_number(values)
            numbers = values[:first]
            present_numbers = [v for v in numbers if v is not None]
            self.present += len(present_numbers)
            self._add_numbers(present_numbers)
            if first == len(values):
                return
            self._to_categories()
            values = values[first:]
        present_values = [v for v in values if v is not None]
        self.present += len(present_values)
        self.booleans += sum(1 for v in present_values if type(v) is bool)
        self._add_keys([category_key(v) for v in present_values])

    def _add_numbers(self, present: Sequence[Scalar] | npt.NDArray[np.float64]) -> None:
        assert self.numbers is not None
        if isinstance(present, np.ndarray):
            x = present
        else:
            try:
                x = np.array(present, dtype=np.float64)
            except OverflowError:
                if self.bad is None:
                    self.bad = "has an integer too large for a float"
                x = np.array([_as_float(v) for v in present], dtype=np.float64)
        finite = np.isfinite(x)
        if not finite.all():
            if self.bad is None:
                bad = x[~finite][0]
                if not np.isnan(bad):  # NaN marks an integer too large (reported above)
                    self.bad = f"has a non-finite value {float(bad)!r}"
            x = x[finite]
        self.numbers.add(x)

    def _to_categories(self) -> None:
        assert self.numbers is not None
        known = self.numbers.sample if self.numbers.quantiles is None else []
        self.untracked += self.present - len(known)
        self.numbers = None
        self._add_keys([category_key(v) for v in known])

    def _add_keys(self, keys: Sequence[str | None]) -> None:
        counts = self.categories
        for key, n in Counter(keys).items():  # first-appearance order: as value by value
            if key is None:
                continue
            if key in counts:
                counts[key] += n
            elif len(counts) < self.max_categories:
                counts[key] = n
            else:
                self.untracked += n

    def feature(self, name: str, rows: int, top_k: int) -> FeatureProfile:
        missing = rows - self.present
        if self.numbers is not None:
            if self.present:
                if self.bad is not None:
                    raise ProfileError(f"feature {name!r} {self.bad}")
                summary = self.numbers.summary(name)
                return FeatureProfile(name, FeatureKind.NUMERIC, self.present, missing, summary)
            kind = FeatureKind.CATEGORICAL  # no value: nothing is known (as infer_kind)
        else:
            boolean = self.booleans == self.present
            kind = FeatureKind.BOOLEAN if boolean else FeatureKind.CATEGORICAL
        categories = category_summary(self.categories, kind, top_k, self.untracked)
        return FeatureProfile(name, kind, self.present, missing, categories=categories)

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"present": self.present}
        if self.numbers is not None:
            state["numbers"] = self.numbers.to_state()
            state["bad"] = self.bad
        else:
            state["categories"] = self.categories
            state["untracked"] = self.untracked
            state["booleans"] = self.booleans
        return state

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], sample_values: int, max_categories: int
    ) -> ColumnSketch:
        column = cls(sample_values, max_categories)
        column.present = int(state["present"])
        if "numbers" in state:
            column.numbers = NumberSketch.from_state(state["numbers"], sample_values)
            column.bad = state["bad"]
        else:
            column.numbers = None
            column.categories = {str(k): int(n) for k, n in state["categories"].items()}
            column.untracked = int(state["untracked"])
            column.booleans = int(state["booleans"])
        return column


def _row_json(names: Sequence[str], row: Sequence[Scalar]) -> bytes:
    values = {n: v for n, v in zip(names, row, strict=True) if v is not None}
    try:
        return orjson.dumps(values)
    except TypeError:  # an integer beyond 64 bits: the same compact JSON, slower
        return json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()


def _as_float(value: Scalar) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return math.nan


def _first_non_number(values: Sequence[Scalar]) -> int:
    if set(map(type, values)) <= _NUMBER_TYPES:
        return len(values)
    for i, v in enumerate(values):
        if v is not None and type(v) is not int and type(v) is not float:
            return i
    return len(values)  # pragma: no cover - the set said otherwise


class WarmupSketch:
    """The warm-up of one model version: rows so far and one :class:`ColumnSketch` per
    column name (iterating yields the names)."""

    def __init__(
        self,
        sample_values: int = DEFAULT_SAMPLE_VALUES,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
    ) -> None:
        self.sample_values = sample_values
        self.max_categories = max_categories
        self.rows = 0
        self.digest = _ZERO_DIGEST
        self.columns: dict[str, ColumnSketch] = {}

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    @property
    def held_values(self) -> int:
        """Values held across columns (sample numbers, quantiles and bin counts, tracked
        categories): at most ``len(self) * max(sample_values, max_categories, 201)``."""
        return sum(column.held_values for column in self.columns.values())

    def add(
        self,
        columns: Mapping[str, Sequence[Scalar]],
        rows: int,
        arrays: Mapping[str, npt.NDArray[np.float64]] | None = None,
    ) -> None:
        """Add the first ``rows`` rows of ``columns`` (name -> one value per row, None where
        missing; every column at least ``rows`` long); ``arrays`` optionally holds the same
        columns as float64 (NaN where missing) when all their values are numbers."""
        if rows <= 0:
            return
        names = sorted(columns)
        parts = [columns[name][:rows] for name in names]
        digest = self.digest
        for row in zip(*parts, strict=True):
            digest = hashlib.sha256(digest + _row_json(names, row)).digest()
        self.digest = digest
        for name, values in zip(names, parts, strict=True):
            column = self.columns.get(name)
            if column is None:
                column = self.columns[name] = ColumnSketch(self.sample_values, self.max_categories)
            array = None if arrays is None else arrays.get(name)
            column.add(values, None if array is None else array[:rows])
        self.rows += rows

    def profile(self, *, model_id: str, model_version: str, top_k: int) -> ReferenceProfile:
        """The reference profile learned from the rows so far (at least one)."""
        if not self.columns:
            raise ProfileError("no features: a reference profile needs at least one column")
        features = {
            name: self.columns[name].feature(name, self.rows, top_k)
            for name in sorted(self.columns)
        }
        return ReferenceProfile(
            model_id=model_id,
            model_version=model_version,
            row_count=self.rows,
            source=ProfileSource(kind="warmup", sha256=self.digest.hex()),
            features=features,
        )

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state, bounded independently of the number of warm-up rows (``{}``
        when empty, as a version monitoring on a configured profile always is)."""
        if not self.rows and not self.columns:
            return {}
        return {
            "format": STATE_FORMAT,
            "rows": self.rows,
            "sha256": self.digest.hex(),
            "columns": {name: column.to_state() for name, column in self.columns.items()},
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        *,
        rows: int,
        sample_values: int = DEFAULT_SAMPLE_VALUES,
        max_categories: int = DEFAULT_MAX_CATEGORIES,
    ) -> WarmupSketch:
        """Inverse of :meth:`to_state`. A format-1 state (the raw warm-up columns of older
        checkpoints, ``rows`` long) is summarised as if its rows arrived now."""
        sketch = cls(sample_values, max_categories)
        if state.get("format") != STATE_FORMAT:
            legacy = {str(name): list(values) for name, values in state.items()}
            sketch.add(legacy, rows)
            sketch.rows = rows
            return sketch
        sketch.rows = int(state["rows"])
        sketch.digest = bytes.fromhex(state["sha256"])
        sketch.columns = {
            str(name): ColumnSketch.from_state(column, sample_values, max_categories)
            for name, column in state["columns"].items()
        }
        return sketch

"""Reference profiles: what a model version's training data looked like, per feature.

A profile is versioned JSON (``schema_version``). Numeric features keep percentile
quantiles and two binnings of the reference data: ``bins`` (deciles, for PSI and
Jensen-Shannon) and ``fine_bins`` (percentiles, for KS and Wasserstein). Bin convention
everywhere: ``edges`` are the sorted, unique inner edges and a value ``x`` falls in bin
``numpy.searchsorted(edges, x, side="right")``, so there are ``len(edges) + 1`` bins.
Categorical and boolean features keep their top-K category counts plus an "other" count.
Boolean features use the categories ``"true"`` and ``"false"`` (both always present).

File layout (keys sorted; a feature's summary fields sit directly in its object)::

    {"features": {"amount": {"bins": {"counts": [...], "edges": [...]}, "count": 990,
                             "fine_bins": {...}, "kind": "numeric", "maximum": 9.5,
                             "mean": 1.2, "minimum": 0.0, "missing_count": 10,
                             "quantiles": [...101 values...], "std": 0.7},
                  "color": {"categories": {"red": 12, ...}, "count": 20,
                            "distinct_count": 3, "kind": "categorical",
                            "missing_count": 0, "other_count": 0}},
     "model_id": "...", "model_version": "...", "profile_id": "...", "row_count": 1000,
     "schema_version": 1, "source": {"format": "csv", "kind": "file", "path": "...",
                                     "sha256": "..."}}

A numeric feature with no non-missing value has no summary fields (``numeric`` is None).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import orjson

from driftline.categories import category_key
from driftline.events import Scalar

if TYPE_CHECKING:
    from driftline.performance.reference import ReferencePerformance
    from driftline.performance.task import Task

SCHEMA_VERSION = 1

#: The 101 quantile levels 0, 0.01, ..., 1 (exact ``i / 100``, not ``linspace`` steps).
QUANTILE_LEVELS: npt.NDArray[np.float64] = np.arange(101, dtype=np.float64) / 100.0

SOURCE_KINDS = ("file", "warmup")
SOURCE_FORMATS = ("csv", "parquet", "jsonl")

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class ProfileError(ValueError):
    """A reference profile, or the data it is built from, is invalid."""


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
    """Population standard deviation (``ddof=0``)."""
    quantiles: tuple[float, ...]
    """101 values: the 0th, 1st, ..., 100th percentile (linear interpolation)."""
    bins: Binning
    """Decile bins (PSI, Jensen-Shannon)."""
    fine_bins: Binning
    """Percentile bins (Kolmogorov-Smirnov, Wasserstein)."""


@dataclass(frozen=True, slots=True)
class CategorySummary:
    categories: dict[str, int]
    """Top-K categories by count (ties broken by name), with their counts, in that order."""
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
    """Set for numeric features that have at least one non-missing value."""
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
    """SHA-256 of the input file; for warm-up, the chained SHA-256 of the warm-up rows
    (see :class:`driftline.warmup.WarmupSketch`)."""
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
    performance: ReferencePerformance | None = None
    """The model's performance on the reference data (task, metrics, calibration), when it
    had predictions and labels: see :mod:`driftline.performance.reference`. The key is
    absent from the JSON when ``None``."""
    _id: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def profile_id(self) -> str:
        """Deterministic id: the first 16 hex digits of the SHA-256 of the canonical JSON.

        The canonical JSON is :meth:`to_dict` without ``profile_id``, with sorted keys and
        no whitespace. It is computed once (a profile is immutable).
        """
        if self._id is None:
            object.__setattr__(self, "_id", _canonical_id(_profile_body(self)))
        assert self._id is not None
        return self._id

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form, including ``schema_version`` and ``profile_id``."""
        body = _profile_body(self)
        body["profile_id"] = self.profile_id
        return body

    def to_json(self) -> bytes:
        """Pretty JSON with sorted keys and a trailing newline; floats round-trip exactly."""
        return (
            orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
        )

    @classmethod
    def from_dict(cls, data: Any) -> ReferenceProfile:
        """Validate and build a profile; raises :class:`ProfileError` naming the key path."""
        try:
            return _parse_profile(data)
        except _InvalidError as exc:
            raise ProfileError(str(exc)) from None

    @classmethod
    def from_json(cls, data: bytes | str) -> ReferenceProfile:
        """Parse and validate profile JSON."""
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ProfileError(f"not valid JSON: {exc}") from None
        return cls.from_dict(parsed)


def load_profile(path: str | os.PathLike[str]) -> ReferenceProfile:
    """Read and validate a profile file; errors name the file and the offending key."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise ProfileError(f"{os.fspath(path)}: cannot read profile: {exc.strerror}") from None
    try:
        return ReferenceProfile.from_json(raw)
    except ProfileError as exc:
        raise ProfileError(f"{os.fspath(path)}: {exc}") from None


def save_profile(profile: ReferenceProfile, path: str | os.PathLike[str]) -> None:
    """Write ``profile.to_json()`` to ``path`` (via a temporary file, then rename)."""
    target = os.fspath(path)
    tmp = f"{target}.tmp"
    with open(tmp, "wb") as f:
        f.write(profile.to_json())
    os.replace(tmp, target)


# --------------------------------------------------------------------------- building


def _is_number(value: Scalar) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def infer_kind(values: Sequence[Scalar]) -> FeatureKind:
    """The kind of a feature from its values.

    All non-missing values bool -> boolean; all int or float (not bool) -> numeric;
    anything else (strings, mixtures) -> categorical. A feature with no non-missing value
    is categorical: nothing is known about it, and every later value then shows up as an
    unseen category.

    >>> infer_kind([1, 2.5, None]), infer_kind([True, None]), infer_kind([1, "a"])
    (<FeatureKind.NUMERIC: 'numeric'>, <FeatureKind.BOOLEAN: 'boolean'>, \
<FeatureKind.CATEGORICAL: 'categorical'>)
    """
    present = [v for v in values if v is not None]
    if not present:
        return FeatureKind.CATEGORICAL
    if all(isinstance(v, bool) for v in present):
        return FeatureKind.BOOLEAN
    if all(_is_number(v) for v in present):
        return FeatureKind.NUMERIC
    return FeatureKind.CATEGORICAL


def build_profile(
    columns: Mapping[str, Sequence[Scalar]],
    *,
    model_id: str,
    model_version: str,
    source: ProfileSource,
    kinds: Mapping[str, FeatureKind] | None = None,
    top_k: int = 20,
    task: Task | None = None,
    decision_threshold: float = 0.5,
) -> ReferenceProfile:
    """Summarise reference data, one column per feature, into a profile.

    Parameters
    ----------
    columns
        Feature name -> one value per row (``None`` = missing); all the same length.
    kinds
        Per-feature kind overrides; other features get :func:`infer_kind`. Naming a
        feature that is not in ``columns`` is an error.
    top_k
        How many categories a categorical feature keeps (boolean features keep both).
    task, decision_threshold
        The model's task (``None``: inferred) and binary decision threshold, for the
        ``performance`` section recorded when the data has ``__prediction__`` (or
        ``__prediction__.<class>``) and ``__label__`` columns
        (:func:`driftline.performance.reference.build_reference_performance`).

    Raises
    ------
    ProfileError
        Columns of different lengths, no rows, unknown override names, a numeric
        feature with a non-number or non-finite value, a boolean feature with a non-bool,
        predictions and labels whose task is ambiguous (then pass ``task``).
    """
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    lengths = {name: len(values) for name, values in columns.items()}
    if not lengths:
        raise ProfileError("no features: a reference profile needs at least one column")
    row_count = next(iter(lengths.values()))
    uneven = {name: n for name, n in lengths.items() if n != row_count}
    if uneven:
        name, n = sorted(uneven.items())[0]
        first = next(iter(lengths))
        raise ProfileError(
            f"columns differ in length: {first!r} has {row_count} rows, {name!r} has {n}"
        )
    if row_count == 0:
        raise ProfileError("no rows: a reference profile needs at least one row")
    overrides = dict(kinds or {})
    unknown = sorted(set(overrides) - set(columns))
    if unknown:
        raise ProfileError(f"kinds names features that are not in the data: {unknown}")
    features = {}
    for name in sorted(columns):
        values = columns[name]
        kind = FeatureKind(overrides[name]) if name in overrides else infer_kind(values)
        features[name] = _build_feature(name, kind, values, top_k)
    from driftline.performance.reference import build_reference_performance
    from driftline.performance.task import TaskInferenceError

    try:
        performance = build_reference_performance(
            columns, task=task, decision_threshold=decision_threshold
        )
    except TaskInferenceError as exc:
        raise ProfileError(f"__prediction__ and __label__: {exc}") from None
    return ReferenceProfile(
        model_id=model_id,
        model_version=model_version,
        row_count=row_count,
        source=source,
        features=features,
        performance=performance,
    )


def _build_feature(
    name: str, kind: FeatureKind, values: Sequence[Scalar], top_k: int
) -> FeatureProfile:
    present = [v for v in values if v is not None]
    missing = len(values) - len(present)
    if kind is FeatureKind.NUMERIC:
        return FeatureProfile(
            name=name,
            kind=kind,
            count=len(present),
            missing_count=missing,
            numeric=numeric_summary(name, present) if present else None,
        )
    if kind is FeatureKind.BOOLEAN:
        bad = next((v for v in present if not isinstance(v, bool)), None)
        if bad is not None:
            raise ProfileError(f"feature {name!r} is boolean but has the value {bad!r}")
    keys = [category_key(v) for v in present]
    return FeatureProfile(
        name=name,
        kind=kind,
        count=len(present),
        missing_count=missing,
        categories=category_summary(Counter(keys), kind, top_k),
    )


def numeric_summary(name: str, present: Sequence[Scalar]) -> NumericSummary:
    """The summary of a numeric feature's non-missing values (all of them)."""
    bad = next((v for v in present if not _is_number(v)), None)
    if bad is not None:
        raise ProfileError(
            f"feature {name!r} is numeric but has the value {bad!r} "
            "(override its kind to categorical to profile it as categories)"
        )
    try:
        x = np.array(present, dtype=np.float64)
    except OverflowError:
        raise ProfileError(f"feature {name!r} has an integer too large for a float") from None
    finite = np.isfinite(x)
    if not finite.all():
        raise ProfileError(f"feature {name!r} has a non-finite value {float(x[~finite][0])!r}")
    quantiles = np.quantile(x, QUANTILE_LEVELS)
    quantiles = np.maximum.accumulate(quantiles)  # guard against rounding non-monotonicity
    mean = float(np.mean(x))
    std = float(np.std(x))
    if not (np.isfinite(quantiles).all() and math.isfinite(mean) and math.isfinite(std)):
        raise ProfileError(f"feature {name!r} has values too large to summarise")
    return NumericSummary(
        minimum=float(quantiles[0]),
        maximum=float(quantiles[100]),
        mean=mean,
        std=std,
        quantiles=tuple(float(q) for q in quantiles),
        bins=_binning(x, np.unique(quantiles[10:100:10])),
        fine_bins=_binning(x, np.unique(quantiles[1:100])),
    )


def _binning(x: npt.NDArray[np.float64], edges: npt.NDArray[np.float64]) -> Binning:
    idx = np.searchsorted(edges, x, side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return Binning(edges=tuple(float(e) for e in edges), counts=tuple(int(c) for c in counts))


def _ranked(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def category_summary(
    counter: Mapping[str, int] | Mapping[str | None, int],
    kind: FeatureKind,
    top_k: int,
    untracked: int = 0,
) -> CategorySummary:
    """The top-K summary of category counts; ``untracked`` values of categories that were
    not counted one by one (warm-up's category cap) go to ``other_count``."""
    counts = {key: n for key, n in counter.items() if key is not None}
    total = sum(counts.values()) + untracked
    if kind is FeatureKind.BOOLEAN:
        kept = dict(_ranked({"true": counts.get("true", 0), "false": counts.get("false", 0)}))
    else:
        kept = dict(_ranked(counts)[:top_k])
    return CategorySummary(
        categories=kept,
        other_count=total - sum(kept.values()),
        distinct_count=len(counts),
    )


# --------------------------------------------------------------------------- serialising


def _binning_dict(binning: Binning) -> dict[str, Any]:
    return {"edges": list(binning.edges), "counts": list(binning.counts)}


def _feature_dict(feature: FeatureProfile) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": feature.kind.value,
        "count": feature.count,
        "missing_count": feature.missing_count,
    }
    if feature.numeric is not None:
        num = feature.numeric
        out.update(
            minimum=num.minimum,
            maximum=num.maximum,
            mean=num.mean,
            std=num.std,
            quantiles=list(num.quantiles),
            bins=_binning_dict(num.bins),
            fine_bins=_binning_dict(num.fine_bins),
        )
    if feature.categories is not None:
        cat = feature.categories
        out.update(
            categories=dict(cat.categories),
            other_count=cat.other_count,
            distinct_count=cat.distinct_count,
        )
    return out


def _canonical_id(body: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def feature_to_dict(feature: FeatureProfile) -> dict[str, Any]:
    """One feature's JSON-ready form, as under a profile's ``features``."""
    return _feature_dict(feature)


def feature_from_dict(name: str, data: Any) -> FeatureProfile:
    """Validate and build one feature from :func:`feature_to_dict`; raises
    :class:`ProfileError` naming the key path."""
    try:
        if not isinstance(data, dict):
            raise _InvalidError(name, f"expected a JSON object, got {_describe(data)}")
        count = _count(data.get("count"), _join(name, "count"))
        missing = _count(data.get("missing_count"), _join(name, "missing_count"))
        return _parse_feature(name, data, name, count + missing)
    except _InvalidError as exc:
        raise ProfileError(str(exc)) from None


def _profile_body(profile: ReferenceProfile) -> dict[str, Any]:
    src = profile.source
    body = {
        "schema_version": profile.schema_version,
        "model_id": profile.model_id,
        "model_version": profile.model_version,
        "row_count": profile.row_count,
        "source": {"kind": src.kind, "sha256": src.sha256, "path": src.path, "format": src.format},
        "features": {name: _feature_dict(f) for name, f in profile.features.items()},
    }
    if profile.performance is not None:
        body["performance"] = profile.performance.to_dict()
    return body


# --------------------------------------------------------------------------- validating


class _InvalidError(Exception):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _object(
    value: Any, key: str, required: AbstractSet[str], optional: AbstractSet[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _InvalidError(key, f"expected an object, got {_describe(value)}")
    for name in sorted(required):
        if name not in value:
            raise _InvalidError(_join(key, name), "missing")
    extra = sorted(set(value) - required - optional)
    if extra:
        raise _InvalidError(_join(key, extra[0]), "unknown key")
    return value


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise _InvalidError(key, f"expected a string, got {_describe(value)}")
    return value


def _opt_str(value: Any, key: str) -> str | None:
    return None if value is None else _str(value, key)


def _count(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _InvalidError(key, f"expected a non-negative integer, got {_describe(value)}")
    if value < 0:
        raise _InvalidError(key, f"expected a non-negative integer, got {value}")
    return value


def _float(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _InvalidError(key, f"expected a number, got {_describe(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise _InvalidError(key, f"expected a finite number, got {value}")
    return result


def _floats(value: Any, key: str) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise _InvalidError(key, f"expected a list of numbers, got {_describe(value)}")
    return tuple(_float(v, f"{key}[{i}]") for i, v in enumerate(value))


def _parse_binning(value: Any, key: str, total: int) -> Binning:
    obj = _object(value, key, {"edges", "counts"})
    edges = _floats(obj["edges"], _join(key, "edges"))
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise _InvalidError(_join(key, "edges"), "edges must be strictly increasing")
    raw_counts = obj["counts"]
    if not isinstance(raw_counts, list):
        raise _InvalidError(_join(key, "counts"), f"expected a list, got {_describe(raw_counts)}")
    if len(raw_counts) != len(edges) + 1:
        raise _InvalidError(
            _join(key, "counts"),
            f"expected {len(edges) + 1} counts, got {len(raw_counts)}",
        )
    counts = tuple(_count(c, f"{key}.counts[{i}]") for i, c in enumerate(raw_counts))
    if sum(counts) != total:
        raise _InvalidError(
            _join(key, "counts"), f"counts add up to {sum(counts)}, not count {total}"
        )
    return Binning(edges=edges, counts=counts)


_NUMERIC_KEYS = {"minimum", "maximum", "mean", "std", "quantiles", "bins", "fine_bins"}
_CATEGORY_KEYS = {"categories", "other_count", "distinct_count"}
_FEATURE_KEYS = {"kind", "count", "missing_count"}


def _parse_numeric(obj: dict[str, Any], key: str, count: int) -> NumericSummary:
    quantiles = _floats(obj["quantiles"], _join(key, "quantiles"))
    if len(quantiles) != len(QUANTILE_LEVELS):
        raise _InvalidError(
            _join(key, "quantiles"), f"expected {len(QUANTILE_LEVELS)} values, got {len(quantiles)}"
        )
    if any(b < a for a, b in itertools.pairwise(quantiles)):
        raise _InvalidError(_join(key, "quantiles"), "quantiles must be non-decreasing")
    minimum = _float(obj["minimum"], _join(key, "minimum"))
    maximum = _float(obj["maximum"], _join(key, "maximum"))
    if minimum > maximum:
        raise _InvalidError(_join(key, "minimum"), f"minimum {minimum} is above maximum {maximum}")
    std = _float(obj["std"], _join(key, "std"))
    if std < 0:
        raise _InvalidError(_join(key, "std"), f"expected a non-negative number, got {std}")
    return NumericSummary(
        minimum=minimum,
        maximum=maximum,
        mean=_float(obj["mean"], _join(key, "mean")),
        std=std,
        quantiles=quantiles,
        bins=_parse_binning(obj["bins"], _join(key, "bins"), count),
        fine_bins=_parse_binning(obj["fine_bins"], _join(key, "fine_bins"), count),
    )


def _parse_categories(
    obj: dict[str, Any], key: str, kind: FeatureKind, count: int
) -> CategorySummary:
    raw = obj["categories"]
    ckey = _join(key, "categories")
    if not isinstance(raw, dict):
        raise _InvalidError(ckey, f"expected an object, got {_describe(raw)}")
    counts = {name: _count(n, _join(ckey, name)) for name, n in raw.items()}
    if kind is FeatureKind.BOOLEAN and set(counts) != {"true", "false"}:
        raise _InvalidError(
            ckey, f"a boolean feature has exactly 'true' and 'false', got {sorted(counts)}"
        )
    other = _count(obj["other_count"], _join(key, "other_count"))
    distinct = _count(obj["distinct_count"], _join(key, "distinct_count"))
    if sum(counts.values()) + other != count:
        raise _InvalidError(
            ckey,
            f"category counts plus other_count add up to {sum(counts.values()) + other}, "
            f"not count {count}",
        )
    listed = sum(1 for n in counts.values() if n > 0)
    if distinct < listed:
        raise _InvalidError(
            _join(key, "distinct_count"), f"{distinct} is less than the {listed} listed categories"
        )
    return CategorySummary(
        categories=dict(_ranked(counts)), other_count=other, distinct_count=distinct
    )


def _parse_feature(name: str, value: Any, key: str, row_count: int) -> FeatureProfile:
    raw = _object(value, key, _FEATURE_KEYS, _NUMERIC_KEYS | _CATEGORY_KEYS)
    kind_value = raw["kind"]
    if kind_value not in {k.value for k in FeatureKind}:
        raise _InvalidError(
            _join(key, "kind"),
            f"expected one of {[k.value for k in FeatureKind]}, got {_describe(kind_value)}",
        )
    kind = FeatureKind(kind_value)
    count = _count(raw["count"], _join(key, "count"))
    missing = _count(raw["missing_count"], _join(key, "missing_count"))
    if count + missing != row_count:
        raise _InvalidError(
            _join(key, "count"),
            f"count + missing_count = {count + missing}, not row_count {row_count}",
        )
    if kind is FeatureKind.NUMERIC:
        if count == 0:
            _object(raw, key, _FEATURE_KEYS)
            return FeatureProfile(name=name, kind=kind, count=0, missing_count=missing)
        obj = _object(raw, key, _FEATURE_KEYS | _NUMERIC_KEYS)
        numeric = _parse_numeric(obj, key, count)
        return FeatureProfile(name, kind, count, missing, numeric=numeric)
    obj = _object(raw, key, _FEATURE_KEYS | _CATEGORY_KEYS)
    categories = _parse_categories(obj, key, kind, count)
    return FeatureProfile(name, kind, count, missing, categories=categories)


def _parse_source(value: Any) -> ProfileSource:
    obj = _object(value, "source", {"kind", "sha256"}, {"path", "format"})
    kind = _str(obj["kind"], "source.kind")
    if kind not in SOURCE_KINDS:
        raise _InvalidError("source.kind", f"expected one of {list(SOURCE_KINDS)}, got {kind!r}")
    sha = _str(obj["sha256"], "source.sha256")
    if not _SHA256_RE.fullmatch(sha):
        raise _InvalidError(
            "source.sha256", f"expected 64 lowercase hex digits, got {_describe(sha)}"
        )
    fmt = _opt_str(obj.get("format"), "source.format")
    if fmt is not None and fmt not in SOURCE_FORMATS:
        raise _InvalidError("source.format", f"expected one of {list(SOURCE_FORMATS)}, got {fmt!r}")
    return ProfileSource(
        kind=kind, sha256=sha, path=_opt_str(obj.get("path"), "source.path"), format=fmt
    )


def _parse_performance(value: Any) -> ReferencePerformance | None:
    if value is None:
        return None
    from driftline.performance.reference import ReferencePerformance, ReferencePerformanceError

    try:
        return ReferencePerformance.from_dict(value)
    except ReferencePerformanceError as exc:
        raise _InvalidError(exc.key, exc.problem) from None


def _parse_profile(data: Any) -> ReferenceProfile:
    if not isinstance(data, dict):
        raise _InvalidError("", f"expected a JSON object, got {_describe(data)}")
    version = data.get("schema_version")
    if version is None:
        raise _InvalidError("schema_version", "missing")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise _InvalidError(
            "schema_version",
            f"unsupported schema_version {_describe(version)}: this driftline reads "
            f"schema_version {SCHEMA_VERSION} only",
        )
    obj = _object(
        data,
        "",
        {"schema_version", "model_id", "model_version", "row_count", "source", "features"},
        {"profile_id", "performance"},
    )
    row_count = _count(obj["row_count"], "row_count")
    raw_features = obj["features"]
    if not isinstance(raw_features, dict):
        raise _InvalidError("features", f"expected an object, got {_describe(raw_features)}")
    features = {
        name: _parse_feature(name, raw_features[name], f"features.{name}", row_count)
        for name in sorted(raw_features)
    }
    profile = ReferenceProfile(
        model_id=_str(obj["model_id"], "model_id"),
        model_version=_str(obj["model_version"], "model_version"),
        row_count=row_count,
        source=_parse_source(obj["source"]),
        features=features,
        performance=_parse_performance(obj.get("performance")),
    )
    stated = obj.get("profile_id")
    if stated is not None and stated != profile.profile_id:
        raise _InvalidError(
            "profile_id",
            f"the file says {_describe(stated)} but its content hashes to "
            f"{profile.profile_id!r} (edited by hand? delete the profile_id key to accept it)",
        )
    return profile

"""Mergeable sketches of monitored data: histogram bin counts and category counts.

Both sketches are exact and order-free: for any split of a stream into parts,
merging the sketches of the parts equals the sketch of the whole stream, and
``from_dict(to_dict())`` gives back an equal sketch. Scale-out and checkpoints rely on it.

Bin convention (as in :mod:`driftline.profile`): ``edges`` are sorted unique inner edges
and ``x`` falls in bin ``numpy.searchsorted(edges, x, side="right")``.

>>> import numpy as np
>>> a, b = BinCounts([0.0, 1.0]), BinCounts([0.0, 1.0])
>>> a.update(np.array([-1.0, 0.5, np.nan])); b.update(np.array([1.0, 2.0]))
>>> merged = a.merge(b)
>>> merged.counts.tolist(), merged.missing, merged.minimum, merged.maximum
([1, 1, 2], 1, -1.0, 2.0)
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from driftline.native import extension as native_extension

__all__ = ["BinCounts", "CategoryCounts"]


_NativeBinCount = Callable[
    [npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]],
    tuple[int, float, float, bool],
]
#: ``_fastdecode.bin_count``, or ``None`` (not built, or ``DRIFTLINE_PURE_PYTHON=1``).
_NATIVE_BIN_COUNT: _NativeBinCount | None = getattr(native_extension(), "bin_count", None)


def _split_missing(
    values: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], int]:
    """``values`` as a flat float64 array, its non-NaN values, and the number of NaN."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    nan = np.isnan(x)
    n_missing = int(np.count_nonzero(nan))
    return x, (x[~nan] if n_missing else x), n_missing


def _nan_equal(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _opt_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def _non_negative_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what}: expected a non-negative integer, got {value!r}")
    return value


class BinCounts:
    """Counts of numeric values per bin, plus missing values, minimum and maximum.

    Parameters
    ----------
    edges
        Sorted, strictly increasing, finite inner edges; there are ``len(edges) + 1`` bins.
    """

    __slots__ = ("_counts", "_edges", "maximum", "minimum", "missing")
    __hash__ = None  # type: ignore[assignment]  # mutable

    def __init__(self, edges: Sequence[float] | npt.NDArray[np.float64]) -> None:
        arr = np.array(edges, dtype=np.float64).reshape(-1)
        if not np.isfinite(arr).all():
            raise ValueError("edges must be finite")
        if arr.size > 1 and not (np.diff(arr) > 0).all():
            raise ValueError("edges must be strictly increasing")
        arr.flags.writeable = False
        self._edges: npt.NDArray[np.float64] = arr
        self._counts: npt.NDArray[np.int64] = np.zeros(arr.size + 1, dtype=np.int64)
        self.missing: int = 0
        """Number of missing (NaN) values seen."""
        self.minimum: float = math.nan
        """Smallest value seen; NaN while no value has been seen."""
        self.maximum: float = math.nan
        """Largest value seen; NaN while no value has been seen."""

    @property
    def edges(self) -> npt.NDArray[np.float64]:
        """The inner edges (read-only)."""
        return self._edges

    @property
    def counts(self) -> npt.NDArray[np.int64]:
        """Count per bin (a copy)."""
        return self._counts.copy()

    @property
    def counts_view(self) -> npt.NDArray[np.int64]:
        """Count per bin without a copy: read-only, and only valid until the next
        :meth:`update` or :meth:`clear` (for hot paths that only read the counts)."""
        view = self._counts.view()
        view.flags.writeable = False
        return view

    @property
    def total(self) -> int:
        """Number of non-missing values counted (missing values are in :attr:`missing`)."""
        return int(self._counts.sum())

    def clear(self) -> None:
        """Forget everything counted (the edges stay)."""
        self._counts = np.zeros(self._edges.size + 1, dtype=np.int64)
        self.missing = 0
        self.minimum = math.nan
        self.maximum = math.nan

    def update(self, values: npt.NDArray[np.float64], *, native: bool = True) -> None:
        """Count a batch of values; NaN means missing. Infinite values are a ValueError.

        The compiled extension counts in one call when it is available; ``native=False``
        forces the numpy code, its reference (both give identical results).
        """
        if native and _NATIVE_BIN_COUNT is not None:
            # Counts into self._counts in place; on ValueError nothing has changed.
            n_missing, low, high, zero_tie = _NATIVE_BIN_COUNT(
                np.ascontiguousarray(values, dtype=np.float64), self._edges, self._counts
            )
            if zero_tie:  # 0.0 and -0.0 both occur and one is extreme: numpy picks which
                _, present, _ = _split_missing(values)
                low, high = float(present.min()), float(present.max())
        else:
            x, present, n_missing = _split_missing(values)
            low = high = math.nan
            if present.size:
                low, high = float(present.min()), float(present.max())
                if not (math.isfinite(low) and math.isfinite(high)):
                    raise ValueError("values must be finite (NaN marks a missing value)")
                # NaN sorts after every edge: it lands in the last bin, and is taken out again.
                counts = np.bincount(
                    np.searchsorted(self._edges, x, side="right"), minlength=self._counts.size
                )
                if n_missing:
                    counts[-1] -= n_missing
                self._counts += counts
        if not math.isnan(low):  # some value was present
            self.minimum = low if math.isnan(self.minimum) else min(self.minimum, low)
            self.maximum = high if math.isnan(self.maximum) else max(self.maximum, high)
        self.missing += n_missing

    def merge(self, other: BinCounts) -> BinCounts:
        """A new sketch counting what both sketches counted; edges must be equal."""
        if not np.array_equal(self._edges, other._edges):
            raise ValueError("cannot merge BinCounts with different edges")
        out = BinCounts.__new__(BinCounts)
        out._edges = self._edges
        out._counts = self._counts + other._counts
        out.missing = self.missing + other.missing
        out.minimum = float(np.fmin(self.minimum, other.minimum))
        out.maximum = float(np.fmax(self.maximum, other.maximum))
        return out

    def __add__(self, other: BinCounts) -> BinCounts:
        return self.merge(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BinCounts):
            return NotImplemented
        return (
            np.array_equal(self._edges, other._edges)
            and np.array_equal(self._counts, other._counts)
            and self.missing == other.missing
            and _nan_equal(self.minimum, other.minimum)
            and _nan_equal(self.maximum, other.maximum)
        )

    def __repr__(self) -> str:
        return (
            f"BinCounts(edges={self._edges.tolist()}, counts={self._counts.tolist()}, "
            f"missing={self.missing}, minimum={self.minimum}, maximum={self.maximum})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state; ``minimum``/``maximum`` are None while empty."""
        return {
            "edges": self._edges.tolist(),
            "counts": self._counts.tolist(),
            "missing": self.missing,
            "minimum": _opt_float(self.minimum),
            "maximum": _opt_float(self.maximum),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BinCounts:
        """Rebuild a sketch from :meth:`to_dict` output (validated; ValueError if bad)."""
        out = cls(data["edges"])
        counts = list(data["counts"])
        if len(counts) != out._counts.size:
            raise ValueError(f"counts: expected {out._counts.size} values, got {len(counts)}")
        out._counts = np.array(
            [_non_negative_int(c, f"counts[{i}]") for i, c in enumerate(counts)],
            dtype=np.int64,
        ).reshape(-1)
        out.missing = _non_negative_int(data["missing"], "missing")
        lo, hi = data["minimum"], data["maximum"]
        if (lo is None) != (out.total == 0) or (hi is None) != (out.total == 0):
            raise ValueError("minimum and maximum must be null exactly when no value was counted")
        out.minimum = math.nan if lo is None else float(lo)
        out.maximum = math.nan if hi is None else float(hi)
        return out


class CategoryCounts:
    """Counts of category keys: per known category, ``other`` (unseen) and ``missing``.

    It also keeps exact counts for a sample of up to ``max_unseen`` distinct unseen keys,
    as evidence of what new categories appeared. The sample is the ``max_unseen`` unseen
    keys with the smallest 64-bit BLAKE2b hash (ties by key): a deterministic, uniform
    sample of the distinct unseen keys that does not depend on arrival order. A key in the
    sample of the whole stream is in the sample of every part it occurs in, so its count
    is exact and merging is exact; the sample is part of equality and of the state. While
    there are at most ``max_unseen`` distinct unseen keys, all of them are kept
    (:attr:`unseen_complete`).

    Parameters
    ----------
    categories
        The known categories (e.g. a reference profile's top-K), distinct strings.
    max_unseen
        Size of the unseen-key sample (0 disables it).
    """

    __slots__ = ("_categories", "_counts", "_index", "_unseen", "max_unseen", "missing", "other")
    __hash__ = None  # type: ignore[assignment]  # mutable

    def __init__(self, categories: Iterable[str], *, max_unseen: int = 20) -> None:
        cats = tuple(categories)
        if any(not isinstance(c, str) for c in cats):
            raise ValueError("categories must be strings")
        if len(set(cats)) != len(cats):
            raise ValueError("categories must be distinct")
        if max_unseen < 0:
            raise ValueError(f"max_unseen must be >= 0, got {max_unseen}")
        self._categories = cats
        self._index = {c: i for i, c in enumerate(cats)}
        self._counts: npt.NDArray[np.int64] = np.zeros(len(cats), dtype=np.int64)
        self._unseen: dict[str, tuple[int, int]] = {}
        """Sampled unseen key -> (hash, count)."""
        self.max_unseen = max_unseen
        self.other: int = 0
        """Non-missing keys that are not among the known categories."""
        self.missing: int = 0
        """Missing (None) keys."""

    @property
    def categories(self) -> tuple[str, ...]:
        return self._categories

    @property
    def counts(self) -> npt.NDArray[np.int64]:
        """Count per known category, in :attr:`categories` order (a copy)."""
        return self._counts.copy()

    @property
    def total(self) -> int:
        """Number of non-missing keys counted (known categories plus other)."""
        return int(self._counts.sum()) + self.other

    @property
    def unseen(self) -> dict[str, int]:
        """Sampled unseen keys with their exact counts, most frequent first (ties by key)."""
        ranked = sorted(self._unseen.items(), key=lambda kv: (-kv[1][1], kv[0]))
        return {key: count for key, (_, count) in ranked}

    @property
    def unseen_complete(self) -> bool:
        """True when :attr:`unseen` holds every unseen key (its counts add up to other)."""
        return sum(c for _, c in self._unseen.values()) == self.other

    def clear(self) -> None:
        """Forget everything counted (the categories stay)."""
        self._counts = np.zeros(len(self._categories), dtype=np.int64)
        self._unseen = {}
        self.other = 0
        self.missing = 0

    def update(self, keys: Sequence[str | None]) -> None:
        """Count a batch of category keys (see :func:`driftline.profile.category_key`)."""
        counts = Counter(keys)
        added = np.zeros_like(self._counts)
        for key, n in counts.items():
            if key is None:
                self.missing += n
                continue
            i = self._index.get(key)
            if i is not None:
                added[i] += n
            else:
                self.other += n
                self._offer(key, n)
        self._counts += added

    def _offer(self, key: str, n: int) -> None:
        """Add ``n`` to an unseen key's count if it belongs in the bottom-k sample."""
        if self.max_unseen == 0:
            return
        entry = self._unseen.get(key)
        if entry is not None:
            self._unseen[key] = (entry[0], entry[1] + n)
            return
        h = _key_hash(key)
        if len(self._unseen) < self.max_unseen:
            self._unseen[key] = (h, n)
            return
        worst = max(self._unseen, key=lambda k: (self._unseen[k][0], k))
        if (h, key) < (self._unseen[worst][0], worst):
            del self._unseen[worst]
            self._unseen[key] = (h, n)

    def _compatible(self, other: CategoryCounts) -> None:
        if self._categories != other._categories:
            raise ValueError("cannot merge CategoryCounts with different categories")
        if self.max_unseen != other.max_unseen:
            raise ValueError("cannot merge CategoryCounts with different max_unseen")

    def merge(self, other: CategoryCounts) -> CategoryCounts:
        """A new sketch counting what both sketches counted; categories must be equal."""
        self._compatible(other)
        out = CategoryCounts(self._categories, max_unseen=self.max_unseen)
        out._counts = self._counts + other._counts
        out.other = self.other + other.other
        out.missing = self.missing + other.missing
        combined = dict(self._unseen)
        for key, (h, n) in other._unseen.items():
            prev = combined.get(key)
            combined[key] = (h, n + (prev[1] if prev else 0))
        kept = sorted(combined, key=lambda k: (combined[k][0], k))[: self.max_unseen]
        out._unseen = {k: combined[k] for k in sorted(kept)}
        return out

    def __add__(self, other: CategoryCounts) -> CategoryCounts:
        return self.merge(other)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CategoryCounts):
            return NotImplemented
        return (
            self._categories == other._categories
            and np.array_equal(self._counts, other._counts)
            and self.other == other.other
            and self.missing == other.missing
            and self.max_unseen == other.max_unseen
            and self._unseen == other._unseen
        )

    def __repr__(self) -> str:
        counts = dict(zip(self._categories, self._counts.tolist(), strict=True))
        return (
            f"CategoryCounts(counts={counts}, "
            f"other={self.other}, missing={self.missing}, unseen={self.unseen})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {
            "categories": list(self._categories),
            "counts": self._counts.tolist(),
            "other": self.other,
            "missing": self.missing,
            "max_unseen": self.max_unseen,
            "unseen": self.unseen,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoryCounts:
        """Rebuild a sketch from :meth:`to_dict` output (validated; ValueError if bad)."""
        out = cls(
            data["categories"], max_unseen=_non_negative_int(data["max_unseen"], "max_unseen")
        )
        counts = list(data["counts"])
        if len(counts) != len(out._categories):
            raise ValueError(f"counts: expected {len(out._categories)} values, got {len(counts)}")
        out._counts = np.array(
            [_non_negative_int(c, f"counts[{i}]") for i, c in enumerate(counts)], dtype=np.int64
        ).reshape(-1)
        out.other = _non_negative_int(data["other"], "other")
        out.missing = _non_negative_int(data["missing"], "missing")
        unseen = dict(data["unseen"])
        if len(unseen) > out.max_unseen:
            raise ValueError(f"unseen: more than max_unseen={out.max_unseen} keys")
        for key, n in unseen.items():
            if not isinstance(key, str) or key in out._index:
                raise ValueError(f"unseen: {key!r} is not an unseen category key")
            out._unseen[key] = (_key_hash(key), _non_negative_int(n, f"unseen.{key}"))
        if sum(unseen.values()) > out.other:
            raise ValueError("unseen: counts add up to more than other")
        return out


def _key_hash(key: str) -> int:
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")

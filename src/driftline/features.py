"""Typed feature columns: raw decoded scalars -> what a feature's detectors consume.

A value is *missing* when it is null or absent. A non-null value of the wrong type for the
feature's kind (a string in a numeric feature, a number in a boolean one) is a *type
violation*: it is counted, and left out of the distribution statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from driftline.categories import category_key
from driftline.events import Scalar

_NUMBER_TYPES = frozenset({int, float, type(None)})
_TEXT_TYPES = frozenset({str, type(None)})
_BOOL_TYPES = frozenset({bool, type(None)})
_BOOL_KEYS: dict[object, str | None] = {True: "true", False: "false", None: None}


@dataclass(frozen=True, slots=True)
class NumericColumn:
    values: npt.NDArray[np.float64]
    """One value per row; NaN where missing or of the wrong type."""
    violations: npt.NDArray[np.bool_] | None
    """Rows holding a value of the wrong type; ``None`` when there are none."""


@dataclass(frozen=True, slots=True)
class CategoryColumn:
    keys: list[str | None]
    """Canonical category per row (:func:`driftline.profile.category_key`); None where missing
    or of the wrong type."""
    violations: npt.NDArray[np.bool_] | None


def numeric_column(
    raw: Sequence[Scalar] | npt.NDArray[np.float64] | None, rows: int
) -> NumericColumn:
    """Numbers as float64 (booleans and strings are type violations).

    ``raw`` may already be a float64 array (NaN where missing), e.g. a
    :attr:`driftline.events.ModelBatch.numeric_columns` entry; it is used as is.
    """
    if raw is None:
        return NumericColumn(np.full(rows, np.nan), None)
    if isinstance(raw, np.ndarray):
        return NumericColumn(raw, None)
    if set(map(type, raw)) <= _NUMBER_TYPES:
        return NumericColumn(np.array(raw, dtype=np.float64), None)
    ok = [type(v) is int or type(v) is float for v in raw]
    bad = np.array([not good and v is not None for good, v in zip(ok, raw, strict=True)])
    values = np.array([v if good else None for good, v in zip(ok, raw, strict=True)], np.float64)
    return NumericColumn(values, bad if bad.any() else None)


def category_column(raw: Sequence[Scalar] | None, rows: int) -> CategoryColumn:
    """Any scalar becomes a category (numbers and booleans by their canonical text)."""
    if raw is None:
        return CategoryColumn([None] * rows, None)
    if set(map(type, raw)) <= _TEXT_TYPES:
        return CategoryColumn(list(raw), None)  # type: ignore[arg-type]
    return CategoryColumn([category_key(v) for v in raw], None)


def boolean_column(raw: Sequence[Scalar] | None, rows: int) -> CategoryColumn:
    """Booleans as the categories ``"true"``/``"false"``; anything else is a type violation."""
    if raw is None:
        return CategoryColumn([None] * rows, None)
    if set(map(type, raw)) <= _BOOL_TYPES:
        return CategoryColumn([_BOOL_KEYS[v] for v in raw], None)
    bad = np.array([v is not None and type(v) is not bool for v in raw])
    keys = [_BOOL_KEYS[v] if type(v) is bool else None for v in raw]
    return CategoryColumn(keys, bad)

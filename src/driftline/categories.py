"""The canonical category text of a scalar value, shared by profiles, monitoring and the
performance tasks (class names)."""

from __future__ import annotations

import math

from driftline.events import Scalar

__all__ = ["category_key"]


def category_key(value: Scalar) -> str | None:
    """The canonical category string of a value, used by profiles and monitoring alike.

    >>> [category_key(v) for v in ("a", True, False, 7, 7.0, 0.5, None)]
    ['a', 'true', 'false', '7', '7', '0.5', None]
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return repr(float(value))

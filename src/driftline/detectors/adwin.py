"""ADWIN (adaptive windowing), float-for-float identical to river 0.26.1's ``drift.ADWIN``.

river's ADWIN core is Rust (``rust_src/adwin.rs``); this module replays its arithmetic in
pure Python, operation for operation, so detections match river exactly on any stream.

There is no exact vectorised form over time: every value may change the bucket structure,
and every ``clock``-th value runs a scan whose outcome (a deletion, which restarts the scan)
feeds the next one. :meth:`ADWIN.update_many` is therefore a tight Python loop over the
values with the state held in local variables.
"""

from __future__ import annotations

import math
import numbers
import struct
from typing import Final, Self

import numpy as np
import numpy.typing as npt

__all__ = ["ADWIN"]

_MAGIC: Final = b"DLAD"
_VERSION: Final = 1
_HEADER: Final = struct.Struct("<4sBdiIiiBdddiI")
_I32_MAX: Final = 2**31 - 1
_I32_SPAN: Final = 2**32


def _wrap_i32(value: int) -> int:
    """``value`` as a wrapping 32-bit signed integer (Rust's release-mode ``i32``)."""
    return (value + 2**31) % _I32_SPAN - 2**31


def _steps_to_check(tick: int, clock: int) -> int:
    """Number of further updates until the tick counter next hits a multiple of ``clock``.

    The counter is an ``i32`` that wraps from ``2**31 - 1`` to ``-2**31`` as in river's
    Rust core (remainder zero-tests agree between Rust's truncated and Python's floored %).
    """
    steps = clock - tick % clock
    if tick + steps <= _I32_MAX:
        return steps
    to_wrap = 2**31 - tick  # this many steps land exactly on -2**31
    return to_wrap + 2**31 % clock  # then on the first multiple of clock at or above it


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    as_int = int(value)
    if not low <= as_int <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return as_int


def _check_delta(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"delta must be a real number, got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {value!r}")


def _merge_full_levels(
    totals: list[list[float]], variances: list[list[float]], max_buckets: int
) -> None:
    """river's ``compress_buckets`` from level 1 up: while a level holds more than
    ``max_buckets`` buckets, merge its two oldest into one bucket of the next level."""
    idx = 1
    upper_t = totals[1]
    while len(upper_t) > max_buckets:
        lower_t = upper_t
        lower_v = variances[idx]
        n1 = float(1 << idx)
        t0 = lower_t[0]
        t1 = lower_t[1]
        mu1 = t0 / n1
        mu2 = t1 / n1
        v12 = lower_v[0] + lower_v[1] + n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2)
        del lower_t[:2]
        del lower_v[:2]
        idx += 1
        if len(totals) == idx:
            totals.append([])
            variances.append([])
        upper_t = totals[idx]
        upper_t.append(t0 + t1)
        variances[idx].append(v12)


def _cut_found(
    totals: list[list[float]],
    width: float,
    total: float,
    variance: float,
    delta: float,
    mwl: float,
) -> bool:
    """One pass of river's ``detect_change`` scan: whether some split of the window into an
    older and a newer part (at a bucket boundary, oldest buckets first) differs in mean by
    more than the ADWIN bound."""
    n0 = 0.0
    n1 = width
    u0 = 0.0
    u1 = total
    variance_per_value = variance / width
    delta_prime = math.log(2.0 * math.log(width) / delta)
    two_thirds_dp = 2.0 / 3.0 * delta_prime
    for idx in range(len(totals) - 1, -1, -1):
        size = float(1 << idx)
        level = totals[idx]
        last_k = len(level) - 1 if idx == 0 else -1  # river never splits after the newest
        for k, bucket_total in enumerate(level):
            n0 += size
            n1 -= size
            u0 += bucket_total
            u1 -= bucket_total
            if k == last_k:
                break
            if n1 >= mwl and n0 >= mwl:
                m_recip = 1.0 / (n0 - mwl + 1.0) + 1.0 / (n1 - mwl + 1.0)
                radicand = 2.0 * m_recip * variance_per_value * delta_prime
                epsilon = (
                    math.sqrt(radicand) if radicand >= 0.0 else math.nan
                ) + two_thirds_dp * m_recip
                if abs(u0 / n0 - u1 / n1) > epsilon:
                    return True
    return False


def _drop_oldest_bucket(
    totals: list[list[float]],
    variances: list[list[float]],
    width: float,
    total: float,
    variance: float,
) -> tuple[float, float, float]:
    """river's ``delete_element``: drop the oldest bucket; return the new width, total and
    variance."""
    last = len(totals) - 1
    oldest = totals[last]
    n = float(1 << last)
    u = oldest[0]
    v = variances[last][0] if last else 0.0
    mu = u / n
    width -= n
    total -= u
    mu_window = total / width
    variance -= v + n * width * (mu - mu_window) * (mu - mu_window) / (n + width)
    del oldest[0]
    if last:
        del variances[last][0]
    if not oldest:
        totals.pop()
        variances.pop()
    return width, total, variance


class ADWIN:
    """Adaptive Windowing drift detector (Bifet & Gavaldà, 2007), exactly as river 0.26.1.

    Parameters
    ----------
    delta
        Significance value, in (0, 1).
    clock
        Check for changes every ``clock`` values (>= 1).
    max_buckets
        Buckets of each size kept before merging (>= 2; river's core can crash with 1).
    min_window_length
        Minimum length of each sub-window at a cut (>= 1).
    grace_period
        No change detection until the window holds more than this many values (>= 0).

    Notes
    -----
    Like river, ``update`` first resets the detector (dropping the whole window) when the
    previous value was a detection, so ``drift_detected`` is true for exactly one step.
    Values are read as IEEE binary64 (Python floats), like river's Rust core.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(12345)
    >>> stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
    >>> ADWIN().update_many(stream).tolist()
    [1023]
    """

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        _check_delta(delta)
        _check_int("clock", clock, 1, _I32_MAX)
        _check_int("max_buckets", max_buckets, 2, 2**32 - 2)
        _check_int("min_window_length", min_window_length, 1, _I32_MAX)
        _check_int("grace_period", grace_period, 0, _I32_MAX)
        self.delta = delta
        self.clock = clock
        self.max_buckets = max_buckets
        self.min_window_length = min_window_length
        self.grace_period = grace_period
        self._reset()
        self._drift_detected = False

    def _reset(self) -> None:
        # Level i holds bucket totals of 2**i values each, oldest first. Level-0 variances
        # are always 0.0 in river's core, so only levels >= 1 keep theirs.
        self._totals: list[list[float]] = [[]]
        self._variances: list[list[float]] = [[]]
        self._width = 0.0
        self._total = 0.0
        self._variance = 0.0
        self._tick = 0

    # -- read-only statistics (river's names) -------------------------------------------

    @property
    def drift_detected(self) -> bool:
        """Whether a drift was detected at the last update."""
        return self._drift_detected

    @property
    def width(self) -> int:
        """Number of values in the adaptive window."""
        return int(self._width)

    @property
    def total(self) -> float:
        """Sum of the values in the window."""
        return self._total

    @property
    def variance(self) -> float:
        """river's ``ADWIN.variance``: the window's sum of squared deviations from its mean."""
        return self._variance

    @property
    def variance_in_window(self) -> float:
        """``variance / width`` (river's ``variance_in_window``); NaN for an empty window."""
        return self._variance / self._width if self._width else math.nan

    @property
    def estimation(self) -> float:
        """Mean of the values in the window (0.0 when empty), as river's ``estimation``."""
        return self._total / self._width if self._width else 0.0

    mean = estimation

    @property
    def n_detections(self) -> int:
        """river's ``n_detections``: detections since the last reset, hence 0 or 1."""
        return int(self._drift_detected)

    # -- updates --------------------------------------------------------------------------

    def update(self, x: float) -> None:
        """Consume one value (river's ``update``); read :attr:`drift_detected` after it."""
        self._consume([float(x)])

    def update_many(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Consume ``values`` in order; return the positions at which a drift was detected.

        Identical to calling :meth:`update` once per value.
        """
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1:
            raise ValueError(f"values must be one-dimensional, got shape {array.shape}")
        return np.array(self._consume(array.tolist()), dtype=np.int64)

    def _consume(self, xs: list[float]) -> list[int]:
        hits: list[int] = []
        if not xs:
            return hits
        delta = float(self.delta)
        clock = int(self.clock)
        max_buckets = int(self.max_buckets)
        cap = max_buckets + 1
        mwl = float(self.min_window_length)
        grace = float(self.grace_period)

        drift = self._drift_detected
        totals = self._totals
        variances = self._variances
        level0 = totals[0]
        width = self._width
        total = self._total
        variance = self._variance
        tick = self._tick
        until_check = _steps_to_check(tick, clock)
        tick_at_check = _wrap_i32(tick + until_check)

        for position, x in enumerate(xs):
            if drift:
                totals = [[]]
                variances = [[]]
                level0 = totals[0]
                width = 0.0
                total = 0.0
                variance = 0.0
                until_check = _steps_to_check(0, clock)
                tick_at_check = _wrap_i32(until_check)
                drift = False

            # insert_element(x, 0.0)
            level0.append(x)
            if width:  # width - 1.0 after the increment is the old width, exactly
                dv = x - total / width
                variance += width * dv * dv / (width + 1.0)
            width += 1.0
            total += x

            # compress_buckets
            if len(level0) == cap:
                t0 = level0[0]
                t1 = level0[1]
                del level0[:2]
                # river: mu = t / 1.0 (identity) and v12 = 0.0 + 0.0 + 1.0 * 0.5 * d * d;
                # the zero level-0 variances cannot change the (never -0.0) sum.
                v12 = 0.5 * (t0 - t1) * (t0 - t1)
                if len(totals) == 1:
                    totals.append([])
                    variances.append([])
                totals[1].append(t0 + t1)
                variances[1].append(v12)
                if len(totals[1]) > max_buckets:
                    _merge_full_levels(totals, variances, max_buckets)

            # detect_change
            until_check -= 1
            if until_check:
                continue
            until_check = _steps_to_check(tick_at_check, clock)
            tick_at_check = _wrap_i32(tick_at_check + until_check)
            if width <= grace or width < 2.0:  # a cut needs two non-empty sub-windows
                continue
            # river re-scans from the newest bucket after each cut, with the new window
            while _cut_found(totals, width, total, variance, delta, mwl):
                drift = True
                width, total, variance = _drop_oldest_bucket(
                    totals, variances, width, total, variance
                )
            if drift:
                hits.append(position)

        self._drift_detected = drift
        self._totals = totals
        self._variances = variances
        self._width = width
        self._total = total
        self._variance = variance
        self._tick = _wrap_i32(tick_at_check - until_check)
        return hits

    # -- state --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Serialise parameters and state (format ``DLAD`` v1, little-endian binary64)."""
        counts = [len(level) for level in self._totals]
        header = _HEADER.pack(
            _MAGIC,
            _VERSION,
            float(self.delta),
            int(self.clock),
            int(self.max_buckets),
            int(self.min_window_length),
            int(self.grace_period),
            int(self._drift_detected),
            self._width,
            self._total,
            self._variance,
            self._tick,
            len(counts),
        )
        parts = [header, struct.pack(f"<{len(counts)}I", *counts)]
        for level in self._totals:
            parts.append(struct.pack(f"<{len(level)}d", *level))
        for level in self._variances[1:]:
            parts.append(struct.pack(f"<{len(level)}d", *level))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Rebuild a detector from :meth:`to_bytes`; it continues exactly where it was."""
        try:
            fields = _HEADER.unpack_from(data, 0)
        except (struct.error, TypeError) as exc:
            raise ValueError("not an ADWIN state: too short") from exc
        (magic, version, delta, clock, max_buckets, mwl, grace, drift) = fields[:8]
        width, total, variance, tick, n_levels = fields[8:]
        if magic != _MAGIC:
            raise ValueError("not an ADWIN state: bad magic")
        if version != _VERSION:
            raise ValueError(f"unsupported ADWIN state version {version}")
        if drift not in (0, 1):
            raise ValueError("corrupt ADWIN state: drift flag")
        detector = cls(delta, clock, max_buckets, mwl, grace)
        offset = _HEADER.size
        expected = offset + 4 * n_levels
        if n_levels < 1 or len(data) < expected:
            raise ValueError("corrupt ADWIN state: levels")
        counts = struct.unpack_from(f"<{n_levels}I", data, offset)
        offset = expected
        n_values = sum(counts) + sum(counts[1:])
        if len(data) != offset + 8 * n_values:
            raise ValueError("corrupt ADWIN state: length")
        fresh = n_levels == 1 and counts[0] == 0
        if not fresh and not all(1 <= c <= max_buckets for c in counts):
            raise ValueError("corrupt ADWIN state: bucket counts")
        if sum(c << i for i, c in enumerate(counts)) != width:
            raise ValueError("corrupt ADWIN state: width")
        totals: list[list[float]] = []
        for count in counts:
            totals.append(list(struct.unpack_from(f"<{count}d", data, offset)))
            offset += 8 * count
        variances: list[list[float]] = [[]]
        for count in counts[1:]:
            variances.append(list(struct.unpack_from(f"<{count}d", data, offset)))
            offset += 8 * count
        detector._totals = totals
        detector._variances = variances
        detector._width = width
        detector._total = total
        detector._variance = variance
        detector._tick = tick
        detector._drift_detected = bool(drift)
        return detector

    def __repr__(self) -> str:
        return (
            f"ADWIN(delta={self.delta!r}, clock={self.clock!r}, "
            f"max_buckets={self.max_buckets!r}, min_window_length={self.min_window_length!r}, "
            f"grace_period={self.grace_period!r})"
        )

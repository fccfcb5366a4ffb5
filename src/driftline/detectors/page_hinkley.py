"""Page-Hinkley, float-for-float identical to river 0.26.1's ``drift.PageHinkley``.

Per value (river's order of operations, which these functions keep exactly)::

    n += 1.0;  mean += (1.0 / n) * (x - mean);  dev = x - mean
    s_inc = alpha * s_inc + dev - delta;  s_dec = alpha * s_dec + dev + delta
    min_inc = min(min_inc, s_inc);  max_dec = max(max_dec, s_dec)
    from n >= min_instances: up = s_inc - min_inc > threshold, down = max_dec - s_dec > threshold

The recursion is sequential in time (a cumulative-sum form would round differently), so
:class:`PageHinkley` runs a tight Python loop, and :class:`PageHinkleyBank` runs many
independent detectors either column by column with that loop or with numpy across
features, one row at a time: both are exact.
"""

from __future__ import annotations

import math
import numbers
import struct
from typing import Final, Self

import numpy as np
import numpy.typing as npt

__all__ = ["PageHinkley", "PageHinkleyBank"]

_MODES: Final = ("up", "down", "both")
_SCALAR_MAGIC: Final = b"DLPH"
_BANK_MAGIC: Final = b"DLPB"
_VERSION: Final = 1
_PARAMS: Final = struct.Struct("<4sBqdddB")
_SCALAR_STATE: Final = struct.Struct("<Bdddddd")
_BANK_SIZE: Final = struct.Struct("<I")

# (drift, n, mean, sum_increase, sum_decrease, min_increase, max_decrease)
_State = tuple[bool, float, float, float, float, float, float]
_FRESH: Final[_State] = (False, 0.0, 0.0, 0.0, 0.0, math.inf, -1.0)


def _check_params(
    min_instances: object, delta: object, threshold: object, alpha: object, mode: object
) -> None:
    if isinstance(min_instances, bool) or not isinstance(min_instances, numbers.Integral):
        raise ValueError(f"min_instances must be an integer, got {min_instances!r}")
    if not 1 <= int(min_instances) < 2**63:
        raise ValueError(f"min_instances must be >= 1, got {min_instances!r}")
    for name, value in (("delta", delta), ("threshold", threshold), ("alpha", alpha)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} must be a real number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{name} must be finite, got {value!r}")
    assert isinstance(delta, numbers.Real)
    assert isinstance(threshold, numbers.Real)
    assert isinstance(alpha, numbers.Real)
    if float(delta) < 0.0:
        raise ValueError(f"delta must be >= 0, got {delta!r}")
    if float(threshold) <= 0.0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    if not 0.0 < float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {list(_MODES)}, got {mode!r}")


def _run(
    xs: list[float],
    state: _State,
    min_instances: float,
    delta: float,
    threshold: float,
    alpha: float,
    mode: str,
) -> tuple[_State, list[int]]:
    """Feed ``xs`` to one detector in ``state``; return the new state and detection positions."""
    inf = math.inf
    # A side that is not monitored gets an infinite threshold: ``t > inf`` is always false.
    up_threshold = inf if mode == "down" else threshold
    down_threshold = inf if mode == "up" else threshold
    drift, n, mean, s_inc, s_dec, min_inc, max_dec = state
    hits: list[int] = []
    for position, x in enumerate(xs):
        if drift:
            n = mean = s_inc = s_dec = 0.0
            min_inc = inf
            max_dec = -1.0
            drift = False
        n += 1.0
        mean += (1.0 / n) * (x - mean)
        dev = x - mean
        s_inc = alpha * s_inc + dev - delta
        s_dec = alpha * s_dec + dev + delta
        if s_inc < min_inc:
            min_inc = s_inc
        if s_dec > max_dec:
            max_dec = s_dec
        if n >= min_instances and (
            s_inc - min_inc > up_threshold or max_dec - s_dec > down_threshold
        ):
            drift = True
            hits.append(position)
    return (drift, n, mean, s_inc, s_dec, min_inc, max_dec), hits


def _as_vector(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {array.shape}")
    return array


def _pack_params(
    magic: bytes, min_instances: int, delta: float, threshold: float, alpha: float, mode: str
) -> bytes:
    return _PARAMS.pack(
        magic,
        _VERSION,
        int(min_instances),
        float(delta),
        float(threshold),
        float(alpha),
        _MODES.index(mode),
    )


def _unpack_params(magic: bytes, data: bytes) -> tuple[int, float, float, float, str]:
    try:
        got, version, min_instances, delta, threshold, alpha, mode = _PARAMS.unpack_from(data)
    except (struct.error, TypeError) as exc:
        raise ValueError("not a Page-Hinkley state: too short") from exc
    if got != magic:
        raise ValueError("not a Page-Hinkley state: bad magic")
    if version != _VERSION:
        raise ValueError(f"unsupported Page-Hinkley state version {version}")
    if mode >= len(_MODES):
        raise ValueError("corrupt Page-Hinkley state: mode")
    return min_instances, delta, threshold, alpha, _MODES[mode]


class PageHinkley:
    """Page-Hinkley test for changes in the mean, exactly as river 0.26.1.

    Parameters
    ----------
    min_instances
        Values seen before a change can be detected (>= 1).
    delta
        Magnitude of changes tolerated (>= 0).
    threshold
        Detection threshold, lambda (> 0).
    alpha
        Forgetting factor of the cumulative sums, in (0, 1].
    mode
        ``"up"`` (increases), ``"down"`` (decreases) or ``"both"``.

    Notes
    -----
    ``update`` first resets the detector when the previous value was a detection, so
    ``drift_detected`` is true for exactly one step. Values are read as IEEE binary64.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(12345)
    >>> stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
    >>> PageHinkley().update_many(stream).tolist()
    [1006]
    """

    def __init__(
        self,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: str = "both",
    ) -> None:
        _check_params(min_instances, delta, threshold, alpha, mode)
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        self._state: _State = _FRESH

    @property
    def drift_detected(self) -> bool:
        """Whether a drift was detected at the last update."""
        return self._state[0]

    @property
    def n(self) -> int:
        """Values seen since the last reset (river's ``_x_mean.n``)."""
        return int(self._state[1])

    @property
    def mean(self) -> float:
        """Running mean of the values since the last reset."""
        return self._state[2]

    @property
    def test_increase(self) -> float:
        """The statistic compared to ``threshold`` for increases (``s_inc - min_inc``)."""
        return self._state[3] - self._state[5]

    @property
    def test_decrease(self) -> float:
        """The statistic compared to ``threshold`` for decreases (``max_dec - s_dec``)."""
        return self._state[6] - self._state[4]

    def update(self, x: float) -> None:
        """Consume one value (river's ``update``); read :attr:`drift_detected` after it."""
        self._state, _ = _run(
            [float(x)],
            self._state,
            self.min_instances,
            self.delta,
            self.threshold,
            self.alpha,
            self.mode,
        )

    def update_many(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Consume ``values`` in order; return the positions at which a drift was detected.

        Identical to calling :meth:`update` once per value (NaN is a value here, as in river).
        """
        xs = _as_vector(values).tolist()
        self._state, hits = _run(
            xs,
            self._state,
            self.min_instances,
            self.delta,
            self.threshold,
            self.alpha,
            self.mode,
        )
        return np.array(hits, dtype=np.int64)

    def to_bytes(self) -> bytes:
        """Serialise parameters and state (format ``DLPH`` v1, little-endian binary64)."""
        params = _pack_params(
            _SCALAR_MAGIC, self.min_instances, self.delta, self.threshold, self.alpha, self.mode
        )
        drift, *floats = self._state
        return params + _SCALAR_STATE.pack(int(drift), *floats)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Rebuild a detector from :meth:`to_bytes`; it continues exactly where it was."""
        min_instances, delta, threshold, alpha, mode = _unpack_params(_SCALAR_MAGIC, data)
        if len(data) != _PARAMS.size + _SCALAR_STATE.size:
            raise ValueError("corrupt Page-Hinkley state: length")
        drift, n, mean, s_inc, s_dec, min_inc, max_dec = _SCALAR_STATE.unpack_from(
            data, _PARAMS.size
        )
        if drift not in (0, 1) or not (n >= 0.0 and n == int(n)):
            raise ValueError("corrupt Page-Hinkley state: counters")
        detector = cls(min_instances, delta, threshold, alpha, mode)
        detector._state = (bool(drift), n, mean, s_inc, s_dec, min_inc, max_dec)
        return detector

    def __repr__(self) -> str:
        return (
            f"PageHinkley(min_instances={self.min_instances!r}, delta={self.delta!r}, "
            f"threshold={self.threshold!r}, alpha={self.alpha!r}, mode={self.mode!r})"
        )

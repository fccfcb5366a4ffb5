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


def _check_n_features(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"n_features must be an integer, got {value!r}")
    if not 1 <= int(value) < 2**32:
        raise ValueError(f"n_features must be in [1, 2**32), got {value!r}")


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
        # One step of `_run`, inlined: a call per value is the hot path of river-style use.
        x = float(x)
        drift, n, mean, s_inc, s_dec, min_inc, max_dec = self._state
        if drift:
            drift, n, mean, s_inc, s_dec, min_inc, max_dec = _FRESH
        n += 1.0
        mean += (1.0 / n) * (x - mean)
        dev = x - mean
        alpha = self.alpha
        s_inc = alpha * s_inc + dev - self.delta
        s_dec = alpha * s_dec + dev + self.delta
        if s_inc < min_inc:
            min_inc = s_inc
        if s_dec > max_dec:
            max_dec = s_dec
        if n >= self.min_instances:
            mode = self.mode
            threshold = self.threshold
            drift = (mode != "down" and s_inc - min_inc > threshold) or (
                mode != "up" and max_dec - s_dec > threshold
            )
        self._state = (drift, n, mean, s_inc, s_dec, min_inc, max_dec)

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
        if drift not in (0, 1) or not (math.isfinite(n) and n >= 0.0 and n == int(n)):
            raise ValueError("corrupt Page-Hinkley state: counters")
        detector = cls(min_instances, delta, threshold, alpha, mode)
        detector._state = (bool(drift), n, mean, s_inc, s_dec, min_inc, max_dec)
        return detector

    def __repr__(self) -> str:
        return (
            f"PageHinkley(min_instances={self.min_instances!r}, delta={self.delta!r}, "
            f"threshold={self.threshold!r}, alpha={self.alpha!r}, mode={self.mode!r})"
        )


class PageHinkleyBank:
    """``n_features`` independent :class:`PageHinkley` detectors, one per column.

    Parameters
    ----------
    n_features
        Number of detectors (columns), >= 1.
    min_instances, delta, threshold, alpha, mode
        As for :class:`PageHinkley`, shared by all detectors.

    Notes
    -----
    A NaN cell means "no value for this feature at this row": that feature's detector is
    not updated there (its ``drift_detected`` flag stays up until its next value, which
    starts its fresh state). Each column therefore behaves exactly like a scalar
    :class:`PageHinkley` fed that column's non-NaN values, with positions as row indices.

    Two exact implementations exist: column by column with the scalar loop, and numpy
    across features with a loop over rows. The numpy form pays ~20 ufunc calls per row,
    so it only wins for wide banks; it is used from ``vectorise_from`` features on.

    Examples
    --------
    >>> import numpy as np
    >>> bank = PageHinkleyBank(2, threshold=5.0)
    >>> rows = np.column_stack([np.r_[np.zeros(50), np.ones(50) * 3], np.full(100, np.nan)])
    >>> [hits.tolist() for hits in bank.update_many(rows)]
    [[51], []]
    """

    vectorise_from: int = 64
    """Smallest ``n_features`` for which :meth:`update_many` uses the numpy form."""

    def __init__(
        self,
        n_features: int,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
        mode: str = "both",
    ) -> None:
        _check_n_features(n_features)
        _check_params(min_instances, delta, threshold, alpha, mode)
        self.n_features = n_features
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        size = int(n_features)
        self._drift: npt.NDArray[np.bool_] = np.zeros(size, dtype=np.bool_)
        self._n: npt.NDArray[np.float64] = np.zeros(size)
        self._mean: npt.NDArray[np.float64] = np.zeros(size)
        self._s_inc: npt.NDArray[np.float64] = np.zeros(size)
        self._s_dec: npt.NDArray[np.float64] = np.zeros(size)
        self._min_inc: npt.NDArray[np.float64] = np.full(size, math.inf)
        self._max_dec: npt.NDArray[np.float64] = np.full(size, -1.0)

    @property
    def drift_detected(self) -> npt.NDArray[np.bool_]:
        """Per feature: whether a drift was detected at that feature's last update."""
        return self._drift.copy()

    @property
    def n(self) -> npt.NDArray[np.int64]:
        """Per feature: values seen since that detector's last reset."""
        return self._n.astype(np.int64)

    @property
    def mean(self) -> npt.NDArray[np.float64]:
        """Per feature: running mean since the last reset."""
        return self._mean.copy()

    @property
    def test_increase(self) -> npt.NDArray[np.float64]:
        """Per feature: ``s_inc - min_inc``, compared to ``threshold`` for increases."""
        return self._s_inc - self._min_inc

    @property
    def test_decrease(self) -> npt.NDArray[np.float64]:
        """Per feature: ``max_dec - s_dec``, compared to ``threshold`` for decreases."""
        return self._max_dec - self._s_dec

    def update(self, row: npt.ArrayLike) -> None:
        """Consume one row of ``n_features`` values (NaN: no value for that feature)."""
        self.update_many(np.asarray(row, dtype=np.float64).reshape(1, -1))

    def update_many(self, rows: npt.ArrayLike) -> list[npt.NDArray[np.int64]]:
        """Consume a ``(T, n_features)`` matrix row by row.

        Returns, per feature, the row indices at which that feature's detector fired.
        """
        matrix = np.asarray(rows, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != self.n_features:
            raise ValueError(
                f"rows must have shape (T, {self.n_features}), got shape {matrix.shape}"
            )
        if self.n_features >= self.vectorise_from:
            return self._update_across_features(matrix)
        return self._update_by_column(matrix)

    def _update_by_column(self, matrix: npt.NDArray[np.float64]) -> list[npt.NDArray[np.int64]]:
        present = ~np.isnan(matrix)
        complete = np.all(present, axis=0)
        states = zip(
            self._drift.tolist(),
            self._n.tolist(),
            self._mean.tolist(),
            self._s_inc.tolist(),
            self._s_dec.tolist(),
            self._min_inc.tolist(),
            self._max_dec.tolist(),
            strict=True,
        )
        params = (self.min_instances, self.delta, self.threshold, self.alpha, self.mode)
        new_states: list[_State] = []
        hits_per_feature: list[npt.NDArray[np.int64]] = []
        for feature, state in enumerate(states):
            column = matrix[:, feature]
            if complete[feature]:
                new_state, hits = _run(column.tolist(), state, *params)
                hits_per_feature.append(np.array(hits, dtype=np.int64))
            else:
                rows_present = np.flatnonzero(present[:, feature])
                new_state, hits = _run(column[rows_present].tolist(), state, *params)
                hits_per_feature.append(rows_present[np.array(hits, dtype=np.intp)])
            new_states.append(new_state)
        columns = list(zip(*new_states, strict=True))
        self._drift = np.array(columns[0], dtype=np.bool_)
        self._n, self._mean, self._s_inc, self._s_dec, self._min_inc, self._max_dec = (
            np.array(values, dtype=np.float64) for values in columns[1:]
        )
        return [hits.astype(np.int64) for hits in hits_per_feature]

    def _update_across_features(
        self, matrix: npt.NDArray[np.float64]
    ) -> list[npt.NDArray[np.int64]]:
        inf = math.inf
        alpha = float(self.alpha)
        delta = float(self.delta)
        up_threshold = inf if self.mode == "down" else float(self.threshold)
        down_threshold = inf if self.mode == "up" else float(self.threshold)
        min_instances = float(self.min_instances)
        present = ~np.isnan(matrix)
        row_complete = np.all(present, axis=1).tolist()
        drift, n, mean = self._drift.copy(), self._n.copy(), self._mean.copy()
        s_inc, s_dec = self._s_inc.copy(), self._s_dec.copy()
        min_inc, max_dec = self._min_inc.copy(), self._max_dec.copy()
        size = drift.shape[0]
        new_n, new_mean, new_s_inc, new_s_dec = (np.empty(size) for _ in range(4))
        dev, tmp = np.empty(size), np.empty(size)
        up, down = np.empty(size, dtype=np.bool_), np.empty(size, dtype=np.bool_)
        fired = np.zeros(matrix.shape, dtype=np.bool_)
        for t, complete in enumerate(row_complete):
            x = matrix[t]
            mask = present[t]
            if drift.any():
                reset = drift & mask
                n[reset] = 0.0
                mean[reset] = 0.0
                s_inc[reset] = 0.0
                s_dec[reset] = 0.0
                min_inc[reset] = inf
                max_dec[reset] = -1.0
                drift[reset] = False
            np.add(n, 1.0, out=new_n)
            np.subtract(x, mean, out=tmp)
            np.divide(1.0, new_n, out=dev)
            np.multiply(dev, tmp, out=tmp)
            np.add(mean, tmp, out=new_mean)
            np.subtract(x, new_mean, out=dev)
            np.multiply(alpha, s_inc, out=new_s_inc)
            np.add(new_s_inc, dev, out=new_s_inc)
            np.subtract(new_s_inc, delta, out=new_s_inc)
            np.multiply(alpha, s_dec, out=new_s_dec)
            np.add(new_s_dec, dev, out=new_s_dec)
            np.add(new_s_dec, delta, out=new_s_dec)
            if complete:
                n, new_n = new_n, n
                mean, new_mean = new_mean, mean
                s_inc, new_s_inc = new_s_inc, s_inc
                s_dec, new_s_dec = new_s_dec, s_dec
                # fmin/fmax keep the old extreme when the new sum is NaN, like river's `<`.
                np.fmin(min_inc, s_inc, out=min_inc)
                np.fmax(max_dec, s_dec, out=max_dec)
            else:
                np.copyto(n, new_n, where=mask)
                np.copyto(mean, new_mean, where=mask)
                np.copyto(s_inc, new_s_inc, where=mask)
                np.copyto(s_dec, new_s_dec, where=mask)
                np.fmin(min_inc, s_inc, out=min_inc, where=mask)
                np.fmax(max_dec, s_dec, out=max_dec, where=mask)
            np.subtract(s_inc, min_inc, out=tmp)
            np.greater(tmp, up_threshold, out=up)
            np.subtract(max_dec, s_dec, out=tmp)
            np.greater(tmp, down_threshold, out=down)
            np.logical_or(up, down, out=up)
            np.greater_equal(n, min_instances, out=down)
            np.logical_and(up, down, out=up)
            if not complete:
                np.logical_and(up, mask, out=up)
            drift |= up
            fired[t] = up
        self._drift, self._n, self._mean = drift, n, mean
        self._s_inc, self._s_dec, self._min_inc, self._max_dec = s_inc, s_dec, min_inc, max_dec
        return [np.flatnonzero(fired[:, f]).astype(np.int64) for f in range(size)]

    def to_bytes(self) -> bytes:
        """Serialise parameters and state (format ``DLPB`` v1, little-endian binary64)."""
        params = _pack_params(
            _BANK_MAGIC, self.min_instances, self.delta, self.threshold, self.alpha, self.mode
        )
        arrays = (self._n, self._mean, self._s_inc, self._s_dec, self._min_inc, self._max_dec)
        return b"".join(
            [
                params,
                _BANK_SIZE.pack(int(self.n_features)),
                self._drift.astype(np.uint8).tobytes(),
                *(a.astype("<f8").tobytes() for a in arrays),
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Rebuild a bank from :meth:`to_bytes`; it continues exactly where it was."""
        min_instances, delta, threshold, alpha, mode = _unpack_params(_BANK_MAGIC, data)
        try:
            (size,) = _BANK_SIZE.unpack_from(data, _PARAMS.size)
        except struct.error as exc:
            raise ValueError("corrupt Page-Hinkley bank state: size") from exc
        offset = _PARAMS.size + _BANK_SIZE.size
        if size < 1 or len(data) != offset + size * (1 + 6 * 8):
            raise ValueError("corrupt Page-Hinkley bank state: length")
        drift = np.frombuffer(data, dtype=np.uint8, count=size, offset=offset)
        if np.any(drift > 1):
            raise ValueError("corrupt Page-Hinkley bank state: drift flags")
        floats = np.frombuffer(data, dtype="<f8", offset=offset + size).reshape(6, size)
        n = floats[0]
        if not np.all(np.isfinite(n) & (n >= 0.0) & (n == np.floor(n))):
            raise ValueError("corrupt Page-Hinkley bank state: counters")
        bank = cls(size, min_instances, delta, threshold, alpha, mode)
        bank._drift = drift.astype(np.bool_)
        bank._n, bank._mean, bank._s_inc, bank._s_dec, bank._min_inc, bank._max_dec = (
            floats[i].astype(np.float64) for i in range(6)
        )
        return bank

    def __repr__(self) -> str:
        return (
            f"PageHinkleyBank(n_features={self.n_features!r}, "
            f"min_instances={self.min_instances!r}, delta={self.delta!r}, "
            f"threshold={self.threshold!r}, alpha={self.alpha!r}, mode={self.mode!r})"
        )

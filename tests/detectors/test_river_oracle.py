"""ADWIN and Page-Hinkley against river 0.26.1, the reference, on many seeded streams.

river is run one value at a time (its own API); ours is fed random chunk splits through
``update_many``. Detection positions must be equal, and so must river's exposed state.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from river import drift as river_drift

from driftline.detectors import ADWIN, PageHinkley, PageHinkleyBank

Stream = Callable[[np.random.Generator], np.ndarray]


def _segments(rng: np.random.Generator, n_segments: int, make: Callable[..., np.ndarray]) -> Any:
    return np.concatenate([make(rng, int(rng.integers(150, 1500))) for _ in range(n_segments)])


STREAMS: dict[str, Stream] = {
    "stationary_normal": lambda rng: rng.normal(0.0, 1.0, 4000),
    "mean_shifts": lambda rng: _segments(rng, 4, lambda r, n: r.normal(r.normal(0.0, 4.0), 1.0, n)),
    "variance_changes": lambda rng: _segments(
        rng, 4, lambda r, n: r.normal(0.0, r.choice([0.1, 1.0, 10.0]), n)
    ),
    "binary_shifts": lambda rng: _segments(
        rng, 4, lambda r, n: (r.random(n) < r.uniform(0.05, 0.95)).astype(float)
    ),
    "integer_shifts": lambda rng: _segments(
        rng, 3, lambda r, n: r.integers(0, int(r.integers(2, 20)), n).astype(float)
    ),
    "heavy_tails": lambda rng: _segments(
        rng, 3, lambda r, n: r.standard_cauchy(n) + r.normal(0.0, 3.0)
    ),
    "large_magnitudes": lambda rng: _segments(
        rng, 3, lambda r, n: r.normal(r.choice([-1e9, 1e9, 1e12]), 1e6, n)
    ),
    "slow_trend": lambda rng: np.linspace(0.0, 5.0, 3000) + rng.normal(0.0, 1.0, 3000),
}
DRIFTING = [name for name in STREAMS if name not in ("stationary_normal",)]

ADWIN_PARAMS: list[dict[str, Any]] = [
    {},
    {"delta": 0.1, "clock": 1, "grace_period": 0, "min_window_length": 1, "max_buckets": 2},
    {"delta": 0.5, "clock": 7, "grace_period": 3, "min_window_length": 3, "max_buckets": 3},
    {"delta": 1e-5, "clock": 16, "grace_period": 100, "min_window_length": 20, "max_buckets": 9},
]
PH_PARAMS: list[dict[str, Any]] = [
    {},
    {"threshold": 5.0, "mode": "up", "min_instances": 5},
    {"threshold": 3.0, "mode": "down", "delta": 0.0, "alpha": 1.0},
    {"threshold": 2.0, "mode": "both", "min_instances": 1, "alpha": 0.9, "delta": 0.05},
    {"threshold": 20, "delta": 0, "alpha": 1},
]


def random_chunks(values: np.ndarray, rng: random.Random) -> Iterator[tuple[int, np.ndarray]]:
    """Split ``values`` at random: empty chunks, chunks of one and long chunks."""
    start = 0
    while start < len(values):
        size = rng.choice([0, 1, 1, 2, rng.randint(3, 50), rng.randint(50, 2000)])
        yield start, values[start : start + size]
        start += size
    yield start, values[start:]


def river_positions(detector: Any, values: np.ndarray) -> list[int]:
    positions = []
    for i, x in enumerate(values.tolist()):
        detector.update(x)
        if detector.drift_detected:
            positions.append(i)
    return positions


def chunked_positions(detector: Any, values: np.ndarray, seed: int) -> list[int]:
    positions: list[int] = []
    for start, chunk in random_chunks(values, random.Random(seed)):
        positions.extend(start + int(p) for p in detector.update_many(chunk))
    return positions


@pytest.mark.parametrize("params", ADWIN_PARAMS, ids=lambda p: str(sorted(p.items())))
@pytest.mark.parametrize("stream", list(STREAMS))
def test_adwin_matches_river(stream: str, params: dict[str, Any]) -> None:
    detected = 0
    for seed in range(3):
        values = STREAMS[stream](np.random.default_rng([seed, len(stream)]))
        reference = river_drift.ADWIN(**params)
        expected = river_positions(reference, values)
        ours = ADWIN(**params)
        assert chunked_positions(ours, values, seed) == expected
        assert (ours.width, ours.total, ours.variance) == (
            reference.width,
            reference.total,
            reference.variance,
        )
        assert ours.estimation == reference.estimation
        assert ours.n_detections == reference.n_detections
        assert ours.drift_detected == reference.drift_detected
        detected += len(expected)
    if stream in ("mean_shifts", "binary_shifts", "large_magnitudes"):
        assert detected > 0, "river found no drift: the stream does not exercise detection"


@pytest.mark.parametrize("params", ADWIN_PARAMS, ids=lambda p: str(sorted(p.items())))
@pytest.mark.parametrize("stream", ["mean_shifts", "binary_shifts", "large_magnitudes"])
def test_adwin_window_at_each_detection_matches_river(stream: str, params: dict[str, Any]) -> None:
    """The shrunk window is only visible at the detecting step (the next one resets)."""
    values = STREAMS[stream](np.random.default_rng([11, len(stream)]))
    reference = river_drift.ADWIN(**params)
    windows = []
    for x in values.tolist():
        reference.update(x)
        if reference.drift_detected:
            windows.append((reference.width, reference.total, reference.variance))
    hits = ADWIN(**params).update_many(values).tolist()
    ours = ADWIN(**params)
    start, seen = 0, []
    for hit in hits:  # chunks that end exactly at each detection
        assert ours.update_many(values[start : hit + 1]).tolist() == [hit - start]
        seen.append((ours.width, ours.total, ours.variance))
        start = hit + 1
    assert seen == windows
    assert windows


@pytest.mark.parametrize("params", PH_PARAMS, ids=lambda p: str(sorted(p.items())))
@pytest.mark.parametrize("stream", list(STREAMS))
def test_page_hinkley_matches_river(stream: str, params: dict[str, Any]) -> None:
    detected = 0
    for seed in range(3):
        values = STREAMS[stream](np.random.default_rng([seed, len(stream), 7]))
        reference = river_drift.PageHinkley(**params)
        expected = river_positions(reference, values)
        ours = PageHinkley(**params)
        assert chunked_positions(ours, values, seed) == expected
        assert ours.mean == reference._x_mean.get()
        assert ours.n == reference._x_mean.n
        assert ours.drift_detected == reference.drift_detected
        if ours.n:
            assert ours.test_increase == reference._sum_increase - reference._min_increase
            assert ours.test_decrease == reference._max_decrease - reference._sum_decrease
        detected += len(expected)
    if stream in DRIFTING and stream != "variance_changes" and params:
        assert detected > 0, "river found no drift: the stream does not exercise detection"


def test_one_by_one_update_matches_river() -> None:
    values = STREAMS["mean_shifts"](np.random.default_rng(99))
    for ours, reference in (
        (ADWIN(clock=4), river_drift.ADWIN(clock=4)),
        (PageHinkley(threshold=4.0), river_drift.PageHinkley(threshold=4.0)),
    ):
        flags, expected = [], []
        for x in values.tolist():
            ours.update(x)
            reference.update(x)
            flags.append(ours.drift_detected)
            expected.append(reference.drift_detected)
        assert flags == expected
        assert any(expected)


@pytest.mark.parametrize(
    "name, column",
    [
        ("AirlinePassengers", None),
        ("Bitcoin", None),
        ("BrentSpotPrice", None),
        ("Occupancy", "V3"),
        ("RunLog", "Pace"),
    ],
)
def test_bundled_change_point_series(name: str, column: str | None) -> None:
    """river's bundled real series with annotated change points."""
    samples = [y if column is None else y[column] for _, y in getattr(river_drift.datasets, name)()]
    values = np.asarray(samples, dtype=np.float64)
    found = 0
    for ours, reference in (
        (ADWIN(), river_drift.ADWIN()),
        (ADWIN(delta=0.05, clock=1), river_drift.ADWIN(delta=0.05, clock=1)),
        (PageHinkley(), river_drift.PageHinkley()),
        (PageHinkley(threshold=5.0), river_drift.PageHinkley(threshold=5.0)),
    ):
        expected = river_positions(reference, values)
        assert chunked_positions(ours, values, seed=len(name)) == expected
        found += len(expected)
    assert found > 0


def test_river_docstring_examples() -> None:
    rng = random.Random(12345)
    stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
    assert ADWIN().update_many(stream).tolist() == [1023]
    assert PageHinkley().update_many(stream).tolist() == [1006]
    # and river itself agrees on this stream
    assert river_positions(river_drift.ADWIN(), np.asarray(stream, dtype=float)) == [1023]
    assert river_positions(river_drift.PageHinkley(), np.asarray(stream, dtype=float)) == [1006]


def test_page_hinkley_nan_and_infinity_like_river() -> None:
    values = np.r_[np.zeros(40), np.inf, np.ones(40), np.nan, np.ones(40) * 5.0]
    for params in ({}, {"threshold": 1.0, "mode": "up"}):
        assert PageHinkley(**params).update_many(values).tolist() == river_positions(
            river_drift.PageHinkley(**params), values
        )


def _bank_matrix(rng: np.random.Generator, n_rows: int, n_features: int) -> np.ndarray:
    shifts = rng.normal(0.0, 3.0, (4, n_features))
    bounds = np.sort(rng.integers(0, n_rows, 3))
    segment = np.searchsorted(bounds, np.arange(n_rows), side="right")
    matrix = rng.normal(shifts[segment], 1.0)
    matrix[rng.random(matrix.shape) < rng.uniform(0.0, 0.5, n_features)] = np.nan
    matrix[:, 0] = np.nan  # a feature that never has a value
    return matrix


@pytest.mark.parametrize("vectorised", [False, True])
@pytest.mark.parametrize("params", PH_PARAMS[1:4], ids=lambda p: p["mode"])
def test_bank_equals_scalar_page_hinkley_per_column(
    params: dict[str, Any], vectorised: bool
) -> None:
    rng = np.random.default_rng(5)
    matrix = _bank_matrix(rng, 1500, 12)
    bank = PageHinkleyBank(12, **params)
    bank.vectorise_from = 1 if vectorised else 10**9
    got: list[list[int]] = [[] for _ in range(12)]
    for start, chunk in random_chunks(matrix, random.Random(3)):
        for feature, hits in enumerate(bank.update_many(chunk)):
            got[feature].extend(start + int(h) for h in hits)
    total = 0
    for feature in range(12):
        column = matrix[:, feature]
        rows = np.flatnonzero(~np.isnan(column))
        reference = river_drift.PageHinkley(**params)
        expected = rows[river_positions(reference, column[rows])].tolist()
        assert got[feature] == expected, feature
        total += len(expected)
    assert total > 0

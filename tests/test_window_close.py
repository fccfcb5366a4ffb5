"""Closing the numeric windows of a model together gives bit for bit the per-feature results.

:class:`NumericBatch` computes the coarse-bin statistics of several features with 2-D numpy
calls; these tests compare every value with the 1-D computation using ``==`` on floats.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from driftline.detectors.distribution import psi_against, psi_against_rows, smoothed_shares
from driftline.detectors.feature_window import (
    CategoryWindow,
    NumericBatch,
    NumericWindow,
    feature_window,
    numeric_batches,
)
from driftline.detectors.reference import shares as _shares
from driftline.detectors.reference import shares_rows as _shares_rows
from driftline.findings import Finding
from driftline.profile import ProfileSource, build_profile

ALL_NUMERIC = (
    "psi",
    "jensen_shannon",
    "ks",
    "wasserstein",
    "quality_missing",
    "quality_out_of_range",
    "quality_type",
)


def _profiles(rng: np.random.Generator, features: int) -> dict[str, list[object]]:
    columns: dict[str, list[object]] = {}
    for k in range(features):
        kind = k % 4
        if kind == 0:
            values = rng.normal(rng.uniform(-50, 50), rng.uniform(0.1, 20), 3_000)
        elif kind == 1:
            values = rng.poisson(rng.uniform(0.5, 4), 3_000).astype(float)  # q1 == min
        elif kind == 2:
            values = np.round(rng.lognormal(3, 1, 3_000), 2)
        else:
            values = rng.integers(0, 3, 3_000).astype(float)  # few distinct values
        columns[f"x{k}"] = values.tolist()
    columns["c"] = rng.choice(["a", "b", "c"], 3_000).tolist()
    return columns


def _windows(seed: int, features: int) -> list[NumericWindow | CategoryWindow]:
    rng = np.random.default_rng(seed)
    profile = build_profile(
        _profiles(rng, features),
        model_id="m",
        model_version="1",
        source=ProfileSource(kind="file", sha256="0" * 64),
    )
    return [
        feature_window(feature, ALL_NUMERIC if name != "c" else ("psi",), {}, {})
        for name, feature in sorted(profile.features.items())
    ]


def _fill(window: NumericWindow, rng: np.random.Generator, size: int) -> None:
    ref = window.reference
    spread = max(ref.maximum - ref.minimum, 1.0)
    values = rng.normal((ref.minimum + ref.maximum) / 2 + rng.uniform(-1, 1) * spread, spread, size)
    if rng.uniform() < 0.5:
        values = np.round(values)
    values[rng.uniform(size=size) < rng.uniform(0, 0.3)] = np.nan
    window.bins.update(values)


@pytest.mark.parametrize("seed", range(12))
def test_batch_statistics_equal_per_feature_ones(seed: int) -> None:
    windows = _windows(seed, features=9)
    numeric = [w for w in windows if isinstance(w, NumericWindow)]
    rng = np.random.default_rng(100 + seed)
    for _ in range(5):
        for window in numeric:
            _fill(window, rng, int(rng.choice([0, 1, 7, 300, 1_000])))
        batches = numeric_batches(windows)
        assert sorted(id(w) for b in batches for w in b.windows) == sorted(map(id, numeric))
        for batch in batches:
            for window, coarse in zip(batch.windows, batch.evaluate(), strict=True):
                ref = window.reference
                folded = ref.coarse(window.bins.counts)
                assert coarse.counts.tolist() == folded.tolist()
                assert coarse.psi == psi_against(ref.coarse_smoothed, folded)  # before rounding
                assert coarse.shares == _shares(folded)
                assert coarse.total == window.bins.total
                assert (coarse.below, coarse.above) == tuple(window.bins.counts[[0, -1]])
                assert window.evaluate(1_234, coarse) == window.evaluate(1_234)
        for window in numeric:
            window.reset()


def test_psi_and_shares_rows_equal_1d_results() -> None:
    rng = np.random.default_rng(7)
    for _ in range(2_000):
        bins, rows = int(rng.integers(2, 25)), int(rng.integers(1, 30))
        reference = rng.integers(0, int(rng.choice([3, 100, 10_000])), size=(rows, bins))
        window = rng.integers(0, int(rng.choice([2, 50, 1_000, 100_000])), size=(rows, bins))
        window[rng.uniform(size=rows) < 0.1] = 0
        shares = np.stack([smoothed_shares(r) for r in reference])
        psis = psi_against_rows(shares, window).tolist()
        share_rows = _shares_rows(window, np.maximum(window.sum(axis=1), 1))
        for k in range(rows):
            assert psis[k] == psi_against(shares[k], window[k])
            assert share_rows[k] == _shares(window[k])


def test_batch_needs_one_number_of_coarse_bins() -> None:
    windows = [w for w in _windows(0, features=4) if isinstance(w, NumericWindow)]
    sizes = {len(w.reference.coarse_counts) for w in windows}
    if len(sizes) == 1:
        pytest.skip("the profiles happen to have the same number of coarse bins")
    with pytest.raises(ValueError, match="same number of coarse bins"):
        NumericBatch(windows)


def test_finding_field_order_is_the_one_monitor_passes_positionally() -> None:
    """``ModelMonitor._close_window`` builds findings with positional arguments."""
    assert [f.name for f in dataclasses.fields(Finding)] == [
        "model_id",
        "model_version",
        "feature",
        "detector",
        "statistic",
        "value",
        "sample_size",
        "window_start",
        "window_end",
        "window_count",
        "sequence",
        "event_id",
        "evidence",
    ]

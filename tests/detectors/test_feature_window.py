"""A numeric window's counts, checked against direct computation on the raw values."""

from __future__ import annotations

import numpy as np
import pytest

from driftline.detectors.feature_window import NumericWindow
from driftline.features import numeric_column
from driftline.profile import ProfileSource, build_profile


def _window(reference: list[float], detectors: tuple[str, ...]) -> NumericWindow:
    profile = build_profile(
        {"x": reference},
        model_id="m",
        model_version="1",
        source=ProfileSource(kind="file", sha256="0" * 64),
    )
    return NumericWindow(profile.features["x"], detectors, {}, {})


@pytest.mark.parametrize(
    "reference",
    [
        np.random.default_rng(1).normal(size=5_000).tolist(),
        np.random.default_rng(2).poisson(1.0, size=5_000).astype(float).tolist(),  # q1 == min
        [3.0] * 100,  # constant
    ],
    ids=["continuous", "discrete", "constant"],
)
def test_out_of_range_and_bins_equal_direct_counts(reference: list[float]) -> None:
    window = _window(reference, ("quality_out_of_range", "ks"))
    low, high = min(reference), max(reference)
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [rng.choice(reference, 700), [low, high, low - 1, high + 1, high + 1e-12, np.nan] * 40]
    )
    rng.shuffle(values)
    column = numeric_column(values.tolist(), len(values))
    window.update(column, 0, 300, 1)
    window.update(column, 300, len(values), 301)
    stats = {s.detector: s for s in window.evaluate(len(values))}
    present = values[~np.isnan(values)]
    below = int(np.count_nonzero(present < low))
    above = int(np.count_nonzero(present > high))
    evidence = stats["quality_out_of_range"].evidence
    assert (evidence["below_min"], evidence["above_max"]) == (below, above)
    assert stats["quality_out_of_range"].value == pytest.approx(
        (below + above) / present.size, abs=1e-6
    )
    fine_edges = window.reference.fine_edges
    direct = np.bincount(
        np.searchsorted(fine_edges, present, side="right"), minlength=fine_edges.size + 1
    )
    assert window.reference.fine(window.bins.counts).tolist() == direct.tolist()

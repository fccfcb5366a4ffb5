"""A small, fully controlled event stream for statistical tests of the core.

Each feature has its own random stream, so a drift injected into one feature leaves every
other feature's values exactly unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import orjson

from driftline.events import Scalar

CATEGORIES = tuple(f"c{i}" for i in range(8))
CATEGORY_SHARES = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.02])
TAIL = tuple(f"t{i:02d}" for i in range(40))
TAIL_SHARES = (1.0 / np.arange(1, 41)) / (1.0 / np.arange(1, 41)).sum()
FEATURES = ("x_normal", "x_lognormal", "x_count", "cat", "cat_tail", "flag")


@dataclass(frozen=True)
class Drift:
    feature: str
    kind: str  # mean_shift | scale | category_surge | missing_surge
    start: int


def _generate(name: str, n: int, seed: int, drifted: np.ndarray | None, kind: str) -> list[Scalar]:
    rng = np.random.default_rng([seed, FEATURES.index(name)])
    missing_rng = np.random.default_rng([seed, FEATURES.index(name), 1])
    d = np.zeros(n, bool) if drifted is None else drifted
    missing_rate = np.where(d & (kind == "missing_surge"), 0.25, 0.01)
    values: list[Scalar]
    if name == "x_normal":
        z = rng.normal(size=n)
        if kind == "mean_shift":
            z = np.where(d, z + 1.0, z)
        if kind == "scale":
            z = np.where(d, z * 2.0, z)
        values = z.tolist()
    elif name == "x_lognormal":
        values = np.round(np.exp(rng.normal(3.0, 0.8, size=n)), 2).tolist()
    elif name == "x_count":
        values = rng.poisson(3.0, size=n).tolist()
        missing_rate = np.zeros(n)
    elif name == "cat":
        shares = CATEGORY_SHARES
        surged = shares * ((1 - shares[3] - 0.25) / (1 - shares[3]))
        surged[3] = shares[3] + 0.25
        u = rng.random(n)
        normal_idx = np.searchsorted(np.cumsum(shares), u, side="right").clip(0, 7)
        surge_idx = np.searchsorted(np.cumsum(surged), u, side="right").clip(0, 7)
        idx = np.where(d & (kind == "category_surge"), surge_idx, normal_idx)
        values = [CATEGORIES[i] for i in idx]
        missing_rate = np.zeros(n)
    elif name == "cat_tail":
        idx = np.searchsorted(np.cumsum(TAIL_SHARES), rng.random(n), side="right").clip(0, 39)
        values = [TAIL[i] for i in idx]
        missing_rate = np.zeros(n)
    else:
        values = (rng.random(n) < 0.3).tolist()
        missing_rate = np.zeros(n)
    mask = missing_rng.random(n) < missing_rate
    return [None if m else v for v, m in zip(values, mask, strict=True)]


def reference_columns(n: int, seed: int = 1) -> dict[str, list[Scalar]]:
    return {name: _generate(name, n, seed, None, "") for name in FEATURES}


def event_stream(
    n: int,
    *,
    seed: int = 2,
    drift: Drift | None = None,
    model_id: str = "m",
    model_version: str = "1",
    start_time: float = 1_750_000_000.0,
    rate: float = 100.0,
    first: int = 0,
) -> list[bytes]:
    """``n`` events (indices ``first`` to ``first + n``) at ``rate`` events/s of event time."""
    index = np.arange(first, first + n)
    columns = {}
    for name in FEATURES:
        drifted = None
        kind = ""
        if drift is not None and drift.feature == name:
            drifted, kind = index >= drift.start, drift.kind
        columns[name] = _generate(name, n, seed + first, drifted, kind)
    names = list(columns)
    rows = zip(*(columns[c] for c in names), strict=True)
    dumps: Callable[[object], bytes] = orjson.dumps
    return [
        dumps(
            {
                "event_id": f"e{i}",
                "model_id": model_id,
                "model_version": model_version,
                "timestamp": (start_time + i / rate) * 1000.0,
                "features": dict(zip(names, row, strict=True)),
            }
        )
        for i, row in zip(index.tolist(), rows, strict=True)
    ]

"""Throughput of driftline's ADWIN / Page-Hinkley against river 0.26.1 one-by-one.

Run: ``.venv/bin/python load_tests/bench_detectors.py [n_values]`` (default 200,000).
Prints one table; every row also checks that the detections equal river's.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable

import numpy as np
from river import drift as river_drift

from bench_core import cpu_model
from driftline.detectors import ADWIN, PageHinkley, PageHinkleyBank

N_FEATURES = 20


def best_of(repeats: int, run: Callable[[], object]) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def river_one_by_one(detector: object, values: list[float]) -> list[int]:
    update = detector.update  # type: ignore[attr-defined]
    hits = []
    for i, x in enumerate(values):
        update(x)
        if detector.drift_detected:  # type: ignore[attr-defined]
            hits.append(i)
    return hits


def river_bank(matrix: np.ndarray) -> list[list[int]]:
    detectors = [river_drift.PageHinkley() for _ in range(matrix.shape[1])]
    hits: list[list[int]] = [[] for _ in detectors]
    for t, row in enumerate(matrix.tolist()):
        for f, (detector, x) in enumerate(zip(detectors, row, strict=True)):
            detector.update(x)
            if detector.drift_detected:
                hits[f].append(t)
    return hits


def main() -> None:
    n_values = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    rng = np.random.default_rng(20260101)
    # a drifting stream: mean shifts every 20,000 values
    means = rng.normal(0.0, 2.0, n_values // 20_000 + 1)
    values = rng.normal(np.repeat(means, 20_000)[:n_values], 1.0)
    as_list = values.tolist()
    matrix = values.reshape(-1, N_FEATURES)

    rows: list[tuple[str, str, float, int]] = []

    def record(name: str, impl: str, seconds: float, n_hits: int) -> None:
        rows.append((name, impl, n_values / seconds, n_hits))

    t, expected = best_of(1, lambda: river_one_by_one(river_drift.ADWIN(), as_list))
    record("ADWIN", "river 0.26.1 update()", t, len(expected))  # type: ignore[arg-type]
    t, got = best_of(3, lambda: ADWIN().update_many(values).tolist())
    assert got == expected
    record("ADWIN", "driftline update_many", t, len(got))  # type: ignore[arg-type]

    t, expected = best_of(1, lambda: river_one_by_one(river_drift.PageHinkley(), as_list))
    record("PageHinkley", "river 0.26.1 update()", t, len(expected))  # type: ignore[arg-type]
    t, got = best_of(3, lambda: PageHinkley().update_many(values).tolist())
    assert got == expected
    record("PageHinkley", "driftline update_many", t, len(got))  # type: ignore[arg-type]
    t, got = best_of(1, lambda: river_one_by_one(PageHinkley(), as_list))
    assert got == expected
    record("PageHinkley", "driftline update()", t, len(got))  # type: ignore[arg-type]

    bank_name = f"PH bank F={N_FEATURES}"
    t, expected_bank = best_of(1, lambda: river_bank(matrix))
    n_bank = sum(len(h) for h in expected_bank)  # type: ignore[union-attr]
    record(bank_name, "river: F detectors, update()", t, n_bank)
    for label, vectorise_from in (
        ("driftline bank, per column", 10**9),
        ("driftline bank, numpy across F", 1),
    ):

        def run(vectorise_from: int = vectorise_from) -> list[list[int]]:
            bank = PageHinkleyBank(N_FEATURES)
            bank.vectorise_from = vectorise_from
            return [h.tolist() for h in bank.update_many(matrix)]

        t, got = best_of(3, run)
        assert got == expected_bank
        record(bank_name, label, t, n_bank)

    print(f"machine: {cpu_model()}, {platform.machine()}")
    print(f"python:  {platform.python_version()} ({platform.python_implementation()})")
    print(f"values:  {n_values:,} per row (bank: {n_values // N_FEATURES:,} rows x {N_FEATURES})")
    print()
    print(f"| {'detector':<16} | {'implementation':<32} | {'values/s':>12} | {'detections':>10} |")
    print(f"|{'-' * 18}|{'-' * 34}|{'-' * 13}:|{'-' * 11}:|")
    for name, impl, rate, n_hits in rows:
        print(f"| {name:<16} | {impl:<32} | {rate:>12,.0f} | {n_hits:>10} |")


if __name__ == "__main__":
    main()

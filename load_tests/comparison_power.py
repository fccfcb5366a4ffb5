"""Champion vs challenger: false verdicts between equal versions (A/A) and the pairs it
takes to find a better challenger, paired (shadow traffic) and unpaired (split traffic).

Run: ``PYTHONPATH=src:. .venv/bin/python load_tests/comparison_power.py [--streams 1000]
[--pairs 100000]``. Prints one markdown table with the machine. The streams and the
statistics are those of the tests (``tests/comparisons/simulation.py``): 0/1 errors, the
confidence sequence and the verdict rule of ``driftline.comparisons`` at their defaults
(alpha 0.05, min_effect 0.01, min_pairs 100). Baseline (same streams, same run): a fixed-n
two-sided z test of the difference, *peeked at* every 100 pairs, as a dashboard user would.

Last row: the cost in the core. ``Pipeline.process`` over the shadow-traffic stream of
``tests/comparisons/test_pipeline_comparisons.py`` (two versions, every request scored by
both, labels as feedback), with and without the comparison configured (best CPU time of 3).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from tests.comparisons.simulation import clopper_pearson, error_streams, first_verdicts
from tests.comparisons.test_pipeline_comparisons import CONFIG, _profile, stream

from bench_core import cpu_model
from driftline.config import parse_settings
from driftline.pipeline import Pipeline
from driftline.planning import build_plan

ALPHA, MIN_EFFECT, MIN_PAIRS = 0.05, 0.01, 100
Z = 1.959963984540054


def peeking_z_test(champion: np.ndarray, challenger: np.ndarray) -> bool:
    """Whether a z test at level alpha, looked at every 100 pairs, ever rejects."""
    d = champion - challenger
    n = np.arange(1, d.size + 1)
    mean = np.cumsum(d) / n
    var = np.maximum(np.cumsum(d * d) / n - mean * mean, 1e-12)
    looks = n[MIN_PAIRS - 1 :: 100] - 1
    return bool(np.any(np.abs(mean[looks]) / np.sqrt(var[looks] / n[looks]) > Z))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=100_000, help="pairs per A/A stream")
    parser.add_argument("--power-streams", type=int, default=200)
    parser.add_argument("--power-pairs", type=int, default=60_000)
    parser.add_argument("--overhead-requests", type=int, default=20_000)
    args = parser.parse_args()
    began = time.perf_counter()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print(
        f"alpha {ALPHA}, min_effect {MIN_EFFECT}, min_pairs {MIN_PAIRS}; error rate 20%; "
        f"paired streams couple {0.7:.0%} of requests\n"
    )
    print(
        "| traffic | case | streams x pairs | result | 95% CI "
        "| baseline (z test peeked every 100) |"
    )
    print("|---|---|---|---|---|---|")
    for paired in (True, False):
        name = "paired" if paired else "unpaired"
        rng = np.random.default_rng(2026 + paired)
        better = no_difference = peeked = 0
        reached: list[int] = []
        for _ in range(args.streams):
            champion, challenger = error_streams(rng, args.pairs, 0.2, 0.2, paired)
            first = first_verdicts(
                champion, challenger, alpha=ALPHA, min_effect=MIN_EFFECT, min_pairs=MIN_PAIRS
            )
            better += first["challenger_better"] is not None or first["champion_better"] is not None
            if first["no_difference"] is not None:
                no_difference += 1
                reached.append(first["no_difference"])
            peeked += peeking_z_test(champion, challenger)
        low, high = clopper_pearson(better, args.streams)
        print(
            f"| {name} | A/A: any `*_better` ever | {args.streams} x {args.pairs:,} | "
            f"{better / args.streams:.4f} ({better}) | [{low:.4f}, {high:.4f}] | "
            f"{peeked / args.streams:.3f} |"
        )
        median = f"{int(np.median(reached)):,}" if reached else "-"
        print(
            f"| {name} | A/A: `no_difference` (+-1 point) reached | {args.streams} x "
            f"{args.pairs:,} | {no_difference / args.streams:.3f}, median {median} pairs | | |"
        )
        rng = np.random.default_rng(7 + paired)
        found: list[float] = []
        worse = 0
        for _ in range(args.power_streams):
            champion, challenger = error_streams(rng, args.power_pairs, 0.2, 0.17, paired)
            first = first_verdicts(
                champion, challenger, alpha=ALPHA, min_effect=MIN_EFFECT, min_pairs=MIN_PAIRS
            )
            hit = first["challenger_better"]
            found.append(np.inf if hit is None else hit)
            worse += first["champion_better"] is not None
        pairs = np.array(found)
        q = {p: np.percentile(pairs, p) for p in (10, 50, 90, 99)}
        detected = np.isfinite(pairs).mean()
        print(
            f"| {name} | 20% vs 17%: pairs to `challenger_better` | {args.power_streams} x "
            f"{args.power_pairs:,} | p10 {q[10]:,.0f}, median {q[50]:,.0f}, p90 {q[90]:,.0f}, "
            f"p99 {q[99]:,.0f}; found {detected:.1%}; champion_better {worse} | | |"
        )
    print(overhead_row(args.overhead_requests))
    print(f"\n{time.perf_counter() - began:.0f} s")


def overhead_row(requests: int) -> str:
    events = stream(requests, shadow=True)
    profile = _profile()

    def cpu(config: dict[str, object]) -> float:
        best = float("inf")
        for _ in range(3):
            pipeline = Pipeline(build_plan(parse_settings(config), {0: profile}))
            began = time.process_time()
            for start in range(0, len(events), 1000):
                pipeline.process(events[start : start + 1000])
            best = min(best, time.process_time() - began)
        return best

    without = cpu({"models": CONFIG["models"]})
    with_comparison = cpu(CONFIG)
    return (
        f"| paired | core CPU, {len(events):,} events (predictions + feedback) | 1 x "
        f"{requests:,} requests | {len(events) / with_comparison:,.0f} events/s with the "
        f"comparison | | {len(events) / without:,.0f} events/s without "
        f"(x{with_comparison / without:.2f} CPU) |"
    )


if __name__ == "__main__":
    main()

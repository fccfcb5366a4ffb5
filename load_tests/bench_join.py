"""The label join: throughput, memory per pending prediction, checkpoint size and time.

Run: ``.venv/bin/python load_tests/bench_join.py [--events 400000] [--pending 1000000]``.
Prints one markdown table with the machine; both sides run in this process on the same
events.

* stream: predictions at 1,000/s of event time, each followed by its feedback label 30 s to
  10 min later (uniform), in event-time order: half the events are labels. Batches of 1,000
  events, as the pipeline hands them over.
* driftline: ``LabelJoin.process`` (hashing the ids included), default limits but
  ``max_pending`` = ``--pending``.
* naive: the obvious per-event join: a ``dict`` from event id to (time, prediction) in
  arrival order, a label pops its prediction; capacity by evicting the oldest entry; no
  horizon, no early labels (so it does less than the join). Checkpoint: ``pickle``.
* memory: 1,000,000 predictions pending, measured by tracemalloc (current and peak while
  filling) and by ``LabelJoin.memory_bytes()``. The naive side's id strings are not
  counted (the input holds them), so its real cost is higher than shown.
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import platform
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from bench_core import cpu_model
from driftline.labels import JoinInput, LabelJoin, LabelSettings

BATCH = 1_000


def labelled_stream(events: int, seed: int = 7) -> list[JoinInput]:
    """Predictions at 1,000/s, each labelled 30 s - 10 min later, in event-time order."""
    rng = np.random.default_rng(seed)
    predictions = events // 2
    prediction_time = 1.8e9 + np.arange(predictions) / 1_000.0
    label_time = prediction_time + rng.uniform(30.0, 600.0, predictions)
    times = np.concatenate([prediction_time, label_time])
    is_prediction = np.arange(2 * predictions) < predictions
    ids = np.concatenate([np.arange(predictions), np.arange(predictions)])
    order = np.argsort(times, kind="stable")
    times, is_prediction, ids = times[order], is_prediction[order], ids[order]
    names = [f"req-{i:012d}" for i in ids.tolist()]
    scores = rng.random(len(times))
    outcomes = (rng.random(len(times)) < 0.3).astype(np.float64)
    return [
        JoinInput(
            positions=np.arange(start, start + len(times[start : start + BATCH]), dtype=np.int64),
            event_ids=names[start : start + BATCH],
            timestamps=times[start : start + BATCH],
            has_prediction=is_prediction[start : start + BATCH],
            has_label=~is_prediction[start : start + BATCH],
            predictions=np.where(is_prediction, scores, np.nan)[start : start + BATCH],
            labels=np.where(is_prediction, np.nan, outcomes)[start : start + BATCH],
        )
        for start in range(0, len(times), BATCH)
    ]


def pending_stream(pending: int) -> list[JoinInput]:
    """``pending`` predictions and no labels."""
    step = 10_000
    return [
        JoinInput(
            positions=np.arange(start, start + step, dtype=np.int64),
            event_ids=[f"req-{i:012d}" for i in range(start, start + step)],
            timestamps=1.8e9 + np.arange(start, start + step) / 1_000.0,
            has_prediction=np.ones(step, np.bool_),
            has_label=np.zeros(step, np.bool_),
            predictions=np.full(step, 0.25),
            labels=np.full(step, np.nan),
        )
        for start in range(0, pending, step)
    ]


class NaiveJoin:
    """The obvious per-event dict join (the baseline)."""

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self.pending: dict[str, tuple[float, float]] = {}
        self.joined: list[tuple[float, float, float, float, int]] = []

    def process(self, batch: JoinInput) -> None:
        pending, joined = self.pending, self.joined
        for position, event_id, t, is_prediction, prediction, label in zip(
            batch.positions.tolist(),
            batch.event_ids,
            batch.timestamps.tolist(),
            batch.has_prediction.tolist(),
            batch.predictions.tolist(),
            batch.labels.tolist(),
            strict=True,
        ):
            if is_prediction:
                pending[event_id] = (t, prediction)
                if len(pending) > self.max_pending:
                    del pending[next(iter(pending))]
            else:
                found = pending.pop(event_id, None)
                if found is not None:
                    joined.append((found[1], label, found[0], t, position))


def cpu_seconds(run: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def traced(fill: Callable[[], Any]) -> tuple[Any, int, int]:
    """``fill()``'s result and the bytes tracemalloc sees it hold (current, peak)."""
    gc.collect()
    tracemalloc.start()
    result = fill()
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, current, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # The default limits, with room for --pending predictions (the default max_pending is
    # 100,000; the memory and checkpoint figures are for 1,000,000 pending).
    limits = LabelSettings(max_pending=max(args.pending, LabelSettings().max_pending)).limits()

    stream = labelled_stream(args.events)
    events = sum(len(batch) for batch in stream)

    def run_join() -> LabelJoin:
        join = LabelJoin(limits)
        for batch in stream:
            join.process(batch)
        return join

    def run_naive() -> NaiveJoin:
        naive = NaiveJoin(limits.max_pending)
        for batch in stream:
            naive.process(batch)
        return naive

    join_cpu = cpu_seconds(run_join, args.repeat)
    naive_cpu = cpu_seconds(run_naive, args.repeat)
    joined = run_join().counts.joined

    fill = pending_stream(args.pending)

    def fill_join() -> LabelJoin:
        join = LabelJoin(limits)
        for batch in fill:
            join.process(batch)
        return join

    def fill_naive() -> NaiveJoin:
        naive = NaiveJoin(limits.max_pending)
        for batch in fill:
            naive.process(batch)
        return naive

    join, join_bytes, join_peak = traced(fill_join)
    naive, naive_bytes, naive_peak = traced(fill_naive)
    assert join.counts.pending_now == len(naive.pending) == args.pending

    start = time.perf_counter()
    state = join.to_state()
    to_seconds = time.perf_counter() - start
    start = time.perf_counter()
    LabelJoin.from_state(state, limits)
    from_seconds = time.perf_counter() - start
    start = time.perf_counter()
    naive_state = pickle.dumps(naive.pending, protocol=pickle.HIGHEST_PROTOCOL)
    naive_to = time.perf_counter() - start
    start = time.perf_counter()
    pickle.loads(naive_state)
    naive_from = time.perf_counter() - start

    print(
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"stream: {events:,} events (half feedback labels, 30 s - 10 min late), batches of "
        f"{BATCH:,}, {joined:,} pairs joined; memory and checkpoint at {args.pending:,} "
        f"pending predictions; limits {limits}"
    )
    print()
    n = args.pending
    rows = [
        ("process(): events per CPU-second", events / join_cpu, events / naive_cpu, True),
        ("process(): µs per event", 1e6 * join_cpu / events, 1e6 * naive_cpu / events, False),
        ("bytes per pending prediction (tracemalloc)", join_bytes / n, naive_bytes / n, False),
        ("  peak while filling, per pending", join_peak / n, naive_peak / n, False),
        ("  LabelJoin.memory_bytes() per pending", join.memory_bytes() / n, float("nan"), False),
        ("checkpoint bytes per pending", len(state) / n, len(naive_state) / n, False),
        ("checkpoint MB", len(state) / 1e6, len(naive_state) / 1e6, False),
        ("to_state seconds", to_seconds, naive_to, False),
        ("from_state seconds", from_seconds, naive_from, False),
    ]
    print("| measure | driftline LabelJoin | naive dict join | driftline advantage (>1: better) |")
    print("|---|--:|--:|--:|")
    for label, ours, theirs, higher_is_better in rows:
        ratio = ours / theirs if higher_is_better else theirs / ours
        shown = "" if np.isnan(ratio) else f"{ratio:.2f}x"
        print(f"| {label} | {ours:,.3f} | {theirs:,.3f} | {shown} |")


if __name__ == "__main__":
    main()

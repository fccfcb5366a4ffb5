"""Checkpoint cost in state format 2 (keyed, bounded): encode time, bytes, records.

Run: ``PYTHONPATH=src .venv/bin/python load_tests/bench_state.py [--scale 1.0]``
Prints one markdown table with the machine. The encoder is pure, so no broker is needed:
each row builds one partition's :class:`~driftline.pipeline.Pipeline`, feeds it events,
and times what ``MonitorService._checkpoint`` does before sending (``take_changed``,
``version_state`` of the versions to write, ``head_state``, ``encode_parts``: zlib,
SHA-256, chunking at 1,000,000 bytes per record).

* ``1000 x 50 profiled``: 1,000 model versions with a reference profile, 50 numeric
  features, 300 events each (window 200 events).
* ``20 x 300 warm-up``: 20 unconfigured versions, 300 numeric features, warm-up 10,000
  events, halfway (5,000 events each): the raw warm-up values are the state.

For each, *full* is the first checkpoint of an epoch (every version written) and *1 %* a
checkpoint after events of 1 % of the versions (at least one). The format 1 column is
the single record the previous format wrote (``zlib(Pipeline.to_state())``); above
16 MiB it was refused by the producer (``MessageSizeTooLargeError``): the crash loop.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
import zlib

import numpy as np
import orjson

from bench_core import cpu_model
from driftline.config import parse_settings
from driftline.pipeline import Pipeline
from driftline.plan import ModelKey
from driftline.planning import build_plan
from driftline.profile import ProfileSource, build_profile
from driftline.service.checkpoints import BlobRef, EncodedCheckpoint, WriteId, encode_parts


def events(models: list[int], per_model: int, features: int, seed: int, start: int = 0):  # type: ignore[no-untyped-def]
    """Batches of JSON events (up to 1,000 events, one model each)."""
    rng = np.random.default_rng(seed)
    names = [f"f{j}" for j in range(features)]
    for m in models:
        for first in range(start, start + per_model, 1000):
            last = min(first + 1000, start + per_model)
            values = np.round(rng.normal(0.0, 1.0, (last - first, features)), 5).tolist()
            yield [
                orjson.dumps(
                    {
                        "event_id": f"{m}-{i}",
                        "model_id": f"model-{m}",
                        "model_version": "1",
                        "timestamp": 1_700_000_000 + i,
                        "features": dict(zip(names, row, strict=True)),
                    }
                )
                for i, row in zip(range(first, last), values, strict=True)
            ]


def checkpoint(
    pipeline: Pipeline, seq: int, previous: dict[ModelKey, BlobRef]
) -> tuple[EncodedCheckpoint, float]:
    started = time.perf_counter()
    changed = pipeline.take_changed()
    monitored = [k for k, v in pipeline.versions.items() if v is not None]
    states = {k: pipeline.version_state(k) for k in monitored if k in changed or k not in previous}
    encoded = encode_parts(
        "group",
        "input",
        0,
        WriteId(1, seq, "bench"),
        123_456,
        pipeline.head_state(),
        monitored,
        states,
        previous,
    )
    return encoded, time.perf_counter() - started


def run(name: str, pipeline: Pipeline, models: int, per_model: int, features: int) -> list[str]:
    for batch in events(list(range(models)), per_model, features, seed=1):
        pipeline.process(batch)
    started = time.perf_counter()
    v1 = len(zlib.compress(pipeline.to_state(), 1))
    v1_seconds = time.perf_counter() - started
    full, full_seconds = checkpoint(pipeline, 1, {})
    few = list(range(max(1, math.ceil(models / 100))))
    for batch in events(few, 20, features, seed=2, start=per_model):
        pipeline.process(batch)
    small, small_seconds = checkpoint(pipeline, 2, full.refs)
    mib = 1024 * 1024
    rows = []
    for label, enc, seconds in (("full", full, full_seconds), ("1 %", small, small_seconds)):
        rows.append(
            f"| {name} | {label} | {enc.versions_written} | {seconds * 1000:,.0f} ms "
            f"| {enc.bytes / mib:,.2f} MiB | {enc.records:,} | {enc.largest:,} B "
            f"| {v1 / mib:,.2f} MiB in {v1_seconds * 1000:,.0f} ms |"
        )
    return rows


def profiled(models: int) -> Pipeline:
    rng = np.random.default_rng(0)
    columns = {f"f{j}": rng.normal(0.0, 1.0, 5_000).tolist() for j in range(50)}
    profile = build_profile(
        columns, model_id="model", model_version="1", source=ProfileSource("file", "0" * 64)
    )
    settings = parse_settings(
        {
            "window": {"events": 200},
            "limits": {"max_model_versions": max(1_000, models)},
            "models": [{"model_id": f"model-{m}"} for m in range(models)],
        }
    )
    return Pipeline(build_plan(settings, dict.fromkeys(range(models), profile)))


def warming(models: int) -> Pipeline:
    settings = parse_settings({"window": {"events": 500}, "warmup_events": 10_000})
    return Pipeline(build_plan(settings, {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the versions")
    args = parser.parse_args()
    big = max(1, round(1_000 * args.scale))
    wide = max(1, round(20 * args.scale))
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print()
    print(
        "| partition | checkpoint | versions written | encode | bytes | records "
        "| largest record | format 1: one record |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in run(f"{big} x 50 profiled", profiled(big), big, 300, 50):
        print(row, flush=True)
    for row in run(f"{wide} x 300 warm-up (half)", warming(wide), wide, 5_000, 300):
        print(row, flush=True)


if __name__ == "__main__":
    main()

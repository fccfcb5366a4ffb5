"""Core throughput and state size: `replay` vs a naive per-event, per-feature river loop.

Run: ``.venv/bin/python load_tests/bench_core.py [--events 200000] [--repeat 3]``
(``make bench``). Prints one markdown table with the machine; both sides run in this
process on the same JSONL file of events with 20 numeric features.

* driftline: ``driftline.replay.replay`` from the JSONL file to written JSONL outputs, with
  the default detector set (and, as a second row, with ADWIN and Page-Hinkley added).
* naive: per line ``orjson.loads``, then per feature river's ``ADWIN.update`` and
  ``PageHinkley.update``, and one JSON line written per detection.
* state: ``Pipeline.to_state()`` bytes divided by the monitored features, after the run.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import orjson
import river
from river import drift as river_drift

from driftline.config import parse_settings
from driftline.demo.scenario import reference_rows, wide_numeric_scenario, write_events
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import ProfileSource, ReferenceProfile, build_profile
from driftline.replay import ReplaySinks, replay

FEATURES = 20


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds over ``repeat`` runs (CPU time is steadier on a
    shared machine)."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def run_driftline(
    events: Path, out_dir: Path, profile: ReferenceProfile, detectors: list[str] | None
) -> Pipeline:
    config: dict[str, object] = {"models": [{"model_id": profile.model_id}]}
    if detectors is not None:
        config["detectors"] = {"numeric": detectors}
    pipeline = Pipeline(build_plan(parse_settings(config), {0: profile}))
    with (
        (out_dir / "alerts.jsonl").open("wb") as alerts,
        (out_dir / "retrain.jsonl").open("wb") as retrain,
        (out_dir / "dead.jsonl").open("wb") as dead,
    ):
        replay(pipeline, events, ReplaySinks(alerts, retrain, dead))
    return pipeline


def run_naive(events: Path, out_dir: Path, limit: int) -> int:
    adwins: dict[str, river_drift.ADWIN] = {}
    hinkleys: dict[str, river_drift.PageHinkley] = {}
    detections = 0
    with events.open("rb") as source, (out_dir / "naive.jsonl").open("wb") as out:
        for n, line in enumerate(source):
            if n >= limit:
                break
            event = orjson.loads(line)
            for name, value in event["features"].items():
                if value is None:
                    continue
                adwin = adwins.get(name)
                if adwin is None:
                    adwin = adwins[name] = river_drift.ADWIN()
                    hinkleys[name] = river_drift.PageHinkley()
                hinkley = hinkleys[name]
                adwin.update(value)
                hinkley.update(value)
                for detector, hit in (("adwin", adwin), ("page_hinkley", hinkley)):
                    if hit.drift_detected:
                        detections += 1
                        out.write(
                            orjson.dumps(
                                {"event_id": event["event_id"], "feature": name, "d": detector}
                            )
                            + b"\n"
                        )
    return detections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--naive-events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    scenario = wide_numeric_scenario(features=FEATURES, events=args.events, prediction=False)
    reference = reference_rows(scenario, 20_000)
    profile = build_profile(
        reference,
        model_id=scenario.model_id,
        model_version=scenario.model_version,
        source=ProfileSource(kind="file", sha256="0" * 64),
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        events = root / "events.jsonl"
        write_events(scenario, events)
        size = events.stat().st_size

        state_bytes: dict[str, float] = {}
        for label, detectors in (
            ("driftline replay, default detectors", None),
            (
                "driftline replay, defaults + ADWIN + Page-Hinkley",
                [
                    "psi",
                    "quality_missing",
                    "quality_out_of_range",
                    "quality_type",
                    "adwin",
                    "page_hinkley",
                ],
            ),
        ):
            pipelines: list[Pipeline] = []
            seconds, cpu = best_of(
                args.repeat,
                lambda d=detectors, out=pipelines: out.append(  # type: ignore[misc]
                    run_driftline(events, root, profile, d)
                ),
            )
            pipeline = pipelines[-1]
            features = sum(len(m.windows) for m in pipeline.monitors().values())
            state_bytes[label] = len(pipeline.to_state()) / features
            rows.append((label, args.events, seconds, cpu))

        naive_seconds, naive_cpu = best_of(1, lambda: run_naive(events, root, args.naive_events))
        rows.append(
            (
                "naive loop: orjson + river ADWIN + PageHinkley per value",
                args.naive_events,
                naive_seconds,
                naive_cpu,
            )
        )

    naive_rate = args.naive_events / naive_cpu
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}, river {river.__version__}"
    )
    print(
        f"input: {args.events:,} events, {FEATURES} numeric features, "
        f"{size / args.events:.0f} bytes/event, epoch-ms timestamps; best of {args.repeat}"
    )
    print()
    print("| run | events | wall s | events/s (wall) | events per CPU-second | vs naive (CPU) |")
    print("|---|--:|--:|--:|--:|--:|")
    for label, n, seconds, cpu in rows:
        rate = n / cpu
        print(
            f"| {label} | {n:,} | {seconds:.2f} | {n / seconds:,.0f} | {rate:,.0f} "
            f"| {rate / naive_rate:.1f}x |"
        )
    print()
    print("| state | bytes per monitored feature |")
    print("|---|--:|")
    for label, value in state_bytes.items():
        print(f"| {label.removeprefix('driftline replay, ')} | {value:,.0f} |")


if __name__ == "__main__":
    main()

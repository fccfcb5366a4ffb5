"""Ground truth: replay throughput when half the events are feedback, and the memory and
checkpoint of 1,000,000 pending predictions in one model version.

Run: ``PYTHONPATH=src .venv/bin/python load_tests/bench_feedback.py [--predictions 200000]
[--pending 1000000] [--repeat 3]``. Prints markdown tables with the machine; every number
and its baseline are measured in this process, in the same run. The label join alone
(against a naive dict join, memory per pending prediction by tracemalloc, its own
checkpoint) is ``load_tests/bench_join.py``; this measures it inside the pipeline.

Throughput (goal: >= 150,000 events/s with half of them feedback), on JSONL of the
20-feature numeric model of ``bench_core.py`` with a probability as prediction, the profile
recording the reference performance (task, metrics, calibration), default settings:

* *feedback*: ``P`` predictions at 1,000/s of event time, each one's label a feedback event
  30 s to 10 min later, in event-time order (``2P`` events, half feedback);
* *baseline*: the same number of events, ``2P`` predictions and no feedback (ground truth
  on: every prediction waits for a label);
* *no ground truth*: ``2P`` events with the same features but no ``prediction`` field,
  profile without ``__prediction__`` nor ``__label__``: no label join nor performance at
  all (a version's task needs a prediction), close to what an event cost before issue 10.

Each is measured three ways: *core* (``Pipeline.process`` on batches of 1,000 lines already
in memory, outputs discarded), *replay()* (``driftline.replay.replay`` from the file to
JSONL outputs, in process) and *CLI* (``python -m driftline replay`` as a child process,
wall clock, interpreter start and imports included).

Pending: one version receives ``--pending`` predictions (4 numeric features) and no label.
Memory is the tracemalloc difference between that pipeline and the same one without
ground truth (the events without ``prediction``, as above), per prediction: everything
ground truth keeps for a pending prediction (the join's store and the performance
monitor's buffers).
Checkpoint: the version's state (``Pipeline.version_state``) and what ``MonitorService``
does before sending it (``encode_parts``: zlib, SHA-256, chunks), as ``bench_state.py``.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench_core import best_of, cpu_model
from driftline.config import parse_settings
from driftline.demo.scenario import (
    Scenario,
    reference_rows,
    wide_numeric_scenario,
    write_events,
)
from driftline.events import LABEL_FEATURE, PREDICTION_FEATURE
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import ProfileSource, ReferenceProfile, build_profile, save_profile
from driftline.replay import DEFAULT_BATCH_SIZE, ReplaySinks, replay
from driftline.service.checkpoints import WriteId, encode_parts

FEATURES = 20
LABEL_DELAY = (30.0, 600.0)
SRC = Path(__file__).resolve().parent.parent / "src"


def scenario(
    predictions: int, features: int, *, feedback: bool, prediction: bool = True
) -> Scenario:
    base = wide_numeric_scenario(features=features, events=predictions, prediction=prediction)
    if feedback:
        return replace(base, labels=True, label_delay=LABEL_DELAY)
    return base


def profile(features: int, *, labels: bool) -> ReferenceProfile:
    """The reference: with ``labels``, the model's features, ``__prediction__`` and
    ``__label__`` (so the reference performance); else the features only."""
    labelled = replace(scenario(1, features, feedback=False), labels=True)
    columns = reference_rows(labelled, 20_000)
    if not labels:
        del columns[LABEL_FEATURE], columns[PREDICTION_FEATURE]
    built = build_profile(
        columns,
        model_id=labelled.model_id,
        model_version=labelled.model_version,
        source=ProfileSource(kind="file", sha256="0" * 64),
    )
    assert (built.performance is not None) == labels
    return built


def pipeline(reference: ReferenceProfile) -> Pipeline:
    # labels.max_pending 1,000,000 (the default is 100,000): nothing expires in these
    # streams, and one version holds --pending predictions.
    settings = parse_settings(
        {"labels": {"max_pending": 1_000_000}, "models": [{"model_id": reference.model_id}]}
    )
    return Pipeline(build_plan(settings, {0: reference}))


def run_core(reference: ReferenceProfile, batches: list[list[bytes]]) -> Pipeline:
    monitor = pipeline(reference)
    for batch in batches:
        monitor.process(batch)
    return monitor


def run_replay(reference: ReferenceProfile, events: Path, out: Path) -> Pipeline:
    monitor = pipeline(reference)
    with (
        (out / "alerts.jsonl").open("wb") as alerts,
        (out / "retrain.jsonl").open("wb") as retrain,
        (out / "dead.jsonl").open("wb") as dead,
    ):
        replay(monitor, events, ReplaySinks(alerts, retrain, dead))
    return monitor


def run_cli(config: Path, events: Path, out: Path) -> None:
    command = [sys.executable, "-m", "driftline", "replay", str(events), "--config", str(config)]
    command += ["--alerts-out", str(out / "alerts.jsonl")]
    command += ["--retrain-out", str(out / "retrain.jsonl")]
    command += ["--dead-letters-out", str(out / "dead.jsonl")]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    subprocess.run(command, check=True, env=env, capture_output=True)


def throughput(
    predictions: int, repeat: int, root: Path
) -> list[tuple[str, int, float, float, float]]:
    """Per workload: (name, events, core CPU s, replay() CPU s, CLI wall s)."""
    labelled = profile(FEATURES, labels=True)
    unlabelled = profile(FEATURES, labels=False)
    workloads: list[tuple[str, Scenario, ReferenceProfile]] = [
        ("baseline: 2P predictions", scenario(2 * predictions, FEATURES, feedback=False), labelled),
        (
            "feedback: P predictions + P labels",
            scenario(predictions, FEATURES, feedback=True),
            labelled,
        ),
        (
            "no ground truth: 2P events without prediction",
            scenario(2 * predictions, FEATURES, feedback=False, prediction=False),
            unlabelled,
        ),
    ]
    rows = []
    for index, (name, stream, reference) in enumerate(workloads):
        events = root / f"events-{index}.jsonl"
        count = write_events(stream, events)
        lines = events.read_bytes().splitlines()
        batches = [
            lines[i : i + DEFAULT_BATCH_SIZE] for i in range(0, len(lines), DEFAULT_BATCH_SIZE)
        ]
        monitors: list[Pipeline] = []
        _, core = best_of(
            repeat, lambda r=reference, b=batches, m=monitors: m.append(run_core(r, b))
        )  # type: ignore[misc]
        check(monitors[-1], stream, reference)
        del lines, batches, monitors
        _, in_process = best_of(repeat, lambda r=reference, e=events: run_replay(r, e, root))  # type: ignore[misc]
        save_profile(reference, root / f"profile-{index}.json")
        config = root / f"config-{index}.yaml"
        config.write_text(
            "labels:\n  max_pending: 1000000\n"
            f"models:\n  - model_id: {reference.model_id}\n"
            f"    reference_profile: profile-{index}.json\n"
        )
        cli, _ = best_of(repeat, lambda c=config, e=events: run_cli(c, e, root))  # type: ignore[misc]
        rows.append((name, count, core, in_process, cli))
    # The fixed cost of the command (interpreter, imports, config and profile), on one event.
    one = root / "one.jsonl"
    one.write_bytes((root / "events-0.jsonl").open("rb").readline())
    fixed, _ = best_of(repeat, lambda: run_cli(root / "config-0.yaml", one, root))
    rows.append(("`driftline replay` of a 1-event file (fixed cost)", 1, 0.0, 0.0, fixed))
    return rows


def check(monitor: Pipeline, stream: Scenario, reference: ReferenceProfile) -> None:
    """The run did what it claims: every label joined (but those of the last predictions
    still pending), or no ground truth at all."""
    version = monitor.versions[(stream.model_id, stream.model_version)]
    assert version is not None
    truth = version.ground_truth
    if reference.performance is None:
        assert truth is None
        return
    assert truth is not None
    status = truth.status()
    if stream.label_delay is not None:
        assert status["joined"] == stream.events and status["unmatched"] == 0, status
    else:
        assert status["joined"] == 0 and status["pending_now"] == stream.events, status


def traced(fill: Callable[[], Pipeline]) -> tuple[Pipeline, int]:
    gc.collect()
    tracemalloc.start()
    result = fill()
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, current


def pending(count: int, root: Path) -> list[tuple[str, str, str]]:
    """Memory and checkpoint of one version with ``count`` predictions pending."""
    features = 4
    key = ("", "")
    measured = {}
    for labels in (True, False):
        stream = scenario(count, features, feedback=False, prediction=labels)
        key = (stream.model_id, stream.model_version)
        events = root / "pending.jsonl"
        write_events(stream, events)
        lines = events.read_bytes().splitlines()
        batches = [
            lines[i : i + DEFAULT_BATCH_SIZE] for i in range(0, len(lines), DEFAULT_BATCH_SIZE)
        ]
        del lines
        reference = profile(features, labels=labels)
        monitor, held = traced(lambda r=reference, b=batches: run_core(r, b))  # type: ignore[misc]
        version = monitor.versions[key]
        assert version is not None
        if labels:
            assert version.ground_truth is not None
            assert version.ground_truth.status()["pending_now"] == count
        started = time.perf_counter()
        state = monitor.version_state(key)
        state_seconds = time.perf_counter() - started
        started = time.perf_counter()
        encoded = encode_parts(
            "group",
            "input",
            0,
            WriteId(1, 1, "bench"),
            count,
            monitor.head_state(),
            [key],
            {key: state},
            {},
        )
        encode_seconds = time.perf_counter() - started
        join_bytes = version.ground_truth.join.memory_bytes() if version.ground_truth else 0
        measured[labels] = (
            held,
            len(state),
            state_seconds,
            encoded.bytes,
            encode_seconds,
            encoded.records,
            join_bytes,
        )
        del monitor, version
    with_gt, without = measured[True], measured[False]
    mib = 1024 * 1024
    return [
        (
            "pipeline memory (tracemalloc)",
            f"{with_gt[0] / mib:,.1f} MiB",
            f"{without[0] / mib:,.1f} MiB",
        ),
        (
            "  ground truth per pending prediction",
            f"{(with_gt[0] - without[0]) / count:,.1f} B",
            "–",
        ),
        ("  LabelJoin.memory_bytes() per pending", f"{with_gt[6] / count:,.1f} B", "–"),
        (
            "version state (Pipeline.version_state)",
            f"{with_gt[1] / mib:,.1f} MiB",
            f"{without[1] / mib:,.2f} MiB",
        ),
        ("  per pending prediction", f"{(with_gt[1] - without[1]) / count:,.1f} B", "–"),
        ("  version_state time", f"{with_gt[2] * 1000:,.0f} ms", f"{without[2] * 1000:,.0f} ms"),
        (
            "encode_parts (zlib, SHA-256, chunks): bytes",
            f"{with_gt[3] / mib:,.1f} MiB",
            f"{without[3] / mib:,.2f} MiB",
        ),
        ("  records", f"{with_gt[5]:,}", f"{without[5]:,}"),
        ("  encode time", f"{with_gt[4] * 1000:,.0f} ms", f"{without[4] * 1000:,.0f} ms"),
        (
            "  state + encode, ratio to baseline",
            f"{(with_gt[2] + with_gt[4]) / (without[2] + without[4]):,.1f}x",
            "1x",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--predictions", type=int, default=200_000, help="P")
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pending", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = throughput(args.predictions, args.repeat, root)
        print(
            f"throughput: P = {args.predictions:,}; {FEATURES} numeric features and a "
            f"probability; labels {LABEL_DELAY[0]:g} s - {LABEL_DELAY[1] / 60:g} min late; "
            f"best of {args.repeat}; core and replay() in CPU seconds, CLI in wall seconds"
        )
        print()
        print(
            "| workload | events | core events/s | vs baseline | replay() events/s "
            "| vs baseline | `driftline replay` events/s (wall) | vs baseline |"
        )
        print("|---|--:|--:|--:|--:|--:|--:|--:|")
        base = rows[0]
        *measured, (fixed_name, _, _, _, fixed) = rows
        for name, count, core, in_process, cli in measured:
            rates = (count / core, count / in_process, count / cli)
            bases = (base[1] / base[2], base[1] / base[3], base[1] / base[4])
            cells = " | ".join(
                f"{r:,.0f} | {r / b:.2f}x" for r, b in zip(rates, bases, strict=True)
            )
            print(f"| {name} | {count:,} | {cells} |", flush=True)
        print()
        marginal = " / ".join(f"{n / (cli - fixed):,.0f}" for _, n, _, _, cli in measured)
        print(
            f"{fixed_name}: {fixed:.2f} s wall; without it, `driftline replay` runs at "
            f"{marginal} events/s (the rows above, in order)"
        )
        if args.skip_pending:
            return
        print()
        print(
            f"pending: one version, {args.pending:,} predictions waiting for their label "
            "(4 numeric features)"
        )
        print()
        print("| measure | with ground truth | baseline: no ground truth |")
        print("|---|--:|--:|")
        for row in pending(args.pending, root):
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()

"""Alert detection delay and false alerts: one-window critical rule vs three windows.

Run: ``.venv/bin/python load_tests/bench_alert_delay.py [--seeds 200] [--stationary 1000000]``.
Prints two markdown tables with the machine. Both rules see the same findings: each stream
goes once through a real :class:`~driftline.pipeline.Pipeline` (default detectors, profile
of 100,000 reference rows), and its findings, in stream order, are fed to two
:class:`~driftline.policy.alerts.AlertPolicy` objects with the default settings, one with
``critical_fire_after: 1`` (the default, "new") and one with ``critical_fire_after: 3``
(every alert after ``fire_after`` windows, the rule before issue 11, "old").

* Delay: feature ``x`` ~ N(0, 1) with 1% missing values; its mean shifts by 0.25, 0.5, 1
  and 2 sd at a change point drawn uniformly in [10,000, 11,000) per seed, so it falls
  anywhere inside a 1,000-event window. The delay of a stream is the number of events from
  the first shifted event to the event that closed the window whose finding fired the
  first alert on ``x`` (the alert's ``sequence`` minus the change point); streams end
  ``--budget`` events after the change. Percentiles are over the detected streams.
* False alerts: stationary streams of ``x`` and of ``cat`` (40 categories with Zipf-like
  shares, the profile keeps the top 20 plus "other"), drawn from the reference
  distribution, with windows of 1,000 (the default), 500 and 200 events: every firing
  alert is a false one.
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from driftline.config import parse_settings
from driftline.findings import Finding
from driftline.pipeline import Pipeline
from driftline.plan import ThresholdTable
from driftline.planning import build_plan
from driftline.policy.alerts import Alert, AlertPolicy, AlertSettings
from driftline.profile import ProfileSource, ReferenceProfile, build_profile

CATEGORIES = tuple(f"c{i:02d}" for i in range(40))
CATEGORY_SHARES = (1.0 / np.arange(1, 41)) / (1.0 / np.arange(1, 41)).sum()
MISSING_RATE = 0.01
SHIFTS = (0.25, 0.5, 1.0, 2.0)
CHANGE_LOW, CHANGE_HIGH = 10_000, 11_000
RULES = {"new (critical_fire_after 1)": 1, "old (critical_fire_after 3)": 3}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def normal_column(rng: np.random.Generator, n: int, shift: np.ndarray) -> list[float | None]:  # type: ignore[type-arg]
    values = rng.normal(size=n) + shift
    missing = rng.random(n) < MISSING_RATE
    return [None if m else float(v) for v, m in zip(values, missing, strict=True)]


def category_column(rng: np.random.Generator, n: int) -> list[str]:
    index = np.searchsorted(np.cumsum(CATEGORY_SHARES), rng.random(n), side="right").clip(0, 39)
    return [CATEGORIES[i] for i in index]


def reference_profile() -> ReferenceProfile:
    rng = np.random.default_rng(1)
    n = 100_000
    return build_profile(
        {"x": normal_column(rng, n, np.zeros(n)), "cat": category_column(rng, n)},
        model_id="m",
        model_version="1",
        source=ProfileSource(kind="file", sha256="0" * 64),
    )


def encode(columns: dict[str, Sequence[object]], first: int) -> list[bytes]:
    names = list(columns)
    rows = zip(*(columns[name] for name in names), strict=True)
    return [
        orjson.dumps(
            {
                "event_id": f"e{i}",
                "model_id": "m",
                "model_version": "1",
                "timestamp": (1_750_000_000.0 + i / 100.0) * 1000.0,
                "features": dict(zip(names, row, strict=True)),
            }
        )
        for i, row in enumerate(rows, start=first)
    ]


def findings_of(
    profile: ReferenceProfile, window: int, batches: Iterator[list[bytes]]
) -> Iterator[Finding]:
    """Every finding of a fresh pipeline over ``batches``, in stream order."""
    settings = parse_settings({"models": [{"model_id": "m"}], "window": {"events": window}})
    pipeline = Pipeline(build_plan(settings, {0: profile}))
    for batch in batches:
        yield from pipeline.process(batch).findings


@dataclass
class Policies:
    """The same findings through each rule; the first firing alert of each."""

    policies: dict[str, AlertPolicy]
    firing: dict[str, list[Alert]]

    @classmethod
    def fresh(cls) -> Policies:
        policies = {
            rule: AlertPolicy(
                source="/driftline/bench",
                settings=AlertSettings(critical_fire_after=critical_fire_after),
                thresholds=ThresholdTable(),
            )
            for rule, critical_fire_after in RULES.items()
        }
        return cls(policies, {rule: [] for rule in RULES})

    def observe(self, finding: Finding) -> None:
        for rule, policy in self.policies.items():
            alerts = policy.observe(finding)
            self.firing[rule].extend(a for a in alerts if a.status == "firing")


def shifted_stream(seed: int, shift: float, change: int, total: int) -> Iterator[list[bytes]]:
    rng = np.random.default_rng([seed, int(shift * 100)])
    chunk = 10_000
    for first in range(0, total, chunk):
        n = min(chunk, total - first)
        index = np.arange(first, first + n)
        offsets = np.where(index >= change, shift, 0.0)
        yield encode({"x": normal_column(rng, n, offsets)}, first)


def stationary_stream(seed: int, total: int) -> Iterator[list[bytes]]:
    rng = np.random.default_rng([seed, 7])
    chunk = 10_000
    for first in range(0, total, chunk):
        n = min(chunk, total - first)
        columns = {"x": normal_column(rng, n, np.zeros(n)), "cat": category_column(rng, n)}
        yield encode(columns, first)


def percentile(values: list[int], q: float) -> str:
    return f"{np.percentile(values, q):,.0f}" if values else "–"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--budget", type=int, default=20_000)
    parser.add_argument("--stationary", type=int, default=1_000_000)
    args = parser.parse_args()
    profile = reference_profile()

    delays: dict[tuple[float, str], list[int]] = {}
    for shift in SHIFTS:
        for rule in RULES:
            delays[(shift, rule)] = []
        for seed in range(args.seeds):
            change = int(np.random.default_rng([seed, 99]).integers(CHANGE_LOW, CHANGE_HIGH))
            policies = Policies.fresh()
            stream = shifted_stream(seed, shift, change, change + args.budget)
            for finding in findings_of(profile, 1_000, stream):
                policies.observe(finding)
            for rule, firing in policies.firing.items():
                on_x = [a for a in firing if a.feature == "x"]
                assert all(a.sequence > change for a in on_x), "alert before the change"
                if on_x:
                    delays[(shift, rule)].append(on_x[0].sequence - change)

    false_alerts: dict[tuple[int, str], list[Alert]] = {}
    for window in (1_000, 500, 200):
        policies = Policies.fresh()
        for finding in findings_of(profile, window, stationary_stream(window, args.stationary)):
            policies.observe(finding)
        for rule, firing in policies.firing.items():
            false_alerts[(window, rule)] = firing

    print(
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"delay: {args.seeds} seeds per shift, change point uniform in "
        f"[{CHANGE_LOW:,}, {CHANGE_HIGH:,}), windows of 1,000 events, streams end "
        f"{args.budget:,} events after the change; default detectors and thresholds"
    )
    print()
    print(
        "| mean shift | rule | detected | p10 | p50 | p90 | max | within 1,000 | within 2,000 "
        "| within 3,000 |"
    )
    print("|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for shift in SHIFTS:
        for rule in RULES:
            found = delays[(shift, rule)]
            n = args.seeds
            within = [sum(d <= budget for d in found) / n for budget in (1_000, 2_000, 3_000)]
            print(
                f"| {shift:g} sd | {rule} | {len(found) / n:.0%} | {percentile(found, 10)} "
                f"| {percentile(found, 50)} | {percentile(found, 90)} "
                f"| {max(found, default=0):,} | {within[0]:.0%} | {within[1]:.0%} "
                f"| {within[2]:.0%} |"
            )
    print()
    print(
        f"false alerts: stationary streams of {args.stationary:,} events, features x "
        "(normal, 1% missing) and cat (40 categories, top 20 + other)"
    )
    print()
    print("| window (events) | rule | firing alerts | on (feature, detector, severity) |")
    print("|--:|---|--:|---|")
    for (window, rule), firing in false_alerts.items():
        where = sorted({(a.feature, a.detector, a.severity) for a in firing})
        shown = ", ".join(f"{f}/{d}/{s}" for f, d, s in where) or "–"
        print(f"| {window:,} | {rule} | {len(firing):,} | {shown} |")


if __name__ == "__main__":
    main()

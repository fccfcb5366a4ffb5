"""Digests of everything the core emits, to show a refactor changed no output byte.

Run: ``.venv/bin/python load_tests/output_digest.py > digests.json`` before and after a
change, then ``diff`` the two files. Each scenario runs ``driftline.replay`` over a
generated event file (with malformed lines mixed in) and records the SHA-256 of the alerts,
retrain requests and dead letters it wrote, of the pipeline state (``to_state``) at the end
and halfway, and of the outputs of a second pipeline restored from the halfway state.

Scenarios cover the default detectors, every detector with per-model and per-feature
thresholds, profiles learned by warm-up (with the warm-up column cap hit), labels, a
20-feature model with ADWIN and Page-Hinkley, and ignored unconfigured models.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from driftline.config import parse_settings
from driftline.demo.scenario import (
    Drift,
    credit_scoring_scenario,
    event_lines,
    wide_numeric_scenario,
    write_reference_csv,
)
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import ReferenceProfile
from driftline.profile_io import build_profile_from_file
from driftline.replay import ReplaySinks, replay

MALFORMED = (
    b'{"event_id": "bad-1", "model_id": "credit-scorer"',
    b'{"event_id": "bad-2", "model_id": "m", "model_version": "3", '
    b'"timestamp": "yesterday", "features": {"amount": 10}}',
    b'{"event_id": "bad-3", "model_id": "m", "model_version": "3", '
    b'"timestamp": 1704067200, "features": {"amount": {"value": 10}}}',
    b'{"event_id": "x", "model_id": "other", "model_version": 7, '
    b'"timestamp": 1704067200.5, "features": {"a": 1, "b": "x", "c": true}}',
    b"[1, 2, 3]",
    b'{"event_id": "y", "model_id": "", "model_version": "1", "timestamp": 1, "prediction": 1}',
)

ALL_NUMERIC = [
    "psi",
    "jensen_shannon",
    "ks",
    "wasserstein",
    "quality_missing",
    "quality_out_of_range",
    "quality_type",
    "adwin",
    "page_hinkley",
]
ALL_CATEGORICAL = [
    "psi",
    "jensen_shannon",
    "chi_square",
    "quality_missing",
    "quality_unseen_category",
]
ALL_BOOLEAN = ["psi", "jensen_shannon", "chi_square", "quality_missing", "quality_type"]


def make_pipeline(config: dict[str, Any], profiles: dict[int, ReferenceProfile]) -> Pipeline:
    """The one place that follows the core's construction API."""
    return Pipeline(build_plan(parse_settings(config), profiles))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:20]


def write_stream(lines: list[bytes], path: Path) -> None:
    with path.open("wb") as out:
        spacing = max(1, len(lines) // (len(MALFORMED) + 1))
        for i, line in enumerate(lines):
            if i and i % spacing == 0 and i // spacing <= len(MALFORMED):
                out.write(MALFORMED[i // spacing - 1] + b"\n")
            out.write(line + b"\n")


def run(
    config: dict[str, Any], profiles: dict[int, ReferenceProfile], events: Path, batch: int
) -> dict[str, Any]:
    lines = events.read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    first, second = events.with_suffix(".a"), events.with_suffix(".b")
    first.write_bytes(b"".join(lines[:half]))
    second.write_bytes(b"".join(lines[half:]))

    def once(pipeline: Pipeline, path: Path) -> dict[str, str]:
        alerts, retrain, dead = io.BytesIO(), io.BytesIO(), io.BytesIO()
        counters = replay(pipeline, path, ReplaySinks(alerts, retrain, dead), batch)
        return {
            "alerts": sha(alerts.getvalue()),
            "alert_count": str(alerts.getvalue().count(b"\n")),
            "retrain": sha(retrain.getvalue()),
            "retrain_count": str(retrain.getvalue().count(b"\n")),
            "dead_letters": sha(dead.getvalue()),
            "dead_count": str(dead.getvalue().count(b"\n")),
            "counters": sha(orjson.dumps(counters.to_state(), option=orjson.OPT_SORT_KEYS)),
            "state": sha(pipeline.to_state()),
        }

    whole = once(make_pipeline(config, profiles), events)
    split = make_pipeline(config, profiles)
    part_one = once(split, first)
    half_state = split.to_state()
    restored = make_pipeline(config, profiles)
    restored.restore(half_state)
    part_two = once(restored, second)
    return {
        "whole": whole,
        "first_half": part_one,
        "second_half_restored": part_two,
    }


def main() -> int:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        credit = credit_scoring_scenario(
            events=40_000,
            model_id="m",
            model_version="3",
            rate=100.0,
            labels=True,
            drifts=(
                Drift("amount", "mean_shift", start=12_000, magnitude=1.0),
                Drift("country", "category_surge", start=12_000, magnitude=0.25, category="BR"),
                Drift("income", "missing_surge", start=26_000, magnitude=0.25),
            ),
        )
        write_reference_csv(credit, 20_000, root / "train.csv")
        built = build_profile_from_file(
            str(root / "train.csv"), model_id="m", model_version="3", progress=False
        )
        # A profile's id covers the path it was built from: make it independent of the
        # temporary directory, so that digests compare across runs and checkouts.
        profile = replace(built, source=replace(built.source, path="train.csv"))
        credit_events = root / "credit.jsonl"
        write_stream(list(event_lines(credit)), credit_events)

        wide = wide_numeric_scenario(
            features=20,
            events=60_000,
            drifts=(
                Drift("f03", "mean_shift", start=30_000, magnitude=0.5),
                Drift("f07", "scale", start=30_000, magnitude=2.0),
            ),
        )
        wide_events = root / "wide.jsonl"
        write_stream(list(event_lines(wide)), wide_events)

        everything = {"numeric": ALL_NUMERIC, "categorical": ALL_CATEGORICAL}
        everything["boolean"] = ALL_BOOLEAN
        scenarios: list[tuple[str, dict[str, Any], dict[int, ReferenceProfile], Path, int]] = [
            ("credit_default", {"models": [{"model_id": "m"}]}, {0: profile}, credit_events, 1000),
            (
                "credit_every_detector",
                {
                    "detectors": everything,
                    "thresholds": {"ks": {"warning": 0.05, "critical": 0.1}},
                    "alerts": {"fire_after": 2, "resolve_after": 2, "runbook_url": "http://r"},
                    "retrain": {"min_drifted_features": 1, "data_quality_triggers": True},
                    "models": [
                        {
                            "model_id": "m",
                            "thresholds": {"psi": {"warning": 0.05, "critical": 0.2}},
                            "features": {
                                "income": {"thresholds": {"quality_missing": {"warning": 0.1}}},
                                "age": {"exclude": True},
                                "amount": {"detectors": ["psi", "adwin", "page_hinkley"]},
                            },
                        }
                    ],
                },
                {0: profile},
                credit_events,
                777,
            ),
            (
                "credit_warmup",
                {"warmup_events": 5000, "window": {"events": 500}},
                {},
                credit_events,
                1000,
            ),
            (
                "credit_warmup_capped",
                {"warmup_events": 2000, "limits": {"max_warmup_values": 11_000}},
                {},
                credit_events,
                500,
            ),
            (
                "credit_duration_window",
                {"window": {"duration_seconds": 15.0}, "models": [{"model_id": "m"}]},
                {0: profile},
                credit_events,
                1000,
            ),
            (
                "credit_ignore_unconfigured",
                {"unconfigured_models": "ignore", "models": [{"model_id": "zzz"}]},
                {},
                credit_events,
                1000,
            ),
            (
                "wide_stream_detectors",
                {
                    "warmup_events": 10_000,
                    "detectors": {"numeric": ["psi", "adwin", "page_hinkley", "ks"]},
                },
                {},
                wide_events,
                1000,
            ),
        ]
        for name, config, profiles, events, batch in scenarios:
            out[name] = run(config, profiles, events, batch)
            print(name, out[name]["whole"]["alert_count"], file=sys.stderr)
    sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

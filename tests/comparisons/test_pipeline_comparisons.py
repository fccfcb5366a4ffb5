"""Champion vs challenger through the whole core: two versions of one model scored on the
same traffic (shadow, with ``request_id``) or on split traffic, labels as feedback events;
comparison events out of :meth:`Pipeline.process`, independent of batches and restores."""

from __future__ import annotations

import heapq
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.cli import main
from driftline.config import parse_settings
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from tests.test_ground_truth import _profile, _sigmoid

START = 1_700_000_000.0
RATE = 10.0


def stream(
    requests: int, *, shadow: bool, seed: int = 3, shadow_share: float | None = None
) -> list[bytes]:
    """Version 1 (champion) predicts from a noisy view of x, version 2 from x itself (it is
    better); labels come back per version 30 s to 10 min later. Shadow: both versions score
    every request (same ``request_id``); else each request goes to one version;
    ``shadow_share``: that share of requests in shadow, the others split."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=requests)
    noisy = x + rng.normal(scale=1.2, size=requests)
    y = (rng.random(requests) < _sigmoid(2 * x)).astype(int)
    times = START + np.arange(requests) / RATE
    events: list[tuple[float, int, dict[str, Any]]] = []
    for i in range(requests):
        shared = shadow if shadow_share is None else bool(rng.random() < shadow_share)
        versions = ("1", "2") if shared else (("1", "2")[int(rng.integers(2))],)
        for version in versions:
            p = _sigmoid(2 * (noisy[i] if version == "1" else x[i]))
            base = {"event_id": f"{version}-{i}", "model_id": "m", "model_version": version}
            prediction = {**base, "timestamp": float(times[i]), "prediction": float(p)}
            prediction["features"] = {"x": float(x[i])}
            if shared:
                prediction["request_id"] = f"r{i}"
            events.append((float(times[i]), len(events), prediction))
            label_time = float(times[i] + rng.uniform(30, 600))
            if label_time <= times[-1]:
                label = {**base, "timestamp": label_time, "label": int(y[i])}
                events.append((label_time, len(events), label))
    ordered = heapq.nsmallest(len(events), events)
    return [orjson.dumps(e) for _, _, e in ordered]


CONFIG = {
    "models": [{"model_id": "m"}],
    "comparisons": [{"model_id": "m", "champion": "1", "challenger": "2"}],
}


def _pipeline() -> Pipeline:
    return Pipeline(build_plan(parse_settings(CONFIG), {0: _profile()}))


def _run(pipeline: Pipeline, events: list[bytes], batch: int) -> list[bytes]:
    out: list[bytes] = []
    for start in range(0, len(events), batch):
        result = pipeline.process(events[start : start + batch])
        assert result.dead_letters == []
        out += [c.to_json() for c in result.comparisons]
    return out


@pytest.fixture(scope="module", params=[True, False], ids=["shadow", "split"])
def traffic(request: pytest.FixtureRequest) -> tuple[bool, list[bytes]]:
    shadow = bool(request.param)
    return shadow, stream(12_000 if shadow else 20_000, shadow=shadow)


def test_the_better_challenger_is_found(traffic: tuple[bool, list[bytes]]) -> None:
    shadow, events = traffic
    pipeline = _pipeline()
    out = [orjson.loads(e) for e in _run(pipeline, events, 1_000)]
    assert [e["data"]["verdict"] for e in out] == ["challenger_better"]
    data = out[0]["data"]
    assert data["champion_metric"] > data["challenger_metric"]
    assert (data["paired"] == data["pairs"]) is shadow
    (status,) = pipeline.comparisons.status()
    assert status["verdict"] == "challenger_better"
    assert status["pairs"] > data["pairs"] and status["expired"] < 50
    if shadow:
        assert status["predictions"]["agreement"]["requests"] > 11_000


@pytest.mark.parametrize("batch", [337, 2_500])
def test_outputs_and_state_do_not_depend_on_batches_nor_on_a_restore(
    traffic: tuple[bool, list[bytes]], batch: int
) -> None:
    _, events = traffic
    reference = _pipeline()
    whole = _run(reference, events, 1_000)
    assert whole
    assert _run(_pipeline(), events, batch) == whole
    cut = len(events) // 3  # before the verdict: pairs waiting, requests remembered
    first = _pipeline()
    before = _run(first, events[:cut], batch)
    second = _pipeline()
    assert second.restore(first.to_state()).alerts == []
    assert before + _run(second, events[cut:], batch) == whole
    # (The whole state's bytes differ for another reason: a restored firing alert's event
    # keys come back sorted. The comparison's state is exact.)
    assert _comparison_states(second) == _comparison_states(reference)
    # The service's checkpoint in parts (a head and one record per version) too.
    third = _pipeline()
    third.restore_parts(first.head_state(), {k: first.version_state(k) for k in first.versions})
    assert before + _run(third, events[cut:], batch) == whole
    assert _comparison_states(third) == _comparison_states(reference)


def _comparison_states(pipeline: Pipeline) -> bytes:
    return orjson.dumps([c.to_state() for c in pipeline.comparisons.comparisons])


def test_replay_writes_comparison_events_to_comparisons_out(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(stream(6_000, shadow=True)) + b"\n")
    profile = tmp_path / "profile.json"
    profile.write_bytes(_profile().to_json())
    config = tmp_path / "driftline.yaml"
    config.write_text(
        "models: [{model_id: m, reference_profile: profile.json}]\n"
        "comparisons: [{model_id: m, champion: '1', challenger: '2'}]\n"
    )
    out = tmp_path / "comparisons.jsonl"
    argv = ["replay", str(events), "-c", str(config), "--alerts-out", str(tmp_path / "a")]
    assert main([*argv, "--comparisons-out", str(out)]) == 0
    written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [e["data"]["verdict"] for e in written] == ["challenger_better"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("comparisons: [{model_id: m, champion: '1', challenger: 1}]\n")
    assert main(["replay", str(events), "-c", str(bad)]) == 2


PROFILE = _profile()
MIXED = stream(6_000, shadow=False, shadow_share=0.5, seed=9)
TIGHT = {
    "models": [{"model_id": "m"}],
    "comparisons": [
        {
            "model_id": "m",
            "champion": "1",
            "challenger": "2",
            "min_pairs": 20,
            "max_waiting": 200,
            "max_wait_seconds": 300,
            "max_pending_requests": 1_000,
        }
    ],
}


def _tight_run(cuts: list[int], restore_at: int | None) -> tuple[list[bytes], bytes]:
    """Run MIXED cut at ``cuts`` (and restored from a checkpoint at ``restore_at``)."""
    plan = build_plan(parse_settings(TIGHT), {0: PROFILE})
    pipeline = Pipeline(plan)
    out: list[bytes] = []
    bounds = sorted({0, len(MIXED), *cuts, *(() if restore_at is None else (restore_at,))})
    for a, b in itertools.pairwise(bounds):
        if a == restore_at:
            saved = pipeline
            pipeline = Pipeline(plan)
            pipeline.restore_parts(
                saved.head_state(), {k: saved.version_state(k) for k in saved._monitored()}
            )
        result = pipeline.process(MIXED[a:b])
        out += [c.to_json() for c in result.comparisons]
    return out, _comparison_states(pipeline)


@settings(max_examples=12, deadline=None)
@given(
    st.lists(st.integers(1, len(MIXED) - 1), max_size=6, unique=True),
    st.one_of(st.none(), st.integers(1, len(MIXED) - 1)),
)
def test_any_split_and_any_checkpoint_give_the_same_comparison(
    cuts: list[int], restore_at: int | None
) -> None:
    """Mixed traffic (half the requests in shadow), tight bounds so that outcomes wait,
    expire and request ids are forgotten: the same events and state for any batches and
    any restore point."""
    whole = _tight_run([], None)
    assert whole[0]
    assert _tight_run(cuts, restore_at) == whole


def test_an_exception_in_one_comparison_stops_it_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug in one comparison: it stops (status and saved state say why), the shell gets
    the traceback to log, the versions' alerts and every other comparison go on."""
    config = {
        "models": [{"model_id": "m"}, {"model_id": "n"}],
        "comparisons": [
            {"model_id": "m", "champion": "1", "challenger": "2"},
            {"model_id": "n", "champion": "1", "challenger": "2"},
        ],
    }
    pipeline = Pipeline(build_plan(parse_settings(config), {0: _profile(), 1: _profile()}))
    broken = pipeline.comparisons.comparisons[0]
    original = type(broken).observe

    def observe(self: Any, champion: Any, challenger: Any) -> Any:
        if self is broken:
            raise RuntimeError("boom")
        return original(self, champion, challenger)

    monkeypatch.setattr(type(broken), "observe", observe)
    values = [
        value
        for value in stream(4_000, shadow=True)
        for value in (value, value.replace(b'"model_id":"m"', b'"model_id":"n"'))
    ]
    errors: list[tuple[str, str]] = []
    events = []
    for start in range(0, len(values), 1_000):
        output = pipeline.process(values[start : start + 1_000])
        errors += output.comparison_errors
        events += output.comparisons
    assert [name for name, _ in errors] == ["m 1 vs 2"]  # stopped once, not every batch
    assert "RuntimeError: boom" in errors[0][1]
    first, second = pipeline.comparisons.status()
    assert first["reason"] == "stopped by an internal error: RuntimeError: boom"
    assert first["pairs"] == 0
    assert second["pairs"] > 0 and events  # the other comparison went on
    assert {e.model_id for e in events} == {"n"}
    assert pipeline.counters.events[("m", "1")] == pipeline.counters.events[("n", "1")] > 0

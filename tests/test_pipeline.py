"""The core end to end (pipeline + monitor): windowing, warm-up, batch independence, restore."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from driftline.config import parse_settings
from driftline.monitor import ModelMonitor
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import ProfileSource, build_profile
from tests.stream_support import FEATURES, Drift, event_stream, reference_columns


def _profile():  # type: ignore[no-untyped-def]
    return build_profile(
        reference_columns(20_000),
        model_id="m",
        model_version="1",
        source=ProfileSource(kind="file", sha256="0" * 64),
    )


def _outputs(pipeline: Pipeline, events: list[bytes], batch: int) -> list[bytes]:
    alerts: list[bytes] = []
    requests: list[bytes] = []
    for i in range(0, len(events), batch):
        result = pipeline.process(events[i : i + batch])
        alerts.extend(a.to_json() for a in result.alerts)
        requests.extend(r.to_json() for r in result.retrain_requests)
    return alerts + requests


@pytest.mark.parametrize("window", [{"events": 500}, {"duration_seconds": 7.0}])
def test_outputs_do_not_depend_on_batch_boundaries(window: dict[str, float]) -> None:
    first = event_stream(12_000, drift=Drift("x_normal", "mean_shift", 4_000))
    second = event_stream(12_000, model_id="other", drift=Drift("cat", "category_surge", 6_000))
    # Interleave the two models at random (seeded) so batches hold both, unevenly.
    pick = np.random.default_rng(3).random(24_000) < 0.5
    a, b = iter(first), iter(second)
    events = [next(a, None) or next(b) if p else next(b, None) or next(a) for p in pick]
    settings = parse_settings(
        {"window": window, "models": [{"model_id": "m"}, {"model_id": "other"}]}
    )

    def run(batch: int, stream: list[bytes]) -> list[bytes]:
        return _outputs(
            Pipeline(build_plan(settings, {0: _profile(), 1: _profile()})), stream, batch
        )

    reference = run(1000, events)
    assert len({orjson.loads(x)["subject"].split("/")[0] for x in reference}) == 2
    assert run(333, events) == reference
    assert run(4096, events) == reference
    # One event at a time is slow in Python; compare it on a prefix that already alerts.
    prefix = events[:14_000]
    assert run(1, prefix) == run(1000, prefix) != []


def test_count_windows_close_every_n_events() -> None:
    events = event_stream(1_000)
    settings_with_profile = parse_settings(
        {"window": {"events": 400}, "models": [{"model_id": "m"}]}
    )
    pipeline = Pipeline(build_plan(settings_with_profile, {0: _profile()}))
    pipeline.process(events[:650])
    monitor = pipeline.monitors()[("m", "1")]
    assert monitor.sequence == 650
    assert monitor.window_rows == 250
    pipeline.process(events[650:])
    assert monitor.window_rows == 200


def test_duration_windows_count_late_events_in_the_open_window() -> None:
    def event(i: int, t: float) -> bytes:
        return orjson.dumps(
            {
                "event_id": f"e{i}",
                "model_id": "m",
                "model_version": "1",
                "timestamp": t,
                "features": {"x_normal": 0.1},
            }
        )

    settings = parse_settings({"window": {"duration_seconds": 10}, "models": [{"model_id": "m"}]})
    pipeline = Pipeline(build_plan(settings, {0: _profile()}))
    pipeline.process([event(0, 1000.0), event(1, 1005.0), event(2, 999.0)])  # 999 is late
    monitor = pipeline.monitors()[("m", "1")]
    assert monitor.window_rows == 3
    pipeline.process([event(3, 1010.0)])  # the next window starts: the first one closed
    assert monitor.window_rows == 1
    assert monitor.window_start == 1010.0


def test_warmup_learns_the_reference_then_detects_drift() -> None:
    settings = parse_settings({"warmup_events": 5_000})
    pipeline = Pipeline(build_plan(settings, {}))
    stream = event_stream(25_000, drift=Drift("x_normal", "mean_shift", 15_000))
    alerts = _outputs(pipeline, stream[:5_000], 1000)
    monitor = pipeline.monitors()[("m", "1")]
    assert alerts == []
    assert not monitor.warming_up
    assert monitor.profile is not None
    assert monitor.profile.source.kind == "warmup"
    assert monitor.profile.row_count == 5_000
    assert set(monitor.windows) == set(FEATURES)
    later = [orjson.loads(b) for b in _outputs(pipeline, stream[5_000:], 1000)]
    drifted = {e["data"]["labels"]["feature"] for e in later if e["type"].endswith("alert.v1")}
    assert drifted == {"x_normal"}


def test_unconfigured_models_can_be_ignored() -> None:
    pipeline = Pipeline(build_plan(parse_settings({"unconfigured_models": "ignore"}), {}))
    pipeline.process(event_stream(100))
    assert pipeline.counters.ignored[("m", "1")] == 100
    assert pipeline.monitors() == {}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"window": {"duration_seconds": 6.0}},
        {"detectors": {"numeric": ["psi", "adwin", "page_hinkley", "ks", "wasserstein"]}},
        {"warmup_events": 3_000, "models": []},
    ],
    ids=["default", "duration", "stream-detectors", "warmup"],
)
def test_state_round_trip_continues_exactly(extra: dict[str, object]) -> None:
    settings = parse_settings({"models": [{"model_id": "m"}], **extra})
    profiles = {0: _profile()} if settings.models else {}
    events = event_stream(16_000, drift=Drift("x_normal", "scale", 8_000))
    uninterrupted = _outputs(Pipeline(build_plan(settings, profiles)), events, 700)
    assert uninterrupted
    for cut in (1_500, 3_000, 9_100):
        before = Pipeline(build_plan(settings, profiles))
        head = _outputs(before, events[:cut], 700)
        after = Pipeline(build_plan(settings, profiles))
        after.restore(before.to_state())
        assert head + _outputs(after, events[cut:], 700) == _sorted_like(uninterrupted, head)


def _sorted_like(full: list[bytes], head: list[bytes]) -> list[bytes]:
    """``full`` reordered as head-then-tail (alerts and requests are grouped per run)."""
    rest = list(full)
    for item in head:
        rest.remove(item)
    return head + rest


def test_restore_resets_state_built_on_another_profile() -> None:
    # Formerly a ValueError (and the service then silently started fresh): now the version
    # is reset on the configured profile and the restore reports it (tests/test_restore.py
    # checks the resolved alerts of such a reset).
    settings = parse_settings({"models": [{"model_id": "m"}]})
    before = Pipeline(build_plan(settings, {0: _profile()}))
    before.process(event_stream(1_000))
    other = build_profile(
        reference_columns(5_000, seed=9),
        model_id="m",
        model_version="1",
        source=ProfileSource(kind="file", sha256="1" * 64),
    )
    after = Pipeline(build_plan(settings, {0: other}))
    assert after.restore(before.to_state()).alerts == []  # nothing was firing
    assert after.monitors()[("m", "1")].profile is other
    assert after.monitors()[("m", "1")].sequence == 0
    with pytest.raises(ValueError, match="profile"):  # the monitor alone still refuses
        ModelMonitor.from_state(
            orjson.loads(before.to_state())["versions"][0]["state"]["monitor"],
            model_id="m",
            model_version="1",
            plan=after.monitors()[("m", "1")].plan,
            profile=other,
        )


def test_state_in_parts_restores_like_the_whole() -> None:
    settings = parse_settings({"warmup_events": 2_000, "window": {"events": 500}})
    first = event_stream(6_000, drift=Drift("x_normal", "scale", 3_000))
    second = event_stream(6_000, model_id="other")
    events = [e for pair in zip(first, second, strict=True) for e in pair]
    before = Pipeline(build_plan(settings))
    head = _outputs(before, events[:7_000], 1000)
    assert before.take_changed() == {("m", "1"), ("other", "1")}
    assert before.take_changed() == set()
    before.process(event_stream(10, model_id="other", seed=5))
    assert before.take_changed() == {("other", "1")}
    parts = {key: before.version_state(key) for key in [("m", "1"), ("other", "1")]}
    after = Pipeline(build_plan(settings))
    after.restore_parts(before.head_state(), parts)
    assert after.to_state() == before.to_state()
    whole = Pipeline(build_plan(settings))
    whole.restore(before.to_state())
    assert _outputs(after, events[7_000:], 1000) == _outputs(whole, events[7_000:], 1000) != head
    with pytest.raises(ValueError, match="missing"):
        Pipeline(build_plan(settings)).restore_parts(before.head_state(), {})

"""Honest restore (documented mismatches reset a version and resolve its alerts; anything
else raises StateError) and quarantine of a model version after an internal error."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest
from rich.console import Console

from driftline.config import parse_settings
from driftline.events import DeadLetterReason
from driftline.monitor import ModelMonitor
from driftline.pipeline import Pipeline, PipelineOutput, StateError
from driftline.planning import build_plan
from driftline.policy.alerts import AlertPolicy
from driftline.profile import ProfileSource, ReferenceProfile, build_profile
from driftline.summary import print_summary
from tests.stream_support import Drift, event_stream, reference_columns

M1 = ("m", "1")


def _profile(seed: int = 1, sha: str = "0") -> ReferenceProfile:
    return build_profile(
        reference_columns(20_000, seed=seed),
        model_id="m",
        model_version="1",
        source=ProfileSource(kind="file", sha256=sha * 64),
    )


PROFILE = _profile()
OTHER_PROFILE = _profile(seed=9, sha="1")


def _run(pipeline: Pipeline, events: list[bytes], batch: int = 1000) -> PipelineOutput:
    total = PipelineOutput()
    for i in range(0, len(events), batch):
        out = pipeline.process(events[i : i + batch])
        total.alerts.extend(out.alerts)
        total.retrain_requests.extend(out.retrain_requests)
        total.dead_letters.extend(out.dead_letters)
        total.internal_errors.extend(out.internal_errors)
    return total


def _firing_pipeline(config: dict[str, Any], profiles: dict[int, ReferenceProfile]) -> Pipeline:
    """A pipeline of model m whose x_normal drifted: alerts are firing at the end."""
    pipeline = Pipeline(build_plan(parse_settings(config), profiles))
    _run(pipeline, event_stream(12_000, drift=Drift("x_normal", "mean_shift", 4_000)))
    version = pipeline.versions[M1]
    assert version is not None and version.alerts.firing()
    return pipeline


def _resolved_by_reset(pipeline: Pipeline, output: PipelineOutput) -> list[dict[str, Any]]:
    """The restore's alerts, checked against the alerts ``pipeline`` has firing."""
    version = pipeline.versions[M1]
    assert version is not None
    firing = version.alerts.firing()
    events = [orjson.loads(alert.to_json()) for alert in output.alerts]
    assert [e["data"]["fingerprint"] for e in events] == [a.fingerprint for a in firing]
    assert all(e["data"]["status"] == "resolved" for e in events)
    assert all(e["data"]["ends_at"] is not None for e in events)
    assert len({e["id"] for e in events} | {a.id for a in firing}) == 2 * len(firing)
    assert output.retrain_requests == [] and output.dead_letters == []
    return events


CONFIGURED = {"models": [{"model_id": "m"}]}


def test_a_changed_profile_resets_the_version_and_resolves_its_alerts() -> None:
    before = _firing_pipeline(CONFIGURED, {0: PROFILE})
    state = before.to_state()
    after = Pipeline(build_plan(parse_settings(CONFIGURED), {0: OTHER_PROFILE}))
    output = after.restore(state)
    events = _resolved_by_reset(before, output)
    reasons = {e["data"]["annotations"]["resolved_reason"] for e in events}
    assert reasons == {
        f"state reset: the reference profile changed (state built on {PROFILE.profile_id}, "
        f"{OTHER_PROFILE.profile_id} is configured)"
    }
    # The version starts afresh on the configured profile; its alerts are over.
    version = after.versions[M1]
    assert version is not None
    assert version.monitor.profile is OTHER_PROFILE
    assert version.monitor.sequence == 0
    assert version.alerts.firing() == [] and version.retrain.firing() == []
    assert after.counters.alerts[("critical", "resolved")] + after.counters.alerts[
        ("warning", "resolved")
    ] == before.counters.alerts[("critical", "resolved")] + before.counters.alerts[
        ("warning", "resolved")
    ] + len(events)
    assert after.take_changed() == {M1}  # the reset state is checkpointed next time
    # Deterministic: restoring the same checkpoint again resolves with the same ids.
    again = Pipeline(build_plan(parse_settings(CONFIGURED), {0: OTHER_PROFILE})).restore(state)
    assert [a.to_json() for a in again.alerts] == [a.to_json() for a in output.alerts]
    # In parts, the same.
    parts = {M1: before.version_state(M1)}
    in_parts = Pipeline(build_plan(parse_settings(CONFIGURED), {0: OTHER_PROFILE}))
    assert [a.to_json() for a in in_parts.restore_parts(before.head_state(), parts).alerts] == [
        a.to_json() for a in output.alerts
    ]


def test_same_profile_continues_without_output() -> None:
    before = _firing_pipeline(CONFIGURED, {0: PROFILE})
    after = Pipeline(build_plan(parse_settings(CONFIGURED), {0: PROFILE}))
    output = after.restore(before.to_state())
    # (Equal as JSON: a restored alert's event has its keys sorted, the bytes differ.)
    assert output.alerts == [] and orjson.loads(after.to_state()) == orjson.loads(before.to_state())
    assert after.take_changed() == set()


def test_a_configured_profile_replaces_the_learned_one() -> None:
    before = _firing_pipeline({"warmup_events": 3_000}, {})
    monitor = before.monitors()[M1]
    assert monitor.profile is not None and monitor.profile.source.kind == "warmup"
    after = Pipeline(
        build_plan(parse_settings({"warmup_events": 3_000, **CONFIGURED}), {0: PROFILE})
    )
    events = _resolved_by_reset(before, after.restore(before.to_state()))
    reason = events[0]["data"]["annotations"]["resolved_reason"]
    assert "replaces the profile learned by warm-up" in reason
    assert after.monitors()[M1].profile is PROFILE
    # Without a configured profile the learned one continues.
    same = Pipeline(build_plan(parse_settings({"warmup_events": 3_000}), {}))
    assert same.restore(before.to_state()).alerts == []
    assert orjson.loads(same.to_state()) == orjson.loads(before.to_state())


def test_a_configured_profile_replaces_a_warmup_in_progress() -> None:
    before = Pipeline(build_plan(parse_settings({"warmup_events": 3_000}), {}))
    _run(before, event_stream(1_000))
    assert before.monitors()[M1].warming_up
    after = Pipeline(build_plan(parse_settings(CONFIGURED), {0: PROFILE}))
    assert after.restore(before.to_state()).alerts == []
    assert after.monitors()[M1].profile is PROFILE


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"features": {"x_normal": {"exclude": True}}}, "monitored features changed"),
        ({"features": {"x_normal": {"detectors": ["psi", "adwin"]}}}, "stream detectors"),
        ({"detectors": {"numeric": ["ks", "quality_missing"]}}, "no longer configured"),
    ],
    ids=["feature-excluded", "stream-detector-added", "detector-removed"],
)
def test_a_changed_detector_set_resets_the_version(change: dict[str, Any], reason: str) -> None:
    before = _firing_pipeline(CONFIGURED, {0: PROFILE})
    config = {"models": [{"model_id": "m", **change}]}
    after = Pipeline(build_plan(parse_settings(config), {0: PROFILE}))
    events = _resolved_by_reset(before, after.restore(before.to_state()))
    assert all(reason in e["data"]["annotations"]["resolved_reason"] for e in events)
    assert after.monitors()[M1].sequence == 0


@pytest.mark.parametrize(
    "change",
    [
        {"thresholds": {"psi": {"warning": 0.5, "critical": 0.9}}},
        {
            "detectors": {
                "numeric": ["psi", "ks", "quality_missing", "quality_out_of_range", "quality_type"]
            }
        },
    ],
    ids=["thresholds", "batch-detector-added"],
)
def test_thresholds_and_added_batch_detectors_are_not_state(change: dict[str, Any]) -> None:
    before = _firing_pipeline(CONFIGURED, {0: PROFILE})
    config = {"models": [{"model_id": "m", **change}]}
    after = Pipeline(build_plan(parse_settings(config), {0: PROFILE}))
    assert after.restore(before.to_state()).alerts == []
    assert after.monitors()[M1].sequence == before.monitors()[M1].sequence


def _corrupt(state: bytes, edit: Any) -> bytes:
    data = orjson.loads(state)
    edit(data["versions"][0]["state"])
    return orjson.dumps(data)


@pytest.mark.parametrize(
    ("edit", "cause"),
    [
        (lambda s: s["monitor"].pop("sequence"), "KeyError"),
        (lambda s: s["monitor"].update(version=99), "unsupported monitor state version 99"),
        (lambda s: s["alerts"].update(alerts=[{"key": 1}]), "TypeError"),
        (lambda s: s["retrain"]["firing"].append({"fingerprint": "x", "id": "y"}), "ValueError"),
        (lambda s: s["monitor"]["features"]["x_normal"]["bins"].pop("counts"), "KeyError"),
    ],
    ids=["missing-key", "format-version", "bad-type", "inconsistent", "window"],
)
def test_a_corrupt_version_state_raises_instead_of_resetting(edit: Any, cause: str) -> None:
    before = _firing_pipeline(CONFIGURED, {0: PROFILE})
    bad = _corrupt(before.to_state(), edit)
    after = Pipeline(build_plan(parse_settings(CONFIGURED), {0: PROFILE}))
    with pytest.raises(StateError, match="state of m/1 cannot be restored") as caught:
        after.restore(bad)
    assert cause in str(caught.value)
    assert caught.value.key == M1
    assert after.versions == {}  # nothing half-restored


def test_a_corrupt_pipeline_state_raises() -> None:
    plan = build_plan(parse_settings(CONFIGURED), {0: PROFILE})
    for data in (b"not json", b"[]", b'{"version": 7}', b'{"version": 1}'):
        with pytest.raises(StateError, match="pipeline state cannot be restored"):
            Pipeline(plan).restore(data)
    before = _firing_pipeline(CONFIGURED, {0: PROFILE})
    with pytest.raises(StateError, match="state of m/1 cannot be restored: not JSON"):
        Pipeline(plan).restore_parts(before.head_state(), {M1: b"{"})


# -- quarantine ------------------------------------------------------------------------


def _two_models() -> tuple[list[bytes], list[bytes]]:
    """Events of m/1 and other/1 interleaved (both drift), and other's events alone."""
    first = event_stream(12_000, drift=Drift("x_normal", "mean_shift", 3_000))
    second = event_stream(12_000, model_id="other", drift=Drift("cat", "category_surge", 5_000))
    return [e for pair in zip(first, second, strict=True) for e in pair], second


def _of(output: PipelineOutput, model_id: str) -> list[bytes]:
    items = [*output.alerts, *output.retrain_requests]
    return [x.to_json() for x in items if x.model_id == model_id]


TWO = {"models": [{"model_id": "m"}, {"model_id": "other"}]}


@pytest.mark.parametrize("where", ["monitor", "alert-policy"])
def test_an_internal_error_quarantines_only_its_version(
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    events, alone = _two_models()
    plan = build_plan(parse_settings(TWO), {0: PROFILE, 1: PROFILE})
    healthy = _run(Pipeline(plan), events)
    only_other = _run(Pipeline(plan), alone, batch=500)
    assert _of(healthy, "other") == _of(only_other, "other") != []
    assert _of(healthy, "m") != []

    if where == "monitor":
        original = ModelMonitor.process

        def process(self: ModelMonitor, batch: Any) -> Any:
            if self.model_id == "m" and self.sequence >= 5_000:
                raise RuntimeError("injected monitor failure")
            return original(self, batch)

        monkeypatch.setattr(ModelMonitor, "process", process)
    else:
        original_observe = AlertPolicy.observe

        def observe(self: AlertPolicy, finding: Any) -> Any:
            if finding.model_id == "m" and finding.sequence >= 5_000:
                raise RuntimeError("injected policy failure")
            return original_observe(self, finding)

        monkeypatch.setattr(AlertPolicy, "observe", observe)

    pipeline = Pipeline(plan)
    failing = _run(pipeline, events)
    # Every other version goes on exactly as without the failing one.
    assert _of(failing, "other") == _of(only_other, "other")
    # The failing version: its outputs up to the failure, then one internal-error alert.
    m_events = [orjson.loads(x) for x in _of(failing, "m")]
    internal = [
        e
        for e in m_events
        if e["type"] == "io.driftline.alert.v1"
        and e["data"]["labels"]["alertname"] == "DriftlineInternalError"
    ]
    assert len(internal) == 1
    data = internal[0]["data"]
    assert data["status"] == "firing"
    assert data["labels"] == {
        "alertname": "DriftlineInternalError",
        "model_id": "m",
        "model_version": "1",
        "feature": "__internal__",
        "detector": "pipeline",
        "severity": "critical",
    }
    assert f"injected {where.split('-')[-1]}" in data["annotations"]["description"]
    before_failure = [x for x in _of(healthy, "m") if orjson.loads(x) in m_events]
    assert len(before_failure) == len(m_events) - 1
    # Its events from the failing batch on are dead letters with reason internal_error.
    letters = failing.dead_letters
    assert letters and {d.reason for d in letters} == {DeadLetterReason.INTERNAL_ERROR}
    assert all(orjson.loads(d.payload)["model_id"] == "m" for d in letters)
    assert all("injected" in d.message and "quarantined" in d.message for d in letters)
    ids = [orjson.loads(d.payload)["event_id"] for d in letters]
    assert ids == [f"e{i}" for i in range(12_000 - len(letters), 12_000)]  # all later ones
    assert pipeline.counters.dead_letters == {"internal_error": len(letters)}
    assert pipeline.counters.quarantined == {M1: len(letters)}
    assert pipeline.counters.events[M1] + len(letters) == 12_000
    assert pipeline.counters.events[("other", "1")] == 12_000
    # The traceback goes to the shell, once.
    assert [key for key, _ in failing.internal_errors] == [M1]
    assert "Traceback" in failing.internal_errors[0][1]
    assert f"injected {where.split('-')[-1]} failure" in failing.internal_errors[0][1]
    # Deterministic: the same run gives the same alert id.
    again = _run(Pipeline(plan), events)
    assert _of(again, "m") == _of(failing, "m")
    # A restored pipeline (whole state or parts) tries the version again, and resolves
    # the DriftlineInternalError alert, with the reason, with a deterministic id.
    [firing] = [a for a in failing.alerts if a.labels["alertname"] == "DriftlineInternalError"]
    resolved_ids = []
    for restore in ("whole", "parts"):
        restored = Pipeline(plan)
        if restore == "whole":
            resumed = restored.restore(pipeline.to_state())
        else:
            keys = [k for k, v in pipeline.versions.items() if v is not None]
            parts = {k: pipeline.version_state(k) for k in keys}
            resumed = restored.restore_parts(pipeline.head_state(), parts)
        assert restored.quarantined == {} and M1 in restored.versions
        [resolved] = resumed.alerts
        assert resolved.status == "resolved" and resolved.fingerprint == firing.fingerprint
        assert resolved.id != firing.id
        data = orjson.loads(resolved.to_json())["data"]
        assert data["annotations"]["resolved_reason"].startswith("quarantine left")
        assert data["ends_at"] is not None
        resolved_ids.append(resolved.id)
    assert resolved_ids[0] == resolved_ids[1]
    monkeypatch.undo()
    assert restored.process(event_stream(10, first=20_000)).dead_letters == []
    # Restoring the restored pipeline's state resolves nothing more.
    assert Pipeline(plan).restore(restored.to_state()).alerts == []
    # The summary shows it.
    console = Console(file=io.StringIO(), width=200)
    print_summary(pipeline, console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "quarantined" in text and "internal_error" in text


def test_a_version_failing_on_its_first_event_is_quarantined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("cannot build")

    plan = build_plan(parse_settings({"warmup_events": 100}), {})
    pipeline = Pipeline(plan)
    monkeypatch.setattr(ModelMonitor, "__init__", broken)
    output = pipeline.process(event_stream(10))
    assert [d.reason for d in output.dead_letters] == [DeadLetterReason.INTERNAL_ERROR] * 10
    assert len(output.alerts) == 1 and output.alerts[0].labels["model_id"] == "m"
    assert pipeline.versions == {} and list(pipeline.quarantined) == [M1]
    assert pipeline.quarantine_message(M1) == "ValueError: cannot build"
    later = pipeline.process(event_stream(5, first=10))
    assert later.alerts == [] and later.internal_errors == []  # the alert fires once
    assert len(later.dead_letters) == 5


def test_outputs_made_before_the_failure_are_published(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Windows of 100 events: several window closes of m per batch (500 of its events).
    events, _ = _two_models()
    config = {"window": {"events": 100}, "alerts": {"min_samples": 50}, **TWO}
    plan = build_plan(parse_settings(config), {0: PROFILE, 1: PROFILE})
    healthy = [a for a in _run(Pipeline(plan), events).alerts if a.model_id == "m"]
    fired = healthy[0].sequence  # m's first alert, closed by its event number `fired`
    batch_start = (fired - 1) // 500 * 500
    assert fired + 100 <= batch_start + 500  # a later window of the same batch fails
    original = AlertPolicy.observe

    def observe(self: AlertPolicy, finding: Any) -> Any:
        if finding.model_id == "m" and finding.sequence > fired:
            raise RuntimeError("injected")
        return original(self, finding)

    monkeypatch.setattr(AlertPolicy, "observe", observe)
    pipeline = Pipeline(plan)
    failing = [a for a in _run(pipeline, events).alerts if a.model_id == "m"]
    version = pipeline.versions[M1]
    assert version is not None
    published = {a.fingerprint for a in failing if a.status == "firing"}
    assert {a.fingerprint for a in version.alerts.firing()} <= published != set()
    # The first alert came from the failing batch before the failure: the alert state holds
    # it, so it is published (then the internal-error alert), never left unannounced.
    # In stream order: the internal error sits at the failing batch's first event of m.
    assert [a.labels["alertname"] for a in failing] == ["DriftlineInternalError", "FeatureDrift"]
    assert failing[1].to_json() == healthy[0].to_json()
    assert failing[0].sequence == batch_start

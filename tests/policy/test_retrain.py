"""Retrain policy: rules, cooldown, ranking, idempotency and state."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from driftline.findings import Finding
from driftline.policy.alerts import Alert, AlertPolicy, AlertSettings, Thresholds
from driftline.policy.retrain import ProfileRef, RetrainPolicy, RetrainRequest, RetrainSettings

T0 = 1795788192.25
SOURCE = "/driftline/test"
PROFILE = ProfileRef(profile_id="fraud-scorer-7-train", sha256="ab" * 32)
THRESHOLDS = Thresholds(warning=0.1, critical=0.25)
ONLY_FEATURES = RetrainSettings(
    on_critical=False,
    min_drifted_features=3,
    min_drifted_share=None,
    on_prediction_drift=False,
    on_performance_drift=False,
)


class Pipeline:
    """Findings -> alert policy (fires and resolves on one window) -> retrain policy."""

    def __init__(self, settings: RetrainSettings, monitored: int = 10) -> None:
        self.alerts = AlertPolicy(
            source=SOURCE,
            settings=AlertSettings(
                fire_after=1, resolve_after=1, cooldown_seconds=0.0, min_samples=0
            ),
            thresholds=lambda _f, _d: THRESHOLDS,
        )
        self.retrain = RetrainPolicy(
            source=SOURCE, model_id="fraud-scorer", model_version="7", settings=settings
        )
        self.monitored = monitored
        self.emitted: list[Alert] = []
        self.step = 0

    def window(
        self,
        feature: str,
        value: float,
        *,
        detector: str = "psi",
        profile: ProfileRef = PROFILE,
        time: float | None = None,
    ) -> list[RetrainRequest]:
        """One window of one feature; returns the requests it caused."""
        self.step += 1
        end = T0 + 60.0 * self.step if time is None else time
        f = Finding(
            model_id="fraud-scorer",
            model_version="7",
            feature=feature,
            detector=detector,
            statistic=detector,
            value=value,
            sample_size=1_000,
            window_start=end - 300.0,
            window_end=end,
            window_count=5_000,
            sequence=1_000 * self.step,
            event_id=f"e{self.step}",
        )
        out = []
        for alert in self.alerts.observe(f):
            self.emitted.append(alert)
            request = self.retrain.observe(
                alert, monitored_features=self.monitored, profile=profile
            )
            if request is not None:
                out.append(request)
        return out

    def windows(self, items: Iterable[tuple[str, float]]) -> list[RetrainRequest]:
        return [r for feature, value in items for r in self.window(feature, value)]


def test_a_critical_alert_triggers() -> None:
    pipe = Pipeline(RetrainSettings())
    [request] = pipe.window("amount", 0.4)
    [alert] = pipe.emitted
    event = request.event
    assert request.key == "fraud-scorer/7"
    assert request.reason == "critical_alert"
    assert event["specversion"] == "1.0"
    assert event["type"] == "io.driftline.retrain.requested.v1"
    assert event["source"] == SOURCE
    assert event["subject"] == "fraud-scorer/7"
    assert event["time"] == alert.event["time"]
    assert event["id"] == request.id
    data = event["data"]
    assert data["model_id"] == "fraud-scorer" and data["model_version"] == "7"
    assert data["reason"]["code"] == "critical_alert"
    assert "`amount`" in data["reason"]["text"] and "0.40 > 0.25" in data["reason"]["text"]
    assert data["alert_ids"] == [alert.id]
    assert data["reference_profile"] == {"id": "fraud-scorer-7-train", "sha256": "ab" * 32}
    assert data["idempotency_key"] == request.idempotency_key
    assert data["window"] == {
        "from": alert.event["data"]["window"]["start"],
        "to": alert.event["data"]["window"]["end"],
    }
    assert json.loads(request.to_json()) == event


def test_critical_rule_can_be_switched_off() -> None:
    pipe = Pipeline(ONLY_FEATURES)
    assert pipe.window("amount", 0.4) == []


def test_warning_alerts_on_k_features_trigger() -> None:
    pipe = Pipeline(ONLY_FEATURES)
    assert pipe.windows([("amount", 0.2), ("country", 0.2), ("amount", 0.2)]) == []
    # prediction, label and error columns are not input features
    assert pipe.windows([("__prediction__", 0.2), ("__label__", 0.2), ("__error__", 0.2)]) == []
    # a second detector on the same feature is not a second feature
    assert pipe.window("country", 0.2, detector="js") == []
    [request] = pipe.window("age", 0.2)
    assert request.reason == "drifted_features"
    text = request.event["data"]["reason"]["text"]
    assert text.startswith("3 input features drifted (age, amount, country)")


def test_a_resolved_alert_no_longer_counts() -> None:
    pipe = Pipeline(ONLY_FEATURES)
    pipe.windows([("amount", 0.2), ("country", 0.2), ("amount", 0.01)])
    assert [a.feature for a in pipe.retrain.firing()] == ["country"]
    assert pipe.window("age", 0.2) == []
    [request] = pipe.window("city", 0.2)
    assert request.event["data"]["alert_ids"] == sorted(a.id for a in pipe.retrain.firing())
    assert len(request.event["data"]["alert_ids"]) == 3


def test_share_of_monitored_features_triggers() -> None:
    settings = RetrainSettings(
        on_critical=False,
        min_drifted_features=None,
        min_drifted_share=0.5,
        on_prediction_drift=False,
    )
    pipe = Pipeline(settings, monitored=4)
    assert pipe.window("amount", 0.2) == []
    [request] = pipe.window("country", 0.2)
    assert request.reason == "drifted_share"
    assert "2 of 4 monitored features drifted (50%)" in request.event["data"]["reason"]["text"]


def test_prediction_drift_triggers() -> None:
    settings = RetrainSettings(on_critical=False, min_drifted_features=None, min_drifted_share=None)
    pipe = Pipeline(settings)
    assert pipe.window("amount", 0.2) == []
    [request] = pipe.window("__prediction__.fraud", 0.2)
    assert request.reason == "prediction_drift"
    off = Pipeline(
        RetrainSettings(
            on_critical=False,
            min_drifted_features=None,
            min_drifted_share=None,
            on_prediction_drift=False,
        )
    )
    assert off.window("__prediction__", 0.2) == []


def test_data_quality_alerts_only_count_when_enabled() -> None:
    default = Pipeline(RetrainSettings())
    assert default.window("amount", 0.9, detector="quality_missing") == []
    enabled = Pipeline(RetrainSettings(data_quality_triggers=True))
    [request] = enabled.window("amount", 0.9, detector="quality_missing")
    assert request.reason == "critical_alert"


def test_cooldown_blocks_then_a_pending_request_follows() -> None:
    pipe = Pipeline(RetrainSettings(cooldown_seconds=3600.0))
    [first] = pipe.window("amount", 0.4, time=T0)
    assert pipe.window("country", 0.4, time=T0 + 600.0) == []
    monitored = {"monitored_features": 10, "profile": PROFILE}
    assert pipe.retrain.tick(T0 + 3599.0, **monitored) is None
    second = pipe.retrain.tick(T0 + 3600.0, **monitored)
    assert second is not None
    assert second.reason == "critical_alert"
    assert second.time == T0 + 3600.0
    assert second.event["time"] == "2026-11-27T15:03:12.250Z"
    assert second.idempotency_key == first.idempotency_key  # same drift episode
    assert second.id != first.id
    assert len(second.event["data"]["alert_ids"]) == 2
    # nothing pending any more
    assert pipe.retrain.tick(T0 + 9000.0, **monitored) is None


def test_a_pending_request_is_dropped_when_the_drift_is_over() -> None:
    pipe = Pipeline(RetrainSettings(cooldown_seconds=3600.0))
    pipe.window("amount", 0.4, time=T0)
    pipe.window("country", 0.4, time=T0 + 60.0)
    pipe.window("amount", 0.0, time=T0 + 120.0)
    pipe.window("country", 0.0, time=T0 + 180.0)
    assert pipe.retrain.tick(T0 + 7200.0, monitored_features=10, profile=PROFILE) is None


def test_pending_request_is_emitted_on_a_later_alert_event() -> None:
    pipe = Pipeline(RetrainSettings(cooldown_seconds=3600.0))
    pipe.window("amount", 0.4, time=T0)
    pipe.window("country", 0.4, time=T0 + 60.0)
    [request] = pipe.window("amount", 0.0, time=T0 + 3700.0)  # amount resolves
    assert [a.feature for a in pipe.retrain.firing()] == ["country"]
    assert request.event["data"]["alert_ids"] == [pipe.retrain.firing()[0].id]


def test_features_are_ranked_by_drift_score() -> None:
    pipe = Pipeline(
        RetrainSettings(
            on_critical=False,
            min_drifted_features=4,
            min_drifted_share=None,
            on_prediction_drift=False,
        )
    )
    pipe.window("b_feature", 0.15)  # warning: 0.15 / 0.1 = 1.5
    pipe.window("a_feature", 0.15)  # same score: ties by name
    pipe.window("c_feature", 0.3, detector="js")  # critical: 0.3 / 0.25 = 1.2
    assert pipe.window("c_feature", 0.19) == []  # warning on psi: 1.9, critical wins for c
    [request] = pipe.window("d_feature", 0.5)  # critical: 2.0
    ranked = request.event["data"]["drifted_features"]
    assert [(r["feature"], r["detector"], r["severity"]) for r in ranked] == [
        ("d_feature", "psi", "critical"),
        ("a_feature", "psi", "warning"),
        ("b_feature", "psi", "warning"),
        ("c_feature", "js", "critical"),
    ]
    assert [r["drift_score"] for r in ranked] == pytest.approx([2.0, 1.5, 1.5, 1.2])
    assert ranked[3]["statistic"] == {"name": "js", "value": 0.3, "threshold": 0.25}
    assert ranked[0]["window"]["count"] == 5_000
    assert request.event["data"]["window"] == {
        "from": min(r["window"]["start"] for r in ranked),
        "to": max(r["window"]["end"] for r in ranked),
    }


def test_below_direction_scores_by_threshold_over_value() -> None:
    pipe = Pipeline(RetrainSettings())
    pipe.alerts = AlertPolicy(
        source=SOURCE,
        settings=AlertSettings(fire_after=1, resolve_after=1, min_samples=0),
        thresholds=lambda _f, _d: Thresholds(0.05, 0.01, direction="below"),
    )
    [request] = pipe.window("country", 0.002, detector="chi2")
    [entry] = request.event["data"]["drifted_features"]
    assert entry["drift_score"] == pytest.approx(5.0)
    assert "0.002 < 0.01" in request.event["data"]["reason"]["text"]


def test_escalation_keeps_the_episode() -> None:
    pipe = Pipeline(RetrainSettings(min_drifted_features=None, min_drifted_share=None))
    pipe.alerts = AlertPolicy(
        source=SOURCE,
        settings=AlertSettings(fire_after=2, resolve_after=1, min_samples=0),
        thresholds=lambda _f, _d: THRESHOLDS,
    )
    assert pipe.windows([("amount", 0.15), ("amount", 0.15)]) == []
    warning = pipe.emitted[0]
    [request] = pipe.window("amount", 0.3)  # escalates at once (critical_fire_after 1)
    assert [a.status for a in pipe.emitted] == ["firing", "resolved", "firing"]
    assert request.event["data"]["episode_started_at"] == warning.event["data"]["starts_at"]
    assert request.event["data"]["alert_ids"] == [pipe.emitted[-1].id]


def scenario(pipe: Pipeline) -> list[RetrainRequest]:
    """Two drift episodes separated by a full resolve, more than a cooldown apart."""
    requests = []
    for k, (feature, value) in enumerate(
        [("amount", 0.4), ("country", 0.3), ("amount", 0.0), ("country", 0.0)]
    ):
        requests += pipe.window(feature, value, time=T0 + 60.0 * k)
    for k, (feature, value) in enumerate([("age", 0.5), ("amount", 0.4)]):
        requests += pipe.window(feature, value, time=T0 + 7200.0 + 60.0 * k)
    return requests


def test_idempotency_key_is_stable_across_replays_and_new_per_episode() -> None:
    first = scenario(Pipeline(RetrainSettings(cooldown_seconds=3600.0)))
    replay = scenario(Pipeline(RetrainSettings(cooldown_seconds=3600.0)))
    assert [r.to_json() for r in first] == [r.to_json() for r in replay]
    assert len(first) == 2
    assert first[0].idempotency_key != first[1].idempotency_key
    assert first[0].id != first[1].id


def test_idempotency_key_changes_with_the_reference_profile() -> None:
    one = Pipeline(RetrainSettings()).window("amount", 0.4)[0]
    other = Pipeline(RetrainSettings()).window("amount", 0.4, profile=ProfileRef("p2", None))[0]
    assert one.idempotency_key != other.idempotency_key
    assert other.event["data"]["reference_profile"] == {"id": "p2", "sha256": None}


def test_state_round_trip_mid_stream_continues_identically() -> None:
    reference = Pipeline(RetrainSettings(cooldown_seconds=3600.0))
    expected = scenario(reference)
    alerts = reference.emitted

    for split in range(len(alerts) + 1):
        head = RetrainPolicy(
            source=SOURCE,
            model_id="fraud-scorer",
            model_version="7",
            settings=RetrainSettings(cooldown_seconds=3600.0),
        )
        kw = {"monitored_features": 10, "profile": PROFILE}
        out = [head.observe(a, **kw) for a in alerts[:split]]
        state = json.loads(json.dumps(head.to_state()))
        restored = RetrainPolicy.from_state(
            state,
            source=SOURCE,
            model_id="fraud-scorer",
            model_version="7",
            settings=head.settings,
        )
        assert restored.to_state() == head.to_state()
        out += [restored.observe(a, **kw) for a in alerts[split:]]
        assert [r.to_json() for r in out if r is not None] == [r.to_json() for r in expected]


def test_alerts_of_another_model_version_are_rejected() -> None:
    other = Pipeline(RetrainSettings())
    other.window("amount", 0.4)
    policy = RetrainPolicy(
        source=SOURCE, model_id="fraud-scorer", model_version="8", settings=RetrainSettings()
    )
    with pytest.raises(ValueError, match="fraud-scorer/7"):
        policy.observe(other.emitted[0], monitored_features=1, profile=PROFILE)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_drifted_features": 0},
        {"min_drifted_share": 0.0},
        {"min_drifted_share": 1.5},
        {"cooldown_seconds": -1.0},
    ],
)
def test_settings_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetrainSettings(**kwargs)  # type: ignore[arg-type]


def restore_both(pipe: Pipeline) -> tuple[AlertPolicy, RetrainPolicy]:
    """Both policies of ``pipe`` through a JSON state round trip, as a checkpoint does."""
    alerts = AlertPolicy.from_state(
        json.loads(json.dumps(pipe.alerts.to_state())),
        source=SOURCE,
        settings=pipe.alerts.settings,
        thresholds=lambda _f, _d: THRESHOLDS,
    )
    retrain = RetrainPolicy.from_state(
        json.loads(json.dumps(pipe.retrain.to_state())),
        source=SOURCE,
        model_id="fraud-scorer",
        model_version="7",
        settings=pipe.retrain.settings,
        alerts=alerts,
    )
    return alerts, retrain


def test_restored_with_its_alert_policy_the_policy_holds_no_copies() -> None:
    pipe = Pipeline(ONLY_FEATURES)
    pipe.windows([("amount", 0.2), ("country", 0.3), ("age", 0.05)])
    alerts, retrain = restore_both(pipe)
    assert sorted(a.feature for a in retrain.firing()) == ["amount", "country"]
    owned = {id(a) for a in alerts.firing()}
    assert all(id(a) in owned for a in retrain.firing())
    assert retrain.to_state() == pipe.retrain.to_state()


def test_restoring_against_an_alert_policy_without_the_alert_fails() -> None:
    pipe = Pipeline(ONLY_FEATURES)
    pipe.window("amount", 0.2)
    empty = AlertPolicy(
        source=SOURCE, settings=AlertSettings(), thresholds=lambda _f, _d: THRESHOLDS
    )
    with pytest.raises(ValueError, match="does not hold as firing"):
        RetrainPolicy.from_state(
            pipe.retrain.to_state(),
            source=SOURCE,
            model_id="fraud-scorer",
            model_version="7",
            settings=pipe.retrain.settings,
            alerts=empty,
        )


def test_performance_drift_triggers_first_and_estimated_only_when_asked() -> None:
    """A firing PerformanceDrift alert (the model got worse on joined labels) triggers by
    default, before any other rule; EstimatedPerformanceDrift counts for nothing unless
    ``on_estimated_performance_drift`` is set."""
    pipe = Pipeline(RetrainSettings(on_critical=True))
    [request] = pipe.window("__error__", 0.2)  # a warning: no other rule applies
    assert request.reason == "performance_drift"
    assert request.event["data"]["reason"]["text"].startswith("Performance drift on")
    estimated = Pipeline(RetrainSettings())
    assert estimated.window("__estimated_error__", 0.4) == []  # critical, but ignored
    asked = Pipeline(RetrainSettings(on_estimated_performance_drift=True))
    [request] = asked.window("__estimated_error__", 0.2)
    assert request.reason == "estimated_performance_drift"

"""Alert policy: debounce, escalation, resolve, cooldown, ids, state and text."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.cloudevents import deterministic_id, fingerprint, format_time
from driftline.findings import Finding
from driftline.policy.alert_text import format_pair
from driftline.policy.alerts import (
    Alert,
    AlertPolicy,
    AlertSettings,
    Thresholds,
    alert_name,
)

T0 = 1795788192.25  # 2026-11-27T14:03:12.250Z
STEP = 60.0
SOURCE = "/driftline/test"
PSI = Thresholds(warning=0.1, critical=0.25)


def finding(
    value: float,
    i: int,
    *,
    feature: str = "amount",
    detector: str = "psi",
    statistic: str = "psi",
    sample_size: int = 1_000,
    model_id: str = "fraud-scorer",
    model_version: str = "7",
    window_count: int = 5_000,
    end: float | None = None,
) -> Finding:
    window_end = T0 + STEP * i if end is None else end
    return Finding(
        model_id=model_id,
        model_version=model_version,
        feature=feature,
        detector=detector,
        statistic=statistic,
        value=value,
        sample_size=sample_size,
        window_start=window_end - 180.0,
        window_end=window_end,
        window_count=window_count,
        sequence=window_count * (i + 1),
        event_id=f"evt-{feature}-{i}",
        evidence={"bins": [0.1, 0.2], "reference_bins": [0.15, 0.15]},
    )


def make_policy(
    thresholds: Thresholds | Callable[[str, str], Thresholds] = PSI, **overrides: object
) -> AlertPolicy:
    config = {"fire_after": 3, "resolve_after": 3, "cooldown_seconds": 600.0, "min_samples": 200}
    config.update(overrides)
    lookup = thresholds if callable(thresholds) else (lambda _f, _d: thresholds)
    return AlertPolicy(source=SOURCE, settings=AlertSettings(**config), thresholds=lookup)  # type: ignore[arg-type]


def feed(policy: AlertPolicy, values: Iterable[float], start: int = 0, **kw: object) -> list[Alert]:
    out: list[Alert] = []
    for i, value in enumerate(values, start=start):
        out.extend(policy.observe(finding(value, i, **kw)))  # type: ignore[arg-type]
    return out


def kinds(alerts: Sequence[Alert]) -> list[tuple[str, str]]:
    return [(a.status, a.severity) for a in alerts]


# -- firing -------------------------------------------------------------------------------


def test_a_critical_window_fires_at_once() -> None:
    policy = make_policy()
    assert feed(policy, [0.15, 0.15]) == []  # two warning windows: not yet fire_after
    [alert] = policy.observe(finding(0.3, 2))
    trigger = finding(0.3, 2)

    assert (alert.status, alert.severity, alert.transition) == ("firing", "critical", "fired")
    assert alert.labels == {
        "alertname": "FeatureDrift",
        "model_id": "fraud-scorer",
        "model_version": "7",
        "feature": "amount",
        "detector": "psi",
        "severity": "critical",
    }
    assert alert.fingerprint == fingerprint(alert.labels) == alert.key
    assert alert.id == deterministic_id(alert.fingerprint, "firing", str(trigger.sequence))
    assert (alert.starts_at, alert.ends_at, alert.time) == (
        trigger.window_end,
        None,
        trigger.window_end,
    )

    event = alert.event
    assert event["type"] == "io.driftline.alert.v1"
    assert event["source"] == SOURCE
    assert event["id"] == alert.id
    assert event["subject"] == "fraud-scorer/7/amount"
    assert event["time"] == "2026-11-27T14:05:12.250Z"
    data = event["data"]
    assert data["status"] == "firing"
    assert data["fingerprint"] == alert.fingerprint
    assert data["starts_at"] == "2026-11-27T14:05:12.250Z"
    assert data["ends_at"] is None
    assert data["statistic"] == {"name": "psi", "value": 0.3, "threshold": 0.25}
    assert data["window"] == {
        "start": "2026-11-27T14:02:12.250Z",
        "end": "2026-11-27T14:05:12.250Z",
        "count": 5_000,
    }
    assert data["evidence"] == {
        "bins": [0.1, 0.2],
        "reference_bins": [0.15, 0.15],
        "sample_size": 1_000,
        "event_id": "evt-amount-2",
        "sequence": 15_000,
    }
    assert policy.firing() == [alert]
    assert alert.breach_start == finding(0.15, 0).window_start  # the warning streak's start


def test_critical_fire_after_n_needs_n_critical_windows() -> None:
    policy = make_policy(critical_fire_after=3)
    assert feed(policy, [0.3, 0.3]) == []
    assert kinds(feed(policy, [0.3], start=2)) == [("firing", "critical")]
    policy = make_policy(critical_fire_after=2, fire_after=4)
    assert feed(policy, [0.3, 0.05, 0.3]) == []
    assert kinds(feed(policy, [0.3], start=3)) == [("firing", "critical")]


def test_a_clean_window_resets_the_streak() -> None:
    policy = make_policy()
    assert feed(policy, [0.15, 0.15, 0.05, 0.15, 0.15]) == []
    assert kinds(feed(policy, [0.15], start=5)) == [("firing", "warning")]
    policy = make_policy(critical_fire_after=3)
    assert feed(policy, [0.3, 0.3, 0.05, 0.3, 0.3]) == []
    assert kinds(feed(policy, [0.3], start=5)) == [("firing", "critical")]


def test_warning_breaches_fire_a_warning() -> None:
    policy = make_policy()
    alerts = feed(policy, [0.15, 0.2, 0.12])
    assert kinds(alerts) == [("firing", "warning")]
    assert alerts[0].threshold == 0.1
    assert alerts[0].event["data"]["statistic"]["threshold"] == 0.1
    description = alerts[0].event["data"]["annotations"]["description"]
    assert "above the warning threshold 0.10 for 3 consecutive windows" in description


def test_critical_takes_precedence_when_both_streaks_reach_fire_after() -> None:
    alerts = feed(make_policy(critical_fire_after=3), [0.3, 0.3, 0.3])
    assert kinds(alerts) == [("firing", "critical")]


def test_a_breach_exactly_at_the_threshold_is_not_a_breach() -> None:
    assert feed(make_policy(), [0.1] * 5) == []
    assert kinds(feed(make_policy(), [0.25] * 3)) == [("firing", "warning")]


def test_mixed_streak_fires_warning_then_escalates() -> None:
    policy = make_policy(critical_fire_after=3)
    assert kinds(feed(policy, [0.15, 0.3, 0.3])) == [("firing", "warning")]
    warning = policy.firing()[0]
    escalation = policy.observe(finding(0.3, 3))
    assert kinds(escalation) == [("resolved", "warning"), ("firing", "critical")]
    resolved, critical = escalation
    assert resolved.fingerprint == warning.fingerprint != critical.fingerprint
    assert resolved.ends_at == finding(0.3, 3).window_end
    assert resolved.starts_at == warning.starts_at
    assert critical.starts_at == finding(0.3, 3).window_end
    assert {resolved.transition, critical.transition} == {"escalated"}
    assert resolved.event["data"]["statistic"]["threshold"] == 0.25
    assert resolved.event["data"]["annotations"]["summary"].startswith("Escalated to critical:")
    assert len({resolved.id, critical.id, warning.id}) == 3
    assert policy.firing() == [critical]


def test_a_firing_warning_escalates_on_one_critical_window() -> None:
    policy = make_policy()
    assert kinds(feed(policy, [0.15, 0.15, 0.15])) == [("firing", "warning")]
    escalation = feed(policy, [0.3], start=3)
    assert kinds(escalation) == [("resolved", "warning"), ("firing", "critical")]
    assert {a.transition for a in escalation} == {"escalated"}


def test_escalation_needs_critical_fire_after_critical_breaches() -> None:
    policy = make_policy(critical_fire_after=3)
    feed(policy, [0.15, 0.15, 0.15])
    assert feed(policy, [0.3, 0.3, 0.15, 0.3, 0.3], start=3) == []
    assert kinds(feed(policy, [0.3], start=8)) == [("resolved", "warning"), ("firing", "critical")]


def test_min_samples_findings_neither_breach_nor_clear() -> None:
    policy = make_policy()
    assert policy.observe(finding(0.9, 0, sample_size=199)) == []  # not even a critical one
    assert feed(policy, [0.15, 0.15], start=1) == []
    assert policy.observe(finding(0.15, 3, sample_size=199)) == []
    assert policy.observe(finding(0.0, 4, sample_size=10)) == []
    assert policy.observe(finding(float("nan"), 5)) == []
    assert kinds(policy.observe(finding(0.15, 6))) == [("firing", "warning")]
    # and while firing, ignored clean windows do not count towards resolving
    feed(policy, [0.0, 0.0], start=7)
    assert feed(policy, [0.0] * 3, start=9, sample_size=1) == []
    assert kinds(feed(policy, [0.0], start=12)) == [("resolved", "warning")]


def test_resolves_after_m_clear_windows() -> None:
    policy = make_policy(resolve_after=4)
    [firing] = feed(policy, [0.3] * 3)
    assert feed(policy, [0.01, 0.01, 0.01, 0.5, 0.01, 0.01, 0.01], start=3) == []
    [resolved] = policy.observe(finding(0.01, 10))
    assert (resolved.status, resolved.severity, resolved.transition) == (
        "resolved",
        "critical",
        "resolved",
    )
    assert resolved.fingerprint == firing.fingerprint
    assert resolved.starts_at == firing.starts_at
    assert resolved.ends_at == finding(0.01, 10).window_end
    assert resolved.id == deterministic_id(firing.fingerprint, "resolved", "55000")
    data = resolved.event["data"]
    assert data["ends_at"] == "2026-11-27T14:13:12.250Z"
    assert data["starts_at"] == firing.event["data"]["starts_at"]
    assert data["statistic"] == {"name": "psi", "value": 0.01, "threshold": 0.1}
    assert policy.firing() == []


def test_critical_does_not_de_escalate_between_thresholds() -> None:
    policy = make_policy()
    feed(policy, [0.3] * 3)
    assert feed(policy, [0.2] * 10, start=3) == []
    assert kinds(policy.firing()) == [("firing", "critical")]
    assert kinds(feed(policy, [0.05] * 3, start=13)) == [("resolved", "critical")]


def test_resolve_uses_the_critical_threshold_without_a_warning_threshold() -> None:
    policy = make_policy(Thresholds(warning=None, critical=0.25))
    assert kinds(feed(policy, [0.15] * 5)) == []
    feed(policy, [0.3] * 3, start=5)
    [resolved] = feed(policy, [0.2] * 3, start=8)
    assert resolved.status == "resolved"
    assert resolved.threshold == 0.25
    assert "0.20 <= 0.25" in resolved.event["data"]["annotations"]["summary"]


def test_cooldown_blocks_then_allows_with_accumulated_streak() -> None:
    policy = make_policy(cooldown_seconds=600.0)
    feed(policy, [0.3] * 3)
    [resolved] = feed(policy, [0.0] * 3, start=3)
    resolved_at = resolved.time
    # breaches right after the resolve: counted, but the alert may not fire yet
    blocked = [
        policy.observe(finding(0.3, 6 + k, end=resolved_at + 60.0 * (k + 1))) for k in range(9)
    ]
    assert blocked == [[]] * 9
    # 599.999 s after the resolve: still cooling down
    assert policy.observe(finding(0.3, 15, end=resolved_at + 599.999)) == []
    [fired] = policy.observe(finding(0.3, 16, end=resolved_at + 600.0))
    assert (fired.status, fired.severity) == ("firing", "critical")
    assert fired.starts_at == resolved_at + 600.0


def test_cooldown_does_not_fire_without_a_streak() -> None:
    policy = make_policy(cooldown_seconds=60.0)
    feed(policy, [0.3] * 3)
    [resolved] = feed(policy, [0.0] * 3, start=3)
    assert policy.observe(finding(0.15, 6, end=resolved.time + 3600.0)) == []


def test_direction_below_for_p_values() -> None:
    chi2 = Thresholds(warning=0.05, critical=0.01, direction="below")
    policy = make_policy(chi2)
    kw = {"feature": "country", "detector": "chi_square", "statistic": "chi_square_p_value"}
    assert feed(policy, [0.01, 0.01, 0.05], **kw) == []  # 0.01 is only a warning, 0.05 clear
    assert feed(policy, [0.04, 0.02], start=3, **kw) == []
    [fired] = feed(policy, [0.0001], start=5, **kw)
    assert fired.severity == "critical"
    summary = fired.event["data"]["annotations"]["summary"]
    assert summary.startswith("chi-square p-value 0.0001 < 0.01 on `country` of fraud-scorer v7")
    [resolved] = feed(policy, [0.2, 0.3, 0.05], start=6, **kw)
    assert resolved.event["data"]["annotations"]["summary"].startswith(
        "Resolved: chi-square p-value 0.05 >= 0.05 on `country`"
    )


def test_alerts_of_different_features_and_detectors_are_independent() -> None:
    policy = make_policy()
    out: list[Alert] = []
    for i in range(3):
        out += policy.observe(finding(0.3, i, feature="amount"))
        out += policy.observe(finding(0.05, i, feature="country"))
        out += policy.observe(finding(0.3, i, feature="amount", detector="js"))
    assert sorted((a.feature, a.detector) for a in out) == [("amount", "js"), ("amount", "psi")]
    assert [(a.feature, a.detector) for a in policy.firing()] == [
        ("amount", "js"),
        ("amount", "psi"),
    ]


@pytest.mark.parametrize(
    ("feature", "detector", "expected"),
    [
        ("amount", "psi", "FeatureDrift"),
        ("__prediction__", "js", "PredictionDrift"),
        ("__prediction__.fraud", "psi", "PredictionDrift"),
        ("__prediction___x", "psi", "FeatureDrift"),
        ("__label__", "psi", "LabelDrift"),
        ("amount", "quality_missing", "DataQuality"),
        ("amount", "quality_out_of_range", "DataQuality"),
        ("country", "quality_unseen_category", "DataQuality"),
        ("amount", "quality_type", "DataQuality"),
    ],
)
def test_alertname(feature: str, detector: str, expected: str) -> None:
    assert alert_name(feature, detector) == expected
    [alert] = feed(make_policy(), [0.3] * 3, feature=feature, detector=detector)
    assert alert.labels["alertname"] == expected


def test_warning_and_critical_of_the_same_thing_have_different_fingerprints() -> None:
    policy = make_policy()
    [warning] = feed(policy, [0.15] * 3)
    _, critical = feed(policy, [0.3] * 3, start=3)
    assert warning.fingerprint != critical.fingerprint
    assert warning.labels | {"severity": "critical"} == critical.labels


# -- text ---------------------------------------------------------------------------------


def test_summary_has_the_on_call_shape() -> None:
    policy = make_policy()
    alerts: list[Alert] = []
    for k, value in enumerate([0.15, 0.15, 0.31, 0.04, 0.04, 0.04]):
        alerts += policy.observe(finding(value, k, end=T0 + 60.0 * (k - 2)))
    fired, resolved = alerts
    assert fired.event["data"]["annotations"]["summary"] == (
        "PSI 0.31 > 0.25 on `amount` of fraud-scorer v7 over 5,000 events "
        "ending 2026-11-27 14:03:12 UTC"
    )
    assert resolved.event["data"]["annotations"]["summary"] == (
        "Resolved: PSI 0.04 <= 0.10 on `amount` of fraud-scorer v7 over 5,000 events "
        "ending 2026-11-27 14:06:12 UTC"
    )
    description = fired.event["data"]["annotations"]["description"]
    assert "above the critical threshold 0.25 in the latest window" in description
    assert "5,000 events" in description and "1,000 values" in description
    assert "2026-11-27 14:00:12 UTC to 2026-11-27 14:03:12 UTC" in description
    assert "population stability index" in description
    assert (
        "firing since 2026-11-27 14:03:12 UTC"
        in resolved.event["data"]["annotations"]["description"]
    )


@pytest.mark.parametrize(
    ("statistic", "feature", "expected"),
    [
        (
            "jensen_shannon_distance",
            "__prediction__",
            "Jensen-Shannon distance 0.31 > 0.25 on the prediction",
        ),
        ("ks_statistic", "__label__", "KS statistic 0.31 > 0.25 on the label"),
        (
            "wasserstein_normed",
            "amount",
            "Wasserstein distance (normalised) 0.31 > 0.25 on `amount`",
        ),
        ("my_custom_stat", "__prediction__.fraud", "my_custom_stat 0.31 > 0.25 on the predicted"),
    ],
)
def test_summary_names_statistics_and_features(statistic: str, feature: str, expected: str) -> None:
    [alert] = feed(make_policy(), [0.31] * 3, statistic=statistic, feature=feature)
    assert alert.event["data"]["annotations"]["summary"].startswith(expected)


def test_every_catalog_statistic_has_a_display_name_and_a_meaning() -> None:
    from driftline.detectors.catalog import DETECTORS, describe_statistic

    for spec in DETECTORS.values():
        name, meaning = describe_statistic(spec.statistic)
        assert name != spec.statistic, spec.statistic
        assert meaning, spec.statistic


def test_summary_formats_large_counts_and_versions() -> None:
    kw = {"window_count": 1_234_567, "model_version": "canary", "model_id": "ranker"}
    [alert] = feed(make_policy(), [12.3456] * 3, **kw)
    summary = alert.event["data"]["annotations"]["summary"]
    assert "12.35 > 0.25" in summary
    assert "of ranker canary over 1,234,567 events" in summary


def test_values_that_would_look_equal_get_more_digits() -> None:
    assert format_pair(0.2549, 0.25) == ("0.255", "0.25")
    assert format_pair(0.25001, 0.25) == ("0.25001", "0.25")
    [alert] = feed(make_policy(), [0.2501] * 3)
    assert "PSI 0.2501 > 0.25" in alert.event["data"]["annotations"]["summary"]


def test_runbook_annotation_is_optional() -> None:
    [plain] = feed(make_policy(), [0.3] * 3)
    assert set(plain.event["data"]["annotations"]) == {"summary", "description"}
    [with_runbook] = feed(make_policy(runbook_url="https://runbooks/drift"), [0.3] * 3)
    assert with_runbook.event["data"]["annotations"]["runbook_url"] == "https://runbooks/drift"


def test_alert_is_detached_from_the_finding_evidence() -> None:
    policy = make_policy()
    feed(policy, [0.15, 0.15])
    trigger = finding(0.3, 2)
    trigger.evidence["bins"].append(9.9)
    [alert] = policy.observe(trigger)
    trigger.evidence["bins"].append(7.7)
    assert alert.event["data"]["evidence"]["bins"] == [0.1, 0.2, 9.9]


# -- determinism and state ----------------------------------------------------------------


def random_findings(seed: int, n_windows: int) -> list[Finding]:
    """Windows of several keys whose drift switches on and off (seeded)."""
    rng = np.random.default_rng(seed)
    keys = [("amount", "psi"), ("country", "psi"), ("amount", "js"), ("__prediction__", "psi")]
    level = {key: 0.05 for key in keys}
    out = []
    for i in range(n_windows):
        for feature, detector in keys:
            if rng.random() < 0.15:
                level[(feature, detector)] = float(rng.choice([0.05, 0.15, 0.4]))
            value = float(level[(feature, detector)] + rng.normal(0, 0.03))
            size = int(rng.integers(100, 2_000))
            out.append(finding(value, i, feature=feature, detector=detector, sample_size=size))
    return out


def run(policy: AlertPolicy, findings: Iterable[Finding]) -> list[bytes]:
    return [alert.to_json() for f in findings for alert in policy.observe(f)]


def test_two_fresh_policies_emit_identical_bytes() -> None:
    findings = random_findings(seed=11, n_windows=400)
    first = run(make_policy(cooldown_seconds=300.0), findings)
    second = run(make_policy(cooldown_seconds=300.0), findings)
    assert len(first) > 20
    assert first == second
    ids = [json.loads(b)["id"] for b in first]
    assert len(set(ids)) == len(ids)


def test_state_round_trip_mid_stream_continues_identically() -> None:
    findings = random_findings(seed=5, n_windows=400)
    reference = make_policy(cooldown_seconds=300.0)
    expected = run(reference, findings)

    # split at a point where alerts are firing, and again where a cooldown is running
    splits = []
    probe = make_policy(cooldown_seconds=300.0)
    for position, f in enumerate(findings):
        probe.observe(f)
        state = probe.to_state()
        if probe.firing() and not splits:
            splits.append(position + 1)
        cooling = any(
            e["resolved_at"] is not None and f.window_end < e["resolved_at"] + 300.0
            for e in state["alerts"]
        )
        if cooling and len(splits) == 1 and position + 1 > splits[0]:
            splits.append(position + 1)
    assert len(splits) == 2

    for split in splits:
        head = make_policy(cooldown_seconds=300.0)
        before = run(head, findings[:split])
        state = json.loads(json.dumps(head.to_state()))
        restored = AlertPolicy.from_state(
            state,
            source=SOURCE,
            settings=head.settings,
            thresholds=lambda _f, _d: PSI,
        )
        assert restored.to_state() == head.to_state()
        # the same bytes too (the pipeline's checkpoint does not sort keys)
        assert orjson.dumps(restored.to_state()) == orjson.dumps(head.to_state())
        assert restored.firing() == head.firing()
        assert before + run(restored, findings[split:]) == expected


def test_from_state_rejects_unknown_versions() -> None:
    with pytest.raises(ValueError, match="version"):
        AlertPolicy.from_state(
            {"version": 99, "alerts": []},
            source=SOURCE,
            settings=AlertSettings(),
            thresholds=lambda _f, _d: PSI,
        )


# -- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"warning": 0.3, "critical": 0.2},
        {"warning": 0.01, "critical": 0.05, "direction": "below"},
        {"warning": float("nan"), "critical": 0.2},
        {"warning": 0.1, "critical": 0.2, "direction": "sideways"},
    ],
)
def test_thresholds_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Thresholds(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fire_after": 0},
        {"critical_fire_after": 0},
        {"resolve_after": 0},
        {"cooldown_seconds": -1.0},
        {"min_samples": -1},
    ],
)
def test_settings_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AlertSettings(**kwargs)  # type: ignore[arg-type]


# -- invariants over arbitrary streams ----------------------------------------------------

values = st.sampled_from([0.0, 0.05, 0.1, 0.15, 0.25, 0.3, 0.6])


@settings(max_examples=150, deadline=None)
@given(
    stream=st.lists(st.tuples(values, st.booleans(), st.integers(1, 400)), max_size=80),
    fire_after=st.integers(1, 4),
    critical_fire_after=st.integers(1, 4),
    resolve_after=st.integers(1, 4),
    cooldown=st.sampled_from([0.0, 60.0, 300.0]),
)
def test_invariants(
    stream: list[tuple[float, bool, int]],
    fire_after: int,
    critical_fire_after: int,
    resolve_after: int,
    cooldown: float,
) -> None:
    policy = make_policy(
        fire_after=fire_after,
        critical_fire_after=critical_fire_after,
        resolve_after=resolve_after,
        cooldown_seconds=cooldown,
    )
    counted: list[float] = []  # values of the counted findings so far
    last_status: dict[str, str] = {}
    last_resolve: float | None = None
    for i, (value, enough, gap) in enumerate(stream):
        f = finding(value, i, sample_size=1_000 if enough else 10, end=T0 + 30.0 * i + gap)
        if enough:
            counted.append(value)
        alerts = policy.observe(f)
        if not enough:
            assert alerts == []
        for alert in alerts:
            # statuses of one fingerprint alternate, starting with firing
            assert last_status.get(alert.fingerprint, "resolved") != alert.status
            last_status[alert.fingerprint] = alert.status
            needed = critical_fire_after if alert.severity == "critical" else fire_after
            recent = counted[-needed:]
            threshold = 0.25 if alert.severity == "critical" else 0.1
            if alert.status == "firing":
                assert len(recent) == needed and all(v > threshold for v in recent)
                if alert.transition == "fired" and last_resolve is not None:
                    assert f.window_end >= last_resolve + cooldown
            elif alert.transition == "resolved":
                assert all(v <= 0.1 for v in counted[-resolve_after:])
                assert len(counted) >= resolve_after
                last_resolve = f.window_end
        assert len(policy.firing()) <= 1


def test_breach_start_is_the_first_window_of_the_firing_streak() -> None:
    policy = make_policy(critical_fire_after=3)
    # A breach, a clean window (streak broken), then three breaches in a row.
    [fired] = feed(policy, [0.3, 0.0, 0.15, 0.3, 0.3])
    assert fired.breach_start == finding(0.0, 2).window_start
    assert fired.event["data"]["breach_started_at"] == format_time(fired.breach_start)
    [escalated_from, escalated] = feed(policy, [0.3], start=5)
    assert escalated_from.breach_start == escalated.breach_start == fired.breach_start
    [resolved] = feed(policy, [0.0, 0.0, 0.0], start=6)
    assert resolved.breach_start == fired.breach_start


def _old_rule(
    stream: list[tuple[float, bool, int]], fire_after: int, resolve_after: int, cooldown: float
) -> list[tuple[str, str, str, int]]:
    """The rule before ``critical_fire_after`` existed (every alert and every escalation
    after ``fire_after`` windows), written out independently of the policy: its events as
    (status, severity, transition, finding index)."""
    warning = critical = clear = 0
    firing: str | None = None
    resolved_at: float | None = None
    out: list[tuple[str, str, str, int]] = []
    for i, (value, enough, gap) in enumerate(stream):
        if not enough:
            continue
        end = T0 + 30.0 * i + gap
        level = "critical" if value > 0.25 else "warning" if value > 0.1 else None
        warning = warning + 1 if level is not None else 0
        critical = critical + 1 if level == "critical" else 0
        clear = clear + 1 if level is None else 0
        if firing is None:
            severity = (
                "critical"
                if critical >= fire_after
                else "warning"
                if warning >= fire_after
                else None
            )
            cooling = resolved_at is not None and end < resolved_at + cooldown
            if severity is not None and not cooling:
                firing = severity
                out.append(("firing", severity, "fired", i))
        elif firing == "warning" and critical >= fire_after:
            out += [("resolved", "warning", "escalated", i), ("firing", "critical", "escalated", i)]
            firing = "critical"
        elif clear >= resolve_after:
            out.append(("resolved", firing, "resolved", i))
            firing, resolved_at = None, end
    return out


@settings(max_examples=200, deadline=None)
@given(
    stream=st.lists(st.tuples(values, st.booleans(), st.integers(1, 400)), max_size=80),
    fire_after=st.integers(1, 4),
    resolve_after=st.integers(1, 4),
    cooldown=st.sampled_from([0.0, 60.0, 300.0]),
)
def test_critical_fire_after_equal_to_fire_after_is_the_old_rule(
    stream: list[tuple[float, bool, int]], fire_after: int, resolve_after: int, cooldown: float
) -> None:
    policy = make_policy(
        fire_after=fire_after,
        critical_fire_after=fire_after,
        resolve_after=resolve_after,
        cooldown_seconds=cooldown,
    )
    events = []
    for i, (value, enough, gap) in enumerate(stream):
        f = finding(value, i, sample_size=1_000 if enough else 10, end=T0 + 30.0 * i + gap)
        events += [(a.status, a.severity, a.transition, i) for a in policy.observe(f)]
    assert events == _old_rule(stream, fire_after, resolve_after, cooldown)


def test_a_state_saved_under_the_three_window_rule_continues_under_the_default() -> None:
    """The state format did not change: a checkpoint taken mid-streak under
    ``critical_fire_after: 3`` restores, and its critical streak counts."""
    old = make_policy(critical_fire_after=3)
    assert feed(old, [0.3, 0.3]) == []
    state = json.loads(json.dumps(old.to_state()))
    restored = AlertPolicy.from_state(
        state, source=SOURCE, settings=AlertSettings(), thresholds=lambda _f, _d: PSI
    )
    [fired] = restored.observe(finding(0.3, 2))
    assert (fired.severity, fired.breach_start) == ("critical", finding(0.3, 0).window_start)
    assert "for 3 consecutive windows" in fired.event["data"]["annotations"]["description"]

"""The report model holds what the pipeline computed: statistics per window, thresholds,
alert episodes and the last window's distributions; its history is bounded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from driftline.config import load_settings, parse_settings
from driftline.detectors.closed_window import CategoryDistribution, NumericDistribution
from driftline.findings import Finding
from driftline.pipeline import Pipeline, PipelineOutput
from driftline.planning import build_plan
from driftline.policy.alerts import Alert
from driftline.profile import load_profile
from driftline.report.history import FindingHistory
from driftline.report.model import (
    CategoryBars,
    Histogram,
    Status,
    drift_report,
    pipeline_reports,
    version_report,
)
from tests.report.conftest import DriftingModel

KEY = ("credit-scorer", "3")


def _batches(lines: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(lines), size):
        yield lines[start : start + size]


def _run(
    drifting: DriftingModel, batch: int = 1000, windows: int = 500, config: Path | None = None
) -> tuple[Pipeline, FindingHistory, list[PipelineOutput]]:
    pipeline = Pipeline(build_plan(load_settings(config or drifting.config)))
    history = FindingHistory(windows)
    outputs = []
    for part in _batches(drifting.events.read_bytes().splitlines(), batch):
        output = pipeline.process(part)
        history.observe(output)
        outputs.append(output)
    return pipeline, history, outputs


def test_statistics_over_time_are_the_pipelines_findings(drifting: DriftingModel) -> None:
    pipeline, history, outputs = _run(drifting, batch=1000)
    findings = [f for o in outputs for f in o.findings]
    assert len(findings) == 12 * len(pipeline.monitors()[KEY].monitored())
    [report] = pipeline_reports(pipeline, history)
    for feature in (*report.prediction, *report.features):
        for series in feature.series:
            own = [
                (f.window_end, f.value, f.sample_size, f.sequence)
                for f in findings
                if (f.feature, f.detector) == (feature.name, series.detector)
            ]
            points = [(p.window_end, p.value, p.sample_size, p.sequence) for p in series.points]
            assert points == own
            assert series.latest is not None and series.latest.value == own[-1][1]
    # Cut into other batches, the same history.
    _, other_history, _ = _run(drifting, batch=333)
    assert other_history.of(KEY) == history.of(KEY)


def test_thresholds_are_the_configured_ones(drifting: DriftingModel, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "thresholds:\n  psi: {warning: 0.05}\n"
        f"models:\n  - model_id: credit-scorer\n    reference_profile: {drifting.profile}\n"
        "    features:\n      amount:\n        thresholds:\n          psi: {critical: 0.5}\n"
    )
    pipeline, history, _ = _run(drifting, config=config)
    [report] = pipeline_reports(pipeline, history)
    series = {(f.name, s.detector): s for f in report.features for s in f.series}
    assert (
        series[("amount", "psi")].thresholds.warning,
        series[("amount", "psi")].thresholds.critical,
    ) == (0.05, 0.5)
    assert (
        series[("income", "psi")].thresholds.warning,
        series[("income", "psi")].thresholds.critical,
    ) == (0.05, 0.25)
    js = series[("country", "jensen_shannon")].thresholds
    assert (js.warning, js.critical, js.direction) == (0.1, 0.2, "above")


def test_episodes_follow_the_alerts_and_the_summary_leads_with_firing_criticals(
    drifting: DriftingModel,
) -> None:
    pipeline, history, outputs = _run(drifting)
    alerts: list[Alert] = [a for o in outputs for a in o.alerts]
    firing = [a for a in alerts if a.status == "firing"]
    assert firing, "the scenario's drift must fire alerts"
    [version] = pipeline_reports(pipeline, history)
    series = {(f.name, s.detector): s for f in version.features for s in f.series}
    series |= {(f.name, s.detector): s for f in version.prediction for s in f.series}
    for alert in firing:
        [episode] = [
            e for e in series[(alert.feature, alert.detector)].episodes if e.firing_id == alert.id
        ]
        assert (episode.severity, episode.breach_start, episode.starts_at) == (
            alert.severity,
            alert.breach_start,
            alert.starts_at,
        )
        resolved = [
            a for a in alerts if a.status == "resolved" and a.fingerprint == alert.fingerprint
        ]
        assert episode.ends_at == (resolved[0].ends_at if resolved else None)
    report = drift_report([version])
    statuses = [row.series.status for row in report.summary]
    assert statuses == sorted(statuses)
    assert statuses[0] is Status.FIRING_CRITICAL
    assert report.summary[0].series.firing is not None
    firing_pairs = {(a.feature, a.detector) for a in pipeline.snapshot().versions[0].firing}
    assert {
        (r.feature, r.series.detector) for r in report.summary if r.series.firing
    } == firing_pairs
    assert [f.name for f in version.prediction] == ["__prediction__"]
    assert all(not f.is_prediction for f in version.features)


def test_distributions_are_the_last_closed_window_next_to_the_reference(
    drifting: DriftingModel,
) -> None:
    pipeline, history, _ = _run(drifting)
    view = pipeline.version_view(KEY)
    assert view is not None and view.last_window is not None
    profile = load_profile(drifting.profile)
    amount = view.last_window.features["amount"]
    assert isinstance(amount, NumericDistribution)
    fine = profile.features["amount"].numeric
    assert fine is not None
    assert int(amount.reference.sum()) == sum(fine.fine_bins.counts)
    assert amount.reference[0] == amount.reference[-1] == 0
    assert int(amount.current.sum()) + amount.missing + amount.violations == 1000
    country = view.last_window.features["country"]
    assert isinstance(country, CategoryDistribution)
    categories = profile.features["country"].categories
    assert categories is not None
    assert country.categories == tuple(categories.categories)
    assert country.reference.tolist()[:-1] == list(categories.categories.values())

    [report] = pipeline_reports(pipeline, history)
    by_name = {f.name: f for f in report.features}
    hist = by_name["amount"].distribution
    assert hist is not None and isinstance(hist.chart, Histogram)
    assert sum(hist.chart.reference_shares) == pytest.approx(1.0)
    inner = int(amount.current[1:-1].sum()) / int(amount.current.sum())
    assert sum(hist.chart.current_shares) == pytest.approx(inner)
    assert len(hist.chart.lower) <= 20
    bars = by_name["country"].distribution
    assert bars is not None and isinstance(bars.chart, CategoryBars)
    brazil = bars.chart.categories.index("BR")
    shares = country.current / country.current.sum()
    assert bars.chart.current_shares[brazil] == pytest.approx(float(shares[brazil]))
    assert bars.window_end == view.last_window.end
    # The drift is visible: BR's share in the last window is well above the reference's.
    ref = np.array(bars.chart.reference_shares)
    assert bars.chart.current_shares[brazil] > ref[brazil] + 0.1


def test_history_is_bounded_and_replayed_outputs_do_not_duplicate(
    drifting: DriftingModel,
) -> None:
    _, history, outputs = _run(drifting, windows=5)
    for points in history.of(KEY).series.values():
        assert [p.sequence for p in points] == [8000, 9000, 10000, 11000, 12000]
    again = FindingHistory(500)
    for output in outputs:
        again.observe(output)
    for output in outputs[6:]:  # a partition re-read from a checkpoint after a rebalance
        again.observe(output)
    for points in again.of(KEY).series.values():
        assert [p.sequence for p in points] == list(range(1000, 12001, 1000))
    reference = FindingHistory(500)
    for output in outputs:
        reference.observe(output)
    assert again.of(KEY) == reference.of(KEY)
    again.retain(set())
    assert again.versions() == []


def test_alert_firing_before_a_restore_is_an_open_episode(drifting: DriftingModel) -> None:
    pipeline, _, _ = _run(drifting)
    restored = Pipeline(pipeline.plan)
    restored.restore(pipeline.to_state())
    view = restored.version_view(KEY)
    assert view is not None and view.last_window is None  # not part of the state
    report = version_report(view, FindingHistory().of(KEY))
    firing = {(a.feature, a.detector): a for a in view.version.firing}
    assert firing
    for feature in report.features:
        assert feature.distribution is None
        for series in feature.series:
            alert = firing.get((feature.name, series.detector))
            if alert is not None:
                [episode] = series.episodes
                assert episode.ends_at is None and episode.breach_start == alert.breach_start


def test_a_warming_up_version_has_no_statistics_yet() -> None:
    pipeline = Pipeline(build_plan(parse_settings({"warmup_events": 500})))
    line = (
        b'{"event_id":"e1","model_id":"m","model_version":"1","timestamp":1704067200,'
        b'"features":{"x":1.5}}'
    )
    pipeline.process([line])
    view = pipeline.version_view(("m", "1"))
    assert view is not None
    report = version_report(view, FindingHistory().of(("m", "1")))
    assert report.warming_up and report.features == () and report.prediction == ()
    assert pipeline.version_view(("m", "2")) is None


def test_two_partitions_of_one_version_keep_their_own_windows() -> None:
    """Each input partition's pipeline numbers its stream positions from its own start:
    interleaved, one partition's windows used to replace the other's as 'replayed'."""

    def output(sequence: int, end: float) -> PipelineOutput:
        finding = Finding(
            model_id="m", model_version="1", feature="x", detector="psi", statistic="psi",
            value=0.1, sample_size=100, window_start=end - 60, window_end=end,
            window_count=100, sequence=sequence, event_id=f"e{sequence}",
        )  # fmt: skip
        return PipelineOutput(findings=[finding], alerts=[])

    history = FindingHistory(10)
    for source, sequence, end in (("a", 1000, 60.0), ("b", 500, 60.0), ("a", 2000, 120.0),
                                  ("b", 1000, 120.0)):  # fmt: skip
        history.observe(output(sequence, end), source)
    for source, sequences in (("a", [1000, 2000]), ("b", [500, 1000])):
        [points] = history.of(("m", "1"), source).series.values()
        assert [p.sequence for p in points] == sequences
    history.retain({("a", ("m", "1"))})
    assert history.of(("m", "1"), "b").series == {}
    assert history.versions() == [("m", "1")]

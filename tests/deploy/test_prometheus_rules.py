"""deploy/prometheus/driftline-rules.yml: valid for Prometheus, unit-tested with
`promtool test rules`, and reading only metrics driftline exports."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.deploy.promql import (
    PROMETHEUS_SERIES,
    RULES,
    RULES_TESTS,
    exported_metric_names,
    load_rules,
    metric_names,
    run_promtool,
)


def test_promtool_accepts_the_rules() -> None:
    result = run_promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run_promtool("test", "rules", RULES_TESTS.name, cwd=RULES_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests catch a broken rule: without its idle-partition guard, the stale
    checkpoint alert fires for an idle partition, and `promtool test rules` says so."""
    rules = RULES.read_text()
    guarded = "driftline_checkpoint_age_seconds > 300 and driftline_consumer_lag > 0"
    assert guarded in rules
    (tmp_path / RULES.name).write_text(
        rules.replace(guarded, "driftline_checkpoint_age_seconds > 300")
    )
    shutil.copy(RULES_TESTS, tmp_path / RULES_TESTS.name)
    result = run_promtool("test", "rules", RULES_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    report = result.stdout + result.stderr
    assert "alertname: DriftlineCheckpointsStale" in report
    assert 'partition="1"' in report  # the idle one


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = yaml.safe_load(RULES_TESTS.read_text())["tests"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case["alert_rule_test"]:
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = {rule["alert"] for rule in load_rules()}
    assert alerts - fires == set(), "alerts no test makes fire"
    assert alerts - quiet == set(), "alerts no test keeps quiet"


def test_rules_read_only_exported_metrics() -> None:
    exported = exported_metric_names()
    for rule in load_rules():
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        unknown = names - exported - PROMETHEUS_SERIES
        assert unknown == set(), f"{rule['alert']} reads metrics driftline does not export"


def test_every_alert_tells_on_call_what_and_how_bad() -> None:
    for rule in load_rules():
        assert rule["alert"].startswith("Driftline"), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_metric_names_finds_metrics_and_nothing_else() -> None:
    expr = (
        'sum by (job, le) (rate(a_bucket{source="x", job=~"$job"}[5m]))'
        " / on (job) group_left sum without (reason) (b_total offset 1h) > 1e3"
        ' and absent(up{job="driftline"}) or histogram_quantile(0.9, c[5m:1m])'
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "up", "c"}

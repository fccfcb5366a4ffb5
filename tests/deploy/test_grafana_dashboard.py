"""deploy/grafana/driftline-dashboard.json: valid JSON, the datasource a variable, every
expression valid PromQL reading only metrics driftline exports, every metric on it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.deploy.promql import (
    DASHBOARD,
    PROMETHEUS_SERIES,
    check_syntax,
    exported_families,
    exported_metric_names,
    metric_names,
    walk_panels,
)

_LABEL_VALUES = re.compile(r"^label_values\((?P<expr>.+),\s*(?P<label>\w+)\)$")
_VARIABLE = re.compile(r"\$\{?(\w+)\}?")


def _dashboard() -> dict[str, Any]:
    result: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return result


def _expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: the panels' queries and the query variables' selectors."""
    exprs = [
        target["expr"]
        for panel in walk_panels(dashboard["panels"])
        for target in panel.get("targets", ())
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = _LABEL_VALUES.match(variable["query"]["query"])
            assert match, variable["name"]
            exprs.append(match["expr"])
    return exprs


def _as_prometheus_sees_it(expr: str) -> str:
    """Grafana's variables replaced the way Grafana would (a range, a regex)."""
    return _VARIABLE.sub(lambda m: "5m" if m[1] == "__rate_interval" else ".*", expr)


def test_datasource_is_a_variable() -> None:
    dashboard = _dashboard()
    [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    reference = f"${{{variable['name']}}}"
    for panel in walk_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == reference, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == reference, panel["title"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == reference, variable["name"]


def test_panels_have_unique_ids_and_a_place() -> None:
    panels = list(walk_panels(_dashboard()["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


def test_expressions_read_only_exported_metrics() -> None:
    exported = exported_metric_names()
    for expr in _expressions(_dashboard()):
        names = metric_names(expr)
        assert names, expr
        assert names - exported - PROMETHEUS_SERIES == set(), expr


def test_every_exported_metric_is_on_the_dashboard() -> None:
    used = set().union(*(metric_names(e) for e in _expressions(_dashboard())))
    for family, kind in exported_families().items():
        samples = {family} if kind == "gauge" else {f"{family}_total", f"{family}_bucket"}
        assert used & samples, f"{family} is not on the dashboard"


def test_expressions_parse_as_promql(tmp_path: Path) -> None:
    exprs = [_as_prometheus_sees_it(e) for e in _expressions(_dashboard())]
    result = check_syntax(exprs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_syntax_check_rejects_bad_promql(tmp_path: Path) -> None:
    result = check_syntax(["sum by (le (rate(driftline_batch_size_bucket[5m]))"], tmp_path)
    assert result.returncode != 0

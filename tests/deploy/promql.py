"""What the shipped Prometheus rules and Grafana dashboard may query: the metric names
driftline exports, the metric names a PromQL expression reads, and promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline.service.metrics import ServiceMetrics
from driftline.service.snapshot import ServiceSnapshot

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "driftline-rules.yml"
RULES_TESTS = ROOT / "deploy" / "prometheus" / "driftline-rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "driftline-dashboard.json"

#: Series Prometheus makes itself, which the rules and the dashboard may read too.
PROMETHEUS_SERIES = frozenset({"up", "ALERTS"})

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


class _Idle:
    def snapshot(self) -> ServiceSnapshot:
        return ServiceSnapshot(ready=False, taken_at=0.0, partitions=())


def exported_families() -> dict[str, str]:
    """Metric family name -> type, for every family driftline's metrics module registers
    (the scrape-time collector included)."""
    metrics = ServiceMetrics()
    metrics.watch(_Idle())
    return {family.name: family.type for family in metrics.registry.collect()}


def exported_metric_names() -> set[str]:
    """Every sample name `/metrics` can show (``_total``, ``_bucket``, ... included)."""
    return {
        name + suffix for name, kind in exported_families().items() for suffix in _SUFFIXES[kind]
    }


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:$])[A-Za-z_:][\w:]*")
_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
     "unless", "offset", "inf", "nan", "atan2"}
)  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions,
    aggregations, keywords, label names or inside strings, label matchers or ranges."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _LABEL_LIST.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group()
        if name.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(name)
    return names


def load_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def promtool() -> str:
    """Path of promtool; the test fails (never skips) without it."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed (Debian package `prometheus`)", pytrace=False)
    return path


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def check_syntax(expressions: Iterable[str], directory: Path) -> subprocess.CompletedProcess[str]:
    """`promtool check rules` on a rules file recording each expression: promtool parses
    every expression with Prometheus's own PromQL parser."""
    rules = [{"record": f"check:expr_{i}", "expr": e} for i, e in enumerate(expressions)]
    path = directory / "expressions.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
    return run_promtool("check", "rules", path)


def walk_panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from walk_panels(panel.get("panels", ()))

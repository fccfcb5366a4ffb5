"""The README's bridge config is valid for driftline, its Alertmanager route for
Alertmanager's own checker (``amtool check-config``, Debian ``prometheus-alertmanager``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from driftline.config import parse_settings

README = Path(__file__).parents[2] / "README.md"


def _yaml_block(first_line: str) -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    found = [block for block in blocks if block.startswith(first_line)]
    assert len(found) == 1, f"one README yaml block starting with {first_line!r}"
    return found[0]


def test_bridge_example_config_is_valid() -> None:
    settings = parse_settings(yaml.safe_load(_yaml_block("# bridge.yaml")))
    assert settings.alertmanager.urls == ("http://127.0.0.1:9093",)
    assert settings.alertmanager_group_id == "driftline-alertmanager"


def test_alertmanager_example_route_passes_amtool(tmp_path: Path) -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.fail("amtool not found (Debian package prometheus-alertmanager)", pytrace=False)
    config = tmp_path / "alertmanager.yml"
    config.write_text(_yaml_block("# alertmanager.yml"))
    done = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout

"""A one-minute soak of `driftline run` (load_tests/soak.py): memory and lag stay flat."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
SOAK = REPO / "load_tests" / "soak.py"


def test_one_minute_soak_is_flat_and_plotted(kafka_bootstrap: str, tmp_path: Path) -> None:
    png = tmp_path / "soak.png"
    done = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--duration",
            "60",
            "--rate",
            "1000",
            "--interval",
            "5",
            "--bootstrap",
            kafka_bootstrap,
            "--output",
            str(png),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        check=False,
    )
    output = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-4000:]}"
    assert done.returncode == 0, output
    assert "verdict: **flat**" in done.stdout, output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", output
    # The malformed ~0.5% reached the service and became dead letters.
    dead = re.search(r"([\d,]+) dead letters", done.stdout)
    assert dead is not None and int(dead.group(1).replace(",", "")) > 0, output

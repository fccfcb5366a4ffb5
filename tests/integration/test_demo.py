"""`driftline demo` on Kafka: the schedule and the view (no broker), then the demo end to end
as a child process, on the session's broker and on a broker of its own stopped by Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from rich.console import Console

from driftline.config import parse_settings
from driftline.demo.kafka_demo import (
    EVENTS_FOR_AN_ALERT,
    LABEL_DELAY,
    MALFORMED,
    MODEL_ID,
    MODEL_VERSION,
    demo_config,
    drift_schedule,
    malformed_positions,
)
from driftline.demo.live_view import (
    DemoSnapshot,
    OutputLine,
    ScheduledDrift,
    feature_statuses,
    render,
)
from driftline.demo.scenario import credit_scoring_scenario, event_lines, write_reference_csv
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.profile import save_profile
from driftline.profile_io import build_profile_from_file

DEMO = (
    "from driftline.demo.kafka_demo import main; import sys; raise SystemExit(main(sys.argv[1:]))"
)


# --------------------------------------------------------------------------- no broker


@pytest.mark.parametrize("duration", [20.0, 25.0, 60.0])
def test_every_drift_has_time_to_alert(duration: float) -> None:
    rate = 1000.0
    steps = drift_schedule(duration, rate)
    total = round(duration * rate)
    for step in steps:
        assert step.start == round(step.at * rate)
        assert step.start >= 5_000, "some clean traffic first"
        # The labels of a concept drift's predictions come back LABEL_DELAY later.
        wait = LABEL_DELAY[1] * rate if step.concept_drifts else 0
        assert step.start + wait + EVENTS_FOR_AN_ALERT <= total
    assert {d.feature for s in steps for d in s.drifts} == {"amount", "country", "income"}
    assert [bool(s.concept_drifts) for s in steps] == [True, False, False]
    assert steps[0].alerted_features == ("__error__",)


def test_malformed_events_are_spread_over_the_run() -> None:
    positions = malformed_positions(25_000)
    assert len(positions) == len(MALFORMED)
    assert list(positions) == sorted(set(positions))
    assert positions[0] > 0 and positions[-1] < 25_000


def test_config_is_what_a_user_writes_and_unique_on_a_shared_cluster(tmp_path: Path) -> None:
    own = parse_settings(demo_config("p.json", "127.0.0.1:1"), base_dir=tmp_path)
    assert own.models[0].reference_profile == tmp_path / "p.json"
    assert own.kafka.input_topics == ("driftline.predictions",)
    one = parse_settings(demo_config("p.json", "h:1", "aaaa"), base_dir=tmp_path).kafka
    two = parse_settings(demo_config("p.json", "h:1", "bbbb"), base_dir=tmp_path).kafka
    names = [
        (k.group_id, *k.input_topics, k.alerts_topic, k.retrain_topic, k.dead_letter_topic)
        for k in (one, two)
    ]
    assert not set(names[0]) & set(names[1])
    assert one.state_topic != two.state_topic and one.partitions == 1


def test_view_shows_the_drifted_feature_firing(tmp_path: Path) -> None:
    base = credit_scoring_scenario(
        events=6_000, model_id=MODEL_ID, model_version=MODEL_VERSION, rate=1000.0, drifts=()
    )
    write_reference_csv(base, 5_000, tmp_path / "training.csv")
    profile = build_profile_from_file(
        tmp_path / "training.csv", model_id=MODEL_ID, model_version=MODEL_VERSION
    )
    save_profile(profile, tmp_path / "p.json")
    settings = parse_settings(demo_config("p.json", "h:1"), base_dir=tmp_path)
    pipeline = Pipeline(build_plan(settings))
    drifted = drift_schedule(4.0, 1000.0)[1].drifts  # at 2 s
    scenario = credit_scoring_scenario(
        events=6_000,
        model_id=MODEL_ID,
        model_version=MODEL_VERSION,
        rate=1000.0,
        drifts=[d for d in drifted if d.feature == "amount"],
    )
    pipeline.process(list(event_lines(scenario)))

    statuses = {s.feature: s for s in feature_statuses([pipeline], (MODEL_ID, MODEL_VERSION))}
    assert statuses["amount"].detector == "psi"
    assert statuses["amount"].firing == "critical"
    assert statuses["amount"].value > 0.25
    assert statuses["credit_score"].firing is None and statuses["credit_score"].level is None
    assert "__prediction__" in statuses

    snapshot = DemoSnapshot(
        title="demo",
        elapsed=6.0,
        duration=10.0,
        produced=6_000,
        produced_rate=1_000.0,
        consumed=6_000,
        consumed_rate=1_000.0,
        dead_letters=2,
        drifts=[ScheduledDrift(2.0, "amount up")],
        alerts=[OutputLine(5.1, "FIRING   critical PSI 4.6 > 0.25 on `amount`")],
        retrain_requests=[],
        alert_count=1,
        retrain_count=0,
    )
    console = Console(record=True, width=120, color_system=None)
    console.print(render(snapshot, list(statuses.values())))
    text = console.export_text()
    assert re.search(r"amount\s+│ psi\s+│\s+\d+\.\d+ │ +> 0\.1 │ +> 0\.25 │ FIRING critical", text)
    assert "FIRING   critical PSI 4.6 > 0.25 on `amount`" in text
    assert "no retrain request yet" in text
    assert re.search(r"dead letters\s+2", text)


# --------------------------------------------------------------------------- on Kafka


def _demo(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-c", DEMO, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )


@pytest.mark.kafka
def test_demo_on_kafka_alerts_and_requests_retraining(tmp_path: Path, kafka_bootstrap: str) -> None:
    out = tmp_path / "demo"
    args = ["--duration", "20", "--no-live", "--bootstrap", kafka_bootstrap]
    proc = _demo([*args, "--output-dir", str(out)], tmp_path)
    output, _ = proc.communicate(timeout=150)
    assert proc.returncode == 0, output

    lines = output.splitlines()
    firing = [line for line in lines if re.match(r"\[ *[\d.]+ s\] FIRING +critical ", line)]
    assert any("PSI" in line and "on `amount`" in line for line in firing), output
    assert any("on `income`" in line for line in firing), output
    assert any(re.match(r"\[ *[\d.]+ s\] RETRAIN +credit-scorer v3: ", line) for line in lines)
    assert re.search(r"^  dead letters +3 \(", output, re.MULTILINE), output
    produced = re.search(
        r"^  events produced +([\d,]+) \(20,000 predictions \+ ([\d,]+) feedback \+ 3 malformed\)",
        output,
        re.MULTILINE,
    )
    assert produced, output
    assert int(produced.group(2).replace(",", "")) > 15_000, "labels 1 to 5 s late, 20 s run"
    assert re.search(rf"^  events consumed +{produced.group(1)}$", output, re.MULTILINE), output
    # The concept drift at 5 s: only the joined labels tell, as a PerformanceDrift alert.
    performance = r"\[ *[\d.]+ s\] FIRING +\w+ +.* on the model's error on joined labels"
    assert any(re.match(performance, line) for line in lines), output
    assert "monitor stopped" in output

    # What the summary says came from the topics: the files hold the events themselves.
    alerts = [orjson.loads(x) for x in (out / "alerts.jsonl").read_bytes().splitlines()]
    labels = [a["data"]["labels"] for a in alerts]
    assert {"feature": "amount", "detector": "psi", "severity": "critical"}.items() <= next(
        lab for lab in labels if lab["feature"] == "amount"
    ).items()
    requests = [orjson.loads(x) for x in (out / "retrain-requests.jsonl").read_bytes().splitlines()]
    assert [r["data"]["model_id"] for r in requests] == [MODEL_ID]
    config = (out / "driftline.yaml").read_text()
    assert (
        kafka_bootstrap in config and "reference_profile: credit-scorer-v3.profile.json" in config
    )


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.kafka
def test_ctrl_c_stops_the_demo_and_its_broker(tmp_path: Path) -> None:
    proc = _demo(["--duration", "60", "--no-live", "--output-dir", str(tmp_path)], tmp_path)
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 150
    data_dir = None
    for line in proc.stdout:  # until streaming starts
        seen.append(line)
        found = re.search(r"data and log in (\S+)\)", line)
        if found:
            data_dir = found.group(1)
            assert _processes_mentioning(data_dir), "the broker should be running"
        if "] streaming" in line or time.monotonic() > deadline:
            break
    assert data_dir is not None, "".join(seen)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    output = "".join(seen) + rest

    assert proc.returncode == 1, output  # stopped before any drift: no alert
    assert "interrupted: shutting down" in output
    assert "monitor stopped" in output and "Kafka broker stopped" in output
    assert re.search(r"summary \(interrupted\)", output)
    assert not _processes_mentioning(data_dir), "the broker's process is still running"
    assert not Path(data_dir).exists()

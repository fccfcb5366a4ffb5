"""The synthetic traffic's ground truth: labels as delayed feedback events and concept drift
(driftline.demo.scenario)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import orjson
import pytest

from driftline.demo.scenario import (
    BLOCK_SIZE,
    ConceptDrift,
    credit_scoring_scenario,
    event_columns,
    event_lines,
    stream_lines,
    write_events,
)
from driftline.events import LABEL_FEATURE, PREDICTION_FEATURE, decode_batch

EVENTS = BLOCK_SIZE + 3_000  # predictions across a block boundary
RATE = 10.0
DELAY = (30.0, 600.0)


def _scenario(**changes: Any) -> Any:
    scenario = credit_scoring_scenario(
        events=EVENTS, rate=RATE, drifts=(), labels=True, label_delay=DELAY, seed=3
    )
    return replace(scenario, **changes)


def test_every_prediction_gets_its_label_once_later_as_a_feedback_event() -> None:
    scenario = _scenario()
    stream = list(stream_lines(scenario))
    predictions = [item for item in stream if not item.feedback]
    feedback = [item for item in stream if item.feedback]
    # The predictions are event_lines (no inline label), in order.
    assert [item.line for item in predictions] == list(event_lines(scenario))
    assert all(b'"label"' not in item.line for item in predictions)
    assert sorted(item.index for item in feedback) == list(range(EVENTS))
    # In event-time order; a label never before its own prediction.
    times = [item.time_ms for item in stream]
    assert times == sorted(times)
    seen: set[int] = set()
    for item in stream:
        if item.feedback:
            assert item.index in seen
        else:
            seen.add(item.index)
    # Feedback events: the prediction's id and model, a timestamp, a label; nothing else.
    labels = event_columns(scenario)[LABEL_FEATURE]
    for item in feedback[:500]:
        event = orjson.loads(item.line)
        assert set(event) == {"event_id", "model_id", "model_version", "timestamp", "label"}
        assert event["event_id"] == scenario.event_id(item.index)
        assert event["label"] == labels[item.index]
        delay = item.time_ms / 1000.0 - scenario.event_time(item.index)
        assert DELAY[0] - 0.001 <= delay <= DELAY[1] + 0.001
    delays = np.array([f.time_ms / 1000.0 - scenario.event_time(f.index) for f in feedback])
    assert delays.mean() == pytest.approx(sum(DELAY) / 2, rel=0.05)  # uniform


def test_the_core_decodes_the_feedback_events_as_feedback() -> None:
    lines = [item.line for item in stream_lines(_scenario()) if item.feedback][:100]
    decoded = decode_batch(lines)
    assert not decoded.dead_letters and not decoded.models
    assert [len(batch) for batch in decoded.feedback] == [100]


def test_labels_until_drops_the_later_feedback_only() -> None:
    scenario = _scenario()
    last = round(scenario.event_time(EVENTS - 1) * 1000)
    whole = list(stream_lines(scenario))
    cut = list(stream_lines(scenario, labels_until_ms=last))
    assert cut == [item for item in whole if not item.feedback or item.time_ms <= last]
    assert len(whole) - len(cut) > 0 and cut[-1].time_ms <= last


def test_write_events_writes_the_merged_stream(tmp_path: Any) -> None:
    scenario = _scenario(events=500)
    path = tmp_path / "events.jsonl"
    assert write_events(scenario, path) == 1_000
    assert path.read_bytes() == b"".join(item.line + b"\n" for item in stream_lines(scenario))
    # Without a delay nothing changes: labels inline, one line per prediction.
    inline = replace(scenario, label_delay=None)
    assert [item.line for item in stream_lines(inline)] == list(event_lines(inline))
    assert all(b'"label"' in line for line in event_lines(inline))


def test_a_concept_drift_changes_only_the_labels_of_its_segment_from_its_start() -> None:
    start = 5_000
    base = _scenario()
    drifted = replace(
        base, concept_drifts=(ConceptDrift(start, "employment", "self_employed", 1.0),)
    )
    assert list(event_lines(drifted)) == list(event_lines(base))  # inputs and predictions
    before, after = event_columns(base), event_columns(drifted)
    segment = np.array([v == "self_employed" for v in before["employment"]])
    changed = np.array(before[LABEL_FEATURE]) != np.array(after[LABEL_FEATURE])
    assert not changed[:start].any() and not changed[~segment].any()
    assert changed[start:][segment[start:]].any()
    assert (np.array(after[LABEL_FEATURE])[start:][segment[start:]] == 1).all()
    # The drift-free baseline (and so the reference rows) has none.
    assert drifted.without_drift() == replace(base, concept_drifts=())


def test_the_outcome_stops_following_the_prediction_in_the_segment() -> None:
    drifted = _scenario(events=40_000, concept_drifts=(ConceptDrift(0, "channel", "web", 0.5),))
    columns = event_columns(drifted)
    p = np.array(columns[PREDICTION_FEATURE])
    y = np.array(columns[LABEL_FEATURE])
    web = np.array([v == "web" for v in columns["channel"]])
    assert y[web].mean() == pytest.approx(0.5, abs=0.02)
    assert y[~web].mean() == pytest.approx(p[~web].mean(), abs=0.02)  # still calibrated
    assert np.corrcoef(p[web], y[web])[0, 1] == pytest.approx(0.0, abs=0.05)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"label_delay": (5.0, 1.0)}, "label_delay needs"),
        ({"label_delay": (-1.0, 1.0)}, "label_delay needs"),
        ({"labels": False}, "label_delay needs labels=True"),
        ({"concept_drifts": (ConceptDrift(0, "amount", "x", 0.5),)}, "categorical or boolean"),
        ({"concept_drifts": (ConceptDrift(0, "nope", "x", 0.5),)}, "unknown feature 'nope'"),
        ({"concept_drifts": (ConceptDrift(0, "channel", "fax", 0.5),)}, "'fax' is not one of"),
    ],
)
def test_invalid_ground_truth_settings(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _scenario(**changes)


def test_invalid_concept_drift() -> None:
    with pytest.raises(ValueError, match="positive_rate"):
        ConceptDrift(0, "channel", "web", 1.5)
    with pytest.raises(ValueError, match="start"):
        ConceptDrift(-1, "channel", "web", 0.5)

"""The ``performance`` section of reference profiles: building, JSON round trip, errors."""

from __future__ import annotations

import copy
from pathlib import Path

import orjson
import pytest

from driftline.performance.task import Task
from driftline.profile import ProfileError, ProfileSource, ReferenceProfile, build_profile
from driftline.profile_io import build_profile_from_file

SOURCE = ProfileSource(kind="file", sha256="0" * 64)


def _columns() -> dict[str, list]:  # type: ignore[type-arg]
    return {
        "x": [float(i) for i in range(8)],
        "__label__": [0, 1, 1, 0, 1, 0, 1, 1],
        "__prediction__": [0.1, 0.8, 0.4, 0.3, 0.9, 0.6, 0.7, 0.55],
    }


def test_a_profile_with_predictions_and_labels_records_its_performance() -> None:
    profile = build_profile(_columns(), model_id="m", model_version="1", source=SOURCE)
    performance = profile.performance
    assert performance is not None and performance.pairs == 8
    assert performance.task.task is Task.BINARY
    assert performance.metrics["error_rate"] == 0.25
    assert performance.calibration is not None
    again = ReferenceProfile.from_json(profile.to_json())
    assert again == profile and again.profile_id == profile.profile_id
    assert again.to_json() == profile.to_json()


def test_the_section_is_absent_without_it_and_changes_the_id_with_it() -> None:
    columns = _columns()
    without = build_profile(
        {k: v for k, v in columns.items() if k != "__prediction__"},
        model_id="m",
        model_version="1",
        source=SOURCE,
    )
    assert without.performance is None
    assert "performance" not in without.to_dict()
    with_it = build_profile(columns, model_id="m", model_version="1", source=SOURCE)
    body = with_it.to_dict()
    del body["performance"], body["profile_id"]
    stripped = ReferenceProfile.from_dict(body)
    assert stripped.profile_id != with_it.profile_id


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("task", "task"), "ranking", "performance.task.task: expected one of"),
        (("metrics", "error_rate"), "high", "performance.metrics.error_rate: expected a number"),
        (("pairs",), 0, "performance.pairs: expected a positive integer"),
        (("calibration", "x"), [0.5, 0.1], "performance.calibration: calibration x values"),
        (("task", "decision_threshold"), 1.5, "performance.task: decision_threshold"),
        (("extra",), 1, "performance.extra: unknown key"),
    ],
)
def test_invalid_sections_name_the_key_path(path, value, message) -> None:  # type: ignore[no-untyped-def]
    profile = build_profile(_columns(), model_id="m", model_version="1", source=SOURCE)
    data = copy.deepcopy(profile.to_dict())
    del data["profile_id"]
    target = data["performance"]
    for key in path[:-1]:
        target = target[key]
    if path[-1] == "x":
        target["y"] = [0.2, 0.3]
    target[path[-1]] = value
    with pytest.raises(ProfileError, match=message.replace(".", r"\.")):
        ReferenceProfile.from_dict(data)


def test_ambiguous_data_stops_the_build_unless_the_task_is_given() -> None:
    columns = {"__label__": [0, 1, 2, 1], "__prediction__": [0, 1, 1, 2]}
    with pytest.raises(ProfileError, match=r"__prediction__ and __label__: .*models\[\]\.task"):
        build_profile(columns, model_id="m", model_version="1", source=SOURCE)
    profile = build_profile(
        columns, model_id="m", model_version="1", source=SOURCE, task=Task.MULTICLASS
    )
    assert profile.performance is not None
    assert profile.performance.task.classes == ("0", "1", "2")
    assert profile.performance.metrics["error_rate"] == 0.5


def test_csv_and_jsonl_events_give_the_same_performance(tmp_path: Path) -> None:
    csv = tmp_path / "ref.csv"
    csv.write_text("x,__label__,__prediction__\n1,cat,dog\n2,dog,dog\n3,bird,bird\n4,cat,cat\n")
    jsonl = tmp_path / "ref.jsonl"
    rows = [("cat", "dog"), ("dog", "dog"), ("bird", "bird"), ("cat", "cat")]
    jsonl.write_bytes(
        b"\n".join(
            orjson.dumps({"model_id": "m", "features": {"x": i + 1}, "prediction": p, "label": y})
            for i, (y, p) in enumerate(rows)
        )
    )
    from_csv = build_profile_from_file(csv, model_id="m", model_version="1")
    from_jsonl = build_profile_from_file(jsonl, model_id="m", model_version="1")
    assert from_csv.performance == from_jsonl.performance
    assert from_csv.performance is not None
    assert from_csv.performance.metrics["error_rate"] == 0.25
    assert from_csv.performance.metrics["recall.cat"] == 0.5


def test_multiclass_probability_objects_from_jsonl(tmp_path: Path) -> None:
    jsonl = tmp_path / "ref.jsonl"
    events = [
        {"features": {"x": 1}, "prediction": {"a": 0.7, "b": 0.3}, "label": "a"},
        {"features": {"x": 2}, "prediction": {"a": 0.4, "b": 0.6}, "label": "a"},
        {"features": {"x": 3}, "prediction": {"b": 0.9, "c": 0.1}, "label": "c"},
    ]
    jsonl.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    performance = build_profile_from_file(jsonl, model_id="m", model_version="1").performance
    assert performance is not None
    assert performance.task.classes == ("a", "b", "c")
    assert performance.metrics["error_rate"] == 2 / 3
    assert performance.calibration is None and "log_loss" in performance.metrics

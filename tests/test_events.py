"""Prediction event decoding: one case per dead-letter reason, every good shape, batches."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from driftline.events import (
    LABEL_FEATURE,
    PREDICTION_FEATURE,
    DeadLetter,
    DeadLetterReason,
    DecodedBatch,
    DecodeLimits,
    InvalidEventError,
    ModelBatch,
    decode_batch,
    event_values,
)

R = DeadLetterReason
MISSING = object()
NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()  # 2024-05-01T12:00:00Z
CORPUS = Path(__file__).parent / "corpus"
DEFAULT_LIMITS = DecodeLimits()


def event(**fields: Any) -> dict[str, Any]:
    """A valid event with ``fields`` replaced (``MISSING`` removes a field)."""
    base: dict[str, Any] = {
        "event_id": "e-1",
        "model_id": "fraud",
        "model_version": "3",
        "timestamp": "2024-05-01T12:00:00Z",
        "features": {"amount": 12.5, "country": "NL"},
    }
    base.update(fields)
    return {name: value for name, value in base.items() if value is not MISSING}


def encode(fields: dict[str, Any]) -> bytes:
    return orjson.dumps(fields)


def rejected(payload: bytes, limits: DecodeLimits = DEFAULT_LIMITS) -> DeadLetter:
    """The dead letter of ``payload``, the same alone and after a good event of its model.

    (The decoder has a fast path for events of a model already seen in the batch.)
    """
    batch = decode_batch([payload], limits)
    assert batch.models == []
    assert len(batch.dead_letters) == 1
    letter = batch.dead_letters[0]
    assert letter.index == 0
    assert letter.payload is payload
    after_good = decode_batch([encode(event()), payload], limits)
    assert [len(model) for model in after_good.models] == [1]
    assert after_good.dead_letters == [DeadLetter(1, letter.reason, letter.message, payload)]
    return letter


def accepted(payload: bytes) -> ModelBatch:
    """The one-row model batch of ``payload``, checking that a repeat decodes the same."""
    batch = decode_batch([payload])
    assert batch.dead_letters == [], batch.dead_letters
    assert len(batch.models) == 1
    model = batch.models[0]
    (twice,) = decode_batch([payload, payload]).models
    assert twice.timestamps.tolist() == model.timestamps.tolist() * 2
    assert twice.event_ids == model.event_ids * 2
    assert twice.columns == {name: column * 2 for name, column in model.columns.items()}
    return model


def rows(batch: DecodedBatch) -> dict[int, dict[str, Any]]:
    """Every row of a batch by message index, with its non-null values."""
    out: dict[int, dict[str, Any]] = {}
    for model in batch.models:
        for row, index in enumerate(model.indices.tolist()):
            out[index] = {
                "model": (model.model_id, model.model_version),
                "event_id": model.event_ids[row],
                "timestamp": float(model.timestamps[row]),
                "values": {
                    name: column[row]
                    for name, column in model.columns.items()
                    if column[row] is not None
                },
            }
    return out


# --- One case per reason code -----------------------------------------------------------

REJECTIONS: list[tuple[str, bytes, DeadLetterReason, str]] = [
    ("invalid utf-8", b'{"event_id": "\xff"}', R.INVALID_UTF8, "UTF-8"),
    ("overlong utf-8", b'{"event_id": "\xc0\xaf"}', R.INVALID_UTF8, "byte 14"),
    ("deep nesting", b"[" * 1100 + b"]" * 1100, R.NESTING_TOO_DEEP, "nesting"),
    ("truncated", b'{"event_id": ', R.INVALID_JSON, "invalid JSON"),
    ("empty", b"", R.INVALID_JSON, "invalid JSON"),
    ("byte order mark", b'\xef\xbb\xbf{"a": 1}', R.INVALID_JSON, "invalid JSON"),
    ("lone surrogate", b'{"event_id": "\\ud800"}', R.INVALID_JSON, "surrogate"),
    ("NaN", b'{"features": {"x": NaN}}', R.NON_FINITE_NUMBER, "NaN"),
    ("Infinity", b'{"features": {"x": Infinity}}', R.NON_FINITE_NUMBER, "Infinity"),
    ("-Infinity", b'{"features": {"x": -Infinity}}', R.NON_FINITE_NUMBER, "-Infinity"),
    ("overflow", b'{"features": {"x": 1e999}}', R.NON_FINITE_NUMBER, "overflows"),
    ("array", b"[1, 2]", R.NOT_AN_OBJECT, "array"),
    ("string", b'"event"', R.NOT_AN_OBJECT, "string"),
    ("null", b"null", R.NOT_AN_OBJECT, "null"),
    *[
        (f"no {name}", encode(event(**{name: MISSING})), R.MISSING_FIELD, f"'{name}'")
        for name in ("event_id", "model_id", "model_version", "timestamp")
    ],
    ("null event_id", encode(event(event_id=None)), R.MISSING_FIELD, "'event_id'"),
    ("numeric event_id", encode(event(event_id=5)), R.INVALID_FIELD, "'event_id'"),
    ("empty event_id", encode(event(event_id="")), R.INVALID_FIELD, "'event_id'"),
    ("long event_id", encode(event(event_id="x" * 513)), R.INVALID_FIELD, "513 characters"),
    ("array model_id", encode(event(model_id=["a"])), R.INVALID_FIELD, "'model_id'"),
    ("long model_id", encode(event(model_id="m" * 513)), R.INVALID_FIELD, "'model_id'"),
    ("bool version", encode(event(model_version=True)), R.INVALID_FIELD, "'model_version'"),
    ("fraction version", encode(event(model_version=1.5)), R.INVALID_FIELD, "1.5"),
    ("empty version", encode(event(model_version="")), R.INVALID_FIELD, "'model_version'"),
    ("naive time", encode(event(timestamp="2024-05-01T12:00:00")), R.INVALID_TIMESTAMP, "offset"),
    ("date only", encode(event(timestamp="2024-05-01")), R.INVALID_TIMESTAMP, "RFC 3339"),
    ("no seconds", encode(event(timestamp="2024-05-01T12:00Z")), R.INVALID_TIMESTAMP, "12:00Z"),
    ("hh offset", encode(event(timestamp="2024-05-01T12:00:00+01")), R.INVALID_TIMESTAMP, "+01"),
    (
        "hhmm offset",
        encode(event(timestamp="2024-05-01T12:00:00+0100")),
        R.INVALID_TIMESTAMP,
        "0100",
    ),
    (
        "comma fraction",
        encode(event(timestamp="2024-05-01T12:00:00,5Z")),
        R.INVALID_TIMESTAMP,
        ",5",
    ),
    ("other separator", encode(event(timestamp="2024-05-01X12:00:00Z")), R.INVALID_TIMESTAMP, "X"),
    ("word", encode(event(timestamp="yesterday")), R.INVALID_TIMESTAMP, "yesterday"),
    ("empty fraction", encode(event(timestamp="2024-05-01T12:00:00.Z")), R.INVALID_TIMESTAMP, ".Z"),
    (
        "junk after 6 fraction digits, Z",
        encode(event(timestamp="2024-05-01T12:00:00.123456xZ")),
        R.INVALID_TIMESTAMP,
        "RFC 3339",
    ),
    (
        "junk after 6 fraction digits",
        encode(event(timestamp="2024-05-01T12:00:00.000001T+00:00")),
        R.INVALID_TIMESTAMP,
        "RFC 3339",
    ),
    ("month 13", encode(event(timestamp="2024-13-01T00:00:00Z")), R.INVALID_TIMESTAMP, "month"),
    ("leap second", encode(event(timestamp="2016-12-31T23:59:60Z")), R.INVALID_TIMESTAMP, "60"),
    ("before 1970", encode(event(timestamp="1969-12-31T23:59:59Z")), R.INVALID_TIMESTAMP, "1970"),
    (
        "offset to 1969",
        encode(event(timestamp="1970-01-01T00:00:00+00:01")),
        R.INVALID_TIMESTAMP,
        "1970",
    ),
    (
        "past 9999",
        encode(event(timestamp="9999-12-31T23:59:59-00:01")),
        R.INVALID_TIMESTAMP,
        "9999",
    ),
    ("negative epoch", encode(event(timestamp=-1)), R.INVALID_TIMESTAMP, "-1"),
    ("huge epoch ms", encode(event(timestamp=1e16)), R.INVALID_TIMESTAMP, "9999"),
    ("boolean time", encode(event(timestamp=True)), R.INVALID_TIMESTAMP, "boolean"),
    ("object time", encode(event(timestamp={"s": 1})), R.INVALID_TIMESTAMP, "'timestamp'"),
    ("features array", encode(event(features=[1, 2])), R.FEATURES_NOT_OBJECT, "'features'"),
    ("features string", encode(event(features="a=1")), R.FEATURES_NOT_OBJECT, "'features'"),
    ("empty name", encode(event(features={"a": 1, "": 2})), R.INVALID_FEATURE_NAME, '""'),
    (
        "reserved name",
        encode(event(features={"__label__": 1})),
        R.INVALID_FEATURE_NAME,
        "__label__",
    ),
    (
        "object value",
        encode(event(features={"a": 1, "geo": {"x": 1}})),
        R.INVALID_FEATURE_VALUE,
        "geo",
    ),
    ("array value", encode(event(features={"tags": ["a"]})), R.INVALID_FEATURE_VALUE, "tags"),
    ("no data", encode(event(features=MISSING)), R.NO_FEATURES_OR_PREDICTION, "'features'"),
    (
        "null data",
        encode(event(features=None, prediction=None, label=None)),
        R.NO_FEATURES_OR_PREDICTION,
        "'prediction'",
    ),
    (
        "array prediction",
        encode(event(prediction=[0.1, 0.9])),
        R.INVALID_PREDICTION,
        "'prediction'",
    ),
    ("empty classes", encode(event(prediction={})), R.INVALID_PREDICTION, "empty"),
    ("empty class", encode(event(prediction={"": 0.5})), R.INVALID_PREDICTION, "class"),
    ("string proba", encode(event(prediction={"cat": "high"})), R.INVALID_PREDICTION, "cat"),
    ("bool proba", encode(event(prediction={"cat": True})), R.INVALID_PREDICTION, "cat"),
    ("object label", encode(event(label={"y": 1})), R.INVALID_LABEL, "'label'"),
    ("array label", encode(event(label=[1])), R.INVALID_LABEL, "'label'"),
    ("numeric request_id", encode(event(request_id=7)), R.INVALID_FIELD, "'request_id'"),
    ("bool request_id", encode(event(request_id=False)), R.INVALID_FIELD, "boolean"),
    ("empty request_id", encode(event(request_id="")), R.INVALID_FIELD, "'request_id'"),
    ("long request_id", encode(event(request_id="r" * 513)), R.INVALID_FIELD, "513 characters"),
    ("array request_id", encode(event(request_id=["r"])), R.INVALID_FIELD, "array"),
]


@pytest.mark.parametrize(
    ("payload", "reason", "named"),
    [case[1:] for case in REJECTIONS],
    ids=[case[0] for case in REJECTIONS],
)
def test_rejection_reason_and_message(payload: bytes, reason: DeadLetterReason, named: str) -> None:
    letter = rejected(payload)
    assert letter.reason is reason
    assert named in letter.message


def test_payload_too_large_is_not_parsed() -> None:
    payload = encode(event(note="a larger event than the default one"))
    letter = rejected(payload, DecodeLimits(max_payload_bytes=len(payload) - 1))
    assert letter.reason is R.PAYLOAD_TOO_LARGE
    assert str(len(payload)) in letter.message
    # Exactly at the limit is fine; too large wins even over invalid JSON.
    assert accepted_with(payload, DecodeLimits(max_payload_bytes=len(payload)))
    limits = DecodeLimits(max_payload_bytes=len(payload) - 1)
    assert rejected(b"{" * len(payload), limits).reason is R.PAYLOAD_TOO_LARGE


def accepted_with(payload: bytes, limits: DecodeLimits) -> bool:
    batch = decode_batch([payload], limits)
    return not batch.dead_letters and len(batch.models) == 1


def test_too_many_features_counts_features_and_prediction_classes() -> None:
    limits = DecodeLimits(max_features=3)
    features = {"a": 1, "b": 2, "c": 3}
    assert accepted_with(encode(event(features=features)), limits)
    letter = rejected(encode(event(features={**features, "d": 4})), limits)
    assert letter.reason is R.TOO_MANY_FEATURES
    assert "4 features" in letter.message
    letter = rejected(encode(event(features=features, prediction={"x": 0.5})), limits)
    assert letter.reason is R.TOO_MANY_FEATURES
    assert "1 prediction classes" in letter.message
    # A scalar prediction and the label are not feature entries.
    assert accepted_with(encode(event(features=features, prediction=1, label=0)), limits)


def test_every_reason_code_has_a_case() -> None:
    covered = {case[2] for case in REJECTIONS} | {R.PAYLOAD_TOO_LARGE, R.TOO_MANY_FEATURES}
    pipeline_limits = {R.TOO_MANY_MODELS, R.TOO_MANY_WARMUP_FEATURES}  # tests/test_limits.py
    quarantine = {R.INTERNAL_ERROR}  # tests/test_restore.py
    # tests/service/test_app.py, tests/service/test_undecodable_batches.py, and against a
    # broker tests/integration/test_kafka_clients.py
    kafka_shell = {R.NULL_VALUE, R.UNDECODABLE_RECORD}
    assert covered | pipeline_limits | quarantine | kafka_shell == set(DeadLetterReason)


def test_first_broken_rule_is_reported() -> None:
    # Envelope before timestamp before features before prediction before label before
    # request_id.
    bad = event(model_id="", timestamp="noon", features=[1], prediction=[], label=[], request_id=1)
    assert rejected(encode(bad)).reason is R.INVALID_FIELD
    assert rejected(encode({**bad, "model_id": "m"})).reason is R.INVALID_TIMESTAMP
    bad["model_id"], bad["timestamp"] = "m", 0
    assert rejected(encode(bad)).reason is R.FEATURES_NOT_OBJECT
    bad["features"] = {"a": 1}
    assert rejected(encode(bad)).reason is R.INVALID_PREDICTION
    bad["prediction"] = 1
    assert rejected(encode(bad)).reason is R.INVALID_LABEL
    bad["label"] = 0
    letter = rejected(encode(bad))
    assert letter.reason is R.INVALID_FIELD and "'request_id'" in letter.message


# --- Good events of every shape ---------------------------------------------------------


def test_features_only() -> None:
    model = accepted(encode(event(features={"amount": 12.5, "country": "NL", "vip": True})))
    assert (model.model_id, model.model_version) == ("fraud", "3")
    assert model.event_ids == ["e-1"]
    assert model.indices.tolist() == [0]
    assert model.timestamps.tolist() == [NOON]
    assert model.columns == {"amount": [12.5], "country": ["NL"], "vip": [True]}


def test_feature_values_keep_their_json_type() -> None:
    features = {"i": 3, "f": 3.0, "s": "3", "t": True, "n": None, "big": 2**64 - 1}
    columns = accepted(encode(event(features=features))).columns
    assert {name: (value[0], type(value[0])) for name, value in columns.items()} == {
        name: (value, type(value)) for name, value in features.items()
    }


def test_prediction_only() -> None:
    for prediction in (0.73, 1, "fraud", False):
        model = accepted(encode(event(features=MISSING, prediction=prediction)))
        assert model.columns == {PREDICTION_FEATURE: [prediction]}


def test_class_probabilities_become_one_column_per_class() -> None:
    payload = encode(event(features=None, prediction={"cat": 0.25, "dog": 0.75, "owl": 0}))
    assert accepted(payload).columns == {
        f"{PREDICTION_FEATURE}.cat": [0.25],
        f"{PREDICTION_FEATURE}.dog": [0.75],
        f"{PREDICTION_FEATURE}.owl": [0],
    }


def test_label_and_features_and_prediction() -> None:
    model = accepted(encode(event(features={"a": 1}, prediction=0.9, label="fraud")))
    assert model.columns == {"a": [1], LABEL_FEATURE: ["fraud"], PREDICTION_FEATURE: [0.9]}


def test_empty_features_object_counts_as_present() -> None:
    model = accepted(encode(event(features={})))
    assert len(model) == 1
    assert model.columns == {}


@pytest.mark.parametrize(("version", "expected"), [("v2", "v2"), (7, "7"), (7.0, "7"), (-1, "-1")])
def test_model_version(version: object, expected: str) -> None:
    assert accepted(encode(event(model_version=version))).model_version == expected


def test_numeric_and_string_versions_share_a_model() -> None:
    batch = decode_batch([encode(event(model_version=v)) for v in ("7", 7, 7.0, "7.0")])
    assert [(m.model_version, m.indices.tolist()) for m in batch.models] == [
        ("7", [0, 1, 2]),
        ("7.0", [3]),
    ]


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2024-05-01T12:00:00Z", NOON),
        ("2024-05-01t12:00:00z", NOON),
        ("2024-05-01 12:00:00Z", NOON),
        ("2024-05-01T14:00:00+02:00", NOON),
        ("2024-05-01T06:30:00-05:30", NOON),
        ("2024-05-01T12:00:00-00:00", NOON),
        ("2024-05-01T12:00:00.250Z", NOON + 0.25),
        ("2024-05-01T12:00:00.5+00:00", NOON + 0.5),
        ("2024-05-01T12:00:00.123456789Z", NOON + 0.123456),
        ("1970-01-01T00:00:00Z", 0.0),
        ("1970-01-01T01:00:00+01:00", 0.0),
        ("9999-12-31T23:59:59Z", 253_402_300_799.0),
        (1714564800, NOON),
        (1714564800.25, NOON + 0.25),
        (1714564800000, NOON),
        (1714564800250, NOON + 0.25),
        (0, 0.0),
        (99_999_999_999, 99_999_999_999.0),  # just below 1e11: still seconds
        (100_000_000_000, 100_000_000.0),  # from 1e11 on: milliseconds
        (253_402_300_799_000, 253_402_300_799.0),
    ],
)
def test_timestamps(timestamp: object, expected: float) -> None:
    model = accepted(encode(event(timestamp=timestamp)))
    assert model.timestamps.dtype.name == "float64"
    assert model.timestamps.tolist() == [pytest.approx(expected, abs=1e-6)]


def test_unknown_fields_are_ignored_and_duplicate_keys_last_wins() -> None:
    payload = (
        b'{"event_id": "e-1", "model_id": "fraud", "model_version": "3", "trace": [1, {}],'
        b' "timestamp": 0, "features": {"a": 1, "a": 2}, "model_id": "risk"}'
    )
    model = accepted(payload)
    assert model.model_id == "risk"
    assert model.columns == {"a": [2]}


def test_rows_hold_what_the_payload_says() -> None:
    payloads = [
        encode(event(event_id=f"e-{i}", features={"a": i, "b": str(i), "c": None}))
        for i in range(5)
    ]
    got = rows(decode_batch(payloads))
    for index, payload in enumerate(payloads):
        features = orjson.loads(payload)["features"]
        assert got[index]["values"] == {k: v for k, v in features.items() if v is not None}
        assert got[index]["event_id"] == f"e-{index}"


# --- Batches ----------------------------------------------------------------------------


def test_bad_events_between_good_ones_change_nothing() -> None:
    good = [
        encode(event(event_id="g0", features={"a": 1.5})),
        encode(event(event_id="g1", features={"a": 2.5, "b": "x"}, label=1)),
        encode(event(event_id="g2", model_id="other", prediction=0.3, features=None)),
        encode(event(event_id="g3", features={"a": 3.5}, timestamp=1714564800123)),
    ]
    bad = [
        b"not json",
        encode(event(features={"a": {"nested": 1}})),
        encode(event(features={"__x": 1})),
        encode(event(timestamp="2024-05-01T12:00:00")),
        b'{"features": {"a": NaN}}',
        encode(event(prediction=[1])),
    ]
    mixed = [bad[0], good[0], bad[1], bad[2], good[1], bad[3], good[2], bad[4], bad[5], good[3]]
    batch = decode_batch(mixed)
    assert batch.size == len(mixed)
    assert [d.index for d in batch.dead_letters] == [0, 2, 3, 5, 7, 8]
    assert [d.payload for d in batch.dead_letters] == bad
    assert [d.reason for d in batch.dead_letters] == [
        R.INVALID_JSON,
        R.INVALID_FEATURE_VALUE,
        R.INVALID_FEATURE_NAME,
        R.INVALID_TIMESTAMP,
        R.NON_FINITE_NUMBER,
        R.INVALID_PREDICTION,
    ]
    alone = rows(decode_batch(good))
    together = rows(batch)
    assert [together[i] for i in (1, 4, 6, 9)] == [alone[i] for i in range(4)]


def test_bad_features_after_a_good_event_of_the_same_model() -> None:
    # Later events of a known model take the fast path; their features must still be checked.
    first = encode(event(event_id="a", features={"x": 1}))
    later = [
        encode(event(event_id="b", features={"x": 2, "": 1})),
        encode(event(event_id="c", features={"x": [3]})),
        encode(event(event_id="d", features={"x": 4})),
        encode(event(event_id="e", features={"x": 5, "__prediction__": 1}, prediction=1)),
        encode(event(event_id="f", features={f"f{i}": i for i in range(4)})),
    ]
    batch = decode_batch([first, *later], DecodeLimits(max_features=3))
    assert [(d.index, d.reason) for d in batch.dead_letters] == [
        (1, R.INVALID_FEATURE_NAME),
        (2, R.INVALID_FEATURE_VALUE),
        (4, R.INVALID_FEATURE_NAME),
        (5, R.TOO_MANY_FEATURES),
    ]
    (model,) = batch.models
    assert model.event_ids == ["a", "d"]
    assert model.columns == {"x": [1, 4]}


def test_bad_value_among_rows_with_the_same_feature_names() -> None:
    payloads = [
        encode(event(event_id=f"e{i}", features={"x": x, "y": "b"}))
        for i, x in enumerate([1, 2, {"deep": [1]}, 4, [5]])
    ]
    batch = decode_batch(payloads)
    assert [(d.index, d.reason) for d in batch.dead_letters] == [
        (2, R.INVALID_FEATURE_VALUE),
        (4, R.INVALID_FEATURE_VALUE),
    ]
    assert all("'x'" not in d.message and '"x"' in d.message for d in batch.dead_letters)
    (model,) = batch.models
    assert model.event_ids == ["e0", "e1", "e3"]
    assert model.columns == {"x": [1, 2, 4], "y": ["b", "b", "b"]}


def test_grouping_by_model_and_version_in_order_of_first_appearance() -> None:
    keys = [("a", "1"), ("b", "1"), ("a", "2"), ("a", "1"), ("b", "1"), ("a", "1")]
    payloads = [
        encode(event(event_id=f"e{i}", model_id=m, model_version=v))
        for i, (m, v) in enumerate(keys)
    ]
    batch = decode_batch([b"{}", *payloads])
    assert [
        (m.model_id, m.model_version, m.indices.tolist(), m.event_ids) for m in batch.models
    ] == [
        ("a", "1", [1, 4, 6], ["e0", "e3", "e5"]),
        ("b", "1", [2, 5], ["e1", "e4"]),
        ("a", "2", [3], ["e2"]),
    ]
    assert all(m.indices.dtype.name == "int64" for m in batch.models)


def test_columns_are_the_union_with_none_filling() -> None:
    payloads = [
        encode(event(features={"a": 1, "b": 2})),
        encode(event(features={"b": 3, "c": None})),
        encode(event(features=None, prediction="yes")),
        encode(event(features={"a": 4}, prediction={"p": 0.5}, label=0)),
        encode(event(features={"a": 5, "b": 6})),
    ]
    (model,) = decode_batch(payloads).models
    assert model.columns == {
        LABEL_FEATURE: [None, None, None, 0, None],
        PREDICTION_FEATURE: [None, None, "yes", None, None],
        f"{PREDICTION_FEATURE}.p": [None, None, None, 0.5, None],
        "a": [1, None, None, 4, 5],
        "b": [2, 3, None, None, 6],
        "c": [None, None, None, None, None],
    }
    assert list(model.columns) == sorted(model.columns)


def test_empty_batch() -> None:
    assert decode_batch([]) == DecodedBatch(models=[], dead_letters=[], size=0)


def test_decoding_does_not_change_its_input() -> None:
    payloads = [encode(event(features={"a": 1}, prediction=2, label=3)) for _ in range(3)]
    copies = [bytes(p) for p in payloads]
    first = rows(decode_batch(payloads))
    assert payloads == copies
    assert rows(decode_batch(payloads)) == first


# --- Corpus of nasty payloads -----------------------------------------------------------


@pytest.mark.parametrize(
    "path", sorted(CORPUS.glob("*.json")), ids=lambda path: path.name.removesuffix(".json")
)
def test_corpus(path: Path) -> None:
    """File names say the expected outcome: ``<reason>--<what>.json`` or ``ok--<what>.json``."""
    payload = path.read_bytes()
    expected = path.name.split("--")[0]
    batch = decode_batch([payload])
    if expected == "ok":
        assert batch.dead_letters == []
    else:
        assert [d.reason.value for d in batch.dead_letters] == [expected]


@pytest.mark.parametrize("native", [True, False])
def test_row_columns_count_null_features_but_not_null_predictions_or_labels(
    native: bool,
) -> None:
    payloads = [
        encode(event(event_id="a", features={"x": 1, "y": None}, label=1)),
        encode(event(event_id="b", features={"z": 2.5}, prediction=None, label=None)),
        encode(event(event_id="c", features={}, prediction=0.5)),
        encode(event(event_id="d", features=MISSING, prediction={"p": 0.9, "q": 0.1})),
    ]
    (model,) = decode_batch(payloads, native=native).models
    assert model.row_columns() == [
        {"x", "y", LABEL_FEATURE},
        {"z"},
        {PREDICTION_FEATURE},
        {f"{PREDICTION_FEATURE}.p", f"{PREDICTION_FEATURE}.q"},
    ]
    assert list(model.presence()) == list(model.columns)
    part = model.take([0, 2])
    assert part.event_ids == ["a", "c"]
    assert part.columns == {
        LABEL_FEATURE: [1, None],
        PREDICTION_FEATURE: [None, 0.5],
        "x": [1, None],
        "y": [None, None],
    }
    assert part.row_columns() == [{"x", "y", LABEL_FEATURE}, {PREDICTION_FEATURE}]
    assert model.take([0, 1, 2, 3]) is model


def test_event_values_flatten_like_the_decoder_and_skip_the_envelope() -> None:
    assert event_values({"features": {"b": None, "a": 1}, "prediction": "yes", "label": None}) == {
        "b": None,
        "a": 1,
        PREDICTION_FEATURE: "yes",
    }
    with pytest.raises(InvalidEventError) as info:
        event_values({"features": {"a": 1, "": 2}})
    assert (info.value.reason, info.value.name) == (R.INVALID_FEATURE_NAME, "")
    with pytest.raises(InvalidEventError) as info:
        event_values({"prediction": {}})
    assert info.value.reason == R.INVALID_PREDICTION
    with pytest.raises(InvalidEventError) as info:
        event_values({"label": 1})
    assert info.value.reason == R.NO_FEATURES_OR_PREDICTION


def test_a_label_alone_is_a_feedback_event() -> None:
    """A label without features or prediction is ground truth for an earlier prediction:
    decoded apart from the prediction rows, never a dead letter."""
    messages = [
        encode(event(event_id="p1", features={"x": 1.0}, prediction=0.9)),
        encode(event(event_id="p1", features=MISSING, prediction=None, label=1)),
        encode(event(event_id="p2", features={}, prediction=None, label=0)),  # features: {}
        encode(event(event_id="p3", features=MISSING, prediction=None, label=None)),
    ]
    for native in (True, False):
        batch = decode_batch(messages, native=native)
        [model] = batch.models
        assert model.indices.tolist() == [0, 2] and model.event_ids == ["p1", "p2"]
        [feedback] = batch.feedback
        assert feedback.indices.tolist() == [1] and feedback.event_ids == ["p1"]
        assert feedback.labels == [1] and (feedback.model_id, feedback.model_version) == (
            model.model_id,
            model.model_version,
        )
        assert [(d.index, d.reason) for d in batch.dead_letters] == [
            (3, R.NO_FEATURES_OR_PREDICTION)
        ]


# --- Request ids (shadow-mode pairing) --------------------------------------------------


@pytest.mark.parametrize("native", [True, False])
def test_request_ids_one_per_row_none_where_absent_or_null(native: bool) -> None:
    payloads = [
        encode(event(event_id="a", request_id="r-1", features={"x": 1.0})),
        encode(event(event_id="b", features={"x": 2.0})),
        encode(event(event_id="c", request_id=None, features={"x": 3.0})),
        encode(event(event_id="d", request_id="r-1", model_version="4", prediction=0.5)),
        encode(event(event_id="e", request_id="r-\u00e9", features={"x": "NL"})),
    ]
    batch = decode_batch(payloads, native=native)
    assert batch.dead_letters == []
    assert [(m.event_ids, m.request_ids) for m in batch.models] == [
        (["a", "b", "c", "e"], ["r-1", None, None, "r-\u00e9"]),
        (["d"], ["r-1"]),
    ]
    assert all("request_id" not in m.columns for m in batch.models)
    # Rows taken from a batch keep their request ids.
    assert batch.models[0].take([0, 2, 3]).request_ids == ["r-1", None, "r-\u00e9"]


@pytest.mark.parametrize("native", [True, False])
def test_request_ids_change_nothing_else(native: bool) -> None:
    """A batch without request ids decodes as before (all ``None``); adding them to its
    events changes no other part of the decoded batch."""
    plain = [
        encode(event(event_id=f"e{i}", features={"x": i, "y": 0.5 if i % 2 else "NL"}))
        for i in range(6)
    ]
    paired = [
        encode({**orjson.loads(payload), "request_id": f"r{i}"}) for i, payload in enumerate(plain)
    ]
    without, with_ids = decode_batch(plain, native=native), decode_batch(paired, native=native)
    assert [m.request_ids for m in without.models] == [[None] * 6]
    assert [m.request_ids for m in with_ids.models] == [[f"r{i}" for i in range(6)]]
    assert rows(without) == rows(with_ids)
    assert without.dead_letters == with_ids.dead_letters == []
    assert [m.take([1, 4]).request_ids for m in without.models] == [[None, None]]


def test_feedback_events_ignore_request_id() -> None:
    payload = encode(
        event(features=MISSING, prediction=None, label=1, request_id={"not": "checked"})
    )
    for native in (True, False):
        batch = decode_batch([payload], native=native)
        assert batch.dead_letters == [] and batch.models == []
        assert [f.labels for f in batch.feedback] == [[1]]

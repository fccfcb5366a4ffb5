"""Properties of decode_batch on arbitrary bytes and on mutated events (deterministic)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline.events import (
    LABEL_FEATURE,
    MAX_EPOCH_SECONDS,
    PREDICTION_FEATURE,
    DeadLetterReason,
    DecodedBatch,
    DecodeLimits,
    InvalidEventError,
    decode_batch,
    event_values,
)

# Derandomized: the same examples on every run, so CI is deterministic.
DETERMINISTIC = settings(derandomize=True, deadline=None, max_examples=150, database=None)

LIMITS = DecodeLimits(max_payload_bytes=400, max_features=4)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # includes NaN and infinities, written as JSON-invalid literals
    st.sampled_from(["", "x", "NL", "__x", "2024-05-01T12:00:00Z"]),
    st.text(max_size=4),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
names = st.one_of(
    st.sampled_from(["a", "b", "c", "d", "e", "", "__x", "__label__"]), st.text(max_size=3)
)
containers = st.sampled_from([[], [1], {}, {"k": 1}, [[None]]])

rfc3339_like = st.builds(
    "".join,
    st.lists(
        st.sampled_from(
            ["2024-05-01", "T", "t", " ", "12:00", ":00", ".5", "Z", "+02:00", "-0130"]
        ),
        max_size=6,
    ),
)
valid_timestamps = st.sampled_from(
    ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00.5-01:00", 1714564800123, 1714564800]
)
timestamps = st.one_of(
    st.sampled_from(
        [
            "2024-05-01T12:00:00Z",
            "2024-05-01T12:00:00.123+02:00",
            "2024-05-01T12:00:00-05:30",
            "2024-05-01T12:00:00",
            "1969-12-31T23:59:59Z",
            "9999-12-31T23:59:59Z",
            1714564800,
            1714564800.5,
            1714564800123,
            99_999_999_999,
            -1,
            True,
        ]
    ),
    rfc3339_like,
    json_values,
)
features = st.one_of(
    st.dictionaries(names, st.one_of(json_scalars, containers, json_values), max_size=6),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), json_scalars, max_size=3),
    json_values,
)
predictions = st.one_of(
    json_scalars,
    st.dictionaries(names, st.one_of(st.floats(allow_nan=False), json_scalars), max_size=3),
    containers,
    json_values,
)
event_fields: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.one_of(st.sampled_from(["e1", "e2", "", "x" * 513]), json_values),
    "model_id": st.one_of(st.sampled_from(["m", "n", ""]), json_values),
    "model_version": st.one_of(st.sampled_from(["1", 1, 1.0, "2", 1.5, True, ""]), json_values),
    "timestamp": timestamps,
    "features": features,
    "prediction": predictions,
    "label": st.one_of(json_scalars, containers, json_values),
    "request_id": st.one_of(st.sampled_from(["r1", "r2", "", "x" * 513]), json_values),
    "extra": json_values,
}
# Mostly-valid events, so that most rows take the fast path of an already known model.
valid_events = st.fixed_dictionaries(
    {
        "event_id": st.sampled_from(["e1", "e2"]),
        "model_id": st.sampled_from(["m", "n"]),
        "model_version": st.sampled_from(["1", 1]),
        "timestamp": st.sampled_from(["2024-05-01T12:00:00Z", 1714564800123]),
        "features": st.dictionaries(st.sampled_from(["a", "b", "c"]), json_scalars, max_size=3),
    },
    optional={"request_id": st.sampled_from(["r1", "r2", None])},
)


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    event = dict(draw(valid_events))
    # Body fields are mutated more often than the envelope.
    targets = [*sorted(event_fields), "features", "features", "prediction", "label"]
    for name in draw(st.sets(st.sampled_from(targets), max_size=2)):
        if draw(st.integers(min_value=0, max_value=3)):
            event[name] = draw(event_fields[name])
        else:
            event.pop(name, None)
    return event


@st.composite
def known_model_batches(draw: st.DrawFn) -> list[bytes]:
    """A valid first event of model m/1, then events of m/1 with a mutated body or time.

    Every later event takes the fast path of a known model, so comparing against
    batches of one (checked path only) tests that both paths agree.
    """
    first = {
        **draw(valid_events),
        "model_id": "m",
        "model_version": "1",
        "features": {"a": 0, "b": 1},
    }
    later = st.fixed_dictionaries(
        {
            "event_id": st.just("e"),
            "model_id": st.just("m"),
            "model_version": st.just(1),
            "timestamp": st.integers(min_value=0, max_value=3).flatmap(
                lambda pick: timestamps if pick == 0 else valid_timestamps
            ),
        },
        optional={
            "features": st.one_of(
                features,  # and rows with the same names as the first event:
                st.fixed_dictionaries({"a": json_scalars | containers, "b": json_scalars}),
            ),
            "prediction": predictions,
            "label": st.one_of(json_scalars, containers),
            "request_id": event_fields["request_id"],
        },
    )
    return [to_json(first), *map(to_json, draw(st.lists(later, max_size=8)))]


def to_json(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8")


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    payload = to_json(draw(mutated_events()))
    mutation = draw(st.sampled_from(["none"] * 7 + ["truncate", "replace", "insert"]))
    if mutation == "none" or not payload:
        return payload
    at = draw(st.integers(min_value=0, max_value=len(payload) - 1))
    if mutation == "truncate":
        return payload[:at]
    junk = draw(st.binary(min_size=1, max_size=3))
    if mutation == "replace":
        return payload[:at] + junk + payload[at + 1 :]
    return payload[:at] + junk + payload[at:]


batches_of_events = st.lists(payloads(), max_size=12)
batches_of_bytes = st.lists(
    st.one_of(st.binary(max_size=60), st.sampled_from([b"{}", b"[]", b'{"a":NaN}', b"1e999"])),
    max_size=12,
)


def outcome(batch: DecodedBatch, offset: int = 0) -> dict[int, tuple[Any, ...]]:
    """What happened to each message: its row values or its dead letter, by index."""
    out: dict[int, tuple[Any, ...]] = {}
    for model in batch.models:
        for row, index in enumerate(model.indices.tolist()):
            values = {n: c[row] for n, c in model.columns.items() if c[row] is not None}
            assert index + offset not in out
            out[index + offset] = (
                "row",
                model.model_id,
                model.model_version,
                model.event_ids[row],
                float(model.timestamps[row]),
                values,
                model.request_ids[row],
            )
    for feedback in batch.feedback:
        for row, index in enumerate(feedback.indices.tolist()):
            assert index + offset not in out
            out[index + offset] = (
                "feedback",
                feedback.model_id,
                feedback.model_version,
                feedback.event_ids[row],
                float(feedback.timestamps[row]),
                feedback.labels[row],
            )
    for letter in batch.dead_letters:
        assert letter.index + offset not in out
        out[letter.index + offset] = ("dead", letter.reason, letter.message, letter.payload)
    return out


def check_invariants(batch: DecodedBatch, messages: Sequence[bytes]) -> None:
    assert batch.size == len(messages)
    rows = sum(len(model) for model in batch.models)
    labels = sum(len(feedback) for feedback in batch.feedback)
    assert rows + labels + len(batch.dead_letters) == len(messages)
    assert sorted(outcome(batch)) == list(range(len(messages)))
    assert [d.index for d in batch.dead_letters] == sorted(d.index for d in batch.dead_letters)
    for letter in batch.dead_letters:
        assert letter.payload is messages[letter.index]
        assert letter.message
    keys = [(m.model_id, m.model_version) for m in batch.models]
    assert len(set(keys)) == len(keys)
    assert [int(m.indices[0]) for m in batch.models] == sorted(
        int(m.indices[0]) for m in batch.models
    )
    for model in batch.models:
        indices = model.indices.tolist()
        assert indices == sorted(indices)
        assert len(model.event_ids) == len(model.timestamps) == len(indices) > 0
        assert all(len(column) == len(indices) for column in model.columns.values())
        assert all(0.0 <= t <= MAX_EPOCH_SECONDS for t in model.timestamps.tolist())
        assert list(model.columns) == sorted(model.columns)


def check_rows_match_payloads(batch: DecodedBatch, messages: Sequence[bytes]) -> None:
    """An oracle independent of the decoder: each row says what its JSON says."""
    for index, result in outcome(batch).items():
        if result[0] == "feedback":  # a label alone
            event = orjson.loads(messages[index])
            assert not event.get("features") and event.get("prediction") is None
            assert (result[1], result[3], result[5]) == (
                event["model_id"],
                event["event_id"],
                event["label"],
            )
            continue
        if result[0] != "row":
            continue
        _, model_id, _, event_id, _, values, request_id = result
        event = orjson.loads(messages[index])
        assert (model_id, event_id) == (event["model_id"], event["event_id"])
        assert request_id == event.get("request_id")
        features = event.get("features") or {}
        expected = {name: value for name, value in features.items() if value is not None}
        prediction = event.get("prediction")
        if isinstance(prediction, dict):
            expected.update({f"{PREDICTION_FEATURE}.{c}": p for c, p in prediction.items()})
        elif prediction is not None:
            expected[PREDICTION_FEATURE] = prediction
        if event.get("label") is not None:
            expected[LABEL_FEATURE] = event["label"]
        assert values == expected


def check_parts(messages: list[bytes], cuts: list[int]) -> None:
    """Decoding a batch equals decoding its parts (rows, reasons, messages)."""
    whole = outcome(decode_batch(messages, LIMITS))
    bounds = [0, *sorted(c % (len(messages) + 1) for c in cuts), len(messages)]
    joined: dict[int, tuple[Any, ...]] = {}
    for start, stop in itertools.pairwise(bounds):
        joined.update(outcome(decode_batch(messages[start:stop], LIMITS), offset=start))
    assert joined == whole
    singles: dict[int, tuple[Any, ...]] = {}
    for index, message in enumerate(messages):  # batches of one take the checked path only
        singles.update(outcome(decode_batch([message], LIMITS), offset=index))
    assert singles == whole


@settings(DETERMINISTIC, max_examples=300)
@given(batches_of_bytes)
def test_arbitrary_bytes_never_raise_and_account_for_every_message(
    messages: list[bytes],
) -> None:
    batch = decode_batch(messages, LIMITS)
    check_invariants(batch, messages)
    check_rows_match_payloads(batch, messages)


@DETERMINISTIC
@given(batches_of_events)
def test_mutated_events_never_raise_and_account_for_every_message(messages: list[bytes]) -> None:
    batch = decode_batch(messages, LIMITS)
    check_invariants(batch, messages)
    check_rows_match_payloads(batch, messages)


@DETERMINISTIC
@given(batches_of_events, st.lists(st.integers(min_value=0, max_value=12), max_size=3))
def test_batch_decodes_like_its_parts(messages: list[bytes], cuts: list[int]) -> None:
    check_parts(messages, cuts)


@settings(DETERMINISTIC, max_examples=80)
@given(st.lists(payloads(), min_size=1, max_size=6), st.lists(valid_events, min_size=1))
def test_bad_events_do_not_change_good_ones(bad: list[bytes], good_events: list[Any]) -> None:
    good = [to_json(event) for event in good_events]
    alone = outcome(decode_batch(good, LIMITS))
    mixed = [message for pair in zip(bad, good, strict=False) for message in pair]
    mixed += bad[len(good) :] + good[len(bad) :]
    positions = [mixed.index(message) for message in good]  # first occurrence is fine:
    together = outcome(decode_batch(mixed, LIMITS))  # equal bytes decode equally
    for own, position in enumerate(positions):
        assert together[position] == alone[own]


@settings(DETERMINISTIC, max_examples=250)
@given(known_model_batches(), st.lists(st.integers(min_value=0, max_value=9), max_size=2))
def test_fast_path_agrees_with_checked_path(messages: list[bytes], cuts: list[int]) -> None:
    batch = decode_batch(messages, LIMITS)
    check_invariants(batch, messages)
    check_rows_match_payloads(batch, messages)
    check_parts(messages, cuts)


TIMESTAMP_BASES = [
    "2024-05-01T12:34:56Z",
    "2024-05-01T12:34:56.789+01:30",
    "2024-05-01T12:34:56.123456Z",
    "1970-01-01T00:00:00.000001-00:00",
    "9999-12-31T23:59:59.999999Z",
]
edited_timestamps = st.builds(
    lambda base, edits: _apply_edits(base, edits),
    st.sampled_from(TIMESTAMP_BASES),
    st.lists(
        st.tuples(
            st.sampled_from(["set", "insert", "delete"]),
            st.integers(min_value=0, max_value=40),
            st.sampled_from(list("0123456789-:T .Zz+,tW\u0663\u00b2")),
        ),
        max_size=3,
    ),
)


def _apply_edits(base: str, edits: list[tuple[str, int, str]]) -> str:
    chars = list(base)
    for operation, position, char in edits:
        at = min(position, len(chars))
        if operation == "insert":
            chars.insert(at, char)
        elif chars and operation == "set":
            chars[min(at, len(chars) - 1)] = char
        elif chars:
            del chars[min(at, len(chars) - 1)]
    return "".join(chars)


@settings(DETERMINISTIC, max_examples=500)
@given(edited_timestamps)
def test_timestamp_strings_decode_the_same_on_both_paths(timestamp: str) -> None:
    known = to_json(
        {"event_id": "e", "model_id": "m", "model_version": "1", "timestamp": 0, "features": {}}
    )
    message = to_json(
        {
            "event_id": "e",
            "model_id": "m",
            "model_version": "1",
            "timestamp": timestamp,
            "features": {},
        }
    )
    alone = outcome(decode_batch([message]))[0]
    assert outcome(decode_batch([known, message]))[1] == alone


BODY_REASONS = {
    DeadLetterReason.FEATURES_NOT_OBJECT,
    DeadLetterReason.INVALID_FEATURE_NAME,
    DeadLetterReason.INVALID_FEATURE_VALUE,
    DeadLetterReason.INVALID_PREDICTION,
    DeadLetterReason.INVALID_LABEL,
    DeadLetterReason.NO_FEATURES_OR_PREDICTION,
}


@DETERMINISTIC
@given(batches_of_events)
def test_event_values_and_row_columns_agree_with_decoding(messages: list[bytes]) -> None:
    """One event's columns (event_values, used for JSONL profiles) are its row's columns
    (ModelBatch.row_columns, used by the warm-up) and values, natively decoded or not; a
    body rule it breaks is the dead letter's reason and message."""
    for native in (True, False):
        batch = decode_batch(messages, LIMITS, native=native)
        for model in batch.models:
            for row, (index, names) in enumerate(
                zip(model.indices.tolist(), model.row_columns(), strict=True)
            ):
                values = event_values(orjson.loads(messages[index]))
                assert set(values) == names
                assert values == {name: model.columns[name][row] for name in names}
                taken = model.take([row])
                assert set(taken.columns) == names
                assert taken.request_ids == [model.request_ids[row]]
                assert taken.row_columns() == [names]
        for letter in batch.dead_letters:
            if letter.reason not in BODY_REASONS:
                continue
            try:
                event_values(orjson.loads(letter.payload))
            except InvalidEventError as error:
                assert (error.reason, error.message) == (letter.reason, letter.message)
            else:
                raise AssertionError(f"event_values accepted {letter}")

"""The native decoder (``driftline._fastdecode``) against the Python decoder, the reference.

Every test decodes the same batch twice, ``native=True`` and ``native=False``, and asserts
identical results field for field: models and their order, row indices, event ids,
timestamps bit for bit, every column value with its type (``1`` is not ``1.0``, ``-0.0``
is not ``0.0``), dead letters. Inputs: hypothesis (derandomized) events near the canonical
shape, number literals, timestamps, byte mutations, and the corpus of tests/corpus.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline import events
from driftline.events import DecodedBatch, DecodeLimits, ModelBatch, decode_batch
from driftline.features import numeric_column

CORPUS = Path(__file__).parent / "corpus"
DETERMINISTIC = settings(derandomize=True, deadline=None, max_examples=300, database=None)

native = pytest.mark.skipif(
    events._NATIVE_DECODE is None, reason="native decoder not built (pure-Python fallback)"
)


def _scalar(value: Any) -> tuple[str, str]:
    return type(value).__name__, repr(value)


def _bits(values: Any) -> list[str]:
    return [struct.pack("<d", v).hex() for v in np.asarray(values, dtype=np.float64).tolist()]


def _snapshot(batch: DecodedBatch) -> dict[str, Any]:
    return {
        "size": batch.size,
        "models": [
            {
                "key": (m.model_id, m.model_version),
                "indices": (m.indices.dtype.str, m.indices.tolist()),
                "event_ids": m.event_ids,
                "request_ids": m.request_ids,
                "timestamps": (m.timestamps.dtype.str, _bits(m.timestamps)),
                "columns": {
                    name: [_scalar(v) for v in column] for name, column in m.columns.items()
                },
                "row_columns": m.row_columns(),
            }
            for m in batch.models
        ],
        "dead_letters": [(d.index, d.reason, d.message, d.payload) for d in batch.dead_letters],
    }


def _numeric_ok(model: ModelBatch) -> None:
    """Columns built one by one are the lists, and the precomputed float64 columns are what
    numeric_column makes of them."""
    names = model.column_names()
    singles = {name: model.column(name) for name in names}  # built one by one
    assert singles == model.columns
    assert names == list(model.columns)
    if model.numeric_columns is not None:
        assert list(model.numeric_columns) == names
    for name in names:
        values = model.numeric_array(name)
        if values is None:
            assert model.numeric_columns is None
            continue
        expected = numeric_column(model.columns[name], len(model)).values
        assert values.dtype == np.float64 and not values.flags.writeable
        assert np.array_equal(np.isnan(values), np.isnan(expected)), name
        present = ~np.isnan(values)
        assert _bits(values[present]) == _bits(expected[present]), name
    assert model.column("not-a-column") is None


DEFAULT_LIMITS = DecodeLimits()


def assert_same(payloads: Sequence[bytes], limits: DecodeLimits = DEFAULT_LIMITS) -> None:
    python = decode_batch(payloads, limits, native=False)
    fast = decode_batch(payloads, limits, native=True)
    fresh = decode_batch(payloads, limits, native=True)  # lazy columns built per batch
    for model in fresh.models:
        _numeric_ok(model)
    assert _snapshot(fast) == _snapshot(python)


def native_rows(payloads: Sequence[bytes], limits: DecodeLimits = DEFAULT_LIMITS) -> int:
    """How many of ``payloads`` the native decoder accepted itself."""
    assert events._NATIVE_DECODE is not None
    fallback, _ = events._NATIVE_DECODE(payloads, limits.max_payload_bytes, limits.max_features)
    return len(payloads) - len(fallback)


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e1",
        "model_id": "fraud",
        "model_version": "v3",
        "timestamp": 1714564800123,
        "features": {"amount": 12.5, "count": 3, "missing": None},
        "prediction": 0.25,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def raw_event(values: dict[str, str]) -> bytes:
    """An event whose field values are given as raw JSON text."""
    fields = {
        "event_id": '"e1"',
        "model_id": '"m"',
        "model_version": "1",
        "timestamp": "1714564800",
        **values,
    }
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields.items() if v) + "}").encode()


# --- the extension is there -------------------------------------------------------------


def test_extension_is_built_in_ci() -> None:
    if os.environ.get("CI") != "true":
        pytest.skip("only CI insists on the compiled extension")
    from driftline import _fastdecode

    assert callable(_fastdecode.decode)
    if os.environ.get("DRIFTLINE_PURE_PYTHON", "") in ("", "0"):
        assert events._NATIVE_DECODE is not None


@native
def test_canonical_events_are_decoded_natively() -> None:
    payloads = [
        orjson.dumps(event(model_version=3)),
        orjson.dumps(event(event_id="e2", model_version="3", timestamp="2024-05-01T12:00:00Z")),
        json.dumps(
            event(event_id="e3", model_version=3, label=1, prediction=None), indent=2
        ).encode(),
        orjson.dumps(event(event_id="e4", model_id="x", features=None, extra="x", other=[])),
    ]
    assert native_rows(payloads) == 3  # the last has a non-scalar unknown field
    first, second = decode_batch(payloads).models
    assert (first.model_version, second.model_version) == ("3", "v3")
    assert first.numeric_columns is not None and second.numeric_columns is None
    assert first.columns == {
        "__label__": [None, None, 1],
        "__prediction__": [0.25, 0.25, None],
        "amount": [12.5, 12.5, 12.5],
        "count": [3, 3, 3],
        "missing": [None, None, None],
    }
    assert_same(payloads)


@native
def test_mixed_model_batch_merges_rows_in_input_order() -> None:
    payloads = [
        orjson.dumps(event(event_id="a", features={"x": 1.5})),
        orjson.dumps(event(event_id="b", features={"x": "text", "y": True})),
        orjson.dumps(event(event_id="c", features={"z": None}, prediction=None)),
        orjson.dumps(event(event_id="d", prediction={"yes": 0.7, "no": 0.3})),  # Python
        orjson.dumps(event(event_id="e", features={"__bad": 1})),  # dead letter
        orjson.dumps(event(event_id="f", model_id="other", features={"x": 2})),
    ]
    assert native_rows(payloads) == 4
    decoded = decode_batch(payloads)
    assert [m.event_ids for m in decoded.models] == [["a", "b", "c", "d"], ["f"]]
    assert decoded.models[0].numeric_columns is None  # merged with Python rows
    assert_same(payloads)


@native
def test_strings_and_booleans_are_decoded_natively() -> None:
    payloads = [
        orjson.dumps(event(event_id="a", features={"c": "GB", "b": True, "x": 1, "m": "GB"})),
        orjson.dumps(event(event_id="b", features={"c": "FR", "b": False, "x": "1"})),
        orjson.dumps(event(event_id="c", features={"c": None, "x": 2.5, "m": 7})),
        orjson.dumps(event(event_id="d", features={"c": "", "b": None, "n": 1.0})),
        orjson.dumps(event(event_id="e", features={"c": "caf\u00e9"})),  # escape: Python
        orjson.dumps(event(event_id="f", features={"c": "GB", "b": "true"})),
    ]
    assert native_rows(payloads[:4] + payloads[5:]) == 5
    assert native_rows(payloads) == 5
    batch = decode_batch(payloads[:4] + payloads[5:]).models[0]
    assert batch.numeric_columns is None
    assert batch.numeric_array("n") is not None and batch.numeric_array("x") is None
    assert batch.column_names() == ["__prediction__", "b", "c", "m", "n", "x"]
    assert batch.column("c") == ["GB", "FR", None, "", "GB"]
    assert batch.column("b") == [True, False, None, None, "true"]
    nothing = type(None)
    assert [type(v) for v in batch.column("x") or []] == [int, str, float, nothing, nothing]
    assert batch.column("m") == ["GB", None, 7, None, None]
    assert batch.presence()["b"].tolist() == [True, True, False, True, True]
    assert batch.presence()["c"].tolist() == [True, True, True, True, True]
    assert_same(payloads)


@native
def test_a_column_reuses_its_recent_strings() -> None:
    few = ["GB", "FR", "DE"] * 4  # fewer distinct strings than the column remembers
    many = [f"c{i % 12}" for i in range(36)]  # more: equal values, new objects
    payloads = [
        orjson.dumps(event(event_id=str(i), features={"few": a, "many": b}))
        for i, (a, b) in enumerate(zip(few * 3, many, strict=True))
    ]
    batch = decode_batch(payloads).models[0]
    column, other = batch.column("few"), batch.column("many")
    assert column == few * 3 and other == many
    assert column is not None and len({id(v) for v in column}) == 3
    assert other is not None and len({id(v) for v in other}) == 36
    assert_same(payloads)


@native
def test_model_versions() -> None:
    literals = ["7", "-7", "-0", "0", "07", "7.0", "7e0", "1e2", "999999999999999",
                "1000000000000000", "18446744073709551616", '"7"', '""', "true", "null",
                '"' + "v" * 512 + '"', '"' + "v" * 513 + '"']  # fmt: skip
    payloads = [raw_event({"model_version": v, "features": "{}"}) for v in literals]
    assert native_rows(payloads) == 5
    assert_same(payloads)


@native
def test_duplicate_keys_go_to_python() -> None:
    payloads = [
        b'{"event_id":"e","event_id":"f","model_id":"m","model_version":1,"timestamp":1,'
        b'"features":{"a":1}}',
        b'{"event_id":"e","model_id":"m","model_version":1,"timestamp":1,'
        b'"features":{"a":1,"b":2,"a":3}}',
        b'{"event_id":"e","model_id":"m","model_version":1,"timestamp":1,"features":{"a":1,"b":2}}',
        b'{"event_id":"e","model_id":"m","model_version":1,"timestamp":1,"features":{"b":1,"b":2}}',
    ]
    assert native_rows(payloads) == 1
    assert_same(payloads)


# --- numbers ----------------------------------------------------------------------------

SPECIAL_NUMBERS = [
    "0", "-0", "0.0", "-0.0", "0e0", "-0e-0", "1", "-1", "1.5", "1E5", "1e+5", "1e-5",
    "123456789012345", "-123456789012345", "1234567890123456", "9007199254740993",
    "9007199254740992", "18446744073709551615", "18446744073709551616",
    "-9223372036854775808", "-9223372036854775809", "1" + "0" * 30, "9" * 400,
    "1e308", "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308",
    "1e309", "-1e309", "5e-324", "2e-324", "2.4703282292062327e-324",
    "2.4703282292062328e-324", "1e-400", "-1e-400", "2.2250738585072011e-308",
    "2.2250738585072014e-308", "4.9406564584124654e-324", "0.1", "0.2", "0.30000000000000004",
    "9007199254740993.0", "9007199254740993e0", "1.00000000000000011102230246251565404",
    "7.038531e-26", "8.988465674311579e307", "0.000001", "123.456e-7", "1e22", "1e23",
    "9.999999999999999e22", "4503599627370497.5", "1" * 19 + ".5", "0." + "0" * 30 + "1",
    "1e0000000000000000000001", "1e-99999999999", "1e99999999999", "0e100000",
    "99999999999999999999.0", "18446744073709551616.0", "18446744073709551615e0",
    "0.99999999999999999999", "9999999999999999999.9", "1844674407370955161.7",
    "12345678901234567890123e-3", "0.000000000000000000001234567890123456789012",
    "01", "-", "-a", "1.", ".5", "+1", "1e", "1e+", "1.e5", "0x10", "1_0", "NaN",
    "Infinity", "-Infinity", "--1", "1.5.5", "1e5e5", "- 1", "00", "-01", "1 2",
]  # fmt: skip

digits = st.text(alphabet="0123456789", min_size=1, max_size=25)
number_literals = st.one_of(
    st.sampled_from(SPECIAL_NUMBERS),
    st.builds(
        lambda sign, whole, frac, exp: sign + whole + frac + exp,
        st.sampled_from(["", "-", "-", "+"]),
        st.one_of(st.just("0"), digits.map(lambda d: d.lstrip("0") or "0"), digits),
        st.one_of(st.just(""), digits.map(lambda d: "." + d), st.just(".")),
        st.one_of(
            st.just(""),
            st.builds(
                lambda e, s, n: e + s + str(n),
                st.sampled_from(["e", "E"]),
                st.sampled_from(["", "+", "-"]),
                st.integers(0, 400),
            ),
        ),
    ),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.17g}"),
    st.integers(-(2**70), 2**70).map(str),
)


@native
def test_special_numbers_convert_like_orjson() -> None:
    payloads = [raw_event({"features": '{"x":' + n + "}"}) for n in SPECIAL_NUMBERS]
    payloads += [raw_event({"prediction": n}) for n in SPECIAL_NUMBERS]
    payloads += [raw_event({"timestamp": n, "features": "{}"}) for n in SPECIAL_NUMBERS]
    assert native_rows(payloads) > 100
    assert_same(payloads)


@DETERMINISTIC
@given(st.lists(number_literals, min_size=1, max_size=8), st.sampled_from(["features", "label"]))
def test_number_literals(literals: list[str], field: str) -> None:
    if field == "features":
        payload = raw_event(
            {"features": "{" + ",".join(f'"f{i}":{n}' for i, n in enumerate(literals)) + "}"}
        )
        assert_same([payload, *[raw_event({"prediction": n}) for n in literals]])
    else:
        assert_same([raw_event({"features": "{}", "label": n}) for n in literals])


@native
@DETERMINISTIC
@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=40))
def test_shortest_float_reprs_round_trip(values: list[float]) -> None:
    payload = orjson.dumps(event(features={f"f{i}": v for i, v in enumerate(values)}))
    assert native_rows([payload]) == 1
    (model,) = decode_batch([payload]).models
    assert model.numeric_columns is not None
    assert _bits([model.numeric_columns[f"f{i}"][0] for i in range(len(values))]) == _bits(values)


@native
def test_random_long_literals_match_orjson() -> None:
    """Long decimal literals (the slow, exactly rounded paths) against orjson's parser."""
    rng = np.random.default_rng(20240501)
    literals = []
    for _ in range(3000):
        mantissa = "".join(map(str, rng.integers(0, 10, size=int(rng.integers(1, 30)))))
        point = int(rng.integers(0, len(mantissa) + 1))
        exponent = int(rng.integers(-330, 310))
        literals.append(f"{mantissa[:point] or '0'}.{mantissa[point:] or '0'}e{exponent}")
    for chunk in range(0, len(literals), 100):
        part = literals[chunk : chunk + 100]
        payload = raw_event(
            {"features": "{" + ",".join(f'"f{i:03d}":{n}' for i, n in enumerate(part)) + "}"}
        )
        try:
            expected = orjson.loads(payload)["features"]
        except orjson.JSONDecodeError:  # overflow: a dead letter
            expected = {"overflow": math.inf}
        assert native_rows([payload]) == int(all(math.isfinite(v) for v in expected.values()))
        assert_same([payload])


# --- timestamps -------------------------------------------------------------------------

two = st.integers(0, 99).map(lambda n: f"{n:02d}")
fractions = st.one_of(
    st.just(""), st.text(alphabet="0123456789", max_size=9).map(lambda d: "." + d)
)
offsets = st.one_of(
    st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+05:30", "-23:59", "+24:00", "+0530"]),
    st.builds(lambda s, h, m: f"{s}{h}:{m}", st.sampled_from("+-"), two, two),
)
rfc3339_strings = st.builds(
    lambda y, mo, d, sep, h, mi, s, f, o: f"{y:04d}-{mo}-{d}{sep}{h}:{mi}:{s}{f}{o}",
    st.one_of(st.integers(0, 9999), st.sampled_from([1970, 2000, 2024, 2100, 2255, 2256])),
    st.one_of(two, st.sampled_from(["01", "02", "12"])),
    st.one_of(two, st.sampled_from(["28", "29", "30", "31"])),
    st.sampled_from(["T", "T", "t", " "]),
    st.one_of(two, st.sampled_from(["00", "23", "24"])),
    two,
    st.one_of(two, st.sampled_from(["59", "60"])),
    fractions,
    offsets,
)


@DETERMINISTIC
@given(st.lists(rfc3339_strings, min_size=1, max_size=6))
def test_rfc3339_timestamps(stamps: list[str]) -> None:
    assert_same([orjson.dumps(event(event_id=str(i), timestamp=t)) for i, t in enumerate(stamps)])


@native
def test_rfc3339_edges() -> None:
    stamps = [
        "1970-01-01T00:00:00Z", "1970-01-01T00:00:00+00:01", "1970-01-01T00:59:59+01:00",
        "1970-01-01T01:00:00+01:00", "2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z",
        "2000-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2024-05-01T12:00:00.1Z",
        "2024-05-01T12:00:00.123456Z", "2024-05-01T12:00:00.1234567Z",
        "2024-05-01T12:00:00.999999-12:00", "2255-06-05T23:47:34.740992Z",
        "2255-06-05T23:47:34.740991Z", "2255-06-05T23:47:34.740993Z",
        "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00Z",
        "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00+5:30", "2024-05-01T12:00:00Z ",
        " 2024-05-01T12:00:00Z", "2024-5-01T12:00:00Z", "2024-05-01T12:00Z",
        "2016-12-31T23:59:60Z", "2024-05-01T24:00:00Z", "2024-05-01T12:60:00Z",
        "2024-13-01T12:00:00Z", "2024-00-01T12:00:00Z", "2024-04-31T12:00:00Z",
        "2024-05-00T12:00:00Z", "2024-05-01T12:00:00+24:00", "2024-05-01T12:00:00+23:60",
    ]  # fmt: skip
    payloads = [orjson.dumps(event(event_id=str(i), timestamp=t)) for i, t in enumerate(stamps)]
    assert native_rows(payloads) == 8  # the valid ones before 2^53 microseconds
    assert_same(payloads)


numeric_timestamps = st.one_of(
    st.integers(-10, 10**15),
    st.sampled_from([0, -0.0, 99_999_999_999, 99_999_999_999.9, 1e11, 253402300799,
                     253402300799.0001, 253402300799000, 253402300799001, 253402300800]),
    st.floats(-1.0, 3e14),
)  # fmt: skip


@DETERMINISTIC
@given(st.lists(numeric_timestamps, min_size=1, max_size=6))
def test_numeric_timestamps(stamps: list[float]) -> None:
    assert_same([orjson.dumps(event(event_id=str(i), timestamp=t)) for i, t in enumerate(stamps)])


# --- whole events -----------------------------------------------------------------------

plain = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7F), max_size=6)
any_text = st.text(max_size=5)
names = st.one_of(st.sampled_from(["a", "b", "c", "__x", "_a", "", "é", "a\\b", 'a"b']), plain)
feature_values = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**65), 2**65),
    st.sampled_from([True, False, "x", [], {}, 0, -0.0, 1e308]),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.floats(-5, 5), plain, any_text
)
ids = st.one_of(st.sampled_from(["e", "m", "", "x" * 512, "x" * 513, "é", "a\\b"]), plain)
versions = st.one_of(
    st.sampled_from(["v1", "1", "", 1, 7, 7.0, -1, 0, 10**15, 10**16, True, None]), plain
)
timestamps = st.one_of(
    st.sampled_from([1714564800, 1714564800123, 1714564800.5, "2024-05-01T12:00:00Z",
                     "2024-05-01T12:00:00.5+02:00", "2024-05-01T12:00:00", True, None, -1]),
    numeric_timestamps,
)  # fmt: skip


safe = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7F, exclude_characters='"\\'),
    min_size=1,
    max_size=6,
)
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**15), 10**15),
    st.sampled_from([0, -0.0, 0.1, 1e308, 5e-324, 2**53 + 1, 2**63, 2**64 - 1]),
)
good_fields: dict[str, st.SearchStrategy[Any]] = {
    "event_id": safe,
    "model_id": st.sampled_from(["m", "m", "n"]),
    "model_version": st.sampled_from(["v1", "1", 1, 7, 0]),
    "timestamp": st.one_of(
        st.integers(0, 253402300799000),
        st.floats(0, 253402300799000),
        st.sampled_from(["2024-05-01T12:00:00Z", "2024-05-01T12:00:00.25-03:30"]),
    ),
    "features": st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]) | safe.filter(lambda n: not n.startswith("__")),
        st.none() | numbers | st.booleans() | safe | st.sampled_from(["", "GB", "FR", "x y"]),
        max_size=6,
    ),
    "prediction": st.none() | numbers,
    "label": st.none() | numbers,
    "request_id": st.none() | safe,
    "extra": st.one_of(st.none(), st.booleans(), numbers, safe),
}
any_fields: dict[str, st.SearchStrategy[Any]] = {
    "event_id": ids,
    "model_id": ids,
    "model_version": versions,
    "timestamp": timestamps,
    "features": st.dictionaries(names, feature_values, max_size=6) | scalars,
    "prediction": scalars | st.dictionaries(names, feature_values, max_size=2),
    "label": scalars | st.just([1]),
    "request_id": ids | scalars | st.just(["r"]),
    "extra": scalars | st.just([1]) | st.just({"k": None}),
}
ABSENT = {"event_id": 2, "model_id": 2, "model_version": 2, "timestamp": 2, "features": 10,
          "prediction": 40, "label": 60, "request_id": 50, "extra": 60}  # fmt: skip


@st.composite
def near_canonical_events(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly canonical events; each field is sometimes absent or anything at all."""
    fields: dict[str, Any] = {}
    for name, good in good_fields.items():
        roll = draw(st.integers(0, 99))
        if roll < ABSENT[name]:
            continue
        fields[name] = draw(any_fields[name] if roll >= 92 else good)
    order = draw(st.permutations(list(fields)))
    return {name: fields[name] for name in order}


def _serialise(value: dict[str, Any], style: int) -> bytes:
    if style == 0:
        try:
            return orjson.dumps(value)
        except orjson.JSONEncodeError:  # integers beyond 64 bits
            return json.dumps(value, separators=(",", ":")).encode()
    if style == 1:
        return json.dumps(value).encode()  # ", " and ": ", non-ASCII escaped
    if style == 2:
        return json.dumps(value, indent="\t", ensure_ascii=False).encode() + b"\r\n"
    return b" \n" + json.dumps(value, separators=(",", ":")).encode() + b" "


@DETERMINISTIC
@given(
    st.lists(st.tuples(near_canonical_events(), st.integers(0, 3)), min_size=1, max_size=8),
    st.sampled_from([DecodeLimits(), DecodeLimits(max_payload_bytes=160, max_features=3)]),
)
def test_near_canonical_batches(
    batch: list[tuple[dict[str, Any], int]], limits: DecodeLimits
) -> None:
    assert_same([_serialise(value, style) for value, style in batch], limits)


MUTATION_BYTES = b' \t\n\r\x00\x0c"\\,:{}[]-+.eE0159aZT_\x7f\x80\xc3\xa9'


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    payload = bytearray(_serialise(draw(near_canonical_events()), draw(st.integers(0, 3))))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(payload)))
        kind = draw(st.integers(0, 3))
        byte = draw(st.sampled_from(list(MUTATION_BYTES)))
        if kind == 0:
            payload.insert(at, byte)
        elif kind == 1 and at < len(payload):
            del payload[at]
        elif kind == 2 and at < len(payload):
            payload[at] = byte
        else:  # repeat a slice: duplicate keys, doubled documents
            stop = draw(st.integers(at, len(payload)))
            payload[stop:stop] = payload[at:stop]
    return bytes(payload)


@native
def test_whitespace_is_exactly_json_whitespace() -> None:
    good = orjson.dumps(event())
    spaced = [good.replace(b":", sep + b":" + sep) for sep in (b" ", b"\t", b"\n", b"\r")]
    odd = [
        good.replace(b",", sep + b",")
        for sep in (b"\x0b", b"\x0c", b"\x00", b"\xc2\xa0", b"\x1c", b"\x85")
    ]
    ends = [b"\r\n" + good + b"\t \n", b"\xef\xbb\xbf" + good, good + b"\x00", good + b"\x0c"]
    assert native_rows(spaced) == len(spaced) and native_rows(odd) == 0
    assert native_rows(ends) == 1
    assert_same([*spaced, *odd, *ends])


@DETERMINISTIC
@given(st.lists(mutated(), min_size=1, max_size=6))
def test_mutated_events(payloads: list[bytes]) -> None:
    canonical = orjson.dumps(event())
    assert_same([canonical, *payloads, canonical])


@DETERMINISTIC
@given(st.lists(st.binary(max_size=40), max_size=4))
def test_arbitrary_bytes(payloads: list[bytes]) -> None:
    assert_same([orjson.dumps(event()), *payloads])


def test_corpus() -> None:
    corpus = [path.read_bytes() for path in sorted(CORPUS.iterdir())]
    canonical = [orjson.dumps(event(event_id=f"c{i}", model_id="m")) for i in range(3)]
    for payload in corpus:
        assert_same([payload])
    assert_same([canonical[0], *corpus, canonical[1], *reversed(corpus), canonical[2]])
    assert_same([*corpus, *canonical], DecodeLimits(max_payload_bytes=200, max_features=1))


def test_non_bytes_payloads() -> None:
    value = orjson.dumps(event())
    assert_same([bytearray(value), memoryview(value), value])  # type: ignore[list-item]


@native
def test_wide_and_many_models() -> None:
    wide = event(features={f"f{i:04d}": (i if i % 3 else i / 7) for i in range(3000)})
    payloads = [orjson.dumps(wide)]
    payloads += [orjson.dumps(event(model_id=f"m{i % 70}", event_id=str(i))) for i in range(300)]
    # names in another order and a growing name set within one model
    payloads += [
        orjson.dumps(event(features=dict(list(reversed(wide["features"].items()))[: i + 1])))
        for i in range(40)
    ]
    assert native_rows(payloads) == len(payloads)
    assert_same(payloads)
    assert_same(payloads, DecodeLimits(max_features=2999))


@native
def test_numeric_columns_are_used_by_numeric_column() -> None:
    (model,) = decode_batch([orjson.dumps(event())]).models
    assert model.numeric_columns is not None
    column = numeric_column(model.numeric_columns["amount"], len(model))
    assert column.values is model.numeric_columns["amount"] and column.violations is None


@native
def test_request_ids_stay_native_and_cost_nothing_when_absent() -> None:
    assert events._NATIVE_DECODE is not None
    plain = [orjson.dumps(event(event_id=f"e{i}")) for i in range(4)]
    paired = [orjson.dumps(event(event_id=f"e{i}", request_id=f"r{i // 2}")) for i in range(4)]
    late = [*plain[:2], orjson.dumps(event(request_id="r9")), orjson.dumps(event(request_id=None))]
    for payloads in (plain, paired, late):
        assert native_rows(payloads) == len(payloads)
        assert_same(payloads)
    # No request id in a group: no list at all (ModelBatch builds its Nones on first use).
    groups = [events._NATIVE_DECODE(p, 10**6, 10)[1] for p in (plain, paired, late)]
    assert [[group[10] for group in found] for found in groups] == [
        [None],
        [["r0", "r0", "r1", "r1"]],
        [[None, None, "r9", None]],
    ]
    # Not plain ASCII, not a string, a repeated key: the Python decoder judges.
    others = [
        raw_event({"features": '{"a":1}', "request_id": value})
        for value in ('"r\\u00e9"', '"\xc3\xa9"', "7", '""', "[]", '"a","request_id":"b"')
    ]
    assert native_rows(others) == 0
    assert_same(others)

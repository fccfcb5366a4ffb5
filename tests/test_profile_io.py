"""Reading reference data files: CSV, Parquet and JSONL give the same columns and profile."""

from __future__ import annotations

import csv
import hashlib
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftline import profile_io
from driftline.events import Scalar
from driftline.profile import FeatureKind, ProfileError, ReferenceProfile
from driftline.profile_io import build_profile_from_file, detect_format, read_reference_data

N = 300


def reference_rows(n: int = N, seed: int = 11) -> list[dict[str, Scalar]]:
    """Rows with a float (some missing), an int, a string, a bool, class scores and a label."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Scalar]] = []
    for i in range(n):
        p = float(rng.random())
        rows.append(
            {
                "amount": None if i % 13 == 0 else float(rng.lognormal(2, 1)),
                "visits": int(rng.poisson(3)),
                "country": str(rng.choice(["de", "fr", "us", "uk"])),
                "is_new": bool(rng.random() < 0.3),
                "__prediction__.fraud": p,
                "__prediction__.ok": 1.0 - p,
                "__label__": str(rng.choice(["fraud", "ok"])),
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict[str, Scalar]]) -> Path:
    def cell(v: Scalar) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "True" if v else "FALSE"  # any case is read as a bool
        return repr(v) if isinstance(v, float) else str(v)

    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(rows[0]))
        for row in rows:
            writer.writerow([cell(v) for v in row.values()])
    return path


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def write_parquet(path: Path, rows: list[dict[str, Scalar]]) -> Path:
    types = {
        "amount": pa.float64(),
        "visits": pa.int64(),
        "country": pa.string(),
        "is_new": pa.bool_(),
        "__prediction__.fraud": pa.float64(),
        "__prediction__.ok": pa.float64(),
        "__label__": pa.string(),
    }
    table = pa.table({k: pa.array([r[k] for r in rows], type=t) for k, t in types.items()})
    pq.write_table(table, path, row_group_size=100)
    return path


def as_events(rows: list[dict[str, Scalar]]) -> list[dict[str, Any]]:
    events = []
    for i, row in enumerate(rows):
        features = {k: v for k, v in row.items() if not k.startswith("__")}
        if features["amount"] is None:
            del features["amount"]  # absent and null are both missing
        events.append(
            {
                "event_id": f"e{i}",
                "model_id": "fraud",
                "model_version": "3",
                "timestamp": 1_700_000_000 + i,
                "features": features,
                "prediction": {
                    "fraud": row["__prediction__.fraud"],
                    "ok": row["__prediction__.ok"],
                },
                "label": row["__label__"],
            }
        )
    return events


def columns_of(rows: list[dict[str, Scalar]]) -> dict[str, list[Scalar]]:
    return {k: [r[k] for r in rows] for k in rows[0]}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    rows = reference_rows()
    return {
        "csv": write_csv(tmp_path / "ref.csv", rows),
        "parquet": write_parquet(tmp_path / "ref.parquet", rows),
        "flat": write_jsonl(tmp_path / "flat.jsonl", rows),
        "events": write_jsonl(tmp_path / "events.jsonl", as_events(rows)),
    }


# --------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("which", ["csv", "parquet", "flat", "events"])
def test_each_format_reads_the_same_columns(files: dict[str, Path], which: str) -> None:
    data = read_reference_data(files[which])
    expected = columns_of(reference_rows())
    assert data.row_count == N
    assert data.columns.keys() == expected.keys()
    for name, values in expected.items():
        assert data.columns[name] == values, name
        # exact types too: ints stay ints, bools stay bools
        assert [type(v) for v in data.columns[name]] == [type(v) for v in values], name
    assert data.sha256 == hashlib.sha256(files[which].read_bytes()).hexdigest()
    assert data.format == ("jsonl" if which in ("flat", "events") else which)


def test_all_formats_give_the_same_profile(files: dict[str, Path]) -> None:
    profiles = {
        which: build_profile_from_file(path, model_id="fraud", model_version="3")
        for which, path in files.items()
    }
    first = profiles["csv"]
    assert first.features["amount"].kind is FeatureKind.NUMERIC
    assert first.features["is_new"].kind is FeatureKind.BOOLEAN
    assert first.features["country"].kind is FeatureKind.CATEGORICAL
    for which, profile in profiles.items():
        assert profile.features == first.features, which
        assert profile.row_count == N
        assert profile.source.kind == "file"
        assert profile.source.path == str(files[which])
        assert profile.source.sha256 == hashlib.sha256(files[which].read_bytes()).hexdigest()
    assert profiles["flat"].source.format == profiles["events"].source.format == "jsonl"
    assert len({p.profile_id for p in profiles.values()}) == 4  # sources differ


def test_profile_from_file_round_trips(files: dict[str, Path]) -> None:
    profile = build_profile_from_file(files["parquet"], model_id="m", model_version="1", top_k=2)
    assert ReferenceProfile.from_json(profile.to_json()) == profile
    cats = profile.features["country"].categories
    assert cats is not None and len(cats.categories) == 2 and cats.other_count > 0


def test_sha256_of_a_large_file_is_streamed_correctly(tmp_path: Path) -> None:
    rows = [{"x": i % 97, "s": f"v{i % 7}"} for i in range(60_000)]  # > 1 MiB: several chunks
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    assert path.stat().st_size > 1024 * 1024
    data = read_reference_data(path)
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.row_count == 60_000


def test_progress_bar_does_not_change_the_result(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profile_io, "PROGRESS_MIN_BYTES", 1)
    for path in files.values():
        assert read_reference_data(path, progress=True) == read_reference_data(path)


# --------------------------------------------------------------------------- formats


def test_detect_format_and_explicit_format(tmp_path: Path) -> None:
    assert detect_format("a/b.CSV") == "csv"
    assert detect_format("x.pq") == "parquet"
    assert detect_format("x.ndjson") == "jsonl"
    with pytest.raises(ProfileError, match="cannot tell the format"):
        detect_format("train.txt")
    path = tmp_path / "train.txt"
    path.write_text("a,b\n1,x\n")
    assert read_reference_data(path, format="csv").columns == {"a": [1], "b": ["x"]}
    with pytest.raises(ProfileError, match="unknown format 'xls'"):
        read_reference_data(path, format="xls")


def test_missing_pyarrow_is_a_clear_error(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ProfileError, match=r"pip install 'driftline\[parquet\]'"):
        read_reference_data(files["parquet"])


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_empty_files_are_errors(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(ProfileError, match=rf"^{path}: the file is empty"):
        read_reference_data(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        read_reference_data(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- CSV


def test_csv_typing(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "\ufeffint,mixed,flag,text,code,blank,spaced\n"
        "1,1.5,true,a,007,, 4\n"
        "-2,2,FALSE,b,010,,5 \n"
        ",3e2,,1,3,,\n",
        encoding="utf-8",
    )
    cols = read_reference_data(path).columns
    assert cols["int"] == [1, -2, None]
    assert cols["mixed"] == [1.5, 2, 300.0]
    assert [type(v) for v in cols["mixed"]] == [float, int, float]
    assert cols["flag"] == [True, False, None]
    assert cols["text"] == ["a", "b", "1"]  # one non-number keeps the whole column as text
    assert cols["code"] == [7, 10, 3]
    assert cols["blank"] == [None, None, None]
    assert cols["spaced"] == [4, 5, None]
    kept = read_reference_data(path, keep_text=["code"]).columns
    assert kept["code"] == ["007", "010", "3"]


def test_csv_quoted_multiline_cells_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('a,b\n1,"two\nlines"\n2,x\n3\n')
    with pytest.raises(ProfileError, match=rf"^{path}: line 5: expected 2 cells.*got 1"):
        read_reference_data(path)
    path.write_text('a,b\n1,"two\nlines"\n2,x\n')
    assert read_reference_data(path).columns["b"] == ["two\nlines", "x"]


def test_csv_non_finite_number_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("a,b\n1,x\nnan,y\n")
    with pytest.raises(ProfileError, match=rf"^{path}: line 3: column 'a': non-finite number"):
        read_reference_data(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("a,b\n", "no data rows"),
        ("a,a\n1,2\n", "line 1: column 'a' appears twice"),
        ("a,\n1,2\n", "line 1: column 2 has an empty name"),
        ('a,b\n1,"x"y\n', "line 2: "),
    ],
)
def test_csv_errors(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ProfileError) as info:
        read_reference_data(path)
    assert str(info.value).startswith(f"{path}: {problem}")


def test_csv_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"a\nok\n\xff\xfe\n")
    with pytest.raises(ProfileError, match=r"line 3: not valid UTF-8"):
        read_reference_data(path)


# --------------------------------------------------------------------------- JSONL


def test_jsonl_flat_rows_union_of_keys(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"b": "x", "a": null}\n{"b": "y"}\n')
    data = read_reference_data(path)
    assert data.columns == {"a": [1, None, None], "b": [None, "x", "y"]}
    assert data.row_count == 3


def test_jsonl_events_scalar_prediction_and_feature_only_events(tmp_path: Path) -> None:
    base = {"event_id": "e", "model_id": "m", "model_version": "1", "timestamp": 0}
    lines = [
        {**base, "features": {"x": 1.5}, "prediction": 0.25, "label": 1},
        {**base, "features": {"x": 2}},
        {**base, "prediction": "cat"},
    ]
    data = read_reference_data(write_jsonl(tmp_path / "e.jsonl", lines))
    assert data.columns == {
        "x": [1.5, 2, None],
        "__prediction__": [0.25, None, "cat"],
        "__label__": [1, None, None],
    }


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"a": 1}\n{"a": \n', "line 2: invalid JSON"),
        (b'{"a": 1}\n[1, 2]\n', "line 2: expected a JSON object, got list"),
        (b'{"a": {"b": 1}}\n', "line 1: 'a' is an object"),
        (b'{"a": [1]}\n', "line 1: 'a' is a list"),
        (b'{"a": 1}\n{"features": {"a": 1}}\n', "line 2: the file holds flat rows"),
        (b'{"features": {"a": 1}}\n{"a": 1}\n', "line 2: the file holds prediction events"),
        (b'{"features": {"__label__": 1}}\n', "line 1: feature name '__label__' is reserved"),
        (b'{"features": {"a": [1]}}\n', "line 1: 'features.a' is a list"),
        (
            b'{"model_id": "m", "prediction": {"a": "high"}}\n',
            "line 1: prediction.a must be a number",
        ),
        (b"\n\n", "no data rows"),
        (b'{"a": NaN}\n', "line 1: invalid JSON"),
    ],
)
def test_jsonl_errors(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(ProfileError) as info:
        read_reference_data(path)
    assert str(info.value).startswith(f"{path}: {problem}")


# --------------------------------------------------------------------------- Parquet


def test_parquet_nan_is_missing_and_dictionary_strings_are_read(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    table = pa.table(
        {
            "x": pa.array([1.0, math.nan, None, 4.0]),
            "c": pa.array(["a", "b", None, "a"]).dictionary_encode(),
            "n": pa.array([None, None, None, None], type=pa.null()),
            "i": pa.array([1, 2, 3, None], type=pa.int32()),
        }
    )
    pq.write_table(table, path)
    data = read_reference_data(path)
    assert data.columns == {
        "x": [1.0, None, None, 4.0],
        "c": ["a", "b", None, "a"],
        "n": [None] * 4,
        "i": [1, 2, 3, None],
    }


def test_parquet_errors(tmp_path: Path) -> None:
    path = tmp_path / "inf.parquet"
    pq.write_table(pa.table({"x": pa.array([1.0, 2.0, math.inf])}), path)
    with pytest.raises(ProfileError, match=rf"^{path}: row 3: column 'x': non-finite"):
        read_reference_data(path)
    path = tmp_path / "ts.parquet"
    pq.write_table(pa.table({"t": pa.array([1, 2], type=pa.timestamp("s"))}), path)
    with pytest.raises(ProfileError, match=r"column 't' has the type timestamp"):
        read_reference_data(path)
    path = tmp_path / "junk.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(ProfileError, match=r"not a readable Parquet file"):
        read_reference_data(path)


# --------------------------------------------------------------------------- build from file


def test_build_from_file_with_kind_overrides(tmp_path: Path) -> None:
    path = tmp_path / "k.csv"
    path.write_text("zip,score\n007,1\n010,2\n007,3\n")
    profile = build_profile_from_file(
        path, model_id="m", model_version="1", kinds={"zip": FeatureKind.CATEGORICAL}
    )
    cats = profile.features["zip"].categories
    assert cats is not None and cats.categories == {"007": 2, "010": 1}
    assert profile.source.format == "csv" and profile.source.path == str(path)


def test_build_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "k.csv"
    path.write_text("name\nann\nbob\n")
    with pytest.raises(ProfileError, match=rf"^{path}: feature 'name' is numeric"):
        build_profile_from_file(
            path, model_id="m", model_version="1", kinds={"name": FeatureKind.NUMERIC}
        )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"features": {"__x": 1}}\n', "line 1: feature name '__x' is reserved"),
        (b'{"features": {"": 1}}\n', "line 1: feature name '' is reserved"),
        (b'{"model_id": "m", "prediction": {}}\n', "line 1: field 'prediction' is an empty"),
        (b'{"features": {"a": 1}, "label": [1]}\n', "line 1: field 'label' must be a number"),
    ],
)
def test_jsonl_events_follow_the_decoder_rules(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    """Event rows are read by the event decoder's rules (driftline.events.event_values)."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(ProfileError) as info:
        read_reference_data(path)
    assert str(info.value).startswith(f"{path}: {problem}")


def test_jsonl_events_null_labels_give_no_label_column(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"features": {"a": 1}, "label": null}\n{"features": {"a": 2}}\n')
    assert read_reference_data(path).columns == {"a": [1, 2]}

"""Reading reference data files (CSV, Parquet, JSONL) into columns for a profile.

Every problem with the input is a :class:`~driftline.profile.ProfileError` whose message
names the file, the line or row and what is wrong. The SHA-256 of the file's bytes is
computed while reading, so a profile records exactly what it was built from.

- **CSV**: a header row; an empty cell is missing. A column whose non-empty cells all
  parse as numbers holds ints and floats; one whose cells are all ``true``/``false`` (any
  case) holds bools; any other column holds the strings as written.
- **Parquet** (needs ``pyarrow``): integer, floating, boolean and string columns; nulls
  are missing, and so is NaN in a floating column (the pandas convention).
- **JSONL**: one JSON object per line (blank lines skipped), either flat rows
  (name -> scalar; a key absent from a row is missing there) or prediction events. The
  first row decides which: it is an event when its ``features`` is an object, or when it
  has both ``model_id`` and ``prediction``; every row must then be of the same sort. An
  event row gives the columns the event decoder gives it
  (:func:`driftline.events.event_values`: features as they are, ``prediction`` as
  ``__prediction__`` or one ``__prediction__.<class>`` column per class, a non-null
  ``label`` as ``__label__``) under the decoder's rules for ``features``, ``prediction``
  and ``label``; the envelope (ids, timestamp) is not required.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import IO, Any

import orjson

from driftline.events import DeadLetterReason, InvalidEventError, Scalar, event_values
from driftline.performance.task import Task
from driftline.profile import (
    FeatureKind,
    ProfileError,
    ProfileSource,
    ReferenceProfile,
    build_profile,
)

__all__ = [
    "FORMATS",
    "ReferenceData",
    "build_profile_from_file",
    "detect_format",
    "read_reference_data",
]

FORMATS = ("csv", "parquet", "jsonl")
_EXTENSIONS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
#: Inputs at least this large get a progress bar when ``progress=True``.
PROGRESS_MIN_BYTES = 8 * 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReferenceData:
    """Reference data as columns, with the hash of the file it came from."""

    columns: dict[str, list[Scalar]]
    """Column name -> one value per row (``None`` = missing)."""
    row_count: int
    sha256: str
    """SHA-256 (hex) of the file's bytes."""
    format: str
    """``csv``, ``parquet`` or ``jsonl``."""


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of a file from its extension (``.csv``, ``.parquet``/``.pq``,
    ``.jsonl``/``.ndjson``).

    >>> detect_format("data/train.parquet")
    'parquet'
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    fmt = _EXTENSIONS.get(ext)
    if fmt is None:
        raise ProfileError(
            f"{os.fspath(path)}: cannot tell the format from the extension {ext!r}; "
            f"name it explicitly (one of {', '.join(FORMATS)})"
        )
    return fmt


def read_reference_data(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    progress: bool = False,
    keep_text: Collection[str] = (),
) -> ReferenceData:
    """Read a reference data file into columns.

    Parameters
    ----------
    format
        ``csv``, ``parquet`` or ``jsonl``; by default from the file's extension.
    progress
        Show a progress bar on stderr for inputs of at least ``PROGRESS_MIN_BYTES``.
    keep_text
        CSV columns to keep as the strings written (e.g. codes such as ``007`` that
        should be profiled as categories, not numbers).
    """
    name = os.fspath(path)
    fmt = detect_format(name) if format is None else format.lower()
    if fmt not in FORMATS:
        raise ProfileError(f"{name}: unknown format {format!r} (one of {', '.join(FORMATS)})")
    try:
        size = os.path.getsize(name)
    except OSError as exc:
        raise ProfileError(f"{name}: cannot read: {exc.strerror}") from None
    if size == 0:
        raise ProfileError(f"{name}: the file is empty")
    with _progress(name, size, progress) as advance:
        try:
            if fmt == "csv":
                columns, rows, digest = _read_csv(name, advance, set(keep_text))
            elif fmt == "jsonl":
                columns, rows, digest = _read_jsonl(name, advance)
            else:
                columns, rows, digest = _read_parquet(name, advance)
        except OSError as exc:
            raise ProfileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    if rows == 0:
        raise ProfileError(f"{name}: no data rows")
    if not columns:
        raise ProfileError(f"{name}: no columns")
    return ReferenceData(columns=columns, row_count=rows, sha256=digest, format=fmt)


def build_profile_from_file(
    path: str | os.PathLike[str],
    *,
    model_id: str,
    model_version: str,
    format: str | None = None,
    kinds: Mapping[str, FeatureKind] | None = None,
    top_k: int = 20,
    progress: bool = False,
    task: Task | None = None,
    decision_threshold: float = 0.5,
) -> ReferenceProfile:
    """Read a reference data file and build its profile.

    The source is ``ProfileSource(kind="file", sha256=<file hash>, path=<path as given>,
    format=<format>)``. CSV columns overridden to categorical keep their text as written.
    Data with ``__prediction__`` (or ``__prediction__.<class>``) and ``__label__`` also
    gives the profile its reference performance (``task``: the model's task, ``None`` to
    infer it; ``decision_threshold``: for binary probabilities).
    """
    name = os.fspath(path)
    categorical = [k for k, v in (kinds or {}).items() if v == FeatureKind.CATEGORICAL]
    data = read_reference_data(name, format=format, progress=progress, keep_text=categorical)
    try:
        return build_profile(
            data.columns,
            model_id=model_id,
            model_version=model_version,
            source=ProfileSource(kind="file", sha256=data.sha256, path=name, format=data.format),
            kinds=kinds,
            top_k=top_k,
            task=task,
            decision_threshold=decision_threshold,
        )
    except ProfileError as exc:
        raise ProfileError(f"{name}: {exc}") from None


# --------------------------------------------------------------------------- progress


def _progress(name: str, size: int, enabled: bool) -> AbstractContextManager[Callable[[int], None]]:
    if not enabled or size < PROGRESS_MIN_BYTES:
        return nullcontext(_ignore)
    return _RichProgress(name, size)


def _ignore(_: int) -> None:
    return None


class _RichProgress(AbstractContextManager[Callable[[int], None]]):
    """A rich progress bar on stderr, advanced by bytes read."""

    def __init__(self, name: str, size: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task(f"reading {os.path.basename(name)}", total=size)

    def __enter__(self) -> Callable[[int], None]:
        self._bar.start()
        return self._advance

    def _advance(self, n: int) -> None:
        self._bar.advance(self._task, n)

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


# --------------------------------------------------------------------------- byte lines


def _hashed_lines(
    f: IO[bytes], digest: Any, advance: Callable[[int], None]
) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, line bytes) while hashing every byte read."""
    pending = 0
    for number, line in enumerate(f, start=1):
        digest.update(line)
        pending += len(line)
        if pending >= _CHUNK:
            advance(pending)
            pending = 0
        yield number, line
    advance(pending)


def _file_sha256(name: str, advance: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    with open(name, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            advance(len(chunk))
    return digest.hexdigest()


# --------------------------------------------------------------------------- CSV


def _decoded(name: str, lines: Iterator[tuple[int, bytes]]) -> Iterator[str]:
    for number, raw in lines:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProfileError(f"{name}: line {number}: not valid UTF-8 ({exc.reason})") from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def _parse_number(cell: str) -> int | float | None:
    """``int`` or ``float`` of a plain ASCII number (surrounding spaces allowed), else None."""
    if not cell.isascii() or "_" in cell:
        return None  # int() and float() would accept "1_000" and non-ASCII digits
    text = cell.strip()
    digits = text[1:] if text[:1] in ("+", "-") else text
    if digits.isdigit():
        return int(text)
    try:
        return float(text)
    except ValueError:
        return None


def _read_csv(
    name: str, advance: Callable[[int], None], keep_text: set[str]
) -> tuple[dict[str, list[Scalar]], int, str]:
    digest = hashlib.sha256()
    rows: list[list[str]] = []
    lines: list[int] = []
    with open(name, "rb") as f:
        reader = csv.reader(_decoded(name, _hashed_lines(f, digest, advance)), strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise ProfileError(f"{name}: the file is empty")
            _check_header(name, header)
            width = len(header)
            for row in reader:
                if len(row) != width:
                    if not row:
                        continue  # a blank line
                    raise ProfileError(
                        f"{name}: line {reader.line_num}: expected {width} cells "
                        f"(as in the header), got {len(row)}"
                    )
                rows.append(row)
                lines.append(reader.line_num)
        except csv.Error as exc:
            raise ProfileError(f"{name}: line {reader.line_num}: {exc}") from None
    cells_by_column = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    del rows
    columns = {
        col: _csv_column(name, col, cells, lines, col in keep_text)
        for col, cells in zip(header, cells_by_column, strict=True)
    }
    return columns, len(lines), digest.hexdigest()


def _check_header(name: str, header: list[str]) -> None:
    seen: set[str] = set()
    for i, col in enumerate(header, start=1):
        if not col.strip():
            raise ProfileError(f"{name}: line 1: column {i} has an empty name")
        if col in seen:
            raise ProfileError(f"{name}: line 1: column {col!r} appears twice")
        seen.add(col)


def _csv_column(
    name: str, column: str, cells: Sequence[str], lines: list[int], keep_text: bool
) -> list[Scalar]:
    """Type a CSV column: numbers, booleans or text (see the module docstring)."""
    text: list[Scalar] = [cell if cell != "" else None for cell in cells]
    if keep_text or all(cell is None for cell in text):
        return text
    if all(cell == "" or cell.strip().lower() in ("true", "false") for cell in cells):
        return [None if cell == "" else cell.strip().lower() == "true" for cell in cells]
    numbers: list[Scalar] = []
    for cell in cells:
        if cell == "":
            numbers.append(None)
            continue
        number = _parse_number(cell)
        if number is None:
            return text
        numbers.append(number)
    for i, value in enumerate(numbers):
        if isinstance(value, float) and not math.isfinite(value):
            raise ProfileError(
                f"{name}: line {lines[i]}: column {column!r}: non-finite number "
                f"{cells[i]!r} (leave the cell empty for a missing value)"
            )
    return numbers


# --------------------------------------------------------------------------- JSONL


def _read_jsonl(
    name: str, advance: Callable[[int], None]
) -> tuple[dict[str, list[Scalar]], int, str]:
    digest = hashlib.sha256()
    columns: dict[str, list[Scalar]] = {}
    rows = 0
    event_mode: bool | None = None
    with open(name, "rb") as f:
        for number, line in _hashed_lines(f, digest, advance):
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark
            if not line.strip():
                continue
            where = f"{name}: line {number}"
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ProfileError(f"{where}: invalid JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise ProfileError(f"{where}: expected a JSON object, got {type(obj).__name__}")
            is_event = _looks_like_event(obj)
            if event_mode is None:
                event_mode = is_event
            elif is_event != event_mode:
                first = "prediction events" if event_mode else "flat rows"
                raise ProfileError(
                    f"{where}: the file holds {first} (from its first row), but this row is not"
                )
            values = _event_values(where, obj) if event_mode else _flat_values(where, obj)
            for key, value in values.items():
                column = columns.get(key)
                if column is None:
                    column = columns[key] = []
                if len(column) < rows:
                    column.extend([None] * (rows - len(column)))
                column.append(value)
            rows += 1
    for column in columns.values():
        if len(column) < rows:
            column.extend([None] * (rows - len(column)))
    return columns, rows, digest.hexdigest()


def _looks_like_event(obj: Mapping[str, Any]) -> bool:
    return isinstance(obj.get("features"), dict) or ("model_id" in obj and "prediction" in obj)


def _scalar(where: str, key: str, value: Any) -> Scalar:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise ProfileError(f"{where}: {_not_scalar(key, value)}")


def _not_scalar(key: str, value: Any) -> str:
    kind = "an object" if isinstance(value, dict) else "a list"
    return f"{key!r} is {kind}; only numbers, strings, booleans or null"


def _flat_values(where: str, obj: Mapping[str, Any]) -> dict[str, Scalar]:
    return {key: _scalar(where, key, value) for key, value in obj.items()}


def _event_values(where: str, obj: dict[str, Any]) -> dict[str, Scalar]:
    try:
        return event_values(obj)
    except InvalidEventError as error:
        raise ProfileError(f"{where}: {_event_problem(error, obj)}") from None


def _event_problem(error: InvalidEventError, obj: dict[str, Any]) -> str:
    """What is wrong with an event row: the wording of earlier releases where there is one,
    else the dead-letter message."""
    name = error.name
    reason = error.reason
    if reason == DeadLetterReason.INVALID_FEATURE_NAME:
        return f"feature name {name!r} is reserved (names are non-empty, not starting with '__')"
    if reason == DeadLetterReason.INVALID_FEATURE_VALUE and name is not None:
        return _not_scalar(f"features.{name}", obj["features"][name])
    if reason == DeadLetterReason.INVALID_PREDICTION and name is not None:
        return (
            f"prediction.{name} must be a number (a class probability), "
            f"got {obj['prediction'][name]!r}"
        )
    if reason == DeadLetterReason.FEATURES_NOT_OBJECT:
        return "'features' must be an object"
    if reason == DeadLetterReason.NO_FEATURES_OR_PREDICTION:
        return "a prediction event needs 'features' or 'prediction'"
    return error.message


# --------------------------------------------------------------------------- Parquet


def _read_parquet(
    name: str, advance: Callable[[int], None]
) -> tuple[dict[str, list[Scalar]], int, str]:
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError:
        raise ProfileError(
            f"{name}: reading Parquet needs pyarrow: pip install 'driftline[parquet]'"
        ) from None
    digest = _file_sha256(name, advance)
    try:
        table = pq.read_table(name)
    except (pa.ArrowException, OSError) as exc:
        raise ProfileError(f"{name}: not a readable Parquet file ({exc})") from None
    names = table.column_names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ProfileError(f"{name}: column {dupes[0]!r} appears twice")
    columns: dict[str, list[Scalar]] = {}
    for col_name, column in zip(names, table.columns, strict=True):
        typ = column.type
        if pa.types.is_dictionary(typ):
            column = column.cast(typ.value_type)
            typ = column.type
        if pa.types.is_floating(typ):
            if pc.any(pc.is_inf(column)).as_py():
                row = pc.index(pc.is_inf(column), True).as_py() + 1
                raise ProfileError(f"{name}: row {row}: column {col_name!r}: non-finite number")
            column = pc.if_else(pc.is_nan(column), None, column)
        elif not (
            pa.types.is_integer(typ)
            or pa.types.is_boolean(typ)
            or pa.types.is_string(typ)
            or pa.types.is_large_string(typ)
            or pa.types.is_null(typ)
        ):
            raise ProfileError(
                f"{name}: column {col_name!r} has the type {typ}; "
                "profiles take integer, floating, boolean and string columns"
            )
        columns[col_name] = column.to_pylist()
    return columns, table.num_rows, digest

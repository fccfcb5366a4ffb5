"""Prediction events: raw message bytes -> validated, columnar per-model batches.

Decoding never raises on bad input and never drops an event silently: every message of a
batch ends up either in exactly one :class:`ModelBatch` row or as one :class:`DeadLetter`,
and one bad message never changes how the good ones of its batch decode.

The rules below are the contract of the prediction event (v1; the README's "Event schemas
(v1)" summarises it for users). When a message breaks several rules, the reason reported
is the first one in this order:

1. **Size**: a message longer than ``DecodeLimits.max_payload_bytes`` is
   ``payload_too_large`` and is not parsed.
2. **JSON** (parsed with orjson): invalid UTF-8 is ``invalid_utf8``; nesting deeper than
   orjson's limit (1024) is ``nesting_too_deep``; the literals ``NaN``, ``Infinity`` and
   ``-Infinity``, and numbers that overflow a double (``1e999``), are
   ``non_finite_number``; any other syntax error (including a ``\\ud800``-style lone
   surrogate escape or a byte order mark) is ``invalid_json``. Integers beyond 64 bits
   become floats.
   Duplicate keys are accepted and the last one wins. A top level that is not an object
   is ``not_an_object``.
3. **Envelope**, in this order: ``event_id``, ``model_id``, ``model_version``,
   ``timestamp``. A missing (or null) field is ``missing_field``. ``event_id`` and
   ``model_id`` must be non-empty strings of at most 512 characters, else
   ``invalid_field``. ``model_version`` is a non-empty string of at most 512 characters,
   or an integer number, read as its decimal string (``7`` and ``7.0`` are both ``"7"``);
   other numbers and booleans are ``invalid_field``.
4. **timestamp** (``invalid_timestamp`` when wrong): an RFC 3339 date-time *with* an
   offset, ``YYYY-MM-DD(T|t| )hh:mm:ss[.fraction](Z|z|±hh:mm)`` (``-00:00`` reads as UTC;
   fraction digits beyond microseconds are truncated; leap second ``:60`` is rejected);
   a date-time without an offset is rejected with a message saying so. Or a number:
   epoch seconds when below ``1e11``, else epoch milliseconds. Booleans are invalid.
   The instant must lie within 1970-01-01T00:00:00Z ... 9999-12-31T23:59:59Z. Stored as
   float64 epoch seconds.
5. **features**: absent or null means no features; anything but an object is
   ``features_not_object``. More than ``max_features`` entries is ``too_many_features``;
   a name that is empty or starts with ``__`` (reserved for driftline's own columns) is
   ``invalid_feature_name``; a value that is not a number, string, boolean or null
   (an object or array) is ``invalid_feature_value``. The first offending name (in the
   event's key order) is named in the message.
6. **prediction**: absent or null means none; a number, string or boolean becomes column
   ``__prediction__``. An object maps class -> probability: it must be non-empty, its
   class names non-empty, its values numbers (not booleans); it becomes one column
   ``__prediction__.<class>`` per class. Anything else is ``invalid_prediction``.
   Features plus prediction classes above ``max_features`` is ``too_many_features``.
7. **label**: absent or null means none; a number, string or boolean becomes column
   ``__label__``; anything else is ``invalid_label``.
8. An event with neither ``features`` (an empty object counts as present) nor
   ``prediction`` is a **feedback event** when it has a ``label`` (ground truth for the
   earlier prediction with the same ``event_id``), else ``no_features_or_prediction``.
9. **request_id** (prediction events only; a feedback event's is ignored, unchecked):
   absent or null means none; else, like ``event_id``, a non-empty string of at most 512
   characters, else ``invalid_field``. It names the request a prediction answered: when
   two model versions scored the same request (shadow mode), their predictions carry the
   same ``request_id`` and are paired by it (champion/challenger comparisons).

Unknown top-level fields are ignored.

Output: one :class:`ModelBatch` per (model_id, model_version), ordered by the position of
its first row; rows in input order; feedback events apart, one :class:`FeedbackBatch` per
model version, in the same order. ``columns`` holds one list per column name seen in
that model's rows (feature names, plus ``__prediction__``, ``__prediction__.<class>`` and
``__label__`` when at least one row has a non-null one), sorted by name, with ``None``
where a row has no value. A row *has* a column when it gives a value or, for a feature,
an explicit null (``ModelBatch.presence``); :func:`event_values` gives one parsed event's
columns by the same rules. Dead letters come in input order.

Speed: the common event shape (numbers, null, strings or booleans as features; numbers or
null as prediction and label; plain ASCII strings; see ``_fastdecode.c``) is decoded by a
compiled extension without a Python object per number, and with a column's repeated
strings shared; its model batches carry the columns of numbers as float64 arrays
(:meth:`ModelBatch.numeric_array`; ``numeric_columns`` when every column is one) and build
the other ``columns`` lists only when asked. Every other message goes through the Python decoder
below, which stays the reference: both give identical results, and without the extension
(not built, or ``DRIFTLINE_PURE_PYTHON=1``) the Python decoder does everything.

Examples
--------
>>> batch = decode_batch([
...     b'{"event_id": "e1", "model_id": "fraud", "model_version": 3,'
...     b' "timestamp": "2024-05-01T12:00:00Z", "features": {"amount": 12.5}}',
...     b'{"event_id": "e2"}',
... ])
>>> model = batch.models[0]
>>> model.model_id, model.model_version, model.timestamps.tolist(), model.columns
('fraud', '3', [1714564800.0], {'amount': [12.5]})
>>> [(d.index, d.reason.value, d.message) for d in batch.dead_letters]
[(1, 'missing_field', "required field 'model_id' is missing")]
"""

from __future__ import annotations

import re
import sys
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
import orjson
from pydantic import Field

from driftline.native import extension as native_extension
from driftline.settings_base import StrictSettings

if TYPE_CHECKING:
    from driftline._fastdecode import Group as _NativeGroup

_NativeDecode = Callable[[Sequence[bytes], int, int], tuple[list[int], list["_NativeGroup"]]]


_EXTENSION = native_extension()
#: The compiled decoder, or ``None`` (not built, or ``DRIFTLINE_PURE_PYTHON=1``).
_NATIVE_DECODE: _NativeDecode | None = None if _EXTENSION is None else _EXTENSION.decode

#: A feature value after decoding: JSON scalars only (``None`` = null or absent).
Scalar = float | int | str | bool | None
_Presence = dict[str, npt.NDArray[np.bool_]] | Callable[[], dict[str, npt.NDArray[np.bool_]]]
"""``ModelBatch.presence``, or a function computing it on first use."""

PREDICTION_FEATURE = "__prediction__"
LABEL_FEATURE = "__label__"

MAX_ID_LENGTH = 512
"""Longest accepted ``event_id``, ``model_id`` and ``model_version``, in characters."""
MIN_EPOCH_SECONDS = 0.0
"""1970-01-01T00:00:00Z, the earliest accepted event time."""
MAX_EPOCH_SECONDS = 253_402_300_799.0
"""9999-12-31T23:59:59Z, the latest accepted event time."""
EPOCH_MILLISECONDS_FROM = 1e11
"""Numeric timestamps at or above this are epoch milliseconds, below it epoch seconds."""


class DeadLetterReason(StrEnum):
    """Stable reason codes for events that cannot be processed (API: do not rename)."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_UTF8 = "invalid_utf8"
    NESTING_TOO_DEEP = "nesting_too_deep"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    INVALID_TIMESTAMP = "invalid_timestamp"
    FEATURES_NOT_OBJECT = "features_not_object"
    INVALID_FEATURE_NAME = "invalid_feature_name"
    INVALID_FEATURE_VALUE = "invalid_feature_value"
    NON_FINITE_NUMBER = "non_finite_number"
    NO_FEATURES_OR_PREDICTION = "no_features_or_prediction"
    INVALID_PREDICTION = "invalid_prediction"
    INVALID_LABEL = "invalid_label"
    TOO_MANY_FEATURES = "too_many_features"
    # Not decoding rules: limits the pipeline applies to valid events (see pipeline.py).
    TOO_MANY_MODELS = "too_many_models"
    TOO_MANY_WARMUP_FEATURES = "too_many_warmup_features"
    INTERNAL_ERROR = "internal_error"
    """The event's model version is quarantined after an unexpected error (a bug)."""
    # Not decoding rules either: the Kafka shell rejects these before decoding (a
    # record's value is bytes to decode, and these have none to offer).
    NULL_VALUE = "null_value"
    """The record's value is null (a tombstone); an empty value is ``invalid_json``."""
    UNDECODABLE_RECORD = "undecodable_record"
    """The consumer could not decode the record batch (codec, CRC mismatch, corrupt bytes)."""


class DecodeLimits(StrictSettings):
    """Limits applied while decoding (config key ``decode``); each breach dead-letters the
    event."""

    max_payload_bytes: int = Field(1024 * 1024, gt=0)
    """Messages larger than this are dead-lettered unparsed (``payload_too_large``)."""
    max_features: int = Field(10_000, gt=0)
    """Events with more feature (and prediction-class) entries are ``too_many_features``."""


DEFAULT_LIMITS = DecodeLimits()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event that could not be processed, with why."""

    index: int
    """Position of the message within the decoded batch."""
    reason: DeadLetterReason
    """Stable machine-readable reason code."""
    message: str
    """Human-readable detail naming the offending field or value."""
    payload: bytes
    """The original message bytes, unchanged."""


class ModelBatch:
    """The valid events of one batch for one (model_id, model_version), in input order."""

    __slots__ = (
        "_arrays",
        "_columns",
        "_integer_rows",
        "_objects",
        "_presence",
        "_request_ids",
        "event_ids",
        "indices",
        "model_id",
        "model_version",
        "numeric_columns",
        "timestamps",
    )

    model_id: str
    model_version: str
    indices: npt.NDArray[np.int64]
    """Position of each row's message within the decoded batch (ascending)."""
    event_ids: list[str]
    timestamps: npt.NDArray[np.float64]
    """Event time of each row, epoch seconds (UTC)."""
    numeric_columns: dict[str, npt.NDArray[np.float64]] | None
    """When every value of every column is a number or null (natively decoded batches): the
    columns as read-only float64 arrays, NaN where null or absent, in ``columns`` order;
    else ``None`` (see :meth:`numeric_array` for one column)."""

    def __init__(
        self,
        model_id: str,
        model_version: str,
        indices: npt.NDArray[np.int64],
        event_ids: list[str],
        timestamps: npt.NDArray[np.float64],
        columns: dict[str, list[Scalar]] | None = None,
        *,
        arrays: dict[str, npt.NDArray[np.float64]] | None = None,
        integer_rows: dict[str, npt.NDArray[np.bool_]] | None = None,
        objects: dict[str, list[Scalar]] | None = None,
        presence: _Presence | None = None,
        request_ids: list[str | None] | None = None,
    ) -> None:
        """``columns`` (every column as a list), or, from the native decoder, ``arrays``:
        the columns whose values are all numbers or null as float64 arrays (with
        ``integer_rows``), and ``objects``: the other columns as lists."""
        self.model_id = model_id
        self.model_version = model_version
        self.indices = indices
        self.event_ids = event_ids
        self.timestamps = timestamps
        self._arrays = arrays or {}
        self._objects = objects or {}
        self.numeric_columns = arrays if arrays is not None and not objects else None
        self._integer_rows = integer_rows or {}
        """Rows whose value was an integer literal (an ``int`` in ``columns``), per column."""
        self._columns = columns if columns is not None or arrays is not None else {}
        self._presence = presence
        """:meth:`presence`, or a function computing it; ``None``: the non-null values."""
        self._request_ids = request_ids
        """:attr:`request_ids`; ``None`` (until first use) when no row has one."""

    @property
    def request_ids(self) -> list[str | None]:
        """Each row's ``request_id`` (rule 9), in ``event_ids`` order; ``None`` where the
        event had none. Predictions of two model versions with the same request id answered
        the same request (shadow mode). Built on first use when no row has one."""
        request_ids = self._request_ids
        if request_ids is None:
            request_ids = self._request_ids = [None] * len(self)
        return request_ids

    @property
    def columns(self) -> dict[str, list[Scalar]]:
        """Raw scalar values per feature name, one per row; ``None`` where null or absent.

        ``prediction`` appears as ``__prediction__`` (number or string) or, for a
        class-probability object, as one numeric column ``__prediction__.<class>`` per
        class; ``label`` appears as ``__label__``. Sorted by name.
        """
        if self._columns is None:
            self._columns = {name: self._native_column(name) for name in self.column_names()}
        return self._columns

    @columns.setter
    def columns(self, columns: dict[str, list[Scalar]]) -> None:
        self._columns = columns
        self.numeric_columns = None
        self._arrays = {}
        self._objects = {}
        self._presence = None

    def column_names(self) -> list[str]:
        """The names of ``columns``, sorted, without building a natively decoded batch's
        lists."""
        if self._columns is None:
            return sorted([*self._arrays, *self._objects])
        return list(self._columns)

    def numeric_array(self, name: str) -> npt.NDArray[np.float64] | None:
        """Column ``name`` as a read-only float64 array (NaN where null or absent) when the
        native decoder read it with numbers or nulls only; else ``None`` (read
        :meth:`column`)."""
        return self._arrays.get(name)

    def presence(self) -> dict[str, npt.NDArray[np.bool_]]:
        """Per column (in ``columns`` order), which rows have it.

        A row has a column when it gives it a value, or names the feature with a null value
        (``"features": {"x": null}`` has ``x``); an absent feature, and a null or absent
        prediction or label, is no column of the row. Computed on first use.
        """
        presence = self._presence
        if presence is None:
            presence = {
                name: np.fromiter((v is not None for v in column), np.bool_, len(self))
                for name, column in self.columns.items()
            }
        elif callable(presence):
            presence = presence()
        self._presence = presence
        return presence

    def row_columns(self) -> list[set[str]]:
        """The names of the columns each row has (see :meth:`presence`)."""
        rows: list[set[str]] = [set() for _ in range(len(self))]
        for name, present in self.presence().items():
            for row in np.flatnonzero(present).tolist():
                rows[row].add(name)
        return rows

    def take(self, rows: list[int]) -> ModelBatch:
        """The rows at the ascending positions ``rows``, with only the columns those rows
        have (``self`` when ``rows`` are all of them)."""
        if len(rows) == len(self):
            return self
        taken = {name: present[rows] for name, present in self.presence().items()}
        presence = {name: present for name, present in taken.items() if present.any()}
        columns = self.columns
        return ModelBatch(
            model_id=self.model_id,
            model_version=self.model_version,
            indices=self.indices[rows],
            event_ids=[self.event_ids[row] for row in rows],
            timestamps=self.timestamps[rows],
            columns={name: [columns[name][row] for row in rows] for name in presence},
            presence=presence,
            request_ids=None
            if self._request_ids is None
            else [self._request_ids[row] for row in rows],
        )

    def column(self, name: str) -> list[Scalar] | None:
        """``columns.get(name)``, building only that column of a natively decoded batch."""
        if self._columns is None:
            if name in self._arrays or name in self._objects:
                return self._native_column(name)
            return None
        return self._columns.get(name)

    def _native_column(self, name: str) -> list[Scalar]:
        objects = self._objects.get(name)
        if objects is not None:
            return objects
        values = self._arrays[name]
        scalars: npt.NDArray[np.object_] = values.astype(object)
        scalars[np.isnan(values)] = None
        integers = self._integer_rows.get(name)
        if integers is not None:  # exact: integer literals are below 10**15
            scalars[integers] = [int(v) for v in values[integers].tolist()]
        return cast(list[Scalar], scalars.tolist())

    def __len__(self) -> int:
        return len(self.event_ids)

    def __repr__(self) -> str:
        return (
            f"ModelBatch(model_id={self.model_id!r}, model_version={self.model_version!r}, "
            f"rows={len(self)})"
        )


@dataclass(slots=True)
class FeedbackBatch:
    """The feedback events (labels without features or prediction) of one batch for one
    (model_id, model_version), in input order."""

    model_id: str
    model_version: str
    indices: npt.NDArray[np.int64]
    """Position of each event's message within the decoded batch (ascending)."""
    event_ids: list[str]
    """The ``event_id`` of the prediction each label belongs to."""
    timestamps: npt.NDArray[np.float64]
    """When each label became known (event time, epoch seconds)."""
    labels: list[Scalar]

    def __len__(self) -> int:
        return len(self.event_ids)


@dataclass(slots=True)
class DecodedBatch:
    """The result of decoding one batch of messages."""

    models: list[ModelBatch]
    """One entry per (model_id, model_version), in order of first appearance."""
    dead_letters: list[DeadLetter]
    """Rejected messages, in input order."""
    size: int
    """Number of input messages; equals rows over all models and feedback plus dead
    letters."""
    feedback: list[FeedbackBatch] = field(default_factory=list)
    """Feedback events per (model_id, model_version), in order of first appearance."""


_Features = dict[str, Any]
"""A decoded ``features`` object (validated before it reaches a column)."""
_Prediction = Scalar | dict[str, float | int]
_Entry = tuple[int, str, float, _Features, _Prediction, Scalar, str | None]
"""One accepted event: index, event_id, epoch seconds, features, prediction, label,
request_id."""

_SCALAR_TYPES = frozenset({str, int, float, bool})
_FEATURE_VALUE_TYPES = frozenset({str, int, float, bool, type(None)})
_NUMBER_TYPES = frozenset({int, float})
_ENVELOPE = itemgetter("event_id", "model_id", "model_version", "timestamp")
# ts[4:20:3] of "YYYY-MM-DDThh:mm:ss" followed by ".", "Z", "+" or "-".
_FAST_TIMESTAMP_SHAPES = frozenset({"--T::.", "--T::Z", "--T::+", "--T::-"})
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_SHOWN_CHARS = 60


class InvalidEventError(ValueError):
    """A parsed event breaks a rule of the contract (decoding makes it a dead letter)."""

    def __init__(self, reason: DeadLetterReason, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        """The dead-letter reason."""
        self.message = message
        """The dead-letter message."""
        self.name = name
        """The offending feature name (``invalid_feature_name``, ``invalid_feature_value``)
        or prediction class (``invalid_prediction``), when the rule names one."""


def decode_batch(
    payloads: Sequence[bytes], limits: DecodeLimits = DEFAULT_LIMITS, *, native: bool = True
) -> DecodedBatch:
    """Decode a batch of raw message values (one JSON prediction event each).

    Parameters
    ----------
    payloads
        Message values, in consumption order.
    limits
        Size and width limits; a breach dead-letters the event.
    native
        Decode the common event shape with the compiled extension when it is available;
        ``False`` runs the pure-Python decoder on every message (same result, slower).

    Returns
    -------
    DecodedBatch
        Per-model columnar rows and one dead letter per rejected message.
    """
    native_models: dict[tuple[str, str], ModelBatch] = {}
    rows: Iterable[tuple[int, bytes]]
    if native and _NATIVE_DECODE is not None:
        fallback, native_groups = _NATIVE_DECODE(
            payloads, limits.max_payload_bytes, limits.max_features
        )
        for group in native_groups:
            native_models[(group[0], group[1])] = _native_model_batch(*group)
        rows = zip(fallback, map(payloads.__getitem__, fallback), strict=True)
    else:
        rows = enumerate(payloads)
    groups, feedback_groups, dead_letters = _decode_rows(rows, limits)

    models: list[ModelBatch] = []
    for (model_id, version), entries in groups.items():
        model = _model_batch(
            model_id, version, entries, limits.max_features, payloads, dead_letters
        )
        other = native_models.pop((model_id, version), None)
        if other is not None:
            model = other if model is None else _merged(model, other)
        if model is not None:
            models.append(model)
    models.extend(native_models.values())
    models.sort(key=lambda model: int(model.indices[0]))
    dead_letters.sort(key=lambda letter: letter.index)
    feedback = [
        FeedbackBatch(
            model_id,
            version,
            np.array([e[0] for e in entries], dtype=np.int64),
            [e[1] for e in entries],
            np.array([e[2] for e in entries], dtype=np.float64),
            [e[5] for e in entries],
        )
        for (model_id, version), entries in feedback_groups.items()
    ]
    return DecodedBatch(models, dead_letters, len(payloads), feedback)


def _decode_rows(
    rows: Iterable[tuple[int, bytes]], limits: DecodeLimits
) -> tuple[
    dict[tuple[str, str], list[_Entry]], dict[tuple[str, str], list[_Entry]], list[DeadLetter]
]:
    """The Python decoder: accepted prediction entries and feedback entries per model key,
    and dead letters."""
    max_payload_bytes = limits.max_payload_bytes
    max_features = limits.max_features
    groups: dict[tuple[str, str], list[_Entry]] = {}
    feedback: dict[tuple[str, str], list[_Entry]] = {}
    dead_letters: list[DeadLetter] = []
    no_features: _Features = {}  # shared marker row of events without features; never mutated
    # Locals for the hot loop.
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    envelope = _ENVELOPE
    groups_get = groups.get
    fast_seconds = _fast_epoch_seconds
    scalar_types = _SCALAR_TYPES
    max_id = MAX_ID_LENGTH
    max_epoch = MAX_EPOCH_SECONDS

    for index, payload in rows:
        if len(payload) > max_payload_bytes:
            dead_letters.append(_too_large(index, payload, max_payload_bytes))
            continue
        try:
            event = loads(payload)
        except decode_error as error:
            dead_letters.append(_unparsable(index, payload, error))
            continue

        # Fast path for the common shapes: it accepts only events that the checked path
        # below accepts identically, and hands everything else to it. The model key must
        # be known already (validated when the checked path created its group); feature
        # names, values and counts are validated per model batch (see _feature_columns).
        try:
            event_id, model_id, version, ts = envelope(event)
        except (KeyError, TypeError):
            pass
        else:
            if type(version) is int:
                version = str(version)
            if type(model_id) is str and type(version) is str:
                entries = groups_get((model_id, version))
                if entries is not None and type(event_id) is str and 0 < len(event_id) <= max_id:
                    seconds = fast_seconds(ts)
                    if 0.0 <= seconds <= max_epoch:
                        features = event.get("features")
                        if features is None:
                            features = no_features
                        prediction = event.get("prediction")
                        label = event.get("label")
                        request_id = event.get("request_id")
                        if (
                            type(features) is dict
                            and (prediction is None or type(prediction) in scalar_types)
                            and (label is None or type(label) in scalar_types)
                            and (prediction is not None or features is not no_features)
                            and (
                                request_id is None
                                or (type(request_id) is str and 0 < len(request_id) <= max_id)
                            )
                        ):
                            entries.append(
                                (index, event_id, seconds, features, prediction, label, request_id)
                            )
                            continue

        try:
            key, entry = _checked_event(index, event, max_features, no_features)
        except InvalidEventError as rejected:
            dead_letters.append(DeadLetter(index, rejected.reason, rejected.message, payload))
            continue
        if entry[3] is no_features and entry[4] is None:  # a label alone: feedback
            feedback.setdefault(key, []).append(entry)
            continue
        entries = groups_get(key)
        if entries is None:
            groups[key] = entries = []
        entries.append(entry)
    return groups, feedback, dead_letters


def _native_model_batch(
    model_id: str,
    version: str,
    indices: bytearray,
    event_ids: list[str],
    timestamps: bytearray,
    names: list[str],
    values: list[bytes],
    integer_masks: list[bytes | None],
    null_masks: list[bytes | None],
    object_columns: list[list[Scalar] | None],
    request_ids: list[str | None] | None,
) -> ModelBatch:
    """A model batch from one group of ``_fastdecode.decode`` (see its module comment)."""
    numeric: dict[str, npt.NDArray[np.float64]] = {}
    integer_rows: dict[str, npt.NDArray[np.bool_]] = {}
    objects: dict[str, list[Scalar]] = {}
    null_rows: dict[str, bytes] = {}
    for name, column, mask, nulls, scalars in zip(
        names, values, integer_masks, null_masks, object_columns, strict=True
    ):
        if scalars is not None:
            objects[name] = scalars
        else:
            numeric[name] = np.frombuffer(column, dtype=np.float64)
            if mask is not None:
                integer_rows[name] = np.frombuffer(mask, dtype=np.bool_)
        if nulls is not None:
            null_rows[name] = nulls
    numeric = dict(sorted(numeric.items()))
    rows = len(event_ids)

    def presence() -> dict[str, npt.NDArray[np.bool_]]:
        present = {name: ~np.isnan(column) for name, column in numeric.items()}
        for name, scalars in objects.items():
            present[name] = np.fromiter((v is not None for v in scalars), np.bool_, rows)
        for name, nulls in null_rows.items():
            present[name] |= np.frombuffer(nulls, dtype=np.bool_)
        return dict(sorted(present.items()))

    return ModelBatch(
        model_id=model_id,
        model_version=version,
        indices=np.frombuffer(indices, dtype=np.int64),
        event_ids=event_ids,
        timestamps=np.frombuffer(timestamps, dtype=np.float64),
        arrays=numeric,
        integer_rows=integer_rows,
        objects=objects,
        presence=presence,
        request_ids=request_ids,
    )


def _merged(first: ModelBatch, second: ModelBatch) -> ModelBatch:
    """The rows of two batches of one model version, in input order, over the union of
    their columns (``None`` where a batch lacks one): what decoding them together gives."""
    indices = np.concatenate((first.indices, second.indices))
    order = np.argsort(indices, kind="stable")
    rows = order.tolist()
    event_ids = first.event_ids + second.event_ids
    request_ids = None
    if first._request_ids is not None or second._request_ids is not None:
        ids = first.request_ids + second.request_ids
        request_ids = [ids[row] for row in rows]
    size = len(first)
    columns: dict[str, list[Scalar]] = {}
    for name in sorted(set(first.columns).union(second.columns)):
        both = first.columns.get(name, [None] * size) + second.columns.get(
            name, [None] * len(second)
        )
        columns[name] = [both[row] for row in rows]

    def presence() -> dict[str, npt.NDArray[np.bool_]]:
        absent = np.zeros(len(first) + len(second), dtype=np.bool_)
        ours, theirs = first.presence(), second.presence()
        return {
            name: np.concatenate((ours.get(name, absent[:size]), theirs.get(name, absent[size:])))[
                order
            ]
            for name in columns
        }

    return ModelBatch(
        model_id=first.model_id,
        model_version=first.model_version,
        indices=indices[order],
        event_ids=[event_ids[row] for row in rows],
        timestamps=np.concatenate((first.timestamps, second.timestamps))[order],
        columns=columns,
        presence=presence,
        request_ids=request_ids,
    )


def _fast_epoch_seconds(ts: Any) -> float:
    """Epoch seconds of the common timestamp forms, or -1.0 for the checked path to judge.

    Strings: ``YYYY-MM-DDThh:mm:ss`` with an optional fraction of 1 to 6 digits, then
    ``Z`` or ``±hh:mm``; their shape is checked here and the rest by ``fromisoformat``
    (which on its own is more lenient than RFC 3339: other separators, reduced
    precision, ``±hh`` offsets, and junk after a 6th fraction digit).
    """
    if type(ts) is str:
        if ts[4:20:3] in _FAST_TIMESTAMP_SHAPES and (
            (ts[-1] == "Z" and ts[-2] != "." and len(ts) <= 27)
            or (ts[-3] == ":" and ts[-6] in "+-" and ts[-7] != "." and len(ts) <= 32)
        ):
            try:
                return datetime.fromisoformat(ts).timestamp()
            except ValueError:
                return -1.0
        return -1.0
    if type(ts) is float or type(ts) is int:
        return ts if ts < EPOCH_MILLISECONDS_FROM else ts / 1000
    return -1.0


# --- JSON-level rejections --------------------------------------------------------------


def _too_large(index: int, payload: bytes, max_payload_bytes: int) -> DeadLetter:
    message = f"message is {len(payload)} bytes, more than the limit of {max_payload_bytes}"
    return DeadLetter(index, DeadLetterReason.PAYLOAD_TOO_LARGE, message, payload)


def _unparsable(index: int, payload: bytes, error: orjson.JSONDecodeError) -> DeadLetter:
    """Classify an orjson error (error path only)."""
    reason, message = _classify_json_error(bytes(payload), error)
    return DeadLetter(index, reason, message, payload)


def _classify_json_error(
    payload: bytes, error: orjson.JSONDecodeError
) -> tuple[DeadLetterReason, str]:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as bad:
        return (
            DeadLetterReason.INVALID_UTF8,
            f"message is not valid UTF-8: {bad.reason} at byte {bad.start}",
        )
    position = error.pos
    if "depth limit" in error.msg:
        return (
            DeadLetterReason.NESTING_TOO_DEEP,
            f"JSON nesting is deeper than the parser limit (1024) at char {position}",
        )
    if "infinity" in error.msg:
        return (
            DeadLetterReason.NON_FINITE_NUMBER,
            f"number at char {position} overflows a double (not finite)",
        )
    # orjson reports NaN/Infinity at the literal, and -Infinity just after the sign.
    text = payload.decode("utf-8")
    if text.startswith(("NaN", "Infinity"), position):
        literal = "NaN" if text.startswith("NaN", position) else "Infinity"
        if position > 0 and text[position - 1] == "-":
            literal = "-" + literal
        return (
            DeadLetterReason.NON_FINITE_NUMBER,
            f"non-finite number literal {literal} at char {position} is not JSON",
        )
    return DeadLetterReason.INVALID_JSON, f"invalid JSON at char {position}: {error.msg}"


# --- The checked path: every rule, in contract order ------------------------------------


def _checked_event(
    index: int, event: Any, max_features: int, no_features: _Features
) -> tuple[tuple[str, str], _Entry]:
    """Validate one parsed event against every rule; raise on the first it breaks."""
    if type(event) is not dict:
        raise InvalidEventError(
            DeadLetterReason.NOT_AN_OBJECT,
            f"top level is a JSON {_json_type(event)}, not an object",
        )
    event_id = _identifier(event, "event_id")
    model_id = _identifier(event, "model_id")
    version = _model_version(event)
    seconds = _timestamp(event.get("timestamp"))
    features, prediction, label = _checked_body(event, max_features, no_features)
    feedback = features is no_features and prediction is None
    request_id = None if feedback else _request_id(event)
    return (model_id, version), (index, event_id, seconds, features, prediction, label, request_id)


def _checked_body(
    event: dict[str, Any], max_features: int, no_features: _Features
) -> tuple[_Features, _Prediction, Scalar]:
    """Rules 5 to 8 (features, prediction, label), in order; ``no_features`` when absent."""
    features = event.get("features")
    if features is None:
        features = no_features
    elif type(features) is not dict:
        raise InvalidEventError(
            DeadLetterReason.FEATURES_NOT_OBJECT,
            f"field 'features' must be an object, got {_describe(features)}",
        )
    else:
        problem = _feature_problem(features, max_features)
        if problem is not None:
            raise problem
    prediction = _prediction(event.get("prediction"))
    if type(prediction) is dict and len(features) + len(prediction) > max_features:
        raise InvalidEventError(
            DeadLetterReason.TOO_MANY_FEATURES,
            f"{len(features)} features and {len(prediction)} prediction classes are more "
            f"than the limit of {max_features}",
        )
    label = event.get("label")
    if label is not None and type(label) not in _SCALAR_TYPES:
        raise InvalidEventError(
            DeadLetterReason.INVALID_LABEL,
            f"field 'label' must be a number, string or boolean, got {_describe(label)}",
        )
    if features is no_features and prediction is None and label is None:
        raise InvalidEventError(
            DeadLetterReason.NO_FEATURES_OR_PREDICTION,
            "event has neither 'features' nor 'prediction' (nor a 'label': feedback)",
        )
    return features, prediction, cast(Scalar, label)


def event_values(event: dict[str, Any]) -> dict[str, Scalar]:
    """The columns one parsed event gives its row in a model batch, with their values.

    Its features in the event's order (a null one included, see
    :meth:`ModelBatch.presence`), then ``__prediction__`` or one ``__prediction__.<class>``
    per class, then ``__label__``; a null prediction or label gives no column. Rules 5 to 8
    apply, without a limit on the number of features; the envelope is not read (reference
    data need not carry ids or times). Raises :class:`InvalidEventError` on the first rule
    broken.

    >>> event_values({"features": {"x": 1, "y": None}, "prediction": {"a": 0.9, "b": 0.1}})
    {'x': 1, 'y': None, '__prediction__.a': 0.9, '__prediction__.b': 0.1}
    >>> event_values({"features": {"__x": 1}})
    Traceback (most recent call last):
    ...
    driftline.events.InvalidEventError: feature name "__x" is empty or starts with the reserved '__'
    """
    if type(event) is not dict:
        raise InvalidEventError(
            DeadLetterReason.NOT_AN_OBJECT,
            f"top level is a JSON {_json_type(event)}, not an object",
        )
    no_features: _Features = {}
    features, prediction, label = _checked_body(event, sys.maxsize, no_features)
    if features is no_features and prediction is None:
        raise InvalidEventError(
            DeadLetterReason.NO_FEATURES_OR_PREDICTION,
            "a feedback event (a label without features or prediction) is no reference row",
        )
    values: dict[str, Scalar] = dict(features)
    if type(prediction) is dict:
        for name, probability in prediction.items():
            values[f"{PREDICTION_FEATURE}.{name}"] = probability
    elif prediction is not None:
        values[PREDICTION_FEATURE] = cast(Scalar, prediction)
    if label is not None:
        values[LABEL_FEATURE] = label
    return values


def _required(event: dict[str, Any], name: str) -> Any:
    value = event.get(name)
    if value is None:
        raise InvalidEventError(
            DeadLetterReason.MISSING_FIELD, f"required field {name!r} is missing"
        )
    return value


def _identifier(event: dict[str, Any], name: str) -> str:
    value = _required(event, name)
    if type(value) is not str or not 0 < len(value) <= MAX_ID_LENGTH:
        raise InvalidEventError(
            DeadLetterReason.INVALID_FIELD,
            f"field {name!r} must be a non-empty string of at most {MAX_ID_LENGTH} "
            f"characters, got {_describe(value)}",
        )
    return value


def _request_id(event: dict[str, Any]) -> str | None:
    value = event.get("request_id")
    if value is None:
        return None
    if type(value) is not str or not 0 < len(value) <= MAX_ID_LENGTH:
        raise InvalidEventError(
            DeadLetterReason.INVALID_FIELD,
            "field 'request_id' must be null or a non-empty string of at most "
            f"{MAX_ID_LENGTH} characters, got {_describe(value)}",
        )
    return value


def _model_version(event: dict[str, Any]) -> str:
    value = _required(event, "model_version")
    version: str | None = None
    if type(value) is str:
        version = value
    elif type(value) is int:
        version = str(value)
    elif type(value) is float and value.is_integer():
        version = str(int(value))
    if version is None or not 0 < len(version) <= MAX_ID_LENGTH:
        raise InvalidEventError(
            DeadLetterReason.INVALID_FIELD,
            "field 'model_version' must be a non-empty string of at most "
            f"{MAX_ID_LENGTH} characters or an integer, got {_describe(value)}",
        )
    return version


def _timestamp(value: Any) -> float:
    """Epoch seconds of a ``timestamp`` field value (see the module rules)."""
    if value is None:
        raise InvalidEventError(
            DeadLetterReason.MISSING_FIELD, "required field 'timestamp' is missing"
        )
    seconds: float
    if type(value) is str:
        match = _RFC3339.fullmatch(value)
        if match is None:
            raise InvalidEventError(
                DeadLetterReason.INVALID_TIMESTAMP,
                f"timestamp {_show(value)} is not an RFC 3339 date-time "
                "(YYYY-MM-DDThh:mm:ss[.fraction] followed by Z or ±hh:mm)",
            )
        if match["offset"] is None:
            raise InvalidEventError(
                DeadLetterReason.INVALID_TIMESTAMP,
                f"timestamp {_show(value)} has no UTC offset: add 'Z' or ±hh:mm",
            )
        try:
            seconds = datetime.fromisoformat(value.upper()).timestamp()
        except ValueError as error:
            raise InvalidEventError(
                DeadLetterReason.INVALID_TIMESTAMP,
                f"timestamp {_show(value)} is not a valid date-time: {error}",
            ) from None
    elif type(value) is int or type(value) is float:
        seconds = value if value < EPOCH_MILLISECONDS_FROM else value / 1000
    else:
        raise InvalidEventError(
            DeadLetterReason.INVALID_TIMESTAMP,
            "field 'timestamp' must be an RFC 3339 string or an epoch number, "
            f"got {_describe(value)}",
        )
    if not MIN_EPOCH_SECONDS <= seconds <= MAX_EPOCH_SECONDS:
        raise InvalidEventError(
            DeadLetterReason.INVALID_TIMESTAMP,
            f"timestamp {_show(value)} is outside 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z",
        )
    return seconds


def _is_reserved_or_empty(name: str) -> bool:
    return not name or name.startswith("__")


def _feature_problem(features: _Features, max_features: int) -> InvalidEventError | None:
    """The first rule a ``features`` object breaks, or ``None``."""
    if len(features) > max_features:
        return InvalidEventError(
            DeadLetterReason.TOO_MANY_FEATURES,
            f"{len(features)} features are more than the limit of {max_features}",
        )
    for name in features:
        if _is_reserved_or_empty(name):
            return InvalidEventError(
                DeadLetterReason.INVALID_FEATURE_NAME,
                f"feature name {_show(name)} is empty or starts with the reserved '__'",
                name,
            )
    for name, value in features.items():
        if type(value) not in _FEATURE_VALUE_TYPES:
            return InvalidEventError(
                DeadLetterReason.INVALID_FEATURE_VALUE,
                f"feature {_show(name)} must be a number, string, boolean or null, "
                f"got {_describe(value)}",
                name,
            )
    return None


def _prediction(value: Any) -> _Prediction:
    if value is None or type(value) in _SCALAR_TYPES:
        return cast(Scalar, value)
    if type(value) is not dict:
        raise InvalidEventError(
            DeadLetterReason.INVALID_PREDICTION,
            "field 'prediction' must be a number, string, boolean or an object of class "
            f"probabilities, got {_describe(value)}",
        )
    if not value:
        raise InvalidEventError(
            DeadLetterReason.INVALID_PREDICTION,
            "field 'prediction' is an empty object: give at least one class probability",
        )
    for name, probability in value.items():
        if not name:
            raise InvalidEventError(
                DeadLetterReason.INVALID_PREDICTION,
                "field 'prediction' has an empty class name",
            )
        if type(probability) not in _NUMBER_TYPES:
            raise InvalidEventError(
                DeadLetterReason.INVALID_PREDICTION,
                f"prediction class {_show(name)} must have a number probability, "
                f"got {_describe(probability)}",
                name,
            )
    return cast(dict[str, float | int], value)


# --- Per-model columns ------------------------------------------------------------------


def _model_batch(
    model_id: str,
    version: str,
    entries: list[_Entry],
    max_features: int,
    payloads: Sequence[bytes],
    dead_letters: list[DeadLetter],
) -> ModelBatch | None:
    """Columnar rows of one model's accepted entries; rejects rows breaking feature rules."""
    rows: tuple[_Features, ...] = tuple(map(itemgetter(3), entries))
    columns = _feature_columns(rows, max_features)
    if columns is None:  # rare: some rows break a feature rule; dead-letter exactly those
        kept: list[_Entry] = []
        for entry in entries:
            problem = _feature_problem(entry[3], max_features)
            if problem is None:
                kept.append(entry)
            else:
                dead_letters.append(
                    DeadLetter(entry[0], problem.reason, problem.message, payloads[entry[0]])
                )
        if not kept:
            return None
        entries = kept
        rows = tuple(map(itemgetter(3), entries))
        columns = _union_columns(rows)
    indices, event_ids, seconds, _, predictions, labels, request_ids = zip(*entries, strict=True)
    columns.update(_prediction_columns(predictions))
    if labels.count(None) != len(labels):
        columns[LABEL_FEATURE] = list(labels)
    timestamps = np.array(seconds, dtype=np.float64)
    timestamps += 0.0  # -0.0 -> 0.0
    columns = dict(sorted(columns.items()))

    def presence() -> dict[str, npt.NDArray[np.bool_]]:
        # Reserved columns (prediction, label) are present where not null; features where
        # the row names them, null or not.
        return {
            name: np.fromiter(
                (v is not None for v in column)
                if name.startswith("__")
                else (name in row for row in rows),
                np.bool_,
                len(column),
            )
            for name, column in columns.items()
        }

    return ModelBatch(
        model_id=model_id,
        model_version=version,
        indices=np.array(indices, dtype=np.int64),
        event_ids=list(event_ids),
        timestamps=timestamps,
        columns=columns,
        presence=presence,
        request_ids=None if request_ids.count(None) == len(request_ids) else list(request_ids),
    )


def _feature_columns(
    rows: tuple[_Features, ...], max_features: int
) -> dict[str, list[Scalar]] | None:
    """Feature columns of ``rows``, or ``None`` if any row breaks a feature rule.

    Works per model batch, not per event: when every row has the same names, the rows
    are transposed with ``itemgetter``/``zip`` and value types are checked by hashing the
    row tuples (only objects and arrays, which are not allowed, are unhashable).
    """
    lengths = set(map(len, rows))
    if max(lengths) > max_features:
        return None
    names = sorted(rows[0])
    if len(lengths) == 1 and len(names) > 1:
        try:
            tuples = list(map(itemgetter(*names), rows))
        except KeyError:
            pass  # rows differ in names: general path below
        else:
            # Defensive: rows[0] came through the checked path, so its names are valid.
            if any(map(_is_reserved_or_empty, names)):
                return None
            try:
                deque(map(hash, tuples), maxlen=0)
            except TypeError:
                return None
            return dict(zip(names, map(list, zip(*tuples, strict=True)), strict=True))
    columns = _union_columns(rows)
    if any(map(_is_reserved_or_empty, columns)):
        return None
    allowed = _FEATURE_VALUE_TYPES
    if all(allowed.issuperset(map(type, column)) for column in columns.values()):
        return columns
    return None


def _union_columns(rows: tuple[_Features, ...]) -> dict[str, list[Scalar]]:
    names: set[str] = set().union(*rows)
    return {name: list(map(dict.get, rows, repeat(name))) for name in sorted(names)}


def _prediction_columns(predictions: tuple[_Prediction, ...]) -> dict[str, list[Scalar]]:
    kinds = set(map(type, predictions))
    kinds.discard(type(None))
    if not kinds:
        return {}
    if dict not in kinds:
        return {PREDICTION_FEATURE: list(cast(tuple[Scalar, ...], predictions))}
    columns: dict[str, list[Scalar]] = {}
    if len(kinds) > 1:
        columns[PREDICTION_FEATURE] = [None if isinstance(p, dict) else p for p in predictions]
    classes = _class_probabilities(predictions)
    names: set[str] = set().union(*classes)
    for name in sorted(names):
        columns[f"{PREDICTION_FEATURE}.{name}"] = list(map(dict.get, classes, repeat(name)))
    return columns


def _class_probabilities(predictions: Iterable[_Prediction]) -> list[dict[str, float | int]]:
    return [p if type(p) is dict else {} for p in predictions]


# --- Messages ---------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "boolean"
    if type(value) is int or type(value) is float:
        return "number"
    if type(value) is str:
        return "string"
    if type(value) is list:
        return "array"
    return "object"


def _show(value: Any) -> str:
    """Short JSON rendering of a value for messages."""
    try:
        text = orjson.dumps(value).decode("utf-8")
    except orjson.JSONEncodeError:  # nested deeper than orjson serialises
        text = "[...]" if type(value) is list else "{...}"
    if len(text) > _SHOWN_CHARS:
        return text[: _SHOWN_CHARS - 3] + "..."
    return text


def _describe(value: Any) -> str:
    if type(value) is str:
        return f"a string of {len(value)} characters {_show(value)}"
    return f"{_json_type(value)} {_show(value)}"

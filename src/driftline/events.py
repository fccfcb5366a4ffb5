"""Prediction events: raw message bytes -> validated, columnar per-model batches.

Decoding never raises on bad input and never drops an event silently: every message of a
batch ends up either in exactly one :class:`ModelBatch` row or as one :class:`DeadLetter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

#: A feature value after decoding: JSON scalars only (``None`` = null or absent).
Scalar = float | int | str | bool | None

PREDICTION_FEATURE = "__prediction__"
LABEL_FEATURE = "__label__"


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
    INVALID_FEATURE_VALUE = "invalid_feature_value"
    NON_FINITE_NUMBER = "non_finite_number"
    NO_FEATURES_OR_PREDICTION = "no_features_or_prediction"
    INVALID_PREDICTION = "invalid_prediction"
    INVALID_LABEL = "invalid_label"
    TOO_MANY_FEATURES = "too_many_features"


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Limits applied while decoding; each breach dead-letters the event."""

    max_payload_bytes: int = 1024 * 1024
    """Messages larger than this are dead-lettered unparsed (``payload_too_large``)."""
    max_features: int = 10_000
    """Events with more feature (and prediction-class) entries are ``too_many_features``."""


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


@dataclass(slots=True)
class ModelBatch:
    """The valid events of one batch for one (model_id, model_version), in input order."""

    model_id: str
    model_version: str
    indices: npt.NDArray[np.int64]
    """Position of each row's message within the decoded batch (ascending)."""
    event_ids: list[str]
    timestamps: npt.NDArray[np.float64]
    """Event time of each row, epoch seconds (UTC)."""
    columns: dict[str, list[Scalar]] = field(default_factory=dict)
    """Raw scalar values per feature name, one per row; ``None`` where null or absent.

    ``prediction`` appears as ``__prediction__`` (number or string) or, for a
    class-probability object, as one numeric column ``__prediction__.<class>`` per class;
    ``label`` appears as ``__label__``.
    """

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
    """Number of input messages; equals rows over all models plus dead letters."""


def decode_batch(payloads: Sequence[bytes], limits: DecodeLimits = DecodeLimits()) -> DecodedBatch:
    """Decode a batch of raw message values (one JSON prediction event each)."""
    raise NotImplementedError

"""What a model predicts (its *task*), how that is inferred, and how predictions and labels
are encoded as one float64 each for the label join.

Tasks and their codes
---------------------
- **binary**: labels are 0/1 or booleans (``1``/``True`` is the *positive* class).
  Predictions are a probability of the positive class (``prediction_kind="probability"``,
  code = the probability; the predicted class is positive when the probability is
  ``>= decision_threshold``), a class (``"class"``: 0/1 or a boolean, code 0.0 or 1.0), or a
  class -> probability object with the classes ``"0"``/``"1"`` or ``"false"``/``"true"``
  (``"probability"``, code = the probability of ``"1"``/``"true"``).
- **multiclass**: labels are class names (any scalar, compared by its canonical text,
  :func:`driftline.profile.category_key`). Predictions are a class (``"class"``) or a class
  -> probability object (``"probability"``). Code = the index of the (predicted) class in
  :attr:`TaskSpec.classes`; for a probability object, the class with the highest
  probability (ties: the first in ``classes``). Only the predicted class travels through
  the join, so realized log loss and Brier score are not computed for multiclass models
  (the reference profile still records them, from the full probability vectors).
- **regression**: numeric labels and predictions (``"value"``), code = the number itself.

A value that does not fit the task (a string label of a binary model, a class outside
``classes``, a probability outside [0, 1], a non-finite number, ...) is encoded as NaN: the
caller counts it; it is never an exception.

Inference rules (:func:`infer_task_from_columns`; from a profile,
:func:`driftline.performance.profile_task.infer_task`), when
``models[].task`` is not configured, from the reference data's ``__label__`` and
``__prediction__`` / ``__prediction__.<class>`` values:

1. No label or no prediction: no task (``None``): performance is not monitored.
2. Probability object columns ``__prediction__.<class>``: with exactly the classes
   ``{"0", "1"}`` or ``{"false", "true"}`` -> binary probability; otherwise multiclass
   probability (classes: the object's classes, sorted).
3. A scalar prediction and labels that are booleans or numbers all equal to 0 or 1:
   a boolean or 0/1-valued prediction -> binary class; other numbers all in [0, 1] ->
   binary probability.
4. String labels with string or boolean predictions -> multiclass class (classes: every
   label and predicted class seen, sorted).
5. Numeric labels not all 0/1 with numeric predictions -> regression.

**Ambiguous**, so :class:`TaskInferenceError` asks for ``models[].task``:

- 0/1 labels with numeric predictions outside [0, 1] (a score or logit? a regression on a
  0/1 target?);
- integer labels with at most :data:`MAX_INTEGER_CLASSES` distinct values and integer
  predictions within them, e.g. labels {0, 1, 2} with predictions {0, 2}: multiclass with
  numeric class names, or a regression on counts? Configure ``task: multiclass`` (classes
  ``"0"``, ``"1"``, ``"2"``) or ``task: regression``;
- any other mixture (string labels with numeric predictions, ...).

With ``task`` configured, the prediction kind still comes from the data (probability if the
predictions are objects, or numbers in [0, 1] that are not all 0/1, for binary).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt

from driftline.categories import category_key
from driftline.events import LABEL_FEATURE, PREDICTION_FEATURE, Scalar

__all__ = [
    "MAX_CLASSES",
    "MAX_INTEGER_CLASSES",
    "PredictionKind",
    "Task",
    "TaskInferenceError",
    "TaskSpec",
    "class_probabilities",
    "encode_labels",
    "encode_prediction_columns",
    "encode_predictions",
    "infer_task_from_columns",
    "infer_task_from_values",
    "prediction_columns",
]

PredictionKind = Literal["probability", "class", "value"]

#: Most classes a multiclass task may have (class names are kept in profiles and state).
MAX_CLASSES = 1000
#: Integer labels with at most this many distinct values make a numeric task ambiguous.
MAX_INTEGER_CLASSES = 20

_PREFIX = PREDICTION_FEATURE + "."
_BINARY_CLASS_SETS = ({"0", "1"}, {"false", "true"})
_POSITIVE = ("1", "true")


class Task(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"


class TaskInferenceError(ValueError):
    """The task cannot be told from the data; the message says what to configure."""


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A model version's task and how its predictions look."""

    task: Task
    prediction_kind: PredictionKind
    decision_threshold: float = 0.5
    """Binary probabilities: the predicted class is positive when ``p >= threshold``."""
    classes: tuple[str, ...] = ()
    """Multiclass: the class names (canonical text), sorted; a class's code is its index."""

    def __post_init__(self) -> None:
        valid = {
            Task.BINARY: ("probability", "class"),
            Task.MULTICLASS: ("probability", "class"),
            Task.REGRESSION: ("value",),
        }[self.task]
        if self.prediction_kind not in valid:
            raise ValueError(
                f"a {self.task} task has predictions of kind {list(valid)}, "
                f"not {self.prediction_kind!r}"
            )
        if not 0.0 < self.decision_threshold < 1.0:
            raise ValueError(f"decision_threshold must be in (0, 1), got {self.decision_threshold}")
        if self.task is Task.MULTICLASS:
            if not 2 <= len(self.classes) <= MAX_CLASSES:
                raise ValueError(
                    f"a multiclass task needs 2 to {MAX_CLASSES} classes, got {len(self.classes)}"
                )
            if list(self.classes) != sorted(set(self.classes)):
                raise ValueError("classes must be sorted and unique")
        elif self.classes:
            raise ValueError(f"a {self.task} task has no classes")

    @property
    def has_probabilities(self) -> bool:
        """Whether each joined pair carries a probability (binary probabilities only)."""
        return self.task is Task.BINARY and self.prediction_kind == "probability"

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of the codes 0, 1, ...: ``("0", "1")`` for binary, ``classes`` for
        multiclass, empty for regression."""
        if self.task is Task.BINARY:
            return ("0", "1")
        return self.classes


# --------------------------------------------------------------------------- inference


def prediction_columns(names: Sequence[str]) -> tuple[bool, tuple[str, ...]]:
    """Whether ``names`` hold a scalar ``__prediction__``, and the classes of its
    ``__prediction__.<class>`` columns (sorted)."""
    scalar = PREDICTION_FEATURE in names
    classes = tuple(sorted(n[len(_PREFIX) :] for n in names if n.startswith(_PREFIX)))
    return scalar, classes


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _is_binary_label(values: Sequence[Scalar]) -> bool:
    return all(isinstance(v, bool) or (_is_number(v) and v in (0, 1)) for v in values)


def _is_integer(v: Scalar) -> bool:
    return _is_number(v) and math.isfinite(float(v)) and float(v) == int(v)  # type: ignore[arg-type]


def infer_task_from_columns(
    columns: Mapping[str, Sequence[Scalar]],
    configured: Task | None = None,
    decision_threshold: float = 0.5,
) -> TaskSpec | None:
    """The task of reference data (columns as :func:`driftline.profile.build_profile` takes
    them), by the module's rules; ``None`` without a label or prediction column.

    Raises :class:`TaskInferenceError` when the data is ambiguous (see the module docstring)
    or does not fit the ``configured`` task.
    """
    scalar, object_classes = prediction_columns(list(columns))
    if LABEL_FEATURE not in columns or not (scalar or object_classes):
        return None
    labels = [v for v in columns[LABEL_FEATURE] if v is not None]
    if not labels:
        return None
    if object_classes:
        predictions: list[Scalar] = []
    else:
        predictions = [v for v in columns[PREDICTION_FEATURE] if v is not None]
        if not predictions:
            return None
    return infer_task_from_values(
        labels, predictions, object_classes, configured, decision_threshold
    )


def infer_task_from_values(
    labels: Sequence[Scalar],
    predictions: Sequence[Scalar],
    object_classes: tuple[str, ...],
    configured: Task | None,
    threshold: float,
) -> TaskSpec:
    """The task of non-missing ``labels`` and scalar ``predictions`` (or of probability
    objects with ``object_classes``), by the module's rules."""
    if object_classes:
        binary = set(object_classes) in _BINARY_CLASS_SETS
        if configured is Task.REGRESSION:
            raise TaskInferenceError("regression predictions cannot be class probabilities")
        if configured is Task.BINARY and not binary:
            raise TaskInferenceError(
                f"binary probability objects have the classes '0'/'1' or 'false'/'true', "
                f"got {list(object_classes)}"
            )
        if binary and configured is not Task.MULTICLASS:
            return TaskSpec(Task.BINARY, "probability", threshold)
        return TaskSpec(Task.MULTICLASS, "probability", classes=_classes(labels, object_classes))
    label_binary = _is_binary_label(labels)
    all_numbers = all(_is_number(v) for v in predictions)
    prediction_classes = all(isinstance(v, bool) for v in predictions) or (
        all_numbers and all(v in (0, 1) for v in predictions)
    )
    in_unit = all_numbers and all(0.0 <= float(v) <= 1.0 for v in predictions)  # type: ignore[arg-type]
    if configured is Task.BINARY or (configured is None and label_binary):
        if not label_binary:
            raise TaskInferenceError("a binary task needs labels 0/1 or booleans")
        if prediction_classes:
            return TaskSpec(Task.BINARY, "class", threshold)
        if in_unit:
            return TaskSpec(Task.BINARY, "probability", threshold)
        raise TaskInferenceError(
            "0/1 labels with predictions that are neither classes nor probabilities in "
            "[0, 1]: set models[].task (binary needs probabilities of the positive class; "
            "regression takes any numbers)"
        )
    labels_numeric = all(_is_number(v) for v in labels)
    if configured is Task.REGRESSION:
        if not (labels_numeric and all_numbers):
            raise TaskInferenceError("a regression task needs numeric labels and predictions")
        return TaskSpec(Task.REGRESSION, "value")
    if configured is Task.MULTICLASS:
        return TaskSpec(Task.MULTICLASS, "class", classes=_classes(labels, predictions))
    if labels_numeric and all_numbers:
        distinct = {float(v) for v in labels}  # type: ignore[arg-type]
        if (
            all(map(_is_integer, labels))
            and len(distinct) <= MAX_INTEGER_CLASSES
            and all(_is_integer(v) and float(v) in distinct for v in predictions)  # type: ignore[arg-type]
        ):
            raise TaskInferenceError(
                f"integer labels with {len(distinct)} distinct values and integer predictions "
                "among them: multiclass with numeric class names, or a regression? Set "
                "models[].task to multiclass or regression"
            )
        return TaskSpec(Task.REGRESSION, "value")
    labels_text = all(isinstance(v, str) for v in labels)
    predictions_text = all(isinstance(v, str | bool) for v in predictions)
    if labels_text and predictions_text:
        return TaskSpec(Task.MULTICLASS, "class", classes=_classes(labels, predictions))
    raise TaskInferenceError(
        "cannot tell the task from labels and predictions of these types "
        f"(labels like {labels[0]!r}, predictions like {predictions[0]!r}): set models[].task"
    )


def _classes(labels: Sequence[Scalar], predicted: Sequence[Scalar]) -> tuple[str, ...]:
    names = {category_key(v) for v in (*labels, *predicted)}
    names.discard(None)
    classes = tuple(sorted(n for n in names if n is not None))
    if not 2 <= len(classes) <= MAX_CLASSES:
        raise TaskInferenceError(
            f"a multiclass task needs 2 to {MAX_CLASSES} classes, the data has {len(classes)}"
        )
    return classes


# --------------------------------------------------------------------------- encoding


def encode_labels(spec: TaskSpec, values: Sequence[Scalar]) -> npt.NDArray[np.float64]:
    """One float64 code per label (see the module docstring); NaN where it does not fit."""
    if spec.task is Task.REGRESSION:
        return _numbers(values, len(values))
    out = np.full(len(values), np.nan)
    if spec.task is Task.BINARY:
        for i, v in enumerate(values):
            if isinstance(v, bool) or (_is_number(v) and v in (0, 1)):
                out[i] = float(v)
        return out
    index = {name: float(k) for k, name in enumerate(spec.classes)}
    for i, v in enumerate(values):
        key = category_key(v)
        if key is not None and key in index:
            out[i] = index[key]
    return out


def encode_predictions(
    spec: TaskSpec, values: Sequence[Scalar | Mapping[str, float]]
) -> npt.NDArray[np.float64]:
    """One float64 code per raw prediction (a scalar, or a class -> probability object as
    the event carries it); NaN where it does not fit the task."""
    if spec.prediction_kind == "probability":
        names = sorted({name for v in values if isinstance(v, Mapping) for name in v})
        columns: dict[str, list[Scalar]] = {
            f"{_PREFIX}{name}": [v.get(name) if isinstance(v, Mapping) else None for v in values]
            for name in names
        }
        columns[PREDICTION_FEATURE] = [None if isinstance(v, Mapping) else v for v in values]
    else:
        columns = {PREDICTION_FEATURE: [None if isinstance(v, Mapping) else v for v in values]}
    return encode_prediction_columns(spec, columns, len(values))


def encode_prediction_columns(
    spec: TaskSpec, columns: Mapping[str, Sequence[Scalar]], rows: int
) -> npt.NDArray[np.float64]:
    """Codes of ``rows`` predictions given as decoded columns (``__prediction__`` and/or
    ``__prediction__.<class>``, as :func:`driftline.events.event_values` names them)."""
    scalar = columns.get(PREDICTION_FEATURE)
    if spec.prediction_kind == "probability":
        if spec.task is Task.BINARY:
            out = _numbers(scalar, rows)
            for positive in _POSITIVE:
                column = columns.get(_PREFIX + positive)
                if column is not None:
                    probability = _numbers(column, rows)
                    out = np.where(np.isnan(out), probability, out)
            out[(out < 0.0) | (out > 1.0)] = np.nan
            return out
        return _argmax_codes(spec, columns, rows)
    if scalar is None:
        return np.full(rows, np.nan)
    if spec.task is Task.REGRESSION:
        return _numbers(scalar, rows)
    return encode_labels(spec, scalar)


def _numbers(column: Sequence[Scalar] | None, rows: int) -> npt.NDArray[np.float64]:
    out = np.full(rows, np.nan)
    if column is None:
        return out
    for i, v in enumerate(column):
        if _is_number(v):
            out[i] = float(v)  # type: ignore[arg-type]
    out[~np.isfinite(out)] = np.nan
    return out


def _argmax_codes(
    spec: TaskSpec, columns: Mapping[str, Sequence[Scalar]], rows: int
) -> npt.NDArray[np.float64]:
    """The index of each row's most probable class (ties: the first); NaN for a row with
    no valid probability, or with a probability outside [0, 1]."""
    matrix = class_probabilities(spec, columns, rows)
    invalid = np.isnan(matrix).all(axis=1) | ((matrix < 0.0) | (matrix > 1.0)).any(axis=1)
    codes: npt.NDArray[np.float64] = np.argmax(np.nan_to_num(matrix, nan=-1.0), axis=1).astype(
        np.float64
    )
    codes[invalid] = np.nan
    return codes


def class_probabilities(
    spec: TaskSpec, columns: Mapping[str, Sequence[Scalar]], rows: int
) -> npt.NDArray[np.float64]:
    """``rows x len(classes)`` probabilities of a multiclass probability prediction (NaN
    where a class is absent from a row's object)."""
    return np.column_stack(
        [_numbers(columns.get(_PREFIX + name), rows) for name in spec.classes]
    ).reshape(rows, len(spec.classes))

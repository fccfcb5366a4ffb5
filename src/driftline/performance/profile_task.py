"""A model version's task from its reference profile (see :mod:`driftline.performance.task`
for the rules)."""

from __future__ import annotations

from driftline.events import LABEL_FEATURE, PREDICTION_FEATURE, Scalar
from driftline.performance.task import (
    Task,
    TaskInferenceError,
    TaskSpec,
    infer_task_from_values,
    prediction_columns,
)
from driftline.profile import FeatureKind, FeatureProfile, ReferenceProfile

__all__ = ["infer_task"]


def infer_task(
    profile: ReferenceProfile | None,
    configured: Task | None = None,
    decision_threshold: float = 0.5,
) -> TaskSpec | None:
    """A model version's task: the profile's reference performance task when it has one
    (its ``decision_threshold`` replaced by the configured one), else inferred from the
    profile's ``__label__`` and ``__prediction__`` summaries, else ``None``.

    A summary keeps only the top-K categories of a categorical feature, so a multiclass
    task inferred from a summary knows only those classes (the others encode as NaN);
    profiles built by ``driftline profile build`` from data with predictions and labels
    carry the exact task in their ``performance`` section.
    """
    if profile is None:
        return None
    performance = profile.performance
    if performance is not None:
        spec = performance.task
        if configured is not None and configured is not spec.task:
            raise TaskInferenceError(
                f"models[].task is {configured} but the reference profile's performance "
                f"section was built for a {spec.task} task: rebuild the profile with the task"
            )
        if spec.task is Task.BINARY and spec.prediction_kind == "probability":
            return TaskSpec(spec.task, spec.prediction_kind, decision_threshold, spec.classes)
        return spec
    features = profile.features
    label = features.get(LABEL_FEATURE)
    scalar, object_classes = prediction_columns(list(features))
    if not (scalar or object_classes):
        return None
    if label is None or label.count == 0:
        return _from_prediction(features, object_classes, configured, decision_threshold)
    labels = _summary_values(label)
    predictions = [] if object_classes else _summary_values(features[PREDICTION_FEATURE])
    if not object_classes and not predictions:
        return None
    return infer_task_from_values(
        labels, predictions, object_classes, configured, decision_threshold
    )


def _summary_values(feature: FeatureProfile) -> list[Scalar]:
    """Representative values of a profiled feature for inference: booleans, the listed
    categories, or the numeric quantiles."""
    if feature.kind is FeatureKind.BOOLEAN:
        return [True, False]
    if feature.kind is FeatureKind.CATEGORICAL:
        assert feature.categories is not None
        return list(feature.categories.categories)
    if feature.numeric is None:
        return []
    return [float(q) for q in feature.numeric.quantiles]


def _from_prediction(
    features: dict[str, FeatureProfile],
    object_classes: tuple[str, ...],
    configured: Task | None,
    decision_threshold: float,
) -> TaskSpec | None:
    """The task from the prediction alone (a profile without labels, e.g. learned from
    live events whose labels come as feedback): class-probability objects as with labels;
    booleans: a binary classifier's classes; numbers within [0, 1]: a binary classifier's
    probabilities (set ``models[].task: regression`` for a regression in that range);
    other numbers: a regression; strings: a multiclass classifier's classes (those the
    profile lists)."""
    if object_classes:
        return infer_task_from_values([], [], object_classes, configured, decision_threshold)
    prediction = features[PREDICTION_FEATURE]
    if prediction.count == 0:
        return None
    if prediction.kind is FeatureKind.BOOLEAN:
        if configured in (None, Task.BINARY):
            return TaskSpec(Task.BINARY, "class", decision_threshold)
    elif prediction.kind is FeatureKind.CATEGORICAL:
        assert prediction.categories is not None
        classes = tuple(sorted(prediction.categories.categories))
        if configured in (None, Task.MULTICLASS) and len(classes) >= 2:
            return TaskSpec(Task.MULTICLASS, "class", classes=classes)
    elif prediction.numeric is not None:
        low, high = prediction.numeric.minimum, prediction.numeric.maximum
        if configured is Task.REGRESSION or (configured is None and not 0.0 <= low <= high <= 1.0):
            return TaskSpec(Task.REGRESSION, "value")
        if configured in (None, Task.BINARY):
            return TaskSpec(Task.BINARY, "probability", decision_threshold)
    raise TaskInferenceError(
        f"the prediction ({prediction.kind.value}) does not fit models[].task {configured}"
    )

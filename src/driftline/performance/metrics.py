"""Model-quality metrics of joined (prediction, label) pairs, vectorized with numpy.

Inputs are the codes of :mod:`driftline.performance.task` (one float64 per prediction and
per label); a pair with a NaN code on either side is *invalid* and left out of every metric.

Per pair:

- **error**: 0/1 misclassification for classifiers (a binary probability ``p`` predicts
  the positive class when ``p >= decision_threshold``); the absolute error
  ``|prediction - label|`` for regression.
- **losses** (binary probabilities only): log loss ``-(y log p + (1 - y) log(1 - p))``
  with ``p`` clipped to ``[1e-15, 1 - 1e-15]`` (so one confident mistake costs at most
  ~34.5, never infinity), and the Brier score ``(p - y)^2``.

Per window (:func:`window_metrics`), by task:

- classifiers: ``error_rate``, ``accuracy`` (= 1 - error_rate), ``recall.<class>`` for
  every class present among the window's labels (binary classes ``"0"`` and ``"1"``);
  binary probabilities also ``log_loss``, ``brier`` and ``log_loss_std`` (the population
  standard deviation of the per-pair log loss, which the monitor's test needs);
- regression: ``mae``, ``rmse``, ``bias`` (mean of prediction - label: positive when the
  model over-predicts) and ``abs_error_std`` (population standard deviation of the
  absolute errors).

The multiclass reference metrics computed from full probability vectors
(:func:`multiclass_probability_metrics`) add ``log_loss`` (of the true class's probability,
clipped as above, after normalising each row to sum 1) and ``brier`` (the multiclass Brier
score: sum over classes of squared differences, in [0, 2]).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from driftline.performance.task import Task, TaskSpec

__all__ = [
    "LOG_LOSS_EPSILON",
    "multiclass_probability_metrics",
    "pair_errors",
    "pair_losses",
    "valid_pairs",
    "window_metrics",
]

LOG_LOSS_EPSILON = 1e-15

Array = npt.NDArray[np.float64]


def valid_pairs(predictions: Array, labels: Array) -> npt.NDArray[np.bool_]:
    """Pairs whose prediction and label codes are both present (not NaN)."""
    return ~(np.isnan(predictions) | np.isnan(labels))


def predicted_classes(spec: TaskSpec, predictions: Array) -> Array:
    """The predicted class code of each prediction code (NaN stays NaN)."""
    if spec.has_probabilities:
        return np.where(
            np.isnan(predictions), np.nan, (predictions >= spec.decision_threshold).astype(float)
        )
    return predictions


def pair_errors(spec: TaskSpec, predictions: Array, labels: Array) -> Array:
    """The error of each pair (0/1, or the absolute error for regression); NaN if invalid."""
    if spec.task is Task.REGRESSION:
        absolute: Array = np.abs(predictions - labels)
        return absolute
    predicted = predicted_classes(spec, predictions)
    errors: Array = (predicted != labels).astype(np.float64)
    errors[~valid_pairs(predictions, labels)] = np.nan
    return errors


def pair_losses(predictions: Array, labels: Array) -> tuple[Array, Array]:
    """Log loss and Brier score of each binary-probability pair; NaN if invalid."""
    p = np.clip(predictions, LOG_LOSS_EPSILON, 1.0 - LOG_LOSS_EPSILON)
    log_loss = -(labels * np.log(p) + (1.0 - labels) * np.log1p(-p))
    brier = (predictions - labels) ** 2
    return log_loss, brier


def window_metrics(spec: TaskSpec, predictions: Array, labels: Array) -> dict[str, float]:
    """The metrics of the valid pairs among ``predictions``/``labels`` (module docstring);
    empty when there is none."""
    keep = valid_pairs(predictions, labels)
    y_hat, y = predictions[keep], labels[keep]
    if y.size == 0:
        return {}
    if spec.task is Task.REGRESSION:
        diff = y_hat - y
        abs_err = np.abs(diff)
        return {
            "mae": float(np.mean(abs_err)),
            "rmse": float(np.sqrt(np.mean(diff * diff))),
            "bias": float(np.mean(diff)),
            "abs_error_std": float(np.std(abs_err)),
        }
    predicted = predicted_classes(spec, y_hat)
    errors = predicted != y
    error_rate = float(np.mean(errors))
    out = {"error_rate": error_rate, "accuracy": 1.0 - error_rate}
    names = spec.class_names
    classes, totals = np.unique(y, return_counts=True)
    correct = np.bincount(y[~errors].astype(np.int64), minlength=len(names))
    for code, total in zip(classes.astype(np.int64).tolist(), totals.tolist(), strict=True):
        out[f"recall.{names[code]}"] = float(correct[code] / total)
    if spec.has_probabilities:
        log_loss, brier = pair_losses(y_hat, y)
        out["log_loss"] = float(np.mean(log_loss))
        out["log_loss_std"] = float(np.std(log_loss))
        out["brier"] = float(np.mean(brier))
    return out


def multiclass_probability_metrics(probabilities: Array, labels: Array) -> dict[str, float]:
    """Log loss and multiclass Brier score of full probability rows (``n x classes``; NaN
    = absent, read as 0) against label codes; rows with a NaN label or no probability are
    left out. Empty when no row is left."""
    matrix = np.nan_to_num(probabilities, nan=0.0)
    sums = matrix.sum(axis=1)
    keep = ~np.isnan(labels) & (sums > 0)
    matrix, y = matrix[keep] / sums[keep, None], labels[keep].astype(np.int64)
    if y.size == 0:
        return {}
    truth = np.zeros_like(matrix)
    truth[np.arange(y.size), y] = 1.0
    p_true = np.clip(matrix[np.arange(y.size), y], LOG_LOSS_EPSILON, 1.0 - LOG_LOSS_EPSILON)
    return {
        "log_loss": float(np.mean(-np.log(p_true))),
        "brier": float(np.mean(np.sum((matrix - truth) ** 2, axis=1))),
    }

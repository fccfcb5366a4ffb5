"""Ground truth of one model version: its predictions and labels joined, its performance
measured.

The pipeline hands :meth:`GroundTruth.observe` one batch's events of the version in two
parts — the prediction rows (:class:`~driftline.events.ModelBatch`, an inline ``label``
included) and the feedback events (:class:`~driftline.events.FeedbackBatch`) — which it
merges back into stream order. Predictions and labels are encoded for the version's task
(:mod:`driftline.performance.task`), joined (:class:`driftline.labels.LabelJoin`, exact and
bounded), and the joined pairs and the predictions go to the version's
:class:`~driftline.performance.monitor.PerformanceMonitor`, whose findings (``__error__``,
``__estimated_error__``, ``__label__``) come back with the batch position of the event
that closed their window, for the alert policy.

Positions: the version's events (predictions and feedback) are numbered from 0 in stream
order; the join and the performance windows use these numbers, so every result is the same
whatever the batches.

Until the version's first label (inline or feedback), its last
:data:`PENDING_BEFORE_FIRST_LABEL` predictions are only kept as they came (no hashing, no
join): a version that never gets labels costs little CPU, memory and checkpoint, and
labels read a little behind their predictions (a feedback topic catching up) still join:
at the first label those predictions go into the join, which then runs with its configured
limits. Predictions pushed out before that count as ``expired``.
"""

from __future__ import annotations

import base64
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from driftline.events import LABEL_FEATURE, PREDICTION_FEATURE, FeedbackBatch, ModelBatch
from driftline.findings import Finding
from driftline.labels.join import JoinedPairs, JoinInput, JoinLimits, LabelJoin
from driftline.performance.detectors import ERROR_FEATURE, ESTIMATED_ERROR_FEATURE
from driftline.performance.metrics import pair_errors
from driftline.performance.monitor import PerformanceMonitor, PerformanceSettings
from driftline.performance.reference import ReferencePerformance
from driftline.performance.task import Task, TaskSpec, encode_labels, encode_prediction_columns
from driftline.profile import FeatureProfile

STATE_VERSION = 1
GROUND_TRUTH_FEATURES = frozenset({ERROR_FEATURE, ESTIMATED_ERROR_FEATURE, LABEL_FEATURE})
"""The features of ground truth's findings (label drift is measured on joined labels)."""
TASK_CHANGED = (
    "the model version's task changed (models[].task, decision_threshold or the reference "
    "profile's classes): the label join and performance start afresh"
)
PENDING_BEFORE_FIRST_LABEL = 10_000
"""Predictions remembered (at most) before a version's first label."""
DELAY_SAMPLE = 1_000
"""Label delays kept (of the latest joined pairs) for the status page's p50 / p95."""

Floats = npt.NDArray[np.float64]


@dataclass(slots=True)
class Outcomes:
    """One batch of a version as comparisons (:mod:`driftline.comparisons`) read it, in
    stream order: its predictions, and its valid joined pairs with the version's loss on
    each (:func:`~driftline.performance.metrics.pair_errors`: 0/1 error, or the absolute
    error for regression). Indices are batch positions (of the prediction; of the event
    that completed the pair)."""

    spec: TaskSpec
    label_range: float | None
    """Max - min of the reference profile's numeric labels (``None``: not known)."""
    prediction_indices: npt.NDArray[np.int64]
    prediction_ids: list[str]
    request_ids: list[str | None]
    """Each prediction's ``request_id`` (``None``: absent)."""
    prediction_codes: Floats
    prediction_times: Floats
    pair_indices: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    pair_ids: list[str] = field(default_factory=list)
    """The event id of each pair (the prediction's, which its label shares)."""
    losses: Floats = field(default_factory=lambda: np.zeros(0))
    pair_prediction_times: Floats = field(default_factory=lambda: np.zeros(0))
    completion_times: Floats = field(default_factory=lambda: np.zeros(0))
    """Event time of the later of the prediction and the label."""

    def add_pairs(
        self, pairs: JoinedPairs, event_ids: list[str], indices: npt.NDArray[np.int64]
    ) -> None:
        """Set the batch's joined pairs (those with a valid prediction and label)."""
        losses = pair_errors(self.spec, pairs.prediction, pairs.label)
        valid = np.flatnonzero(~np.isnan(losses))
        self.pair_indices = indices[valid]
        self.pair_ids = [event_ids[i] for i in valid.tolist()]
        self.losses = losses[valid]
        self.pair_prediction_times = pairs.prediction_time[valid]
        self.completion_times = np.maximum(pairs.prediction_time, pairs.label_time)[valid]


class Observed(NamedTuple):
    """What :meth:`GroundTruth.observe` made of one batch."""

    findings: list[tuple[int, Finding]]
    outcomes: Outcomes | None
    """``None`` when the batch had no event of the version."""


class GroundTruth:
    """Label join and performance monitor of one model version."""

    def __init__(
        self,
        spec: TaskSpec,
        limits: JoinLimits,
        settings: PerformanceSettings,
        reference: ReferencePerformance | None,
        label_profile: FeatureProfile | None,
    ) -> None:
        self.spec = spec
        self.limits = limits
        self.settings = settings
        self.label_profile = label_profile
        self.labelled = False
        """Whether a label of the version was seen (the join runs from then on)."""
        self.recent = _RecentPredictions()
        """Before the first label: the last predictions, kept for the join."""
        self.join = LabelJoin(limits)
        self.performance = PerformanceMonitor(spec, reference, settings, label_profile)
        self.position = 0
        """The version's events (predictions and feedback) seen since ground truth began."""
        self.feedback = 0
        """Feedback events seen."""
        self.delays: deque[float] = deque(maxlen=DELAY_SAMPLE)
        """Label delays (label time - prediction time, seconds) of the latest joined pairs."""

    def observe(
        self,
        model_id: str,
        model_version: str,
        predictions: ModelBatch | None,
        feedback: FeedbackBatch | None,
    ) -> Observed:
        """Join and measure one batch's events of the version: the findings of the windows
        they closed, each with the batch position of the event that closed it, and the
        batch's outcomes."""
        indices, ids, times, has_prediction, has_label, codes, labels = self._merged(
            predictions, feedback
        )
        n = indices.size
        if n == 0:
            return Observed([], None)
        base = self.position
        positions = base + np.arange(n, dtype=np.int64)
        start = 0
        if not self.labelled:
            seen = np.flatnonzero(has_label)
            start = n if seen.size == 0 else int(seen[0])
            # Before the first label every event is a prediction: keep the latest.
            self.recent.add(positions[:start], ids[:start], times[:start], codes[:start])
            if start < n:  # the first label: the kept predictions go into the join
                self.labelled = True
                self.join.process(self.recent.join_input())
        pairs = self.join.process(
            JoinInput(
                positions[start:],
                ids[start:],
                times[start:],
                has_prediction[start:],
                has_label[start:],
                codes[start:],
                labels[start:],
            )
        )
        self.position += n
        self.feedback += 0 if feedback is None else len(feedback)
        if len(pairs):
            delays = pairs.label_time - pairs.prediction_time
            self.delays.extend(delays[-DELAY_SAMPLE:].tolist())
        completing = [ids[int(p) - base] for p in pairs.completed_at.tolist()]
        found = self.performance.observe_pairs(
            pairs, model_id=model_id, model_version=model_version, event_ids=completing
        )
        rows = np.flatnonzero(has_prediction)
        outcomes = self._outcomes(predictions, indices, ids, times, rows, codes)
        outcomes.add_pairs(pairs, completing, indices[pairs.completed_at - base])
        found += self.performance.observe_predictions(
            codes[rows],
            times[rows],
            positions[rows],
            model_id=model_id,
            model_version=model_version,
            event_ids=ids if len(rows) == len(ids) else [ids[i] for i in rows.tolist()],
        )
        found.sort(key=lambda item: item[0])  # stable: each window's findings together
        return Observed(
            [(int(indices[position - base]), finding) for position, finding in found], outcomes
        )

    def _outcomes(
        self,
        predictions: ModelBatch | None,
        indices: npt.NDArray[np.int64],
        ids: list[str],
        times: Floats,
        rows: npt.NDArray[np.int64],
        codes: Floats,
    ) -> Outcomes:
        """The batch's predictions (rows ``rows`` of the merged events) as outcomes."""
        label = self.label_profile
        numeric = None if label is None else label.numeric
        return Outcomes(
            spec=self.spec,
            label_range=None if numeric is None else numeric.maximum - numeric.minimum,
            prediction_indices=indices[rows],
            prediction_ids=[ids[i] for i in rows.tolist()],
            request_ids=[] if predictions is None else list(predictions.request_ids),
            prediction_codes=codes[rows],
            prediction_times=times[rows],
        )

    def _merged(
        self, predictions: ModelBatch | None, feedback: FeedbackBatch | None
    ) -> tuple[
        npt.NDArray[np.int64],
        list[str],
        Floats,
        npt.NDArray[np.bool_],
        npt.NDArray[np.bool_],
        Floats,
        Floats,
    ]:
        """The batch's events of the version in stream order: batch positions, ids, event
        times, which carry a prediction and a label, prediction codes and label codes."""
        parts_indices: list[npt.NDArray[np.int64]] = []
        ids: list[str] = []
        parts_times: list[Floats] = []
        parts_codes: list[Floats] = []
        parts_labels: list[Floats] = []
        parts_is_prediction: list[npt.NDArray[np.bool_]] = []
        parts_has_label: list[npt.NDArray[np.bool_]] = []
        if predictions is not None and len(predictions):
            parts_indices.append(predictions.indices)
            ids += predictions.event_ids
            parts_times.append(predictions.timestamps)
            parts_codes.append(prediction_codes(self.spec, predictions))
            parts_labels.append(inline_label_codes(self.spec, predictions))
            parts_is_prediction.append(np.ones(len(predictions), dtype=np.bool_))
            parts_has_label.append(inline_label_present(predictions))
        if feedback is not None and len(feedback):
            parts_indices.append(feedback.indices)
            ids += feedback.event_ids
            parts_times.append(feedback.timestamps)
            parts_codes.append(np.full(len(feedback), np.nan))
            parts_labels.append(encode_labels(self.spec, feedback.labels))
            parts_is_prediction.append(np.zeros(len(feedback), dtype=np.bool_))
            # A feedback event always has a label (one that does not fit the task encodes
            # as NaN and counts as an invalid pair).
            parts_has_label.append(np.ones(len(feedback), dtype=np.bool_))
        if not parts_indices:
            empty = np.zeros(0)
            none = np.zeros(0, dtype=np.bool_)
            return np.zeros(0, dtype=np.int64), [], empty, none, none, empty, empty
        if len(parts_indices) == 1:  # one kind of event: in stream order already
            return (
                parts_indices[0],
                ids,
                parts_times[0],
                parts_is_prediction[0],
                parts_has_label[0],
                parts_codes[0],
                parts_labels[0],
            )
        indices = np.concatenate(parts_indices)
        order = np.argsort(indices, kind="stable")
        return (
            indices[order],
            [ids[i] for i in order.tolist()],
            np.concatenate(parts_times)[order],
            np.concatenate(parts_is_prediction)[order],
            np.concatenate(parts_has_label)[order],
            np.concatenate(parts_codes)[order],
            np.concatenate(parts_labels)[order],
        )

    # -- status and state ------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Counts, label delays and metrics, JSON-ready (for ``/v1/status``)."""
        counts = self.join.counts.to_dict()
        if not self.labelled:
            counts["pending_now"] = len(self.recent)
        counts["expired"] += self.recent.dropped
        delays = np.array(self.delays) if self.delays else None
        return {
            "task": self.spec.task.value,
            "feedback_events": self.feedback,
            **counts,
            "invalid_pairs": self.performance.invalid_pairs,
            "label_delay_seconds": None
            if delays is None
            else {
                "p50": float(np.percentile(delays, 50)),
                "p95": float(np.percentile(delays, 95)),
            },
            "metrics": self.performance.metrics(),
        }

    def fits(self, state: dict[str, Any]) -> bool:
        """Whether ``state`` (of :meth:`to_state`) was saved for this version's task."""
        return state.get("task") == _spec_state(self.spec)

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "task": _spec_state(self.spec),
            "position": self.position,
            "labelled": self.labelled,
            "recent": self.recent.to_state(),
            "feedback": self.feedback,
            "delays": list(self.delays),
            "join": base64.b64encode(self.join.to_state()).decode("ascii"),
            "performance": self.performance.to_state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`to_state` (same spec, limits, settings and reference)."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported ground-truth state version {state.get('version')!r}")
        self.position = int(state["position"])
        self.labelled = bool(state["labelled"])
        self.recent = _RecentPredictions.from_state(state["recent"])
        self.feedback = int(state["feedback"])
        self.delays = deque((float(d) for d in state["delays"]), maxlen=DELAY_SAMPLE)
        self.join = LabelJoin.from_state(base64.b64decode(state["join"]), self.limits)
        self.performance = PerformanceMonitor.from_state(
            state["performance"], self.spec, self.settings, self.label_profile
        )


class _RecentPredictions:
    """The last :data:`PENDING_BEFORE_FIRST_LABEL` predictions of a version without a label
    yet, as they came (stream positions, ids, event times, codes), kept as the batches'
    own arrays: adding a batch costs no Python object per prediction."""

    def __init__(self) -> None:
        self.chunks: deque[tuple[npt.NDArray[np.int64], list[str], Floats, Floats]] = deque()
        self.size = 0
        self.dropped = 0
        """Predictions pushed out (never joined: counted ``expired``)."""

    def __len__(self) -> int:
        return self.size

    def add(
        self, positions: npt.NDArray[np.int64], ids: list[str], times: Floats, codes: Floats
    ) -> None:
        if not ids:
            return
        self.chunks.append((positions, ids, times, codes))
        self.size += len(ids)
        excess = self.size - PENDING_BEFORE_FIRST_LABEL
        while excess > 0:
            positions, ids, times, codes = self.chunks[0]
            cut = min(excess, len(ids))
            if cut == len(ids):
                self.chunks.popleft()
            else:
                self.chunks[0] = (positions[cut:], ids[cut:], times[cut:], codes[cut:])
            self.size -= cut
            self.dropped += cut
            excess -= cut

    def _columns(self) -> tuple[npt.NDArray[np.int64], list[str], Floats, Floats]:
        if not self.chunks:
            return np.zeros(0, dtype=np.int64), [], np.zeros(0), np.zeros(0)
        ids = [i for chunk in self.chunks for i in chunk[1]]
        return (
            np.concatenate([chunk[0] for chunk in self.chunks]).astype(np.int64),
            ids,
            np.concatenate([chunk[2] for chunk in self.chunks]).astype(np.float64),
            np.concatenate([chunk[3] for chunk in self.chunks]).astype(np.float64),
        )

    def join_input(self) -> JoinInput:
        positions, ids, times, codes = self._columns()
        n = len(ids)
        return JoinInput(
            positions,
            ids,
            times,
            np.ones(n, dtype=np.bool_),
            np.zeros(n, dtype=np.bool_),
            codes,
            np.full(n, np.nan),
        )

    def to_state(self) -> dict[str, Any]:
        positions, ids, times, codes = self._columns()
        return {
            "positions": positions.tolist(),
            "ids": ids,
            "times": base64.b64encode(times.tobytes()).decode(),
            "codes": base64.b64encode(codes.tobytes()).decode(),
            "dropped": self.dropped,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _RecentPredictions:
        recent = cls()
        positions = np.array([int(p) for p in state["positions"]], dtype=np.int64)
        ids = [str(i) for i in state["ids"]]
        times = np.frombuffer(base64.b64decode(state["times"]), dtype=np.float64).copy()
        codes = np.frombuffer(base64.b64decode(state["codes"]), dtype=np.float64).copy()
        if not len(ids) == len(positions) == len(times) == len(codes):
            raise ValueError("recent predictions: columns of different lengths")
        recent.add(positions, ids, times, codes)
        recent.dropped = int(state["dropped"])
        return recent


def _spec_state(spec: TaskSpec) -> list[Any]:
    return [spec.task.value, spec.prediction_kind, spec.decision_threshold, list(spec.classes)]


def prediction_codes(spec: TaskSpec, batch: ModelBatch) -> Floats:
    """The join's code of each row's prediction (NaN where none or not fitting the task)."""
    if spec.task is Task.REGRESSION or (
        spec.task is Task.BINARY and spec.prediction_kind == "probability"
    ):
        column = batch.numeric_array(PREDICTION_FEATURE)
        if column is not None:
            codes = np.array(column, dtype=np.float64)
            if spec.task is Task.BINARY:
                codes[(codes < 0.0) | (codes > 1.0)] = np.nan
            return codes
    return encode_prediction_columns(spec, batch.columns, len(batch))


def inline_label_present(batch: ModelBatch) -> npt.NDArray[np.bool_]:
    """Which rows carry a (non-null) inline label."""
    column = batch.numeric_array(LABEL_FEATURE)
    if column is not None:
        return ~np.isnan(column)
    values = batch.column(LABEL_FEATURE)
    if values is None:
        return np.zeros(len(batch), dtype=np.bool_)
    return np.array([v is not None for v in values], dtype=np.bool_)


def inline_label_codes(spec: TaskSpec, batch: ModelBatch) -> Floats:
    """The join's code of each row's inline label (NaN where none or not fitting)."""
    column = batch.numeric_array(LABEL_FEATURE)
    if column is not None and spec.task is not Task.MULTICLASS:
        codes = np.array(column, dtype=np.float64)
        if spec.task is Task.BINARY:
            codes[(codes != 0.0) & (codes != 1.0)] = np.nan
        return codes
    values = batch.column(LABEL_FEATURE)
    if values is None:
        return np.full(len(batch), np.nan)
    return encode_labels(spec, values)

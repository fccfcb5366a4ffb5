"""Model performance monitoring of one model version: realized (joined labels), estimated
(CBPE, no labels) and label drift, as findings for the alert policy.

Realized performance, :meth:`PerformanceMonitor.observe_pairs`
    Joined (prediction, label) pairs (the label join's output, in completion order) whose
    codes are both valid are cut into windows of ``window_pairs`` pairs (1,000). At each
    window close, for feature ``__error__``:

    - ``error_rate`` (classifiers) / ``mae`` (regression), and ``log_loss`` (binary
      probabilities): the z statistic of the window's metric against the reference's
      (:mod:`driftline.performance.significance`; thresholds in
      :mod:`driftline.performance.detectors`);
    - ``adwin`` and ``page_hinkley``: the river-exact detectors run on the *error stream*
      pair by pair (0/1 errors of classifiers; for regression the absolute error divided by
      the reference MAE, so that their parameters do not depend on the label's unit).
      Page-Hinkley runs with ``mode="up"`` (rises only); an ADWIN detection counts when
      the mean of its window after the cut is above the mean before it (a rise). A
      finding's value is the number of rises detected in the last ``detection_windows``
      windows, so one detection breaches that many consecutive windows (an alert with
      ``alerts.fire_after`` at its default 3).

    Evidence: the reference and current metric, their difference (and the relative change
    for MAE), the window's pairs, the reference's pairs, the label delay (label time -
    prediction time) p50 and p95 in seconds, and every metric of the window. A window's
    ``window_start`` / ``window_end`` are the event times of its first and last pair's
    later event (``max(prediction_time, label_time)``), its ``sequence`` the position that
    completed its last pair.

Reference
    The profile's :class:`~driftline.performance.reference.ReferencePerformance`, else the
    first ``warmup_pairs`` (1,000) valid pairs: their metrics, and for binary probabilities
    their isotonic calibration (so estimated performance starts then too). No realized or
    estimated finding is made before the reference exists; the warm-up pairs are not
    evaluated as a window.

Estimated performance, :meth:`PerformanceMonitor.observe_predictions`
    For binary probability models with a calibration: windows of ``prediction_window``
    (1,000) valid predictions; at each close the CBPE expected error rate
    (:func:`~driftline.performance.calibration.expected_error_rate`) is compared with the
    reference's ``expected_error_rate``: feature ``__estimated_error__``, detector
    ``estimated_error_rate``, value the rise in absolute points. Predictions seen before a
    calibration exists are not buffered. Multiclass and regression: not estimated.

Label drift
    With the profile's ``__label__`` summary, the joined labels are windowed like the pairs
    and compared with it by PSI (the :mod:`driftline.detectors` implementation; on the
    reference's decile bins for numeric labels, on its categories otherwise): findings on
    feature ``__label__``, detector ``psi``.

Determinism: any split of the pairs (and of the predictions) into calls gives the same
findings, and :meth:`PerformanceMonitor.to_state` / :meth:`PerformanceMonitor.from_state`
continue exactly.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import Field

from driftline.categories import category_key
from driftline.detectors.adwin import ADWIN
from driftline.detectors.feature_window import CategoryWindow, NumericWindow, feature_window
from driftline.detectors.page_hinkley import PageHinkley
from driftline.events import LABEL_FEATURE
from driftline.features import CategoryColumn, NumericColumn
from driftline.findings import Finding
from driftline.performance.calibration import expected_error_rate, fit_calibration
from driftline.performance.detectors import ERROR_FEATURE, ESTIMATED_ERROR_FEATURE
from driftline.performance.metrics import pair_errors, window_metrics
from driftline.performance.reference import ReferencePerformance
from driftline.performance.significance import mean_increase_z, proportion_increase_z
from driftline.performance.task import Task, TaskSpec
from driftline.profile import FeatureKind, FeatureProfile
from driftline.settings_base import StrictSettings

__all__ = [
    "AdwinErrorSettings",
    "JoinedPairsLike",
    "PageHinkleyErrorSettings",
    "PerformanceMonitor",
    "PerformanceSettings",
]

STATE_VERSION = 1
LABEL_DRIFT_DETECTOR = "psi"

Array = npt.NDArray[np.float64]
Positioned = list[tuple[int, Finding]]


class JoinedPairsLike(Protocol):
    """The label join's output (``driftline.labels.JoinedPairs``): pairs completed in one
    batch, in completion order, as parallel arrays."""

    @property
    def prediction(self) -> npt.NDArray[np.float64]: ...
    @property
    def label(self) -> npt.NDArray[np.float64]: ...
    @property
    def prediction_time(self) -> npt.NDArray[np.float64]: ...
    @property
    def label_time(self) -> npt.NDArray[np.float64]: ...
    @property
    def completed_at(self) -> npt.NDArray[np.int64]: ...


class AdwinErrorSettings(StrictSettings):
    """ADWIN on the error stream (river's defaults)."""

    delta: float = Field(0.002, gt=0.0, lt=1.0)
    clock: int = Field(32, ge=1)
    max_buckets: int = Field(5, ge=2)
    min_window_length: int = Field(5, ge=1)
    grace_period: int = Field(10, ge=0)


class PageHinkleyErrorSettings(StrictSettings):
    """Page-Hinkley (``mode="up"``) on the error stream.

    river's defaults (``delta`` 0.005, ``alpha`` 0.9999) detect a stationary 0/1 error
    stream of rate 0.33 about every 16,000 values; ``alpha`` 1 (no forgetting) with
    ``delta`` 0.03 (classifiers, about half the 0.07 rise to catch) or 0.1 (regression's
    relative absolute error, about half a 20% rise) and ``threshold`` 50 detected nothing
    in 10^6 stationary values and catch those rises within ~1,500 (resp. ~600) pairs.
    """

    min_instances: int = Field(30, ge=1)
    threshold: float = Field(50.0, gt=0.0)
    alpha: float = Field(1.0, gt=0.0, le=1.0)
    delta_classification: float = Field(0.03, ge=0.0)
    delta_regression: float = Field(0.1, ge=0.0)


class PerformanceSettings(StrictSettings):
    """Model performance settings (config key ``performance``; defaults in brackets in
    :mod:`driftline.performance.monitor`'s docstring)."""

    window_pairs: int = Field(1000, gt=0)
    """Joined pairs per realized-performance window."""
    warmup_pairs: int = Field(1000, gt=0)
    """Valid pairs that become the reference when the profile has none."""
    prediction_window: int = Field(1000, gt=0)
    """Predictions per estimated-performance (CBPE) window."""
    detection_windows: int = Field(3, gt=0)
    """Windows an ADWIN / Page-Hinkley detection counts in (match ``alerts.fire_after``)."""
    detectors: tuple[str, ...] = (
        "error_rate",
        "log_loss",
        "mae",
        "adwin",
        "page_hinkley",
        "estimated_error_rate",
    )
    """Detectors run (each where its task allows: ``error_rate`` classifiers, ``log_loss``
    binary probabilities, ``mae`` regression, ``estimated_error_rate`` calibrated binary
    probabilities; ``adwin`` and ``page_hinkley`` everywhere)."""
    label_drift: bool = True
    """Compare the joined labels with the profile's ``__label__`` (PSI)."""
    adwin: AdwinErrorSettings = AdwinErrorSettings()
    page_hinkley: PageHinkleyErrorSettings = PageHinkleyErrorSettings()


# --------------------------------------------------------------------------- buffers


@dataclass(slots=True)
class _PairBuffer:
    """The current window's valid pairs."""

    prediction: list[float]
    label: list[float]
    prediction_time: list[float]
    label_time: list[float]
    completed_at: list[int]

    @classmethod
    def empty(cls) -> _PairBuffer:
        return cls([], [], [], [], [])

    def __len__(self) -> int:
        return len(self.prediction)

    def extend(self, pairs: JoinedPairsLike, keep: slice | npt.NDArray[np.int64]) -> None:
        self.prediction.extend(np.asarray(pairs.prediction)[keep].tolist())
        self.label.extend(np.asarray(pairs.label)[keep].tolist())
        self.prediction_time.extend(np.asarray(pairs.prediction_time)[keep].tolist())
        self.label_time.extend(np.asarray(pairs.label_time)[keep].tolist())
        self.completed_at.extend(np.asarray(pairs.completed_at)[keep].tolist())

    def to_state(self) -> dict[str, Any]:
        return {
            "prediction": _pack(self.prediction),
            "label": _pack(self.label),
            "prediction_time": _pack(self.prediction_time),
            "label_time": _pack(self.label_time),
            "completed_at": list(self.completed_at),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _PairBuffer:
        return cls(
            _unpack(state["prediction"]),
            _unpack(state["label"]),
            _unpack(state["prediction_time"]),
            _unpack(state["label_time"]),
            [int(v) for v in state["completed_at"]],
        )


def _pack(values: Sequence[float]) -> str:
    """Floats as base64 of their little-endian binary64 bytes (exact, compact)."""
    return base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode("ascii")


def _unpack(text: str) -> list[float]:
    values: list[float] = np.frombuffer(base64.b64decode(text), dtype="<f8").tolist()
    return values


# --------------------------------------------------------------------------- error stream


class _ErrorStream:
    """ADWIN and Page-Hinkley on the error stream, with their rises per window."""

    def __init__(self, settings: PerformanceSettings, task: Task) -> None:
        self.memory = settings.detection_windows
        self.adwin = ADWIN(**settings.adwin.model_dump()) if "adwin" in settings.detectors else None
        ph = settings.page_hinkley
        delta = ph.delta_regression if task is Task.REGRESSION else ph.delta_classification
        self.page_hinkley = (
            PageHinkley(ph.min_instances, delta, ph.threshold, ph.alpha, mode="up")
            if "page_hinkley" in settings.detectors
            else None
        )
        self.hits: dict[str, list[int]] = {"adwin": [], "page_hinkley": []}
        """Positions of this window's rises, by detector."""
        self.recent: dict[str, deque[int]] = {name: deque(maxlen=self.memory) for name in self.hits}
        """Rises of the last closed windows, by detector."""

    def update(self, errors: Array, positions: Sequence[int]) -> None:
        if self.adwin is not None:
            self.hits["adwin"].extend(positions[i] for i in self._adwin_rises(errors))
        if self.page_hinkley is not None:
            detections = self.page_hinkley.update_many(errors)
            self.hits["page_hinkley"].extend(positions[int(i)] for i in detections)

    def _adwin_rises(self, errors: Array) -> list[int]:
        """Indexes of ADWIN's detections in ``errors`` at which its mean rose. Detections
        are rare: the chunk is replayed from a snapshot only when there is one."""
        assert self.adwin is not None
        snapshot = self.adwin.to_bytes()
        detections = self.adwin.update_many(errors).tolist()
        if not detections:
            return []
        adwin = ADWIN.from_bytes(snapshot)
        rises = []
        start = 0
        for index in detections:
            adwin.update_many(errors[start:index])
            before = adwin.estimation
            adwin.update(float(errors[index]))
            if adwin.estimation > before:
                rises.append(index)
            start = index + 1
        adwin.update_many(errors[start:])
        self.adwin = adwin
        return rises

    def close(self) -> dict[str, tuple[int, list[int]]]:
        """Per running detector: rises in the last windows, and this window's positions."""
        out = {}
        for name, hits in self.hits.items():
            if (self.adwin if name == "adwin" else self.page_hinkley) is None:
                continue
            self.recent[name].append(len(hits))
            out[name] = (sum(self.recent[name]), hits)
            self.hits[name] = []
        return out

    def to_state(self) -> dict[str, Any]:
        return {
            "adwin": None if self.adwin is None else _b64(self.adwin.to_bytes()),
            "page_hinkley": None
            if self.page_hinkley is None
            else _b64(self.page_hinkley.to_bytes()),
            "hits": {k: list(v) for k, v in self.hits.items()},
            "recent": {k: list(v) for k, v in self.recent.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state["adwin"] is not None:
            self.adwin = ADWIN.from_bytes(base64.b64decode(state["adwin"]))
        if state["page_hinkley"] is not None:
            self.page_hinkley = PageHinkley.from_bytes(base64.b64decode(state["page_hinkley"]))
        self.hits = {k: [int(x) for x in v] for k, v in state["hits"].items()}
        self.recent = {
            k: deque((int(x) for x in v), maxlen=self.memory) for k, v in state["recent"].items()
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------- monitor


class PerformanceMonitor:
    """Performance of one model version (see the module docstring).

    Parameters
    ----------
    spec
        The version's task (:func:`driftline.performance.profile_task.infer_task`).
    reference
        The profile's reference performance; ``None``: learned from the first
        ``warmup_pairs`` valid pairs.
    settings
        Windows, detectors and their parameters.
    label_profile
        The profile's ``__label__`` summary, for label drift (``None``: no label drift).
    """

    def __init__(
        self,
        spec: TaskSpec,
        reference: ReferencePerformance | None,
        settings: PerformanceSettings,
        label_profile: FeatureProfile | None = None,
    ) -> None:
        if reference is not None and reference.task.task is not spec.task:
            raise ValueError(
                f"the reference performance is of a {reference.task.task} task, not {spec.task}"
            )
        self.spec = spec
        self.settings = settings
        self.reference = reference
        self.warmup = _PairBuffer.empty()
        self.window = _PairBuffer.empty()
        self.stream = _ErrorStream(settings, spec.task)
        self.predictions: list[float] = []
        """The current estimated-performance window's probabilities."""
        self.prediction_window_start = 0.0
        self.invalid_pairs = 0
        """Joined pairs with a prediction or label that does not fit the task."""
        self.realized: dict[str, float] = {}
        self.estimated: dict[str, float] = {}
        self.label_window: NumericWindow | CategoryWindow | None = None
        self.label_kind = None if label_profile is None else label_profile.kind
        if settings.label_drift and label_profile is not None and label_profile.count > 0:
            self.label_window = feature_window(label_profile, (LABEL_DRIFT_DETECTOR,), {}, {})

    # -- realized ------------------------------------------------------------------------

    def observe_pairs(
        self,
        pairs: JoinedPairsLike,
        *,
        model_id: str,
        model_version: str,
        event_ids: Sequence[str] | None = None,
    ) -> Positioned:
        """Consume joined pairs; return the findings of the windows they closed, each with
        the stream position that closed it. ``event_ids`` (optional, aligned with the
        pairs) are the ids of the events that completed them, for the findings' ids."""
        prediction = np.asarray(pairs.prediction, dtype=np.float64)
        label = np.asarray(pairs.label, dtype=np.float64)
        valid = np.flatnonzero(~(np.isnan(prediction) | np.isnan(label)))
        self.invalid_pairs += int(prediction.size - valid.size)
        ids = None if event_ids is None else [event_ids[i] for i in valid.tolist()]
        out: Positioned = []
        start = 0
        while start < valid.size:
            if self.reference is None:
                take = valid[start : start + self.settings.warmup_pairs - len(self.warmup)]
                self.warmup.extend(pairs, take)
                start += take.size
                if len(self.warmup) == self.settings.warmup_pairs:
                    self._learn_reference()
                continue
            take = valid[start : start + self.settings.window_pairs - len(self.window)]
            self._add_to_window(pairs, take)
            start += take.size
            if len(self.window) == self.settings.window_pairs:
                last_id = "" if ids is None else ids[start - 1]
                out.extend(self._close_window(model_id, model_version, last_id))
        return out

    def _learn_reference(self) -> None:
        spec = self.spec
        predictions = np.array(self.warmup.prediction)
        labels = np.array(self.warmup.label)
        metrics = window_metrics(spec, predictions, labels)
        calibration = fit_calibration(predictions, labels) if spec.has_probabilities else None
        if calibration is not None:
            metrics["expected_error_rate"] = expected_error_rate(
                predictions, spec.decision_threshold, calibration
            )[0]
        self.reference = ReferencePerformance(spec, metrics, len(self.warmup), calibration)
        self.warmup = _PairBuffer.empty()

    def _error_stream_values(self, errors: Array) -> Array:
        if self.spec.task is Task.REGRESSION:
            assert self.reference is not None
            mae = self.reference.metrics.get("mae", 0.0)
            return errors / mae if mae > 0 else errors
        return errors

    def _add_to_window(self, pairs: JoinedPairsLike, take: npt.NDArray[np.int64]) -> None:
        prediction = np.asarray(pairs.prediction, dtype=np.float64)[take]
        label = np.asarray(pairs.label, dtype=np.float64)[take]
        self.window.extend(pairs, take)
        errors = self._error_stream_values(pair_errors(self.spec, prediction, label))
        self.stream.update(errors, np.asarray(pairs.completed_at)[take].tolist())
        if self.label_window is not None:
            first = int(np.asarray(pairs.completed_at)[take][0]) if take.size else 0
            self._update_labels(label, first)

    def _update_labels(self, codes: Array, first_sequence: int) -> None:
        window = self.label_window
        if isinstance(window, NumericWindow):
            values = codes
            if self.spec.task is Task.MULTICLASS:
                values = np.array([_as_number(self.spec.classes[int(c)]) for c in codes])
            window.update(NumericColumn(values, None), 0, codes.size, first_sequence)
        elif isinstance(window, CategoryWindow):
            names = self.spec.class_names
            if self.label_kind is FeatureKind.BOOLEAN:
                keys: list[str | None] = ["true" if c == 1.0 else "false" for c in codes.tolist()]
            else:
                keys = [names[int(c)] for c in codes.tolist()] if names else []
                if not names:  # regression labels profiled as categories
                    keys = [category_key(float(c)) for c in codes.tolist()]
            window.update(CategoryColumn(keys, None), 0, codes.size, first_sequence)

    def _close_window(self, model_id: str, model_version: str, event_id: str) -> Positioned:
        reference = self.reference
        assert reference is not None
        window, self.window = self.window, _PairBuffer.empty()
        spec = self.spec
        prediction = np.array(window.prediction)
        label = np.array(window.label)
        metrics = window_metrics(spec, prediction, label)
        self.realized = metrics
        n = len(window)
        delays = np.array(window.label_time) - np.array(window.prediction_time)
        completion = np.maximum(window.prediction_time, window.label_time)
        position = window.completed_at[-1]

        def finding(
            feature: str, detector: str, statistic: str, value: float, **ev: Any
        ) -> Finding:
            return Finding(
                model_id=model_id,
                model_version=model_version,
                feature=feature,
                detector=detector,
                statistic=statistic,
                value=round(float(value), 6),
                sample_size=n,
                window_start=float(completion[0]),
                window_end=float(completion[-1]),
                window_count=n,
                sequence=position,
                event_id=event_id,
                evidence=ev,
            )

        common = {
            "pairs": n,
            "reference_pairs": reference.pairs,
            "label_delay_p50_seconds": round(float(np.percentile(delays, 50)), 3),
            "label_delay_p95_seconds": round(float(np.percentile(delays, 95)), 3),
            "window_metrics": {k: round(v, 6) for k, v in sorted(metrics.items())},
        }
        found: list[Finding] = []
        ref = reference.metrics
        detectors = self.settings.detectors
        if spec.task is not Task.REGRESSION and "error_rate" in detectors and "error_rate" in ref:
            z = proportion_increase_z(metrics["error_rate"], n, ref["error_rate"], reference.pairs)
            found.append(
                finding(
                    ERROR_FEATURE, "error_rate", "error_rate_increase_z", z,
                    **_compare("error_rate", metrics, ref), **common,
                )
            )  # fmt: skip
        if spec.has_probabilities and "log_loss" in detectors and "log_loss_std" in ref:
            z = mean_increase_z(
                metrics["log_loss"], metrics["log_loss_std"], n,
                ref["log_loss"], ref["log_loss_std"], reference.pairs,
            )  # fmt: skip
            found.append(
                finding(
                    ERROR_FEATURE, "log_loss", "log_loss_increase_z", z,
                    **_compare("log_loss", metrics, ref), **common,
                )
            )  # fmt: skip
        if spec.task is Task.REGRESSION and "mae" in detectors and "abs_error_std" in ref:
            z = mean_increase_z(
                metrics["mae"], metrics["abs_error_std"], n,
                ref["mae"], ref["abs_error_std"], reference.pairs,
            )  # fmt: skip
            compared = _compare("mae", metrics, ref)
            if ref["mae"] > 0:
                compared["relative_change"] = round(metrics["mae"] / ref["mae"] - 1.0, 6)
            found.append(finding(ERROR_FEATURE, "mae", "mae_increase_z", z, **compared, **common))
        primary = "mae" if spec.task is Task.REGRESSION else "error_rate"
        for name, (rises, positions) in self.stream.close().items():
            statistic = f"{name}_error_increases"
            found.append(
                finding(
                    ERROR_FEATURE, name, statistic, float(rises),
                    detection_positions=positions[:10],
                    detections_in_window=len(positions),
                    over_windows=self.settings.detection_windows,
                    **_compare(primary, metrics, ref), **common,
                )
            )  # fmt: skip
        if self.label_window is not None:
            for stat in self.label_window.evaluate(n):
                found.append(
                    finding(
                        LABEL_FEATURE, stat.detector, stat.statistic, stat.value,
                        **stat.evidence, pairs=n,
                    )
                )  # fmt: skip
            self.label_window.reset()
        return [(position, f) for f in found]

    # -- estimated -----------------------------------------------------------------------

    def observe_predictions(
        self,
        predictions: Array,
        timestamps: Array,
        positions: npt.NDArray[np.int64],
        *,
        model_id: str,
        model_version: str,
        event_ids: Sequence[str] | None = None,
    ) -> Positioned:
        """Consume prediction codes (in stream order, with their event times and
        positions); return the estimated-performance findings of the windows they closed.
        Does nothing unless the task has binary probabilities, a calibration exists and
        ``estimated_error_rate`` is among the detectors."""
        reference = self.reference
        if (
            reference is None
            or reference.calibration is None
            or "estimated_error_rate" not in self.settings.detectors
            or "expected_error_rate" not in reference.metrics
        ):
            return []
        p = np.asarray(predictions, dtype=np.float64)
        valid = np.flatnonzero(~np.isnan(p))
        out: Positioned = []
        size = self.settings.prediction_window
        start = 0
        while start < valid.size:  # one slice per window (filled or left open)
            take = valid[start : start + size - len(self.predictions)]
            start += take.size
            if not self.predictions:
                self.prediction_window_start = float(timestamps[take[0]])
            self.predictions.extend(p[take].tolist())
            if len(self.predictions) < size:
                continue
            i = int(take[-1])
            window = np.array(self.predictions)
            self.predictions = []
            estimate, n = expected_error_rate(
                window, self.spec.decision_threshold, reference.calibration
            )
            baseline = reference.metrics["expected_error_rate"]
            self.estimated = {"error_rate": estimate}
            position = int(positions[i])
            out.append(
                (
                    position,
                    Finding(
                        model_id=model_id,
                        model_version=model_version,
                        feature=ESTIMATED_ERROR_FEATURE,
                        detector="estimated_error_rate",
                        statistic="estimated_error_rate_increase",
                        value=round(estimate - baseline, 6),
                        sample_size=n,
                        window_start=self.prediction_window_start,
                        window_end=float(timestamps[i]),
                        window_count=n,
                        sequence=position,
                        event_id="" if event_ids is None else event_ids[i],
                        evidence={
                            "metric": "estimated_error_rate",
                            "reference": round(baseline, 6),
                            "current": round(estimate, 6),
                            "difference": round(estimate - baseline, 6),
                            "reference_realized_error_rate": round(
                                reference.metrics.get("error_rate", float("nan")), 6
                            ),
                            "predictions": n,
                        },
                    ),
                )
            )
        return out

    # -- status and state ----------------------------------------------------------------

    def metrics(self) -> dict[str, dict[str, float]]:
        """``reference`` (the reference's metrics; empty during warm-up), ``realized`` (the
        last closed window's) and ``estimated`` (the last CBPE window's ``error_rate``)."""
        return {
            "reference": {} if self.reference is None else dict(self.reference.metrics),
            "realized": dict(self.realized),
            "estimated": dict(self.estimated),
        }

    def to_state(self) -> dict[str, Any]:
        """All mutable state, JSON-ready (the reference too once learned from warm-up)."""
        return {
            "version": STATE_VERSION,
            "reference": None if self.reference is None else self.reference.to_dict(),
            "warmup": self.warmup.to_state(),
            "window": self.window.to_state(),
            "stream": self.stream.to_state(),
            "predictions": _pack(self.predictions),
            "prediction_window_start": self.prediction_window_start,
            "invalid_pairs": self.invalid_pairs,
            "realized": dict(self.realized),
            "estimated": dict(self.estimated),
            "labels": None if self.label_window is None else self.label_window.to_state(),
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        spec: TaskSpec,
        settings: PerformanceSettings,
        label_profile: FeatureProfile | None = None,
    ) -> PerformanceMonitor:
        """Continue from :meth:`to_state` (also after a JSON round trip), with the same
        spec, settings and label profile."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported performance state version {state.get('version')!r}")
        raw = state["reference"]
        reference = None if raw is None else ReferencePerformance.from_dict(raw)
        monitor = cls(spec, reference, settings, label_profile)
        monitor.warmup = _PairBuffer.from_state(state["warmup"])
        monitor.window = _PairBuffer.from_state(state["window"])
        monitor.stream.restore(state["stream"])
        monitor.predictions = _unpack(state["predictions"])
        monitor.prediction_window_start = float(state["prediction_window_start"])
        monitor.invalid_pairs = int(state["invalid_pairs"])
        monitor.realized = {k: float(v) for k, v in state["realized"].items()}
        monitor.estimated = {k: float(v) for k, v in state["estimated"].items()}
        if monitor.label_window is not None and state["labels"] is not None:
            monitor.label_window.restore(state["labels"])
        return monitor


def _compare(metric: str, current: dict[str, float], reference: dict[str, float]) -> dict[str, Any]:
    now, then = current[metric], reference[metric]
    return {
        "metric": metric,
        "reference": round(then, 6),
        "current": round(now, 6),
        "difference": round(now - then, 6),
    }


def _as_number(name: str) -> float:
    try:
        return float(name)
    except ValueError:
        return float("nan")

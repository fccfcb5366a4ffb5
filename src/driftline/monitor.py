"""One model version: columnar batches in, findings out, window by window.

Windows are tumbling, by event count or by event-time duration. A duration window
``[k*D, (k+1)*D)`` closes when an event of a later window arrives; an event older than the
open window (late) is counted in the open window. Windows still open at the end of a replay
are not evaluated: a stream has no end. Without a reference profile the version's first
``warmup_events`` events are collected and become its reference (they are not monitored).
Columns the reference profile lacks (``__prediction__`` of a profile built from training
data, say) learn their own reference from live events (:mod:`driftline.late_features`).
``__label__`` is never monitored here: labels mostly arrive as feedback events, so a
prediction event without one has no missing value, and label drift is measured on the
joined labels; the profile keeps its ``__label__`` feature for that.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftline.detectors.catalog import DETECTORS, STREAM_DETECTORS
from driftline.detectors.closed_window import ClosedWindow, FeatureDistribution
from driftline.detectors.feature_window import (
    CoarseWindow,
    FeatureWindow,
    NumericBatch,
    NumericWindow,
    feature_window,
    numeric_batches,
)
from driftline.events import LABEL_FEATURE, ModelBatch
from driftline.features import (
    CategoryColumn,
    NumericColumn,
    boolean_column,
    category_column,
    numeric_column,
)
from driftline.findings import Finding
from driftline.late_features import LateFeatures
from driftline.profile import FeatureKind, FeatureProfile, ReferenceProfile
from driftline.warmup import DEFAULT_MAX_CATEGORIES, DEFAULT_SAMPLE_VALUES, WarmupSketch

Column = NumericColumn | CategoryColumn
STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class MonitorPlan:
    """Everything a model version's monitor needs from the settings, resolved."""

    window_events: int | None
    window_seconds: float | None
    warmup_events: int
    top_k_categories: int
    detectors: dict[FeatureKind, tuple[str, ...]]
    feature_detectors: dict[str, tuple[str, ...]]
    """Per-feature detector lists that replace the kind's defaults."""
    excluded: frozenset[str]
    adwin: dict[str, Any]
    page_hinkley: dict[str, Any]
    warmup_sample_values: int = DEFAULT_SAMPLE_VALUES
    """Numbers per column kept as they are during warm-up (see :mod:`driftline.warmup`)."""
    warmup_max_categories: int = DEFAULT_MAX_CATEGORIES
    """Distinct categories per column counted one by one during warm-up."""
    max_late_features: int = 10_000
    """Most columns outside the reference profile one version learns from live events
    (the warm-up column cap, ``Plan.warmup_columns``)."""

    def new_warmup(self) -> WarmupSketch:
        return WarmupSketch(self.warmup_sample_values, self.warmup_max_categories)

    def new_late_features(self) -> LateFeatures:
        return LateFeatures(
            warmup_events=self.warmup_events,
            sample_values=self.warmup_sample_values,
            max_categories=self.warmup_max_categories,
            max_columns=self.max_late_features,
            top_k=self.top_k_categories,
        )


def profile_mismatch(state: dict[str, Any], profile: ReferenceProfile | None) -> str | None:
    """Why a monitor state (:meth:`ModelMonitor.to_state`) does not fit the configured
    ``profile``, or ``None`` when it does.

    - the state was built on a configured profile and the configured profile is another
      one, or none now (the version would warm up again);
    - a profile is configured and the state holds one learned by warm-up, or is still
      warming up: the configured profile replaces the learned one.

    A state with a learned profile (or warming up) and no configured profile fits.
    """
    saved = state["profile_id"]
    learned = state["learned_profile"] is not None
    if profile is None:
        if saved is not None and not learned:
            return f"the reference profile changed (state built on {saved}, none is configured now)"
        return None
    if learned:
        return (
            f"a reference profile is configured ({profile.profile_id}): it replaces the "
            f"profile learned by warm-up ({saved})"
        )
    if saved is None:
        return (
            f"a reference profile is configured ({profile.profile_id}): it replaces the "
            "warm-up in progress"
        )
    if saved != profile.profile_id:
        return (
            f"the reference profile changed (state built on {saved}, "
            f"{profile.profile_id} is configured)"
        )
    return None


def _typed(kind: FeatureKind, batch: ModelBatch, name: str) -> Column:
    rows = len(batch)
    if kind is FeatureKind.NUMERIC:
        array = batch.numeric_array(name)  # float64 already: no Python value per row
        return numeric_column(batch.column(name) if array is None else array, rows)
    if kind is FeatureKind.BOOLEAN:
        return boolean_column(batch.column(name), rows)
    return category_column(batch.column(name), rows)


class ModelMonitor:
    """Monitors one (model_id, model_version)."""

    def __init__(
        self,
        model_id: str,
        model_version: str,
        plan: MonitorPlan,
        profile: ReferenceProfile | None,
    ) -> None:
        self.model_id = model_id
        self.model_version = model_version
        self.plan = plan
        self.profile: ReferenceProfile | None = None
        self.windows: dict[str, FeatureWindow] = {}
        self.kinds: dict[str, FeatureKind] = {}
        self.numeric_batches: list[NumericBatch] = []
        """The numeric windows whose coarse-bin statistics are computed together."""
        self.sequence = 0
        """Events of this version seen so far (warm-up included)."""
        self.window_rows = 0
        self.window_start = 0.0
        self.window_end = 0.0
        self.window_event_id = ""
        self.window_key = -(2**62)
        self.warmup = plan.new_warmup()
        """What the reference profile needs from the warm-up rows so far (bounded)."""
        self.late = plan.new_late_features()
        """Columns the profile lacks, learning (or monitored with) a reference of their own."""
        self.not_late: frozenset[str] = frozenset()
        """Columns never learned from live events: the profile's, the excluded ones and
        ``__label__``."""
        self.learning_started: list[tuple[int, str]] = []
        """(batch index, column) of every column that started learning, until the caller
        takes them (the shell logs them: the core does not log)."""
        self.late_monitored_after: dict[str, int] = {}
        """The version's event count when each column learned from live events started
        to be monitored in this process (not state: ground truth reads it right away)."""
        self.last_window: ClosedWindow | None = None
        """Each feature's distribution in the last closed window (for pictures; not part of
        the state: ``None`` until a window closes, also after a restore)."""
        if profile is not None:
            self._use_profile(profile)

    @property
    def warming_up(self) -> bool:
        return self.profile is None

    @property
    def warmup_rows(self) -> int:
        """Warm-up events collected so far."""
        return self.warmup.rows

    @property
    def input_feature_count(self) -> int:
        """Monitored model inputs (``__prediction__`` and ``__label__`` excluded)."""
        return sum(1 for name in self.windows if not name.startswith("__"))

    def _use_profile(self, profile: ReferenceProfile) -> None:
        self.profile = profile
        self.not_late = frozenset(profile.features) | self.plan.excluded | {LABEL_FEATURE}
        for name, feature in sorted(profile.features.items()):
            if name in self.plan.excluded or name == LABEL_FEATURE:
                continue
            self._add_window(name, feature)
        self.numeric_batches = numeric_batches(list(self.windows.values()))

    def _add_window(self, name: str, feature: FeatureProfile) -> None:
        """Monitor ``name`` against ``feature`` with the plan's detectors for its kind."""
        detectors = self.plan.detectors[feature.kind]
        if name in self.plan.feature_detectors:
            # Checked against a configured profile's kinds at start-up; with a learned
            # reference, detectors that do not apply to the learned kind are left out.
            detectors = tuple(
                d for d in self.plan.feature_detectors[name] if feature.kind in DETECTORS[d].kinds
            )
        summary = feature.numeric if feature.kind is FeatureKind.NUMERIC else feature.categories
        if not detectors or summary is None:  # no values in the reference: nothing to compare
            return
        self.kinds[name] = feature.kind
        self.windows[name] = feature_window(
            feature, detectors, self.plan.adwin, self.plan.page_hinkley
        )

    def _monitor_late(self, features: list[FeatureProfile]) -> None:
        """Start monitoring columns whose reference was learned from live events."""
        for feature in features:
            self._add_window(feature.name, feature)
            self.late_monitored_after[feature.name] = self.sequence
        if features:
            self.numeric_batches = numeric_batches(list(self.windows.values()))

    def to_state(self) -> dict[str, Any]:
        """All mutable state, JSON-ready. A profile learned by warm-up is included; a
        configured one is referred to by id (it comes from the config on restore)."""
        learned = self.profile is not None and self.profile.source.kind == "warmup"
        state = {
            "version": STATE_VERSION,
            "sequence": self.sequence,
            "window_rows": self.window_rows,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "window_event_id": self.window_event_id,
            "window_key": self.window_key,
            "profile_id": None if self.profile is None else self.profile.profile_id,
            "learned_profile": self.profile.to_dict() if learned and self.profile else None,
            "warmup": self.warmup.to_state(),
            "warmup_rows": self.warmup.rows,
            "features": {name: window.to_state() for name, window in self.windows.items()},
        }
        if self.late:  # only then: states of versions without such columns keep their bytes
            state["late_features"] = self.late.to_state()
        return state

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        *,
        model_id: str,
        model_version: str,
        plan: MonitorPlan,
        profile: ReferenceProfile | None,
    ) -> ModelMonitor:
        """Rebuild a monitor from :meth:`to_state`; it continues exactly where it was.

        ``profile`` is the configured profile. A state the plan cannot continue (see
        :func:`state_mismatch`) is rejected with ValueError rather than silently mixed: the
        pipeline resets such a version instead of calling this.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported monitor state version {state.get('version')!r}")
        mismatch = profile_mismatch(state, profile)
        if mismatch is not None:
            raise ValueError(f"{model_id}/{model_version}: {mismatch}")
        monitor = cls.planned(
            state, model_id=model_id, model_version=model_version, plan=plan, profile=profile
        )
        monitor.sequence = int(state["sequence"])
        monitor.window_rows = int(state["window_rows"])
        monitor.window_start = float(state["window_start"])
        monitor.window_end = float(state["window_end"])
        monitor.window_event_id = str(state["window_event_id"])
        monitor.window_key = int(state["window_key"])
        monitor.warmup = WarmupSketch.from_state(
            state["warmup"],
            rows=int(state["warmup_rows"]),
            sample_values=plan.warmup_sample_values,
            max_categories=plan.warmup_max_categories,
        )
        detectors = monitor.detector_mismatch(state["features"])
        if detectors is not None:
            raise ValueError(f"{model_id}/{model_version}: {detectors}")
        for name, window_state in state["features"].items():
            monitor.windows[name].restore(window_state)
        return monitor

    @classmethod
    def planned(
        cls,
        state: dict[str, Any],
        *,
        model_id: str,
        model_version: str,
        plan: MonitorPlan,
        profile: ReferenceProfile | None,
    ) -> ModelMonitor:
        """A new monitor with the references of ``state`` (its learned profile, else
        ``profile``, plus the columns learned from live events) and the detectors ``plan``
        gives them, before any window state is restored (see :meth:`detector_mismatch`).
        Columns the plan excludes now are dropped from learning."""
        if state["learned_profile"] is not None:
            profile = ReferenceProfile.from_dict(state["learned_profile"])
        monitor = cls(model_id, model_version, plan, profile)
        if "late_features" in state:
            monitor.late.restore(state["late_features"])
            monitor.late.drop(plan.excluded)
            late = [f for f in monitor.late.monitored.values() if f.name not in plan.excluded]
            monitor._monitor_late(late)
        return monitor

    def detector_mismatch(self, features: dict[str, Any]) -> str | None:
        """Why the saved window states ``features`` (``to_state()["features"]``) cannot be
        continued by this monitor's windows, or ``None``: the monitored features differ, or
        a numeric feature's stateful stream detectors (ADWIN, Page-Hinkley) differ."""
        saved, planned = set(features), set(self.windows)
        if saved != planned:
            added, removed = sorted(planned - saved), sorted(saved - planned)
            return (
                "the monitored features changed (added: "
                f"{', '.join(added) or 'none'}; removed: {', '.join(removed) or 'none'})"
            )
        names = {d.name for d in STREAM_DETECTORS}
        for name, window in sorted(self.windows.items()):
            if not isinstance(window, NumericWindow):
                continue
            had = {d for d in names if features[name].get(d) is not None}
            if had != set(window.stream):
                return (
                    f"the stream detectors of feature {name!r} changed (from "
                    f"{', '.join(sorted(had)) or 'none'} to "
                    f"{', '.join(sorted(window.stream)) or 'none'})"
                )
        return None

    def monitored(self) -> set[tuple[str, str]]:
        """Every (feature, detector) this monitor evaluates."""
        return {
            (name, detector.name)
            for name, window in self.windows.items()
            for detector in window.detectors
        }

    def process(self, batch: ModelBatch) -> list[tuple[int, Finding]]:
        """Consume a batch; return each finding with the batch index that closed its window."""
        rows = len(batch)
        start = 0
        if self.profile is None:
            start = self._collect_warmup(batch)
            if self.profile is None:
                return []
        if start >= rows:
            return []
        started = self.late.observe(batch, start, self.sequence, self.not_late)
        self.learning_started.extend((int(batch.indices[row]), name) for row, name in started)
        columns = {name: _typed(kind, batch, name) for name, kind in self.kinds.items()}
        out: list[tuple[int, Finding]] = []
        for seg_start, seg_stop, closes_before in self._segments(batch, start):
            if closes_before and self.window_rows:
                index = int(batch.indices[seg_start])
                out.extend((index, f) for f in self._close_window())
                self._add_columns(columns, batch)
            if seg_stop == seg_start:
                continue
            for name, window in self.windows.items():
                window.update(columns[name], seg_start, seg_stop, self.sequence + 1)  # type: ignore[arg-type]
            if self.window_rows == 0:
                self.window_start = float(batch.timestamps[seg_start])
            self.window_rows += seg_stop - seg_start
            self.sequence += seg_stop - seg_start
            self.window_end = float(batch.timestamps[seg_stop - 1])
            self.window_event_id = batch.event_ids[seg_stop - 1]
            if self.plan.window_events is not None and self.window_rows >= self.plan.window_events:
                index = int(batch.indices[seg_stop - 1])
                out.extend((index, f) for f in self._close_window())
                self._add_columns(columns, batch)
        return out

    def _add_columns(self, columns: dict[str, Column], batch: ModelBatch) -> None:
        """Add the typed columns of features that started being monitored mid-batch."""
        for name, kind in self.kinds.items():
            if name not in columns:
                columns[name] = _typed(kind, batch, name)

    def _segments(self, batch: ModelBatch, start: int) -> list[tuple[int, int, bool]]:
        """Split rows ``start:`` at window boundaries: (start, stop, window closes before)."""
        rows = len(batch)
        if self.plan.window_events is not None:
            size = self.plan.window_events
            cuts = list(range(start + size - self.window_rows, rows, size))
            bounds = [start, *cuts, rows]
            return [(a, b, False) for a, b in itertools.pairwise(bounds) if b > a]
        assert self.plan.window_seconds is not None
        keys = np.floor(batch.timestamps[start:] / self.plan.window_seconds).astype(np.int64)
        effective = np.maximum.accumulate(np.maximum(keys, self.window_key))
        changes = np.flatnonzero(np.diff(np.concatenate(([self.window_key], effective)))) + start
        bounds = [start, *changes.tolist(), rows]
        self.window_key = int(effective[-1])
        starts = set(changes.tolist())
        return [(a, b, a in starts) for a, b in itertools.pairwise(bounds)]

    def _close_window(self) -> list[Finding]:
        coarse: dict[NumericWindow, CoarseWindow] = {}
        for batch in self.numeric_batches:
            coarse.update(zip(batch.windows, batch.evaluate(), strict=True))
        # Positional arguments, in Finding's field order: a keyword call costs a third more,
        # and there are a few findings per feature and window.
        model_id, version, rows = self.model_id, self.model_version, self.window_rows
        start, end, sequence, event_id = (
            self.window_start,
            self.window_end,
            self.sequence,
            self.window_event_id,
        )
        findings: list[Finding] = []
        distributions: dict[str, FeatureDistribution] = {}
        for name, window in self.windows.items():
            if isinstance(window, NumericWindow):
                stats = window.evaluate(rows, coarse.get(window))
            else:
                stats = window.evaluate(rows)
            findings.extend(
                Finding(
                    model_id,
                    version,
                    name,
                    s.detector,
                    s.statistic,
                    s.value,
                    s.sample_size,
                    start,
                    end,
                    rows,
                    sequence,
                    event_id,
                    s.evidence,
                )
                for s in stats
            )
            distributions[name] = window.distribution(rows)
            window.reset()
        self.last_window = ClosedWindow(start, end, rows, sequence, distributions)
        self.window_rows = 0
        self._monitor_late(self.late.take_complete(self.sequence))
        return findings

    def _collect_warmup(self, batch: ModelBatch) -> int:
        """Add rows to the warm-up; learn the profile when it is complete.

        Returns the index of the first row that was not used for warm-up.
        """
        take = min(len(batch), self.plan.warmup_events - self.warmup.rows)
        self.warmup.add(batch.columns, take, batch.numeric_columns)
        self.sequence += take
        if self.warmup.rows >= self.plan.warmup_events:
            profile = self.warmup.profile(
                model_id=self.model_id,
                model_version=self.model_version,
                top_k=self.plan.top_k_categories,
            )
            self.warmup = self.plan.new_warmup()
            self._use_profile(profile)
        return take

"""Features a model version's reference profile lacks, learned from live events.

A profile built from training data seldom has ``__prediction__``, and a service may send a
feature its profile was built without. Such a column (any column of the version's events
but ``__label__``, which the feature monitor does not monitor, and the ones the plan
excludes) learns its reference from live events as warm-up does
(:mod:`driftline.warmup`, same bounded :class:`~driftline.warmup.ColumnSketch`):

* learning starts at the first event, after the version has its profile, in which the
  column has a non-null value, and covers ``warmup_events`` events of the version from
  that one on (events without the column count as missing, as in warm-up);
* then the column has a reference (a :class:`~driftline.profile.FeatureProfile`, as warm-up
  would learn it) and is *complete*; it joins the monitored features at the version's
  next window close, so its first window is a whole one (events between are neither
  learned nor monitored);
* at most ``max_columns`` columns are learned per version (learning, complete and
  monitored together; the warm-up column cap), taken in stream order; a column beyond it
  is ignored, as every column outside the profile was before.

Every step follows the rows in stream order only, so the result does not depend on how the
stream is cut into batches, and :meth:`LateFeatures.to_state` / :meth:`~LateFeatures.from_state`
continue exactly (the state is bounded like a warm-up's).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftline.events import ModelBatch
from driftline.profile import FeatureProfile, feature_from_dict, feature_to_dict
from driftline.warmup import ColumnSketch

__all__ = ["LateFeatures", "LearningProgress"]


@dataclass(frozen=True, slots=True)
class LearningProgress:
    """One column learning its reference: events learned so far, of ``warmup_events``."""

    feature: str
    events: int
    warmup_events: int


@dataclass(slots=True)
class _Learning:
    column: ColumnSketch
    rows: int


@dataclass(frozen=True, slots=True)
class _Complete:
    profile: FeatureProfile
    completed_at: int
    """The version's sequence number (events seen) at the last learned event."""


class LateFeatures:
    """The columns one model version learns from live events (see the module docstring)."""

    def __init__(
        self,
        *,
        warmup_events: int,
        sample_values: int,
        max_categories: int,
        max_columns: int,
        top_k: int,
    ) -> None:
        self.warmup_events = warmup_events
        self.sample_values = sample_values
        self.max_categories = max_categories
        self.max_columns = max_columns
        self.top_k = top_k
        self.learning: dict[str, _Learning] = {}
        """Columns learning, in the order they started."""
        self.complete: dict[str, _Complete] = {}
        """Columns with a reference, waiting for the next window close."""
        self.monitored: dict[str, FeatureProfile] = {}
        """Columns with a reference that the monitor monitors (or would, with detectors)."""

    def __bool__(self) -> bool:
        return bool(self.learning or self.complete or self.monitored)

    def __len__(self) -> int:
        return len(self.learning) + len(self.complete) + len(self.monitored)

    def __contains__(self, name: object) -> bool:
        return name in self.learning or name in self.complete or name in self.monitored

    def progress(self) -> list[LearningProgress]:
        """Every column not monitored yet (learning, or complete), in the order it started."""
        n = self.warmup_events
        return [
            *(LearningProgress(name, state.rows, n) for name, state in self.learning.items()),
            *(LearningProgress(name, n, n) for name in self.complete),
        ]

    def observe(
        self, batch: ModelBatch, start: int, sequence: int, known: Container[str]
    ) -> list[tuple[int, str]]:
        """Learn from rows ``start:`` of ``batch`` (rows after the version's warm-up);
        ``sequence`` is the version's event count before row ``start``; ``known`` holds the
        columns not to learn (the profile's, excluded ones, ``__label__``). Returns (row,
        column) of the columns that started learning in these rows, in stream order."""
        rows = len(batch)
        started: list[tuple[int, str]] = []
        for name in batch.column_names():
            if name in known or name in self or len(self) >= self.max_columns:
                continue
            first = _first_value(batch, name, start)
            if first is None:
                continue
            started.append((first, name))
        continuing = list(self.learning)
        started = sorted(started)[: self.max_columns - len(self)]
        for name in continuing:
            self._learn(batch, name, start, rows, sequence)
        for first, name in started:
            self.learning[name] = _Learning(
                ColumnSketch(self.sample_values, self.max_categories), 0
            )
            self._learn(batch, name, first, rows, sequence + first - start)
        return started

    def _learn(self, batch: ModelBatch, name: str, first: int, rows: int, sequence: int) -> None:
        """Add rows ``first:`` (``sequence`` events seen before ``first``)."""
        state = self.learning[name]
        take = min(rows - first, self.warmup_events - state.rows)
        values = batch.column(name)
        if values is None:  # not in this batch: every row is missing
            state.column.add([None] * take, None)
        else:
            array = batch.numeric_array(name)
            if array is not None:
                array = array[first : first + take]
            state.column.add(values[first : first + take], array)
        state.rows += take
        if state.rows >= self.warmup_events:
            del self.learning[name]
            profile = state.column.feature(name, state.rows, self.top_k)
            self.complete[name] = _Complete(profile, sequence + take)

    def take_complete(self, sequence: int) -> list[FeatureProfile]:
        """The columns complete at or before the version's event ``sequence``, which become
        monitored now (a window closes after that event), in the order they completed."""
        done = [name for name, c in self.complete.items() if c.completed_at <= sequence]
        profiles = [self.complete.pop(name).profile for name in done]
        self.monitored.update((p.name, p) for p in profiles)
        return profiles

    def drop(self, names: Iterable[str]) -> None:
        """Forget ``names`` (learning or complete: excluded by the plan now)."""
        for name in names:
            self.learning.pop(name, None)
            self.complete.pop(name, None)

    def to_state(self) -> dict[str, Any]:
        """JSON-ready state (call only when non-empty: see :meth:`__bool__`)."""
        return {
            "learning": [
                [name, state.rows, state.column.to_state()] for name, state in self.learning.items()
            ],
            "complete": [
                [name, c.completed_at, feature_to_dict(c.profile)]
                for name, c in self.complete.items()
            ],
            "monitored": [[name, feature_to_dict(p)] for name, p in self.monitored.items()],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`to_state` (this instance is new and empty)."""
        for name, rows, column in state["learning"]:
            sketch = ColumnSketch.from_state(column, self.sample_values, self.max_categories)
            self.learning[str(name)] = _Learning(sketch, int(rows))
        for name, completed_at, feature in state["complete"]:
            self.complete[str(name)] = _Complete(
                feature_from_dict(str(name), feature), int(completed_at)
            )
        for name, feature in state["monitored"]:
            self.monitored[str(name)] = feature_from_dict(str(name), feature)


def _first_value(batch: ModelBatch, name: str, start: int) -> int | None:
    """The first row at or after ``start`` where column ``name`` has a non-null value."""
    array = batch.numeric_array(name)
    if array is not None:
        found = np.flatnonzero(~np.isnan(array[start:]))
        return None if not found.size else start + int(found[0])
    values = batch.column(name)
    assert values is not None
    return next((i for i in range(start, len(values)) if values[i] is not None), None)

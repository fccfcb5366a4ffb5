"""One champion / challenger comparison, and all of a pipeline's.

:class:`Comparison` reads both versions' :class:`~driftline.ground_truth.Outcomes` of each
batch in stream order (merged by batch position; a prediction before the pair its inline
label completes). It starts at the first event at which both versions have had ground
truth (so where batches are cut does not matter); events before are not compared. Then:

1. outcomes are paired (:mod:`driftline.comparisons.pairing`); each completed pair gives
   the difference ``d = loss_champion - loss_challenger`` (0/1 errors; absolute errors
   clipped to ``loss_bound`` for ``mae``), so ``d`` is in ``[-B, B]`` (``B`` = 1, or the
   bound); ``(d + B) / 2B`` goes into the confidence sequence
   (:mod:`driftline.comparisons.sequence`), in the order the pairs completed;
2. the interval for the mean difference gives the verdict, after ``min_pairs`` pairs:
   ``challenger_better`` when its lower end is above 0, ``champion_better`` when its upper
   end is below 0, ``no_difference`` when it lies within ``[-min_effect, +min_effect]``,
   ``insufficient_data`` otherwise (an interval excluding 0 within ``+-min_effect`` gives
   the ``*_better`` verdict). The interval is a running intersection, so it only
   shrinks: a ``*_better`` verdict, once reached, stays (unless the interval turns empty,
   which happens with probability below ``alpha``);
3. every verdict change is a :class:`~driftline.comparisons.event.ComparisonEvent`.

The guarantee: if the two versions are equally good (the mean difference is 0) and the
pairs' differences have that mean whatever came before (the assumption of the sequence),
the chance that a ``*_better`` verdict is *ever* emitted is at most ``alpha``. Unpaired
comparisons also assume that the loss of each version does not drift within
``max_wait_seconds`` (the two outcomes of a pair may be that far apart in event time).

Predictions are compared too (:mod:`driftline.comparisons.predictions`), labels or not.
"""

from __future__ import annotations

import traceback
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from driftline.cloudevents import format_time
from driftline.comparisons.event import DIFFERENCE, VERDICTS, ComparisonEvent, comparison_event
from driftline.comparisons.pairing import (
    CHALLENGER,
    CHAMPION,
    CompletedPair,
    OutcomePairing,
    WaitingRoom,
)
from driftline.comparisons.predictions import PredictionComparison
from driftline.comparisons.sequence import MeanConfidenceSequence
from driftline.comparisons.settings import METRIC_TASKS, ComparisonSettings
from driftline.ground_truth import Outcomes
from driftline.labels.ids import hash_ids
from driftline.performance.task import Task, TaskSpec

__all__ = ["STATE_VERSION", "Comparison", "Comparisons", "verdict_codes"]

STATE_VERSION = 1
ModelKey = tuple[str, str]
Floats = npt.NDArray[np.float64]

_PREDICTION, _OUTCOME = 0, 1


class Comparison:
    """One champion / challenger comparison (module docstring)."""

    def __init__(self, settings: ComparisonSettings, source: str) -> None:
        self.settings = settings
        self.source = source
        self.specs: list[TaskSpec | None] = [None, None]
        """Each version's task, from its first outcomes."""
        self.label_ranges: list[float | None] = [None, None]
        self.problem: str | None = None
        """Why the versions cannot be compared (then nothing more is)."""
        self.bound = 1.0
        """``B``: the largest loss (absolute errors are clipped to it)."""
        s = settings
        self.pairing = OutcomePairing(
            s.max_waiting, s.max_wait_seconds, s.max_pending_requests, s.pair_by_request_id
        )
        self.predictions: PredictionComparison | None = None
        self.sequence = MeanConfidenceSequence(s.alpha)
        self.verdict = VERDICTS[0]
        self.watermark = -np.inf
        self.loss_sums = [0.0, 0.0]
        """Per side, the sum of (unclipped) losses over the compared pairs."""
        self.difference_sum = 0.0
        """Sum of the (clipped) differences."""
        self.span: list[float] | None = None
        """First and last prediction time of the compared pairs."""
        self.last_time: float | None = None
        """Completion time of the last compared pair."""
        self.rows = 0
        """Rows (predictions and joined outcomes of both versions) read: orders two saved
        states of the comparison."""
        self.home: ModelKey | None = None
        """The version whose saved state holds this comparison's (:meth:`Comparisons.state_of`)."""

    @property
    def keys(self) -> tuple[ModelKey, ModelKey]:
        """The champion's and the challenger's (model_id, model_version)."""
        s = self.settings
        return (s.model_id, s.champion), (s.model_id, s.challenger)

    @property
    def stopped(self) -> bool:
        """Whether an unexpected exception stopped it (see :meth:`Comparisons.observe`)."""
        return self.problem is not None and self.problem.startswith(STOPPED)

    @property
    def name(self) -> str:
        """``<model_id> <champion> vs <challenger>``, for logs."""
        s = self.settings
        return f"{s.model_id} {s.champion} vs {s.challenger}"

    # -- reading a batch -----------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self.specs[CHAMPION] is not None and self.specs[CHALLENGER] is not None

    def observe(
        self, champion: Outcomes | None, challenger: Outcomes | None
    ) -> list[tuple[int, ComparisonEvent]]:
        """Read one batch's outcomes of both versions; return the events of the verdict
        changes, each with the batch position of the event that caused it."""
        sides = (champion, challenger)
        order, rows = _merged(sides)
        self.rows += len(rows)
        live: list[tuple[int, int, int]] = []
        """The rows compared (from the start on), in stream order."""
        for row in order.tolist():
            side, kind, i = rows[row]
            out = sides[side]
            assert out is not None
            if self.specs[side] is None:
                self._know(side, out)
            if self.started and self.problem is None:
                live.append(rows[row])
        if not live:
            return []
        hashes = [_hashes(side) for side in sides]
        watermarks: list[float] = []
        completed: list[tuple[int, int, CompletedPair]] = []
        for row, (side, kind, i) in enumerate(live):
            out = sides[side]
            assert out is not None
            events, requests = hashes[side]
            if kind == _PREDICTION:
                self.watermark = max(self.watermark, float(out.prediction_times[i]))
                watermarks.append(self.watermark)
                self.pairing.prediction(side, events[i], requests[i])
                continue
            time = float(out.completion_times[i])
            self.watermark = max(self.watermark, time)
            watermarks.append(self.watermark)
            pair = self.pairing.outcome(
                side,
                events[len(out.prediction_ids) + i],
                float(out.losses[i]),
                float(out.pair_prediction_times[i]),
                time,
                self.watermark,
            )
            if pair is not None:
                completed.append((row, int(out.pair_indices[i]), pair))
        changes = self._compare(completed) if completed else []
        return self._compare_predictions(sides, live, hashes, watermarks, changes)

    def _compare_predictions(
        self,
        sides: tuple[Outcomes | None, Outcomes | None],
        live: list[tuple[int, int, int]],
        hashes: list[tuple[list[int], list[int | None]]],
        watermarks: list[float],
        changes: list[tuple[int, int, ComparisonEvent]],
    ) -> list[tuple[int, ComparisonEvent]]:
        """Feed the predictions to :attr:`predictions`; the verdict changes' events, each
        with the predictions' report as it was at its pair."""
        predictions = self.predictions
        assert predictions is not None
        rows = [(row, side, i) for row, (side, kind, i) in enumerate(live) if kind == _PREDICTION]
        prepared = [
            None if out is None else predictions.prepare(side, out.prediction_codes)
            for side, out in enumerate(sides)
        ]
        at = np.array([row for row, _, _ in rows], dtype=np.int64)
        columns: list[list[Any]] = [[], [], [], [], [], []]
        for row, side, i in rows:
            out, ready = sides[side], prepared[side]
            assert out is not None and ready is not None
            for column, value in zip(
                columns,
                (
                    side,
                    ready[0][i],
                    ready[1][i],
                    out.prediction_times[i],
                    hashes[side][1][i],
                    watermarks[row],
                ),
                strict=True,
            ):
                column.append(value)
        side_of = np.array(columns[0], dtype=np.int64)
        values, bins = np.array(columns[1], dtype=np.float64), np.array(columns[2], np.int64)
        times = np.array(columns[3], dtype=np.float64)
        requests, marks = columns[4], columns[5]
        out_events: list[tuple[int, ComparisonEvent]] = []
        start = 0
        for row, index, event in changes:
            end = int(np.searchsorted(at, row, side="right"))
            piece = slice(start, end)
            predictions.update(
                side_of[piece], values[piece], bins[piece], times[piece], requests[piece],
                marks[piece],
            )  # fmt: skip
            start = end
            event.event["data"]["predictions"] = predictions.report()
            out_events.append((index, event))
        piece = slice(start, len(rows))
        predictions.update(
            side_of[piece], values[piece], bins[piece], times[piece], requests[piece], marks[piece]
        )
        return out_events

    def _know(self, side: int, outcomes: Outcomes) -> None:
        """``side``'s task is known (its first outcomes); once both are, start."""
        self.specs[side] = outcomes.spec
        self.label_ranges[side] = outcomes.label_range
        if self.started:
            self.problem = self._start()

    def _start(self) -> str | None:
        champion, challenger = self.specs
        assert champion is not None and challenger is not None
        if champion.task is not challenger.task or champion.classes != challenger.classes:
            return (
                f"the versions' tasks differ ({champion.task} {list(champion.classes)} vs "
                f"{challenger.task} {list(challenger.classes)})"
            )
        metric = self.settings.metric_for(champion.task)
        if champion.task not in METRIC_TASKS[metric]:
            return f"metric {metric!r} does not fit the models' task ({champion.task})"
        if champion.task is Task.REGRESSION:
            bound = self.settings.loss_bound
            if bound is None:
                bound = next((r for r in self.label_ranges if r is not None and r > 0), None)
            if bound is None:
                return (
                    "mae needs a bound on absolute errors: set comparisons[].loss_bound "
                    "(the reference profile gives no label range)"
                )
            self.bound = bound
        self.predictions = PredictionComparison(
            (champion, challenger),
            WaitingRoom(self.settings.max_waiting, self.settings.max_wait_seconds),
        )
        return None

    def _compare(
        self, completed: list[tuple[int, int, CompletedPair]]
    ) -> list[tuple[int, int, ComparisonEvent]]:
        """Feed the completed pairs (live row, batch position, pair) to the sequence; the
        events of the verdict changes, with their row and batch position (their
        ``predictions`` are set by :meth:`_compare_predictions`)."""
        pairs = [pair for _, _, pair in completed]
        bound = self.bound
        champion = np.array([p.champion_loss for p in pairs], dtype=np.float64)
        challenger = np.array([p.challenger_loss for p in pairs], dtype=np.float64)
        difference = np.minimum(champion, bound) - np.minimum(challenger, bound)
        before = self.sequence.count
        lower, upper = self.sequence.update((difference + bound) / (2.0 * bound))
        lower, upper = 2.0 * bound * lower - bound, 2.0 * bound * upper - bound
        counts = before + 1 + np.arange(len(pairs))
        verdicts = verdict_codes(
            lower, upper, counts, self.settings.min_effect, self.settings.min_pairs
        ).tolist()
        champion_sums = _carried_cumsum(self.loss_sums[CHAMPION], champion)
        challenger_sums = _carried_cumsum(self.loss_sums[CHALLENGER], challenger)
        difference_sums = _carried_cumsum(self.difference_sum, difference)
        paired_before = self.pairing.paired - sum(p.paired for p in pairs)
        paired = paired_before + np.cumsum([p.paired for p in pairs])
        out: list[tuple[int, int, ComparisonEvent]] = []
        for j, (row, index, pair) in enumerate(completed):
            self._extend_span(pair)
            verdict = VERDICTS[verdicts[j]]
            if verdict == self.verdict:
                continue
            previous, self.verdict = self.verdict, verdict
            n = int(counts[j])
            data = self._summary(
                n,
                int(paired[j]),
                champion_sums[j] / n,
                challenger_sums[j] / n,
                (difference_sums[j] / n, float(lower[j]), float(upper[j])),
            )
            data["previous_verdict"] = previous
            s = self.settings
            event = comparison_event(
                source=self.source,
                model_id=s.model_id,
                champion=s.champion,
                challenger=s.challenger,
                verdict=verdict,
                pairs=n,
                time=pair.completion_time,
                data=data,
            )
            out.append((row, index, event))
        self.loss_sums = [float(champion_sums[-1]), float(challenger_sums[-1])]
        self.difference_sum = float(difference_sums[-1])
        self.last_time = pairs[-1].completion_time
        return out

    def _extend_span(self, pair: CompletedPair) -> None:
        if self.span is None:
            self.span = [pair.first_prediction_time, pair.last_prediction_time]
        else:
            self.span = [
                min(self.span[0], pair.first_prediction_time),
                max(self.span[1], pair.last_prediction_time),
            ]

    # -- reporting -----------------------------------------------------------------------

    def _summary(
        self,
        pairs: int,
        paired: int,
        champion_metric: float | None,
        challenger_metric: float | None,
        difference: tuple[float, float, float] | None,
    ) -> dict[str, Any]:
        """What an event and the status report of the comparison (README schema)."""
        s = self.settings
        spec = self.specs[CHAMPION]
        estimate = None
        if difference is not None:
            mean, lower, upper = difference
            estimate = {
                "estimate": round(mean, 6),
                "lower": round(lower, 6),
                "upper": round(upper, 6),
                "definition": DIFFERENCE,
            }
        return {
            "metric": None if spec is None else s.metric_for(spec.task),
            "champion_metric": None if champion_metric is None else round(champion_metric, 6),
            "challenger_metric": None if challenger_metric is None else round(challenger_metric, 6),
            "difference": estimate,
            "paired": paired,
            "unpaired": pairs - paired,
            "span": None
            if self.span is None
            else {"start": format_time(self.span[0]), "end": format_time(self.span[1])},
            "alpha": s.alpha,
            "min_effect": s.min_effect,
            "loss_bound": self.bound,
            "predictions": None if self.predictions is None else self.predictions.report(),
        }

    def status(self) -> dict[str, Any]:
        """The comparison now, JSON-ready (for ``/v1/status``)."""
        s = self.settings
        n = self.sequence.count
        difference = None
        if n:
            bound = self.bound
            difference = (
                self.difference_sum / n,
                2.0 * bound * self.sequence.lower - bound,
                2.0 * bound * self.sequence.upper - bound,
            )
        return {
            "model_id": s.model_id,
            "champion": s.champion,
            "challenger": s.challenger,
            "started": self.started and self.problem is None,
            "reason": self.problem
            if self.problem is not None
            else (None if self.started else "waiting for ground truth of both versions"),
            "verdict": self.verdict,
            "pairs": n,
            **self._summary(
                n,
                self.pairing.paired,
                self.loss_sums[CHAMPION] / n if n else None,
                self.loss_sums[CHALLENGER] / n if n else None,
                difference,
            ),
            "waiting": self.pairing.room.waiting(),
            "expired": self.pairing.room.expired,
            "requests_forgotten": self.pairing.memory.forgotten,
            "last_pair_time": None if self.last_time is None else format_time(self.last_time),
        }

    # -- state ---------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything mutable, JSON-ready; :meth:`restore` continues exactly."""
        return {
            "version": STATE_VERSION,
            "settings": self.settings.model_dump(mode="json"),
            "specs": [None if spec is None else _spec_state(spec) for spec in self.specs],
            "label_ranges": list(self.label_ranges),
            "problem": self.problem,
            "bound": self.bound,
            "pairing": self.pairing.to_state(),
            "predictions": None if self.predictions is None else self.predictions.to_state(),
            "sequence": self.sequence.to_state(),
            "verdict": self.verdict,
            "watermark": None if self.watermark == -np.inf else self.watermark,
            "loss_sums": list(self.loss_sums),
            "difference_sum": self.difference_sum,
            "span": self.span,
            "last_time": self.last_time,
            "rows": self.rows,
        }

    def fits(self, state: Mapping[str, Any]) -> bool:
        """Whether ``state`` was saved with these settings (else the comparison starts
        afresh: another alpha, metric or bound makes the old interval meaningless)."""
        return state.get("settings") == self.settings.model_dump(mode="json")

    def restore(self, state: Mapping[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported comparison state version {state.get('version')!r}")
        self.specs = [None if spec is None else _spec_from(spec) for spec in state["specs"]]
        self.label_ranges = [None if r is None else float(r) for r in state["label_ranges"]]
        self.problem = state["problem"]
        self.bound = float(state["bound"])
        self.pairing.restore(state["pairing"])
        if self.started and self.problem is None:
            champion, challenger = self.specs
            assert champion is not None and challenger is not None
            s = self.settings
            self.predictions = PredictionComparison(
                (champion, challenger), WaitingRoom(s.max_waiting, s.max_wait_seconds)
            )
            self.predictions.restore(state["predictions"])
        self.sequence = MeanConfidenceSequence.from_state(state["sequence"], self.settings.alpha)
        verdict = state["verdict"]
        if verdict not in VERDICTS:
            raise ValueError(f"unknown verdict {verdict!r}")
        self.verdict = verdict
        self.watermark = -np.inf if state["watermark"] is None else float(state["watermark"])
        self.loss_sums = [float(v) for v in state["loss_sums"]]
        self.difference_sum = float(state["difference_sum"])
        self.span = None if state["span"] is None else [float(v) for v in state["span"]]
        self.last_time = None if state["last_time"] is None else float(state["last_time"])
        self.rows = int(state["rows"])


STOPPED = "stopped by an internal error"
"""The start of the status reason of a comparison an exception stopped."""


@dataclass(slots=True)
class ComparisonsRead:
    """What :meth:`Comparisons.observe` made of one batch."""

    events: list[tuple[int, ComparisonEvent]] = field(default_factory=list)
    changed: set[ModelKey] = field(default_factory=set)
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(comparison name, traceback) of each comparison stopped by an exception."""


class Comparisons:
    """Every configured comparison of a pipeline."""

    def __init__(self, settings: Iterable[ComparisonSettings], source: str) -> None:
        self.comparisons = [Comparison(s, source) for s in settings]
        self.versions: frozenset[ModelKey] = frozenset(
            key
            for c in self.comparisons
            for key in (
                (c.settings.model_id, c.settings.champion),
                (c.settings.model_id, c.settings.challenger),
            )
        )
        """The model versions compared: the pipeline hands over their outcomes."""

    def observe(
        self, outcomes: Mapping[ModelKey, Outcomes], monitored: Container[ModelKey]
    ) -> ComparisonsRead:
        """Read one batch's outcomes: the comparison events (in stream order, with their
        batch positions), the versions whose saved state changed (the *home* of each
        comparison that changed: see :meth:`state_of`) and the comparisons an unexpected
        exception stopped in this batch, with its traceback.

        A stopped comparison (its status's ``reason`` says why, and its saved state keeps
        it) compares nothing more until its settings change; the versions it compares and
        every other comparison go on."""
        read = ComparisonsRead()
        for comparison in self.comparisons:
            champion_key, challenger_key = comparison.keys
            champion = outcomes.get(champion_key)
            challenger = outcomes.get(challenger_key)
            if (champion is None and challenger is None) or comparison.stopped:
                continue
            try:
                read.events += comparison.observe(champion, challenger)
            except Exception as exc:
                comparison.problem = f"{STOPPED}: {type(exc).__name__}: {exc}"
                read.errors.append((comparison.name, "".join(traceback.format_exception(exc))))
            comparison.home = champion_key if champion_key in monitored else challenger_key
            read.changed.add(comparison.home)
        read.events.sort(key=lambda item: item[0])  # stable: one comparison's events in order
        return read

    def status(self) -> list[dict[str, Any]]:
        """One status dict per comparison, in configuration order."""
        return [c.status() for c in self.comparisons]

    def state_of(self, home: ModelKey) -> list[dict[str, Any]]:
        """The states of the comparisons saved with version ``home``'s state: its
        champion's once the champion is monitored, else its challenger's (a comparison
        changes only when one of them is)."""
        return [c.to_state() for c in self.comparisons if c.home == home]

    def restore(self, states: Mapping[ModelKey, Iterable[Mapping[str, Any]]]) -> None:
        """Continue from the :meth:`state_of` of every version (by version). A state saved
        with other settings (or of a comparison no longer configured) is dropped; of two
        states of one comparison (its home moved), the later one counts."""
        for home, saved in states.items():
            for state in saved:
                for comparison in self.comparisons:
                    if comparison.fits(state) and int(state["rows"]) > comparison.rows:
                        comparison.restore(state)
                        comparison.home = home


def verdict_codes(
    lower: Floats,
    upper: Floats,
    counts: npt.NDArray[np.int64],
    min_effect: float,
    min_pairs: int,
) -> npt.NDArray[np.int64]:
    """The verdict (index into :data:`VERDICTS`) of each interval ``[lower, upper]`` of the
    difference, reached after ``counts`` pairs (module docstring).

    >>> verdict_codes(np.array([0.01, -0.004, -0.2, -0.1]), np.array([0.1, 0.003, -0.01, 0.1]),
    ...               np.array([500, 500, 500, 50]), 0.01, 100).tolist()
    [2, 1, 3, 0]
    """
    codes = np.zeros(lower.size, dtype=np.int64)
    codes[(lower >= -min_effect) & (upper <= min_effect)] = 1
    codes[lower > 0.0] = 2
    codes[upper < 0.0] = 3
    codes[counts < min_pairs] = 0
    return codes


def _merged(
    sides: tuple[Outcomes | None, Outcomes | None],
) -> tuple[npt.NDArray[np.int64], list[tuple[int, int, int]]]:
    """Both versions' predictions and pairs in stream order: the order, and per row
    ``(side, kind, index within its array)``."""
    keys: list[npt.NDArray[np.int64]] = []
    rows: list[tuple[int, int, int]] = []
    for side, out in enumerate(sides):
        if out is None:
            continue
        keys.append(out.prediction_indices * 2)
        rows += [(side, _PREDICTION, i) for i in range(len(out.prediction_ids))]
        keys.append(out.pair_indices * 2 + 1)
        rows += [(side, _OUTCOME, i) for i in range(len(out.pair_ids))]
    if not rows:
        return np.zeros(0, np.int64), rows
    return np.argsort(np.concatenate(keys), kind="stable"), rows


def _hashes(out: Outcomes | None) -> tuple[list[int], list[int | None]]:
    """Event id hashes (predictions, then pairs) and request id hashes (predictions)."""
    if out is None:
        return [], []
    events: list[int] = hash_ids([*out.prediction_ids, *out.pair_ids]).tolist()
    present = [r for r in out.request_ids if r is not None]
    hashed = iter(hash_ids(present).tolist())
    requests = [None if r is None else next(hashed) for r in out.request_ids]
    return events, requests


def _carried_cumsum(carry: float, values: Floats) -> Floats:
    sums: Floats = np.cumsum(np.concatenate(([carry], values)))[1:]
    return sums


def _spec_state(spec: TaskSpec) -> list[Any]:
    return [spec.task.value, spec.prediction_kind, spec.decision_threshold, list(spec.classes)]


def _spec_from(state: list[Any]) -> TaskSpec:
    task, kind, threshold, classes = state
    return TaskSpec(Task(task), kind, float(threshold), tuple(classes))

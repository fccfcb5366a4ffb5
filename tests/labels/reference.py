"""A per-event reference implementation of the label join, written from the semantics in
:mod:`driftline.labels` with dicts and deques, for the property tests (the oracle).

It rescans everything after every event: slow, and obviously what the docstring says.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from driftline.labels import JoinInput, JoinLimits

Pair = tuple[float, float, float, float, int]


@dataclass
class Prediction:
    event_id: str
    time: float
    value: float
    state: str  # "pending", "joined" or "expired"


@dataclass
class Label:
    event_id: str
    time: float
    value: float
    state: str  # "waiting", "done" or "unmatched"


class ReferenceJoin:
    def __init__(self, limits: JoinLimits) -> None:
        self.limits = limits
        self.predictions: deque[Prediction] = deque()  # remembered, oldest first
        self.latest: dict[str, Prediction] = {}  # latest remembered prediction per id
        self.labels: deque[Label] = deque()  # remembered feedback labels, oldest first
        self.waiting: dict[str, Label] = {}
        self.watermark = -math.inf
        self.counts = dict.fromkeys(
            ("joined", "inline", "expired", "unmatched", "duplicate", "late"), 0
        )

    def snapshot(self) -> dict[str, int]:
        return {
            **self.counts,
            "early_buffered_now": sum(label.state == "waiting" for label in self.labels),
            "pending_now": sum(p.state == "pending" for p in self.predictions),
        }

    def process(self, batch: JoinInput) -> list[Pair]:
        pairs: list[Pair] = []
        for i in range(len(batch)):
            pair = self.event(
                int(batch.positions[i]),
                batch.event_ids[i],
                float(batch.timestamps[i]),
                bool(batch.has_prediction[i]),
                bool(batch.has_label[i]),
                float(batch.predictions[i]),
                float(batch.labels[i]),
            )
            if pair is not None:
                pairs.append(pair)
        return pairs

    def event(
        self,
        position: int,
        event_id: str,
        time: float,
        has_prediction: bool,
        has_label: bool,
        prediction: float,
        label: float,
    ) -> Pair | None:
        self.watermark = max(self.watermark, time)
        self.expire()
        if has_prediction:
            pair = self.prediction(position, event_id, time, prediction, label, has_label)
        elif has_label:
            pair = self.feedback(position, event_id, time, label)
        else:
            pair = None
        self.expire()
        return pair

    def prediction(
        self, position: int, event_id: str, time: float, value: float, label: float, inline: bool
    ) -> Pair | None:
        horizon = self.limits.horizon_seconds
        old = self.latest.get(event_id)
        if old is not None and old.state == "pending":
            old.state = "expired"  # replaced
            self.counts["expired"] += 1
        new = Prediction(event_id, time, value, "pending")
        self.predictions.append(new)
        self.latest[event_id] = new
        waiting = self.waiting.pop(event_id, None)
        if waiting is not None:
            waiting.state = "done"
        if inline:
            new.state = "joined"
            self.counts["joined"] += 1
            self.counts["inline"] += 1
            if waiting is not None:
                self.counts["duplicate"] += 1
            return (value, label, time, time, position)
        if waiting is None:
            return None
        if waiting.time - time > horizon:
            self.counts["late"] += 1
            return None
        new.state = "joined"
        self.counts["joined"] += 1
        return (value, waiting.value, time, waiting.time, position)

    def feedback(self, position: int, event_id: str, time: float, value: float) -> Pair | None:
        horizon = self.limits.horizon_seconds
        label = Label(event_id, time, value, "done")
        self.labels.append(label)
        prediction = self.latest.get(event_id)
        if prediction is not None and prediction.state == "pending":
            prediction.state = "joined"
            self.counts["joined"] += 1
            return (prediction.value, value, prediction.time, time, position)
        if prediction is not None and prediction.state == "joined":
            self.counts["duplicate"] += 1
        elif prediction is not None and time - prediction.time > horizon:
            self.counts["late"] += 1
        elif event_id in self.waiting:
            self.counts["duplicate"] += 1
        else:
            label.state = "waiting"
            self.waiting[event_id] = label
        return None

    def expire(self) -> None:
        """Apply capacity and horizon to everything remembered (after each step)."""
        cutoff = self.watermark - self.limits.horizon_seconds
        while len(self.predictions) > self.limits.max_pending:
            gone = self.predictions.popleft()
            if self.latest.get(gone.event_id) is gone:
                del self.latest[gone.event_id]
            if gone.state == "pending":
                gone.state = "expired"
                self.counts["expired"] += 1
        for prediction in self.predictions:
            if prediction.state == "pending" and prediction.time < cutoff:
                prediction.state = "expired"
                self.counts["expired"] += 1
        while len(self.labels) > self.limits.max_early_labels:
            gone_label = self.labels.popleft()
            if gone_label.state == "waiting":
                self.unmatched(gone_label)
        for label in self.labels:
            if label.state == "waiting" and label.time < cutoff:
                self.unmatched(label)

    def unmatched(self, label: Label) -> None:
        label.state = "unmatched"
        self.counts["unmatched"] += 1
        del self.waiting[label.event_id]

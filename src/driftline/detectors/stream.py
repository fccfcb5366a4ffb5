"""Stream detectors: river-identical ADWIN and Page-Hinkley, counted per window.

They run across windows on a numeric feature's values; at each window close they report
how many changes they detected in it, and the event sequence numbers of the first ten.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from driftline.detectors.adwin import ADWIN
from driftline.detectors.base import Detector, NumericSample, Statistic, StreamDetector
from driftline.detectors.page_hinkley import PageHinkley
from driftline.profile import FeatureKind


class StreamDetections(Detector):
    """Detections of a :class:`StreamDetector` in the window (a stateful detector).

    Its state is the detector's bytes (:meth:`detector_state`) and the sequence numbers of
    the window's detections (:attr:`hits`).
    """

    algorithm: ClassVar[type[StreamDetector]]
    kinds = frozenset({FeatureKind.NUMERIC})
    warning = 0.0
    critical = None

    def __init__(self, **parameters: Any) -> None:
        self.detector = self.algorithm(**parameters)
        self.hits: list[int] = []
        """Sequence numbers of the events at which a change was detected in the window."""

    @classmethod
    def create(cls, parameters: Mapping[str, Any]) -> Self:
        return cls(**parameters)

    def update(
        self, present: npt.NDArray[np.float64], is_present: npt.NDArray[np.bool_], first: int
    ) -> None:
        """Consume the window's new values ``present`` (those where ``is_present`` is true,
        in rows whose first has sequence number ``first``)."""
        hits = self.detector.update_many(present)
        if hits.size:
            rows = np.flatnonzero(is_present)[hits]
            self.hits.extend(int(first + r) for r in rows)

    def evaluate_numeric(self, sample: NumericSample) -> Statistic:
        hits = self.hits
        return self.result(float(len(hits)), sample.total, {"detection_sequences": hits[:10]})

    def reset(self) -> None:
        """Start a new window (the detector itself carries on)."""
        self.hits = []

    def detector_state(self) -> str:
        """The detector's state, base64 of its bytes."""
        return base64.b64encode(self.detector.to_bytes()).decode("ascii")

    def restore(self, detector_state: str | None, hits: list[int]) -> None:
        """Continue from :meth:`detector_state` (None: keep the fresh detector) and hits."""
        if detector_state is not None:
            self.detector = self.algorithm.from_bytes(base64.b64decode(detector_state))
        self.hits = hits


class AdwinDetections(StreamDetections):
    """ADWIN (river-identical) change detections in the window."""

    name = "adwin"
    statistic = "adwin_detections"
    display_name = "ADWIN detections"
    meaning = "It counts the changes in the feature's mean that ADWIN detected in the window."
    algorithm = ADWIN


class PageHinkleyDetections(StreamDetections):
    """Page-Hinkley (river-identical) change detections in the window."""

    name = "page_hinkley"
    statistic = "page_hinkley_detections"
    display_name = "Page-Hinkley detections"
    meaning = (
        "It counts the changes in the feature's mean that Page-Hinkley detected in the window."
    )
    algorithm = PageHinkley

"""Building join inputs for the tests: events as tuples, batches from cut points."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st

from driftline.labels import JoinedPairs, JoinInput, JoinLimits

# (position, event_id, time, kind, value); kind: "p" prediction, "i" prediction with an
# inline label, "l" feedback label, "n" neither.
Event = tuple[int, str, float, str, float]


def join_input(events: Sequence[Event]) -> JoinInput:
    kinds = [kind for _, _, _, kind, _ in events]
    values = [value for _, _, _, _, value in events]
    return JoinInput(
        positions=np.array([e[0] for e in events], np.int64),
        event_ids=[e[1] for e in events],
        timestamps=np.array([e[2] for e in events], np.float64),
        has_prediction=np.array([k in "pi" for k in kinds], np.bool_),
        has_label=np.array([k in "il" for k in kinds], np.bool_),
        predictions=np.array(
            [v if k in "pi" else math.nan for k, v in zip(kinds, values, strict=True)]
        ),
        labels=np.array(
            [
                v + 0.5 if k == "i" else v if k == "l" else math.nan
                for k, v in zip(kinds, values, strict=True)
            ]
        ),
    )


def batches(events: Sequence[Event], cuts: Sequence[int]) -> list[JoinInput]:
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(events)}), len(events)]
    return [join_input(events[a:b]) for a, b in itertools.pairwise(bounds)]


def pair_tuples(pairs: JoinedPairs) -> list[tuple[float, float, float, float, int]]:
    return list(
        zip(
            pairs.prediction.tolist(),
            pairs.label.tolist(),
            pairs.prediction_time.tolist(),
            pairs.label_time.tolist(),
            pairs.completed_at.tolist(),
            strict=True,
        )
    )


@st.composite
def streams(draw: st.DrawFn, max_events: int = 60) -> list[Event]:
    n = draw(st.integers(0, max_events))
    ids = draw(st.sampled_from(["ab", "abc", "abcdef", "abcdefghijklmnop"]))
    position = draw(st.integers(0, 5))
    time = float(draw(st.integers(0, 100)))
    events: list[Event] = []
    for k in range(n):
        position += draw(st.integers(1, 3))
        # mostly forward in time, sometimes back (out of order), sometimes a jump
        time += float(draw(st.sampled_from([0, 0, 1, 1, 2, 3, -2, -6, 15])))
        kind = draw(st.sampled_from("ppllin" if k % 3 else "pli"))
        events.append((position, draw(st.sampled_from(ids)), time, kind, float(k)))
    return events


limits_strategy = st.builds(
    JoinLimits,
    max_pending=st.integers(1, 8),
    horizon_seconds=st.sampled_from([0.5, 3.0, 10.0, 1e6]),
    max_early_labels=st.integers(1, 5),
)

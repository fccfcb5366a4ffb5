"""The comparison event (``io.driftline.comparison.v1``): a comparison's verdict changed.

Schema of ``data`` (README, "Champion vs challenger")::

    {"model_id": "credit", "champion": "7", "challenger": "8",
     "verdict": "challenger_better", "previous_verdict": "insufficient_data",
     "metric": "error_rate",
     "champion_metric": 0.112, "challenger_metric": 0.081,
     "difference": {"estimate": 0.031, "lower": 0.004, "upper": 0.058,
                    "definition": "champion - challenger"},
     "pairs": 2480, "paired": 2480, "unpaired": 0,
     "span": {"start": "<first prediction time>", "end": "<last prediction time>"},
     "alpha": 0.05, "min_effect": 0.01, "loss_bound": 1.0,
     "predictions": {...}}

The difference is the champion's metric minus the challenger's: positive means the
challenger makes fewer errors. The id is a hash of the pair, the verdict and the number of
pairs that decided it, so a replay after a crash re-emits the same id; the Kafka key is the
``model_id`` (both versions of a model are in one partition).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from driftline.cloudevents import (
    COMPARISON_TYPE,
    cloud_event,
    deterministic_id,
    encode_event,
    format_time,
)

__all__ = ["DIFFERENCE", "VERDICTS", "ComparisonEvent", "Verdict", "comparison_event"]

Verdict = Literal["insufficient_data", "no_difference", "challenger_better", "champion_better"]
VERDICTS: tuple[Verdict, ...] = (
    "insufficient_data",
    "no_difference",
    "challenger_better",
    "champion_better",
)
DIFFERENCE = "champion - challenger"
"""How the difference is taken (positive: the challenger's loss is lower)."""


@dataclass(frozen=True, slots=True)
class ComparisonEvent:
    """One verdict change of one comparison, with its CloudEvent (treat it as read-only)."""

    id: str
    model_id: str
    champion: str
    challenger: str
    verdict: Verdict
    pairs: int
    """Pairs compared when the verdict changed (the event's position in its comparison)."""
    time: float
    """Event time of the event that completed the deciding pair (epoch seconds)."""
    event: dict[str, Any] = field(repr=False)

    @property
    def key(self) -> str:
        """Kafka message key: the model id."""
        return self.model_id

    def to_json(self) -> bytes:
        """The CloudEvent as stable JSON bytes (the Kafka message value)."""
        return encode_event(self.event)


def comparison_event(
    *,
    source: str,
    model_id: str,
    champion: str,
    challenger: str,
    verdict: Verdict,
    pairs: int,
    time: float,
    data: dict[str, Any],
) -> ComparisonEvent:
    """The event of ``verdict`` reached at the ``pairs``-th pair; ``data`` holds the rest
    of the schema (module docstring)."""
    event_id = deterministic_id("comparison", model_id, champion, challenger, verdict, str(pairs))
    body = {
        "model_id": model_id,
        "champion": champion,
        "challenger": challenger,
        "verdict": verdict,
        "pairs": pairs,
        **data,
    }
    event = cloud_event(
        type=COMPARISON_TYPE,
        source=source,
        id=event_id,
        subject=f"{model_id}/{champion}/{challenger}",
        time=format_time(time),
        data=body,
    )
    return ComparisonEvent(event_id, model_id, champion, challenger, verdict, pairs, time, event)

"""Settings of the label join (config key ``labels``)."""

from __future__ import annotations

from pydantic import Field

from driftline.labels.join import MAX_LIMIT, JoinLimits
from driftline.settings_base import StrictSettings


class LabelSettings(StrictSettings):
    """Bounds of the label join, per model version (config key ``labels``).

    Memory: about 29 bytes per remembered prediction and per remembered feedback label, so
    at most about 29 x (``max_pending`` + ``max_early_labels``) bytes per model version:
    5.8 MB with the defaults, allocated only as the version's traffic needs it. Every
    prediction of a version with ground truth is remembered, labels or not, and the whole
    join is part of the version's checkpointed state (rewritten at each checkpoint while
    the version gets events): size ``max_pending`` to what you need, not more.

    - ``max_pending`` = 100,000: the labels of the last 100,000 predictions, e.g. 27
      predictions/s with labels an hour late, or 1 per second with labels a day late. Size
      it as prediction rate x the label delay you care about (1,000,000: 29 MB per version,
      in memory and in each checkpoint); predictions pushed out before their label
      arrives are counted ``expired``.
    - ``horizon_seconds`` = 7 days of event time: labels minutes to days late still join; a
      label more than a week after its prediction measures a model that may be long gone,
      so it is counted ``late`` instead.
    - ``max_early_labels`` = 100,000: a label that arrives before its prediction (producers
      racing across topics, a feedback topic read ahead of the predictions) waits until
      100,000 more feedback labels have arrived.
    """

    max_pending: int = Field(100_000, gt=0, le=MAX_LIMIT)
    """Predictions remembered per model version (pending, joined or expired)."""
    horizon_seconds: float = Field(7 * 86_400.0, gt=0, allow_inf_nan=False)
    """A label joins only a prediction at most this much older (event time)."""
    max_early_labels: int = Field(100_000, gt=0, le=MAX_LIMIT)
    """Feedback labels remembered per model version (an early label waits among them)."""

    def limits(self) -> JoinLimits:
        return JoinLimits(
            max_pending=self.max_pending,
            horizon_seconds=self.horizon_seconds,
            max_early_labels=self.max_early_labels,
        )

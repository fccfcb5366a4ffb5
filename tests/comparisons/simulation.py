"""Simulated champion / challenger error streams, and when their verdicts come.

Classifier errors (0/1) of two versions on a stream of requests:

- **paired** (shadow traffic, both versions score each request): with probability
  ``COUPLING`` a request's two errors come from one shared uniform draw (hard requests are
  hard for both models), otherwise from independent draws; each version's error rate is
  exactly its own either way;
- **unpaired** (split traffic): independent draws, each version on its own requests.

:func:`first_verdicts` runs the comparison's statistics (the confidence sequence and the
verdict rule of :mod:`driftline.comparisons.monitor`) over such a stream.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from driftline.comparisons.monitor import verdict_codes
from driftline.comparisons.sequence import MeanConfidenceSequence

COUPLING = 0.7

Floats = npt.NDArray[np.float64]


def error_streams(
    rng: np.random.Generator, pairs: int, champion_rate: float, challenger_rate: float, paired: bool
) -> tuple[Floats, Floats]:
    """0/1 errors of the champion and the challenger on ``pairs`` compared outcomes."""
    shared = rng.random(pairs)
    if not paired:
        return (shared < champion_rate).astype(float), (rng.random(pairs) < challenger_rate).astype(
            float
        )
    own = rng.random(pairs)
    coupled = rng.random(pairs) < COUPLING
    challenger_draw = np.where(coupled, shared, own)
    return (shared < champion_rate).astype(float), (challenger_draw < challenger_rate).astype(float)


def first_verdicts(
    champion: Floats, challenger: Floats, *, alpha: float, min_effect: float, min_pairs: int
) -> dict[str, int | None]:
    """The number of pairs at which each verdict is first reached (``None``: never)."""
    sequence = MeanConfidenceSequence(alpha)
    lower, upper = sequence.update((champion - challenger + 1.0) / 2.0)
    lower, upper = 2.0 * lower - 1.0, 2.0 * upper - 1.0
    counts = np.arange(1, champion.size + 1)
    codes = verdict_codes(lower, upper, counts, min_effect, min_pairs)
    names = ("insufficient_data", "no_difference", "challenger_better", "champion_better")
    first: dict[str, int | None] = {}
    for code, name in enumerate(names[1:], start=1):
        hits = np.flatnonzero(codes == code)
        first[name] = int(hits[0]) + 1 if hits.size else None
    return first


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Exact two-sided confidence interval of a binomial proportion."""
    from scipy.stats import beta

    tail = (1.0 - level) / 2.0
    low = 0.0 if successes == 0 else float(beta.ppf(tail, successes, trials - successes + 1))
    high = (
        1.0 if successes == trials else float(beta.ppf(1 - tail, successes + 1, trials - successes))
    )
    return low, high

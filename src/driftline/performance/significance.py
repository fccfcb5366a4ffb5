"""How far a window's metric rose above the reference's, in standard errors.

A window of ``n`` joined pairs is compared with the reference's ``n_ref`` pairs by a
one-sided z statistic that counts the uncertainty of both (a reference of 1,000 warm-up
pairs is itself noisy). Why a z statistic and not a raw difference: the noise of a
window's error rate depends on the error rate itself (a 3-point rise is noise at 0.40,
and a lot at 0.02), so one z threshold fits every model, while a threshold in points would
have to be tuned per model. The window has a fixed number of pairs, so unlike a test on
ever-growing samples its sensitivity does not creep up with traffic.

Values are capped at +-:data:`Z_CAP` (a finite number for the alert policy, which ignores
non-finite findings): a rise with zero variance on both sides is "certainly higher".
"""

from __future__ import annotations

import math

__all__ = ["Z_CAP", "mean_increase_z", "proportion_increase_z"]

Z_CAP = 1e6


def _capped(difference: float, standard_error: float) -> float:
    if standard_error > 0.0:
        return max(-Z_CAP, min(Z_CAP, difference / standard_error))
    if difference == 0.0:
        return 0.0
    return Z_CAP if difference > 0 else -Z_CAP


def proportion_increase_z(rate: float, n: int, reference_rate: float, reference_n: int) -> float:
    """Pooled two-proportion z statistic of ``rate`` (over ``n``) against
    ``reference_rate`` (over ``reference_n``); positive when the window's rate is higher.

    >>> round(proportion_increase_z(0.40, 1000, 0.33, 10000), 2)
    4.47
    """
    pooled = (rate * n + reference_rate * reference_n) / (n + reference_n)
    variance = pooled * (1.0 - pooled) * (1.0 / n + 1.0 / reference_n)
    return _capped(rate - reference_rate, math.sqrt(max(variance, 0.0)))


def mean_increase_z(
    mean: float, std: float, n: int, reference_mean: float, reference_std: float, reference_n: int
) -> float:
    """Welch z statistic of a window's mean (population ``std``, over ``n``) against the
    reference's; positive when the window's mean is higher.

    >>> round(mean_increase_z(1.2, 0.6, 1000, 1.0, 0.6, 10000), 2)
    10.05
    """
    variance = std * std / n + reference_std * reference_std / reference_n
    return _capped(mean - reference_mean, math.sqrt(variance))

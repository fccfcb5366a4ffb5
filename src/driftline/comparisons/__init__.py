"""Champion vs challenger: two versions of one model compared on live traffic, with an
interval valid under continuous monitoring and a verdict.

- :mod:`~driftline.comparisons.settings`: the ``comparisons[]`` config entries;
- :mod:`~driftline.comparisons.sequence`: the confidence sequence (always-valid interval);
- :mod:`~driftline.comparisons.pairing`: which outcome of one version meets which of the
  other (by ``request_id``, or by arrival order over the same span);
- :mod:`~driftline.comparisons.predictions`: agreement and distance of the predictions;
- :mod:`~driftline.comparisons.monitor`: one comparison (verdicts, status, state) and all
  of a pipeline's;
- :mod:`~driftline.comparisons.event`: the ``io.driftline.comparison.v1`` CloudEvent.
"""

from driftline.comparisons.event import DIFFERENCE, VERDICTS, ComparisonEvent, Verdict
from driftline.comparisons.monitor import Comparison, Comparisons
from driftline.comparisons.settings import ComparisonSettings, check_comparisons

__all__ = [
    "DIFFERENCE",
    "VERDICTS",
    "Comparison",
    "ComparisonEvent",
    "ComparisonSettings",
    "Comparisons",
    "Verdict",
    "check_comparisons",
]

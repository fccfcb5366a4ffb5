"""Alert text: the summary and description an on-call engineer reads in an alert.

Every name here renders a value for humans; nothing decides whether an alert fires. A
statistic's display name and meaning come from its detector class
(:func:`driftline.detectors.catalog.describe_statistic`).
"""

from __future__ import annotations

from dataclasses import dataclass

from driftline.cloudevents import format_time
from driftline.detectors.base import Direction
from driftline.detectors.catalog import describe_statistic
from driftline.events import LABEL_FEATURE, PREDICTION_FEATURE
from driftline.findings import Finding
from driftline.performance.detectors import ERROR_FEATURE, ESTIMATED_ERROR_FEATURE
from driftline.policy.states import Severity, Status, Transition

# -- rendering -------------------------------------------------------------------------


def statistic_display_name(statistic: str) -> str:
    """Human name of a statistic.

    >>> statistic_display_name("psi"), statistic_display_name("my_stat")
    ('PSI', 'my_stat')
    """
    return describe_statistic(statistic)[0]


def format_number(value: float, digits: int | None = None) -> str:
    """A statistic for humans: 2 decimals from 0.01 up, 2 significant digits below,
    thousands separators from 1,000; ``digits`` forces that many significant digits.

    >>> format_number(0.3123), format_number(0.1), format_number(0.00123), format_number(12345.6)
    ('0.31', '0.10', '0.0012', '12,346')
    """
    if digits is not None:
        return f"{value:,.{digits}g}"
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 0.01:
        return f"{value:.2f}"
    return f"{value:.2g}"


def format_pair(value: float, threshold: float) -> tuple[str, str]:
    """Format a value and its threshold, with more digits when they would look equal.

    >>> format_pair(0.2549, 0.25)
    ('0.255', '0.25')
    """
    shown = format_number(value), format_number(threshold)
    digits = 3
    while shown[0] == shown[1] and value != threshold and digits <= 12:
        shown = format_number(value, digits), format_number(threshold, digits)
        digits += 1
    return shown


def display_time(epoch_seconds: float) -> str:
    """``2026-11-27 14:03:12 UTC``: event time to the second, for on-call text.

    >>> display_time(1795788192.25)
    '2026-11-27 14:03:12 UTC'
    """
    stamp = format_time(epoch_seconds)
    return f"{stamp[:10]} {stamp[11:19]} UTC"


def display_model(model_id: str, model_version: str) -> str:
    """``fraud-scorer v7`` for numeric versions, the version as given otherwise.

    >>> display_model("fraud-scorer", "7"), display_model("fraud-scorer", "canary")
    ('fraud-scorer v7', 'fraud-scorer canary')
    """
    prefix = "v" if model_version[:1].isdigit() else ""
    return f"{model_id} {prefix}{model_version}"


def display_feature(feature: str) -> str:
    """How an alert names what drifted.

    >>> display_feature("amount"), display_feature("__prediction__.fraud")
    ('`amount`', 'the predicted probability of class `fraud`')
    """
    if feature == PREDICTION_FEATURE:
        return "the prediction"
    if feature.startswith(PREDICTION_FEATURE + "."):
        return f"the predicted probability of class `{feature[len(PREDICTION_FEATURE) + 1 :]}`"
    if feature == LABEL_FEATURE:
        return "the label"
    if feature == ERROR_FEATURE:
        return "the model's error on joined labels"
    if feature == ESTIMATED_ERROR_FEATURE:
        return "the model's estimated error (no labels)"
    return f"`{feature}`"


@dataclass(frozen=True, slots=True)
class AlertText:
    """Summary and description of one alert event."""

    finding: Finding
    direction: Direction
    status: Status
    transition: Transition
    threshold: float
    threshold_name: Severity
    """Which threshold ``threshold`` is (the clear threshold of a resolve may be either)."""
    streak: int
    starts_at: float
    escalated_from: float | None

    def summary(self) -> str:
        f = self.finding
        name = statistic_display_name(f.statistic)
        value, threshold = format_pair(f.value, self.threshold)
        prefix = ""
        if self.transition == "resolved":
            prefix = "Resolved: "
            op = "<=" if self.direction == "above" else ">="
        else:
            if self.status == "resolved":  # the warning side of an escalation
                prefix = "Escalated to critical: "
            op = ">" if self.direction == "above" else "<"
        return (
            f"{prefix}{name} {value} {op} {threshold} on {display_feature(f.feature)} of "
            f"{display_model(f.model_id, f.model_version)} over {f.window_count:,} "
            f"{_window_unit(f.feature)} ending {display_time(f.window_end)}"
        )

    def description(self) -> str:
        f = self.finding
        name = statistic_display_name(f.statistic)
        threshold = f"the {self.threshold_name} threshold {format_number(self.threshold)}"
        if self.transition == "resolved":
            side = "at or below" if self.direction == "above" else "at or above"
            state = (
                f"{name} {self._for_windows('has stayed', side, threshold)}; "
                f"the alert had been firing since {display_time(self.starts_at)}."
            )
        else:
            side = "above" if self.direction == "above" else "below"
            state = f"{name} {self._for_windows('has been', side, threshold)}"
            if self.status == "resolved":
                state += "; this warning alert is superseded by the critical one."
            elif self.escalated_from is not None:
                since = display_time(self.escalated_from)
                state += f", escalating the warning alert firing since {since}."
            else:
                state += "."
        window = (
            f"The latest window holds {f.window_count:,} events from "
            f"{display_time(f.window_start)} to {display_time(f.window_end)} "
            f"({f.sample_size:,} values used)."
        )
        meaning = describe_statistic(f.statistic)[1] or (
            f"`{f.statistic}` is the statistic reported by the `{f.detector}` detector."
        )
        return f"{state} {window} {meaning}"

    def _for_windows(self, verb: str, side: str, threshold: str) -> str:
        """How long the statistic has been on ``side`` of ``threshold``: "is above the
        critical threshold 0.25 in the latest window" (a streak of one, e.g. a critical
        alert that fired at once) or "has been above ... for 3 consecutive windows"."""
        if self.streak == 1:
            return f"is {side} {threshold} in the latest window"
        return f"{verb} {side} {threshold} for {self.streak:,} consecutive windows"


def _window_unit(feature: str) -> str:
    """What a window of ``feature`` counts: joined pairs for realized performance and label
    drift (windows of labels joined to predictions), predictions for the estimate, else
    events."""
    if feature in ("__error__", "__label__"):
        return "joined labels"
    if feature == "__estimated_error__":
        return "predictions"
    return "events"

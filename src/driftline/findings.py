"""What detectors report to the policies: one finding per feature, detector and window."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Finding:
    """The value of one drift statistic for one feature over one closed window.

    Findings are emitted for every evaluated window, drifted or not, so that the alert
    policy can count consecutive windows both to fire and to resolve.
    """

    model_id: str
    model_version: str
    feature: str
    detector: str
    """Detector name as used in config and in the alert's ``detector`` label (e.g. ``psi``)."""
    statistic: str
    """Name of the statistic (e.g. ``psi``, ``missing_rate_increase``)."""
    value: float
    sample_size: int
    """Number of values the statistic was computed from (non-missing values for tests)."""
    window_start: float
    """Event time (epoch seconds) of the window's first event."""
    window_end: float
    """Event time (epoch seconds) of the window's last event: the triggering event."""
    window_count: int
    """Number of events of this model version in the window."""
    sequence: int
    """1-based position of the window's last event in this model version's stream."""
    event_id: str
    """``event_id`` of the window's last event."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """JSON-serialisable details (bin shares, top categories, ...)."""

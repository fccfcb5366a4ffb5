"""The words of an alert's life, shared by the alert policy and its text."""

from __future__ import annotations

from typing import Literal

Severity = Literal["warning", "critical"]
Status = Literal["firing", "resolved"]
Transition = Literal["fired", "escalated", "resolved", "reset"]
"""``reset``: resolved because the alert's state was dropped (see ``AlertPolicy.resolve_all``)."""

"""Policies: findings -> alert events (`alerts`, their text in `alert_text`), alerts ->
retrain requests (`retrain`)."""

from driftline.policy.alerts import (
    Alert,
    AlertPolicy,
    AlertSettings,
    AlertWindow,
    Thresholds,
)
from driftline.policy.retrain import (
    ProfileRef,
    RetrainPolicy,
    RetrainRequest,
    RetrainSettings,
)

__all__ = [
    "Alert",
    "AlertPolicy",
    "AlertSettings",
    "AlertWindow",
    "ProfileRef",
    "RetrainPolicy",
    "RetrainRequest",
    "RetrainSettings",
    "Thresholds",
]

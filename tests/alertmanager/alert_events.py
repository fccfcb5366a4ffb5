"""Real alert events, made by driftline's own alert policy (the payload the service emits)."""

from __future__ import annotations

from driftline.findings import Finding
from driftline.policy.alerts import Alert, AlertPolicy, AlertSettings, Thresholds

SOURCE = "/driftline/test"
T0 = 1795788192.25  # 2026-11-27T14:03:12.250Z
STEP = 60.0


class AlertMaker:
    """Drives an :class:`AlertPolicy` with findings that fire or clear at once."""

    def __init__(self, *, t0: float = T0, runbook_url: str | None = None) -> None:
        settings = AlertSettings(
            fire_after=1,
            resolve_after=1,
            cooldown_seconds=0,
            min_samples=0,
            runbook_url=runbook_url,
        )
        self.policy = AlertPolicy(
            source=SOURCE,
            settings=settings,
            thresholds=lambda feature, detector: Thresholds(warning=0.1, critical=0.25),
        )
        self.t = t0
        self.sequence = 0

    def _observe(self, value: float, model_id: str, model_version: str, feature: str) -> Alert:
        self.t += STEP
        self.sequence += 1_000
        alerts = self.policy.observe(
            Finding(
                model_id=model_id,
                model_version=model_version,
                feature=feature,
                detector="psi",
                statistic="psi",
                value=value,
                sample_size=1_000,
                window_start=self.t - STEP,
                window_end=self.t,
                window_count=1_000,
                sequence=self.sequence,
                event_id=f"e{self.sequence}",
            )
        )
        assert len(alerts) == 1, alerts
        return alerts[0]

    def fire(self, feature: str, *, model_id: str = "fraud", model_version: str = "7") -> Alert:
        """A ``firing`` warning alert on ``feature``."""
        alert = self._observe(0.2, model_id, model_version, feature)
        assert alert.status == "firing"
        return alert

    def resolve(self, feature: str, *, model_id: str = "fraud", model_version: str = "7") -> Alert:
        """The ``resolved`` event of the firing alert on ``feature``."""
        alert = self._observe(0.01, model_id, model_version, feature)
        assert alert.status == "resolved"
        return alert

"""Statistics over time and alert episodes, bounded: what the pipeline's outputs said so far.

:class:`FindingHistory` watches each batch's :class:`~driftline.pipeline.PipelineOutput`
and keeps, per model version and (feature, detector), the statistic of the last
``max_windows`` closed windows and the alert episodes of that statistic (at most
``max_windows`` of them). Memory is therefore bounded by ``max_windows`` times the
monitored (feature, detector) pairs of the versions kept; :meth:`FindingHistory.retain`
forgets versions the process no longer monitors.

Outputs seen again (a partition re-read after a rebalance replays the events after its
checkpoint, with the same findings and the same alert ids) replace, never duplicate, what
was recorded: a finding replaces the recorded windows from its stream position on, and an
alert event already seen is ignored. Stream positions are those of one input partition's
pipeline, so the history is kept per *source* (the input partition the outputs came from):
a version whose events are spread over several partitions has one history per partition,
and one partition's windows never replace another's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Hashable
from dataclasses import dataclass, replace
from typing import NamedTuple

from driftline.findings import Finding
from driftline.pipeline import PipelineOutput
from driftline.plan import ModelKey
from driftline.policy.alerts import Alert

DEFAULT_MAX_WINDOWS = 500

Pair = tuple[str, str]
"""(feature, detector)."""


class StatisticPoint(NamedTuple):
    """One detector's statistic over one closed window."""

    window_start: float
    window_end: float
    sequence: int
    value: float
    sample_size: int


@dataclass(frozen=True, slots=True)
class Episode:
    """One alert, from the start of its breach to its resolution (``ends_at`` None: firing)."""

    fingerprint: str
    severity: str
    breach_start: float
    """Start of the first breaching window of the streak that fired it."""
    starts_at: float
    """End of the window that fired it."""
    ends_at: float | None
    firing_id: str
    """Id of its ``firing`` alert event."""

    @classmethod
    def opened_by(cls, alert: Alert) -> Episode:
        """The episode a ``firing`` alert opens."""
        return cls(
            fingerprint=alert.fingerprint,
            severity=alert.severity,
            breach_start=alert.breach_start,
            starts_at=alert.starts_at,
            ends_at=None,
            firing_id=alert.id,
        )


@dataclass(frozen=True, slots=True)
class VersionHistory:
    """A copy of what :class:`FindingHistory` holds for one model version."""

    series: dict[Pair, tuple[StatisticPoint, ...]]
    """Oldest window first."""
    statistics: dict[Pair, str]
    """Name of each series' statistic."""
    episodes: dict[Pair, tuple[Episode, ...]]
    """In the order they fired."""


EMPTY_HISTORY = VersionHistory({}, {}, {})


class _Version:
    __slots__ = ("episodes", "series", "statistics")

    def __init__(self) -> None:
        self.series: dict[Pair, deque[StatisticPoint]] = {}
        self.statistics: dict[Pair, str] = {}
        self.episodes: dict[Pair, deque[Episode]] = {}


class FindingHistory:
    """The last ``max_windows`` statistics and alert episodes per version and pair."""

    def __init__(self, max_windows: int = DEFAULT_MAX_WINDOWS) -> None:
        if max_windows <= 0:
            raise ValueError(f"max_windows must be positive, got {max_windows}")
        self.max_windows = max_windows
        self._versions: dict[tuple[Hashable, ModelKey], _Version] = {}

    def observe(self, output: PipelineOutput, source: Hashable = None) -> None:
        """Record one batch's findings and alert events (in stream order) of ``source``
        (the input partition whose pipeline made ``output``)."""
        for finding in output.findings:
            self._finding(source, finding)
        for alert in output.alerts:
            self._alert(source, alert)

    def of(self, key: ModelKey, source: Hashable = None) -> VersionHistory:
        """What is recorded for ``key`` from ``source`` (empty when nothing is)."""
        version = self._versions.get((source, key))
        if version is None:
            return EMPTY_HISTORY
        return VersionHistory(
            series={pair: tuple(points) for pair, points in version.series.items()},
            statistics=dict(version.statistics),
            episodes={pair: tuple(episodes) for pair, episodes in version.episodes.items()},
        )

    def versions(self) -> list[ModelKey]:
        """The versions with anything recorded, in the order they were first seen."""
        return list(dict.fromkeys(key for _, key in self._versions))

    def retain(self, kept: Collection[tuple[Hashable, ModelKey]]) -> None:
        """Forget every (source, version) not in ``kept``."""
        for pair in [p for p in self._versions if p not in kept]:
            del self._versions[pair]

    def _version(self, source: Hashable, key: ModelKey) -> _Version:
        version = self._versions.get((source, key))
        if version is None:
            version = self._versions[(source, key)] = _Version()
        return version

    def _finding(self, source: Hashable, finding: Finding) -> None:
        version = self._version(source, (finding.model_id, finding.model_version))
        pair = (finding.feature, finding.detector)
        points = version.series.get(pair)
        if points is None:
            points = version.series[pair] = deque(maxlen=self.max_windows)
        while points and points[-1].sequence >= finding.sequence:
            points.pop()  # the same windows again (a partition re-read after a rebalance)
        points.append(
            StatisticPoint(
                finding.window_start,
                finding.window_end,
                finding.sequence,
                finding.value,
                finding.sample_size,
            )
        )
        version.statistics[pair] = finding.statistic

    def _alert(self, source: Hashable, alert: Alert) -> None:
        version = self._version(source, (alert.model_id, alert.model_version))
        pair = (alert.feature, alert.detector)
        episodes = version.episodes.get(pair)
        if episodes is None:
            episodes = version.episodes[pair] = deque(maxlen=self.max_windows)
        if alert.status == "firing":
            if any(e.firing_id == alert.id for e in episodes):
                return  # seen already
            episodes.append(Episode.opened_by(alert))
            return
        for index in range(len(episodes) - 1, -1, -1):
            episode = episodes[index]
            if episode.fingerprint == alert.fingerprint and episode.ends_at is None:
                episodes[index] = replace(episode, ends_at=alert.ends_at)
                return

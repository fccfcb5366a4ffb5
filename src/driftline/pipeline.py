"""The core, end to end: message bytes in; alerts, retrain requests and dead letters out.

``driftline replay`` and ``driftline run`` both feed batches of message values to
:meth:`Pipeline.process`. Outputs of one batch are ordered by the position of the event that
caused them, so the output sequence does not depend on how the stream is cut into batches.
"""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import orjson

from driftline.comparisons import ComparisonEvent, Comparisons
from driftline.events import (
    LABEL_FEATURE,
    PREDICTION_FEATURE,
    DeadLetter,
    DeadLetterReason,
    FeedbackBatch,
    ModelBatch,
    decode_batch,
)
from driftline.findings import Finding
from driftline.ground_truth import GROUND_TRUTH_FEATURES, TASK_CHANGED, GroundTruth, Outcomes
from driftline.monitor import STATE_VERSION as MONITOR_STATE_VERSION
from driftline.monitor import ModelMonitor, profile_mismatch
from driftline.performance.profile_task import infer_task
from driftline.performance.task import TaskInferenceError
from driftline.plan import ModelKey, Plan, VersionPlan
from driftline.policy.alerts import (
    Alert,
    AlertPolicy,
    AlertWindow,
    internal_error_alert,
    resolved_without_window,
)
from driftline.policy.retrain import ProfileRef, RetrainPolicy, RetrainRequest
from driftline.snapshot import PipelineSnapshot, VersionSnapshot, VersionView

STATE_VERSION = 1
#: The ``resolved_reason`` of a DriftlineInternalError alert when its version is restored.
QUARANTINE_LEFT = (
    "quarantine left: the state was restored (restart or rebalance) and the version is "
    "processed again; a new alert fires if the error happens again"
)


class StateError(ValueError):
    """A saved state that cannot be restored: corrupt, of an unknown format version, or
    inconsistent. Never a reason to start fresh silently (see :meth:`Pipeline.restore`)."""

    def __init__(self, key: ModelKey | None, cause: str) -> None:
        where = "pipeline state" if key is None else f"state of {key[0]}/{key[1]}"
        super().__init__(f"{where} cannot be restored: {cause}")
        self.key = key


@dataclass(slots=True)
class PipelineOutput:
    """What one batch produced, each list in stream order."""

    alerts: list[Alert] = field(default_factory=list)
    retrain_requests: list[RetrainRequest] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    latest_event_time: float | None = None
    """Largest event time among the batch's valid events (for latency metrics)."""
    internal_errors: list[tuple[ModelKey, str]] = field(default_factory=list)
    """Model versions quarantined by this batch, with the traceback of the exception
    (the shell logs it; the core does not log)."""
    findings: list[Finding] = field(default_factory=list)
    """Every finding of the windows the batch closed (the statistics over time)."""
    learning_started: list[LearningStarted] = field(default_factory=list)
    """Columns that started learning their reference from live events in this batch (the
    shell logs each once)."""
    comparisons: list[ComparisonEvent] = field(default_factory=list)
    """Verdict changes of champion / challenger comparisons (:mod:`driftline.comparisons`)."""
    comparison_errors: list[tuple[str, str]] = field(default_factory=list)
    """Comparisons stopped by an unexpected exception in this batch, with its traceback (the
    shell logs it)."""


@dataclass(frozen=True, slots=True)
class LearningStarted:
    """A column that a model version's reference profile lacks started learning its
    reference from the version's next ``warmup_events`` events (see
    :mod:`driftline.late_features`)."""

    model_id: str
    model_version: str
    feature: str
    profile_id: str | None
    """The profile that lacks it (configured, or learned by warm-up)."""
    warmup_events: int

    def message(self) -> str:
        """One log line for the operator."""
        return (
            f"model {self.model_id} version {self.model_version}: {self.feature!r} is not in "
            f"the reference profile {self.profile_id}: it learns its reference from its first "
            f"{self.warmup_events} events (warmup_events), then is monitored; set "
            f"models[].features.{self.feature}.exclude to turn it off"
        )


@dataclass(slots=True)
class PipelineCounters:
    """Running totals, for summaries and metrics."""

    events: Counter[ModelKey] = field(default_factory=Counter)
    ignored: Counter[ModelKey] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    """By (severity, status)."""
    retrain_requests: int = 0
    quarantined: Counter[ModelKey] = field(default_factory=Counter)
    """Events dead-lettered (``internal_error``) because their version is quarantined."""
    feedback: Counter[ModelKey] = field(default_factory=Counter)
    """Feedback events (labels) of monitored versions."""
    feedback_unknown: int = 0
    """Feedback events of model versions never seen (no prediction yet)."""

    def to_state(self) -> dict[str, Any]:
        """JSON-ready counts (checkpointed with the detectors, so totals survive restarts)."""
        state: dict[str, Any] = {
            "events": [[k[0], k[1], n] for k, n in self.events.items()],
            "ignored": [[k[0], k[1], n] for k, n in self.ignored.items()],
            "dead_letters": dict(self.dead_letters),
            "alerts": [[k[0], k[1], n] for k, n in self.alerts.items()],
            "retrain_requests": self.retrain_requests,
        }
        # Only when there are some: states without them keep their bytes.
        if self.quarantined:
            state["quarantined"] = [[k[0], k[1], n] for k, n in self.quarantined.items()]
        if self.feedback:
            state["feedback"] = [[k[0], k[1], n] for k, n in self.feedback.items()]
        if self.feedback_unknown:
            state["feedback_unknown"] = self.feedback_unknown
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PipelineCounters:
        """Inverse of :meth:`to_state`; missing fields (older checkpoints) count zero.

        >>> counters = PipelineCounters()
        >>> counters.events[("credit", "1")] += 3
        >>> counters.dead_letters["invalid_json"] += 1
        >>> PipelineCounters.from_state(counters.to_state()) == counters
        True
        >>> PipelineCounters.from_state({}) == PipelineCounters()
        True
        """
        return cls(
            events=Counter({(a, b): int(n) for a, b, n in state.get("events", [])}),
            ignored=Counter({(a, b): int(n) for a, b, n in state.get("ignored", [])}),
            dead_letters=Counter(
                {str(r): int(n) for r, n in state.get("dead_letters", {}).items()}
            ),
            alerts=Counter({(a, b): int(n) for a, b, n in state.get("alerts", [])}),
            retrain_requests=int(state.get("retrain_requests", 0)),
            quarantined=Counter({(a, b): int(n) for a, b, n in state.get("quarantined", [])}),
            feedback=Counter({(a, b): int(n) for a, b, n in state.get("feedback", [])}),
            feedback_unknown=int(state.get("feedback_unknown", 0)),
        )


class _ModelVersion:
    """Monitor and policies of one model version."""

    def __init__(self, key: ModelKey, plan: Plan, version_plan: VersionPlan) -> None:
        self.plan = version_plan
        self.labels = plan.labels
        self.performance = plan.performance
        self.monitor = ModelMonitor(key[0], key[1], version_plan.monitor, version_plan.profile)
        self.alerts = AlertPolicy(
            source=plan.source, settings=plan.alerts, thresholds=version_plan.thresholds
        )
        self.retrain = RetrainPolicy(
            source=plan.source, model_id=key[0], model_version=key[1], settings=plan.retrain
        )
        self.ground_truth: GroundTruth | None = None
        """Label join and performance, once the reference profile tells the task."""
        self.ground_truth_problem: str | None = None
        """Why ground truth has not started (status), once the profile is known."""

    def ground_truth_ready(self) -> bool:
        """Whether the version is monitored (a reference profile, given or learned) before
        the events about to be processed: ground truth observes all of them."""
        return self.ground_truth is not None or not self.monitor.warming_up

    def start_ground_truth(self) -> GroundTruth | None:
        """Start the label join and performance monitor if the version's profile (given or
        learned) and configured task tell its task; else ``None`` (and why, in
        :attr:`ground_truth_problem`)."""
        profile = self.monitor.profile
        if self.ground_truth is not None or profile is None:
            return self.ground_truth
        learned = self.monitor.late.monitored
        if PREDICTION_FEATURE not in profile.features and PREDICTION_FEATURE in learned:
            # A profile without the prediction (training data): the one learned live.
            features = {**profile.features, PREDICTION_FEATURE: learned[PREDICTION_FEATURE]}
            profile = replace(profile, features=features)
        try:
            spec = infer_task(profile, self.plan.task, self.plan.decision_threshold)
        except TaskInferenceError as exc:
            self.ground_truth_problem = str(exc)
            return None
        if spec is None:
            self.ground_truth_problem = (
                "the reference profile has no prediction (it learns one from live events "
                "when they carry one: see learning_features)"
            )
            return None
        reference = profile.performance
        if reference is not None and reference.task.task is not spec.task:
            reference = None
        self.ground_truth = GroundTruth(
            spec, self.labels, self.performance, reference, profile.features.get(LABEL_FEATURE)
        )
        self.ground_truth_problem = None
        return self.ground_truth

    def ground_truth_status(self) -> dict[str, Any] | None:
        """What status pages show of ground truth (see ``VersionSnapshot.performance``)."""
        if self.ground_truth is not None:
            return {"started": True, **self.ground_truth.status()}
        if self.ground_truth_problem is not None:
            return {"started": False, "reason": self.ground_truth_problem}
        return None

    def to_state(self) -> dict[str, Any]:
        state = {
            "monitor": self.monitor.to_state(),
            "alerts": self.alerts.to_state(),
            "retrain": self.retrain.to_state(),
        }
        if self.ground_truth is not None:  # only then: states without it keep their bytes
            state["ground_truth"] = self.ground_truth.to_state()
        return state

    def restore(self, state: dict[str, Any]) -> tuple[str | None, list[Alert]]:
        """Continue from :meth:`to_state`, or reset when the plan no longer fits the state
        (see :meth:`_mismatch`): then return why, and the ``resolved`` events of the alerts
        the dropped state had firing. A ``__label__`` window of an older state is dropped
        (see :func:`_without_label`), its firing alerts resolved (also returned). Raises
        :class:`StateError` for any other problem."""
        key = (self.monitor.model_id, self.monitor.model_version)
        try:
            alerts = AlertPolicy.from_state(
                state["alerts"],
                source=self.alerts.source,
                settings=self.alerts.settings,
                thresholds=self.plan.thresholds,
            )
            monitor_state, dropped = _without_label(state["monitor"], alerts)
            mismatch = self._mismatch(monitor_state, alerts)
            if mismatch is not None:
                end = float(monitor_state["window_end"])
                return mismatch, [*dropped, *alerts.resolve_all(mismatch, end)]
            self.monitor = ModelMonitor.from_state(
                monitor_state,
                model_id=key[0],
                model_version=key[1],
                plan=self.plan.monitor,
                profile=self.plan.profile,
            )
            self.alerts = alerts
            truth = state.get("ground_truth")
            if truth is not None:
                started = self.start_ground_truth()
                if started is not None and started.fits(truth):
                    started.restore(truth)
                else:  # the task changed (config): the join and performance start afresh
                    self.ground_truth = None
                    self.start_ground_truth()
                    end = float(monitor_state["window_end"])
                    for feature in sorted(GROUND_TRUTH_FEATURES):
                        dropped += self.alerts.drop_feature(feature, TASK_CHANGED, end)
            self.retrain = RetrainPolicy.from_state(
                state["retrain"],
                source=self.retrain.source,
                model_id=key[0],
                model_version=key[1],
                settings=self.retrain.settings,
                alerts=self.alerts,
            )
        except StateError:
            raise
        except Exception as exc:  # corrupt or unknown state: a bug to see, never a reset
            raise StateError(key, f"{type(exc).__name__}: {exc}") from exc
        return None, dropped

    def _mismatch(self, monitor_state: dict[str, Any], alerts: AlertPolicy) -> str | None:
        """Why the plan cannot continue this saved state (then it is reset), or ``None``."""
        version = monitor_state.get("version")
        if version != MONITOR_STATE_VERSION:
            raise StateError(
                (self.monitor.model_id, self.monitor.model_version),
                f"unsupported monitor state version {version!r}",
            )
        profile = profile_mismatch(monitor_state, self.plan.profile)
        if profile is not None:
            return profile
        learned = monitor_state["learned_profile"]
        if learned is None and self.plan.profile is None:
            return None  # warming up: no detector runs yet
        # The monitor the plan builds on the state's references: its detectors against the
        # state's (monitored features, stream detectors, pairs with alert state).
        monitor = ModelMonitor.planned(
            monitor_state,
            model_id=self.monitor.model_id,
            model_version=self.monitor.model_version,
            plan=self.plan.monitor,
            profile=self.plan.profile,
        )
        detectors = monitor.detector_mismatch(monitor_state["features"])
        if detectors is not None:
            return detectors
        gone = sorted(
            pair
            for pair in alerts.tracked() - monitor.monitored()
            if pair[0] not in GROUND_TRUTH_FEATURES
        )
        if gone:
            feature, detector = gone[0]
            return (
                f"detector {detector!r} of feature {feature!r} is no longer configured "
                f"({len(gone)} detector(s) with alert state removed)"
            )
        return None

    def learning_started(self) -> list[tuple[int, LearningStarted]]:
        """Take the monitor's columns that started learning, with their batch index."""
        monitor = self.monitor
        started, monitor.learning_started = monitor.learning_started, []
        profile_id = self.profile_ref().profile_id
        events = monitor.plan.warmup_events
        key = (monitor.model_id, monitor.model_version)
        return [(index, LearningStarted(*key, name, profile_id, events)) for index, name in started]

    def profile_ref(self) -> ProfileRef:
        """The monitor's profile id and data hash."""
        profile = self.monitor.profile
        if profile is None:
            return ProfileRef(profile_id=None, sha256=None)
        return ProfileRef(profile.profile_id, profile.source.sha256)


class Pipeline:
    """All monitored model versions of one deployment (or, in the service, one partition)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.versions: dict[ModelKey, _ModelVersion | None] = {}
        """Every model version seen (``None``: ignored), at most ``plan.max_model_versions``."""
        self.counters = PipelineCounters()
        self.latest: dict[ModelKey, dict[tuple[str, str], Finding]] = {}
        """The latest finding per model version and (feature, detector), for status pages."""
        self.changed: set[ModelKey] = set()
        """Monitored versions whose state changed since :meth:`take_changed`."""
        self.quarantined: dict[ModelKey, Alert] = {}
        """Versions stopped by an internal error, with their firing DriftlineInternalError
        alert (checkpointed in the head: a restore resolves it and tries them again)."""
        self.comparisons = Comparisons(plan.comparisons, plan.source)
        """Champion / challenger comparisons, fed the outcomes of the versions they compare."""

    def process(self, payloads: Sequence[bytes]) -> PipelineOutput:
        """Run one batch through every model version it holds.

        An unexpected exception while processing one version's events quarantines that
        version (see :meth:`_quarantine`); the other versions go on unaffected.
        """
        decoded = decode_batch(payloads, self.plan.decode)
        dead_letters = decoded.dead_letters
        limited = len(dead_letters)
        found: list[tuple[int, ModelKey, Finding]] = []
        latest: float | None = None
        counted: Counter[ModelKey] = Counter()
        batches: dict[ModelKey, ModelBatch] = {}
        sequences: dict[ModelKey, int] = {}
        failures: list[tuple[ModelKey, Exception]] = []
        learning: list[tuple[int, LearningStarted]] = []
        feedback = {(f.model_id, f.model_version): f for f in decoded.feedback}
        labelled: dict[ModelKey, FeedbackBatch] = {}
        """Feedback of the versions that are monitored (or quarantined)."""
        outcomes: dict[ModelKey, Outcomes] = {}
        """Ground truth's outcomes of the compared versions."""
        for batch in decoded.models:
            key = (batch.model_id, batch.model_version)
            labels = feedback.pop(key, None)
            if key in self.quarantined:
                batches[key] = batch
                if labels is not None:
                    labelled[key] = labels
                continue
            if key not in self.versions and len(self.versions) >= self.max_model_versions:
                dead_letters.extend(_too_many_models(batch, len(self.versions), payloads))
                if labels is not None:  # their version is not monitored
                    self.counters.feedback_unknown += len(labels)
                continue
            if labels is not None:
                labelled[key] = labels
            batches[key] = batch
            known = self.versions.get(key)
            sequences[key] = 0 if known is None else known.monitor.sequence
            version_found: list[tuple[int, ModelKey, Finding]] = []
            try:
                version = self._version(key)
                parts = [batch]
                if version is not None and version.monitor.warming_up:
                    parts = self._warmup_parts(version.monitor, batch, payloads, dead_letters)
                if version is not None:
                    truth = version.ground_truth
                    monitored_from: int | None = 0 if version.ground_truth_ready() else None
                    """Batch position from which the version had a reference profile (0:
                    before this batch, so its feedback here before its first prediction
                    here joins too, as it would in an earlier batch)."""
                    for part in parts:
                        if monitored_from is None and not version.monitor.warming_up:
                            monitored_from = int(part.indices[0])
                        found_part = version.monitor.process(part)
                        version_found.extend((index, key, f) for index, f in found_part)
                    if truth is None:  # starts with the first events the monitor monitors
                        truth = version.start_ground_truth()
                        learned = version.monitor.late_monitored_after.get(PREDICTION_FEATURE)
                        if truth is not None and learned is not None:
                            # The task came from the prediction's reference learned live:
                            # from the event after it was (a batch-independent point).
                            row = learned - sequences[key]
                            monitored_from = (
                                int(batch.indices[row]) if 0 <= row < len(batch) else None
                            )
                    if truth is not None and monitored_from is not None:
                        observed = truth.observe(
                            key[0],
                            key[1],
                            _predictions_from(batch, monitored_from),
                            None if labels is None else _feedback_from(labels, monitored_from),
                        )
                        version_found.extend((index, key, f) for index, f in observed.findings)
                        if observed.outcomes is not None and key in self.comparisons.versions:
                            outcomes[key] = observed.outcomes
            except Exception as exc:
                failures.append((key, exc))
                if key in self.versions:
                    self.changed.add(key)  # the failure may have changed its state
                continue
            if version is None and labels is not None:  # an ignored model's feedback
                self.counters.ignored[key] += len(labels)
                del labelled[key]
            if version is not None and version.monitor.learning_started:
                learning.extend(version.learning_started())
            for part in parts:
                part_latest = float(part.timestamps.max())
                latest = part_latest if latest is None else max(latest, part_latest)
                if version is None:
                    self.counters.ignored[key] += len(part)
                    continue
                counted[key] += len(part)
                self.changed.add(key)
            found.extend(version_found)
        for key, labels in feedback.items():  # feedback of versions without predictions here
            part_latest = float(labels.timestamps.max())
            latest = part_latest if latest is None else max(latest, part_latest)
            if key in self.quarantined:
                labelled[key] = labels
                continue
            if key not in self.versions and not self._labels_can_wait(key):
                self.counters.feedback_unknown += len(labels)
                continue
            version = self._version(key)
            if version is None:
                self.counters.ignored[key] += len(labels)
                continue
            labelled[key] = labels
            sequences[key] = version.monitor.sequence
            self.changed.add(key)
            try:
                truth = version.start_ground_truth()
                joined = None if truth is None else truth.observe(key[0], key[1], None, labels)
            except Exception as exc:
                failures.append((key, exc))
                continue
            if joined is None:
                continue
            found.extend((index, key, f) for index, f in joined.findings)
            if joined.outcomes is not None and key in self.comparisons.versions:
                outcomes[key] = joined.outcomes
        found.sort(key=lambda item: item[0])  # stable: keeps each model's window order
        for _, key, finding in found:
            self.latest.setdefault(key, {})[(finding.feature, finding.detector)] = finding
        # Findings of one window close arrive together; the retrain rule is evaluated once
        # per window close, after all of its alerts.
        produced: list[tuple[int, ModelKey, list[Alert], list[RetrainRequest]]] = []
        failed = {key for key, _ in failures}
        for position, key, window_findings in _by_window(found):
            if key in failed:
                continue
            version = self.versions[key]
            assert version is not None
            alerts: list[Alert] = []
            requests: list[RetrainRequest] = []
            try:
                self._policies(version, window_findings, alerts, requests)
            except Exception as exc:
                failures.append((key, exc))
                failed.add(key)
            # Published even when the policies failed part-way: the alert state already
            # holds every transition made before the failure, so its events must go out.
            produced.append((position, key, alerts, requests))
        compared = self.comparisons.observe(
            {key: o for key, o in outcomes.items() if key not in failed}, self._monitored()
        )
        self.changed |= compared.changed
        for key, n in counted.items():
            if key not in failed:
                self.counters.events[key] += n
        for key, labels in labelled.items():
            if key not in failed and key not in self.quarantined:
                self.counters.feedback[key] += len(labels)
        output = PipelineOutput(latest_event_time=latest)
        output.findings = [finding for _, key, finding in found if key not in failed]
        output.learning_started = [notice for _, notice in sorted(learning, key=lambda n: n[0])]
        output.comparisons = [event for _, event in compared.events]
        output.comparison_errors = compared.errors
        internal: list[tuple[int, Alert]] = []
        for key, error in failures:
            first: ModelBatch | FeedbackBatch = batches[key] if key in batches else labelled[key]
            internal.append(self._quarantine(key, first, sequences[key], error, output))
        quarantined: list[tuple[ModelKey, ModelBatch | FeedbackBatch]] = [
            *batches.items(),
            *labelled.items(),
        ]
        for key, rows in quarantined:
            if key in self.quarantined:
                dead_letters.extend(self._quarantined_letters(key, rows, payloads, dead_letters))
        if len(dead_letters) > limited:  # limits rejected valid events: back to input order
            dead_letters.sort(key=lambda letter: letter.index)
        for dead in dead_letters:
            self.counters.dead_letters[dead.reason.value] += 1
        output.dead_letters = dead_letters
        outputs = [(p, alerts, requests) for p, _, alerts, requests in produced]
        if internal:  # in stream order with the others (sort is stable)
            outputs.extend((p, [alert], []) for p, alert in internal)
            outputs.sort(key=lambda item: item[0])
        for _, alerts, requests in outputs:
            for alert in alerts:
                self.counters.alerts[(alert.severity, alert.status)] += 1
            output.alerts.extend(alerts)
            output.retrain_requests.extend(requests)
            self.counters.retrain_requests += len(requests)
        return output

    def _policies(
        self,
        version: _ModelVersion,
        window_findings: list[Finding],
        alerts: list[Alert],
        requests: list[RetrainRequest],
    ) -> None:
        """Append the alert events and retrain requests of one window close of ``version``
        to ``alerts`` and ``requests`` as they happen (so a failure keeps what came before)."""
        inputs = version.monitor.input_feature_count
        profile = version.profile_ref()
        for finding in window_findings:
            alerts.extend(version.alerts.observe(finding))
        observed = version.retrain.observe_window(
            alerts, monitored_features=inputs, profile=profile
        )
        if observed is not None:
            requests.append(observed)
        # A request held back by the cooldown goes out once it is over (event time).
        ticked = version.retrain.tick(
            window_findings[-1].window_end, monitored_features=inputs, profile=profile
        )
        if ticked is not None:
            requests.append(ticked)

    def _quarantine(
        self,
        key: ModelKey,
        batch: ModelBatch | FeedbackBatch,
        sequence: int,
        exc: Exception,
        output: PipelineOutput,
    ) -> tuple[int, Alert]:
        """Stop processing ``key`` after ``exc``: hand its traceback to the shell and
        return its ``DriftlineInternalError`` alert with the batch position of its first
        event. Its events (this batch's and every later one's) become ``internal_error``
        dead letters; its state stays as the failure left it (still in :meth:`to_state`,
        so a restart restores it and tries the version again). The quarantine itself is
        not part of the state."""
        message = f"{type(exc).__name__}: {exc}"
        output.internal_errors.append((key, "".join(traceback.format_exception(exc))))
        timestamps = batch.timestamps
        alert = internal_error_alert(
            source=self.plan.source,
            model_id=key[0],
            model_version=key[1],
            message=message,
            sequence=sequence,
            event_id=batch.event_ids[0],
            window=AlertWindow(float(timestamps.min()), float(timestamps.max()), len(batch)),
            runbook_url=self.plan.alerts.runbook_url,
        )
        self.quarantined[key] = alert
        return int(batch.indices[0]), alert

    def quarantine_message(self, key: ModelKey) -> str:
        """The error that quarantined ``key``."""
        return str(self.quarantined[key].event["data"]["evidence"]["error"])

    def _quarantined_letters(
        self,
        key: ModelKey,
        batch: ModelBatch | FeedbackBatch,
        payloads: Sequence[bytes],
        dead_letters: list[DeadLetter],
    ) -> list[DeadLetter]:
        """``internal_error`` dead letters of the events of quarantined ``key`` (those a
        limit dead-lettered already keep that reason)."""
        indices = batch.indices.tolist()
        rows = set(indices)
        done = {d.index for d in dead_letters if d.index in rows}
        message = (
            f"model {key[0]!r} version {key[1]!r} is quarantined after an internal error "
            f"({self.quarantine_message(key)}); it is tried again after a restart"
        )
        reason = DeadLetterReason.INTERNAL_ERROR
        letters = [DeadLetter(i, reason, message, payloads[i]) for i in indices if i not in done]
        self.counters.quarantined[key] += len(letters)
        return letters

    @property
    def max_model_versions(self) -> int:
        return self.plan.max_model_versions

    def _warmup_parts(
        self,
        monitor: ModelMonitor,
        batch: ModelBatch,
        payloads: Sequence[bytes],
        dead_letters: list[DeadLetter],
    ) -> list[ModelBatch]:
        """``batch`` of a warming-up version as its warm-up rows and the rows after the
        warm-up ends (each with only its own rows' columns, so a learned profile does not
        depend on where batches are cut); warm-up rows that would take the warm-up beyond
        ``plan.warmup_columns`` columns become dead letters instead."""
        cap = self.plan.warmup_columns
        names = set(monitor.warmup)
        room = monitor.plan.warmup_events - monitor.warmup_rows
        fits = len(names) + len(batch.columns) <= cap or len(names.union(batch.columns)) <= cap
        if fits and len(batch) <= room:
            return [batch]
        warmup: list[int] = []
        later: list[int] = []
        row_columns = batch.row_columns()
        for row, index in enumerate(batch.indices.tolist()):
            row_names = row_columns[row]
            part = warmup
            if len(warmup) >= room:
                part = later
            elif len(names | row_names) > cap:
                new = len(row_names - names)
                dead_letters.append(
                    DeadLetter(
                        index,
                        DeadLetterReason.TOO_MANY_WARMUP_FEATURES,
                        f"event adds {new} columns to the warm-up of model "
                        f"{batch.model_id!r} version {batch.model_version!r}, which holds "
                        f"{len(names)} of at most {cap} (limits.max_warmup_values / "
                        "warmup_events)",
                        payloads[index],
                    )
                )
                continue
            else:
                names |= row_names
            part.append(row)
        return [batch.take(rows) for rows in (warmup, later) if rows]

    def _labels_can_wait(self, key: ModelKey) -> bool:
        """Whether feedback of ``key``, a version without predictions yet, starts the
        version so its labels wait for their predictions (early labels): a configured
        reference profile monitors it from its first event, as every split into batches,
        and feedback read from its own topic ahead of the predictions, must see it."""
        if len(self.versions) >= self.max_model_versions:
            return False
        version_plan = self.plan.for_version(key)
        return version_plan is not None and version_plan.profile is not None

    def _version(self, key: ModelKey) -> _ModelVersion | None:
        if key in self.versions:
            return self.versions[key]
        version_plan = self.plan.for_version(key)
        version = None if version_plan is None else _ModelVersion(key, self.plan, version_plan)
        self.versions[key] = version
        return version

    def to_state(self) -> bytes:
        """The state of every model version (monitors and policies), as bytes."""
        versions = [
            {"model_id": k[0], "model_version": k[1], "state": self._version_state(k, v)}
            for k, v in self.versions.items()
            if v is not None
        ]
        return orjson.dumps(
            {"version": STATE_VERSION, "versions": versions, **self._shared_state()}
        )

    def restore(self, data: bytes) -> PipelineOutput:
        """Continue from :meth:`to_state`; later batches give what the original would have.

        A version whose state the plan no longer fits (another reference profile, a
        configured profile where warm-up learned one, another detector set: see the README,
        "State and restore") starts afresh; the returned output holds the ``resolved``
        events of the alerts its old state had firing, for the shell to publish. Anything
        else that prevents restoring raises :class:`StateError`.
        """
        try:
            state = orjson.loads(data)
            if state.get("version") != STATE_VERSION:
                raise StateError(
                    None, f"unsupported pipeline state version {state.get('version')!r}"
                )
            versions = {
                (str(i["model_id"]), str(i["model_version"])): i["state"] for i in state["versions"]
            }
        except StateError:
            raise
        except Exception as exc:
            raise StateError(None, f"{type(exc).__name__}: {exc}") from exc
        return self._restore(versions, state.get("counters", {}), state.get("quarantines", []))

    def count_rejected(self, reasons: Iterable[DeadLetterReason]) -> None:
        """Count messages the caller dead-lettered before decoding (a Kafka record without
        a value), so the counters cover every input message."""
        for reason in reasons:
            self.counters.dead_letters[reason.value] += 1

    # -- state in parts: one record per model version plus a small head ------------------

    def take_changed(self) -> set[ModelKey]:
        """The monitored versions whose state changed since the last call (then none)."""
        changed, self.changed = self.changed, set()
        return changed

    def version_state(self, key: ModelKey) -> bytes:
        """One monitored version's state, as bytes (its part of :meth:`to_state`)."""
        version = self.versions[key]
        if version is None:
            raise KeyError(f"{key[0]}/{key[1]} is not monitored")
        return orjson.dumps(self._version_state(key, version))

    def _version_state(self, key: ModelKey, version: _ModelVersion) -> dict[str, Any]:
        """A version's state, with the comparisons saved there (:mod:`driftline.comparisons`)."""
        state = version.to_state()
        comparisons = self.comparisons.state_of(key)
        if comparisons:  # only then: states without comparisons keep their bytes
            state["comparisons"] = comparisons
        return state

    def _monitored(self) -> set[ModelKey]:
        return {key for key, version in self.versions.items() if version is not None}

    def head_state(self) -> bytes:
        """Everything but the versions' own states: the counters and which versions are
        monitored, in the order they were first seen."""
        monitored = [list(k) for k, v in self.versions.items() if v is not None]
        state = {"version": STATE_VERSION, "versions": monitored, **self._shared_state()}
        return orjson.dumps(state)

    def _shared_state(self) -> dict[str, Any]:
        """What :meth:`to_state` and :meth:`head_state` hold besides the versions."""
        state: dict[str, Any] = {"counters": self.counters.to_state()}
        if self.quarantined:  # only then: states without quarantines keep their bytes
            state["quarantines"] = [alert.to_state() for alert in self.quarantined.values()]
        return state

    def restore_parts(self, head: bytes, versions: Mapping[ModelKey, bytes]) -> PipelineOutput:
        """Continue from :meth:`head_state` and the :meth:`version_state` of every version
        the head lists (same result and output as :meth:`restore` of the whole)."""
        try:
            state = orjson.loads(head)
            if state.get("version") != STATE_VERSION:
                raise StateError(
                    None, f"unsupported pipeline state version {state.get('version')!r}"
                )
            keys = [(str(a), str(b)) for a, b in state["versions"]]
            counters = state["counters"]
            quarantines = state.get("quarantines", [])
        except StateError:
            raise
        except Exception as exc:
            raise StateError(None, f"{type(exc).__name__}: {exc}") from exc
        missing = [k for k in keys if k not in versions]
        if missing:
            raise StateError(
                None, f"state of {len(missing)} listed versions missing, e.g. {missing[0]}"
            )
        parsed: dict[ModelKey, Any] = {}
        for key in keys:
            try:
                parsed[key] = orjson.loads(versions[key])
            except orjson.JSONDecodeError as exc:
                raise StateError(key, f"not JSON: {exc}") from exc
        return self._restore(parsed, counters, quarantines)

    def _restore(
        self, versions: Mapping[ModelKey, Any], counters: Any, quarantines: Any
    ) -> PipelineOutput:
        restored: dict[ModelKey, _ModelVersion | None] = {}
        reset: set[ModelKey] = set()
        output = PipelineOutput()
        comparisons = Comparisons(self.plan.comparisons, self.plan.source)
        for key, version_state in versions.items():
            # A version the plan now ignores keeps its state (as it was checkpointed).
            version_plan = self.plan.for_version(key) or self.plan.unconfigured
            version = _ModelVersion(key, self.plan, version_plan)
            if not isinstance(version_state, dict):
                raise StateError(key, f"not an object: {type(version_state).__name__}")
            try:
                comparisons.restore({key: version_state.get("comparisons", [])})
            except Exception as exc:
                raise StateError(key, f"comparisons: {type(exc).__name__}: {exc}") from exc
            mismatch, resolved = version.restore(version_state)
            if mismatch is not None or resolved:
                reset.add(key)
            output.alerts.extend(resolved)
            restored[key] = version
        try:
            restored_counters = PipelineCounters.from_state(counters)
        except Exception as exc:
            raise StateError(None, f"counters: {type(exc).__name__}: {exc}") from exc
        try:
            # Quarantined versions are tried again: their alerts end here.
            left = [Alert.from_state(a) for a in quarantines]
        except Exception as exc:
            raise StateError(None, f"quarantines: {type(exc).__name__}: {exc}") from exc
        reason = QUARANTINE_LEFT
        output.alerts.extend(resolved_without_window(a, reason, a.time) for a in left)
        self.versions = restored
        self.counters = restored_counters
        self.comparisons = comparisons
        self.quarantined = {}
        for alert in output.alerts:
            self.counters.alerts[(alert.severity, alert.status)] += 1
        # A reset version's new state differs from the checkpointed one: save it next time.
        self.changed = reset
        return output

    def monitors(self) -> dict[ModelKey, ModelMonitor]:
        return {k: v.monitor for k, v in self.versions.items() if v is not None}

    def snapshot(self) -> PipelineSnapshot:
        """A read-only copy of what status pages and metrics show (see driftline.snapshot)."""
        versions = tuple(
            _version_snapshot(key, version)
            for key, version in self.versions.items()
            if version is not None
        )
        findings = {
            key: tuple(finding for _, finding in sorted(latest.items()))
            for key, latest in self.latest.items()
        }
        return PipelineSnapshot(
            versions=versions,
            findings=findings,
            events=dict(self.counters.events),
            dead_letters=dict(self.counters.dead_letters),
            comparisons=tuple(self.comparisons.status()),
        )

    def version_view(self, key: ModelKey) -> VersionView | None:
        """What a drift report shows of a monitored version (``None``: not monitored)."""
        version = self.versions.get(key)
        if version is None:
            return None
        monitor = version.monitor
        # Ground truth's statistics (performance, label drift) have no window of the
        # feature monitor: they are shown once they have a finding.
        truth = {pair for pair in self.latest.get(key, {}) if pair[0] in GROUND_TRUTH_FEATURES}
        pairs = sorted(monitor.monitored() | truth)
        return VersionView(
            version=_version_snapshot(key, version),
            profile=monitor.profile,
            kinds=dict(monitor.kinds),
            thresholds={pair: version.plan.thresholds(*pair) for pair in pairs},
            latest=tuple(f for _, f in sorted(self.latest.get(key, {}).items())),
            last_window=monitor.last_window,
            quarantined=self.quarantine_message(key) if key in self.quarantined else None,
        )


def _version_snapshot(key: ModelKey, version: _ModelVersion) -> VersionSnapshot:
    return VersionSnapshot(
        model_id=key[0],
        model_version=key[1],
        warming_up=version.monitor.warming_up,
        events=version.monitor.sequence,
        profile_id=version.profile_ref().profile_id,
        monitored_features=tuple(sorted(version.monitor.windows)),
        learning_features=tuple(version.monitor.late.progress()),
        firing=tuple(version.alerts.firing()),
        performance=version.ground_truth_status(),
    )


#: The ``resolved_reason`` (after "state reset: ") of a ``__label__`` alert of an older state.
LABEL_NOT_MONITORED = (
    "__label__ is no longer monitored as a feature (labels arrive as feedback: a missing "
    "inline label is not a missing value; label drift is measured on the joined labels)"
)


def _without_label(
    monitor_state: dict[str, Any], alerts: AlertPolicy
) -> tuple[dict[str, Any], list[Alert]]:
    """``monitor_state`` without the ``__label__`` window that states of earlier versions
    hold, and the ``resolved`` events of the alerts ``alerts`` had firing on it (their
    state is dropped from ``alerts``). The other features continue as they were."""
    features = monitor_state.get("features")
    if not isinstance(features, dict) or LABEL_FEATURE not in features:
        return monitor_state, []
    kept = {name: window for name, window in features.items() if name != LABEL_FEATURE}
    end = float(monitor_state["window_end"])
    return {**monitor_state, "features": kept}, alerts.drop_feature(
        LABEL_FEATURE, LABEL_NOT_MONITORED, end
    )


def _too_many_models(
    batch: ModelBatch, tracked: int, payloads: Sequence[bytes]
) -> list[DeadLetter]:
    message = (
        f"model {batch.model_id!r} version {batch.model_version!r} is not monitored: "
        f"{tracked} model versions are tracked already (limits.max_model_versions)"
    )
    reason = DeadLetterReason.TOO_MANY_MODELS
    return [DeadLetter(i, reason, message, payloads[i]) for i in batch.indices.tolist()]


def _by_window(
    found: list[tuple[int, ModelKey, Finding]],
) -> list[tuple[int, ModelKey, list[Finding]]]:
    """Group consecutive findings of the same model version and window close (with the
    batch position of the event that closed the window)."""
    groups: list[tuple[int, ModelKey, list[Finding]]] = []
    last: tuple[ModelKey, int] | None = None
    for index, key, finding in found:
        marker = (key, finding.sequence)
        if marker != last:
            groups.append((index, key, []))
            last = marker
        groups[-1][2].append(finding)
    return groups


def _predictions_from(batch: ModelBatch, start: int) -> ModelBatch:
    """The rows of ``batch`` at batch positions ``start`` and later."""
    if int(batch.indices[0]) >= start:
        return batch
    return batch.take(np.flatnonzero(batch.indices >= start).tolist())


def _feedback_from(labels: FeedbackBatch, start: int) -> FeedbackBatch:
    """The feedback events of ``labels`` at batch positions ``start`` and later."""
    if int(labels.indices[0]) >= start:
        return labels
    keep = np.flatnonzero(labels.indices >= start)
    return FeedbackBatch(
        labels.model_id,
        labels.model_version,
        labels.indices[keep],
        [labels.event_ids[i] for i in keep.tolist()],
        labels.timestamps[keep],
        [labels.labels[i] for i in keep.tolist()],
    )

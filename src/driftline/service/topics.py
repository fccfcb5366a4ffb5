"""The topics driftline reads and writes: create them, check them.

* input topics: ``kafka.partitions`` partitions; events should be keyed by ``model_id``.
* alerts, retrain requests, dead letters: same partition count, time-based retention.
* state: **compacted** (per input partition an epoch claim, the live head and the chunks it
  references), with the broker's default ``max.message.bytes``: no state record exceeds
  ``checkpoints.MAX_STATE_RECORD_BYTES`` (1,000,000 bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from driftline.config import Settings
from driftline.service.checkpoints import MAX_STATE_RECORD_BYTES
from driftline.service.kafka_clients import MAX_REQUEST_BYTES, make_admin

log = logging.getLogger(__name__)

DEAD_LETTER_MAX_MESSAGE_BYTES = MAX_REQUEST_BYTES
"""``max.message.bytes`` of the dead-letter topic: a dead letter is an input record
unchanged plus headers, so the topic accepts the largest record the service's producer
sends (its ``max_request_size``: an input of up to 16 MiB plus 1 MiB for headers), more
than any input topic accepts by default. Unrelated to checkpoint sizes."""

STATE_MIN_MAX_MESSAGE_BYTES = MAX_STATE_RECORD_BYTES + 4096
"""The state topic must accept this (the broker's default, 1,048,588, does)."""


MISSING_TOPIC_CHECKS = 5


class TopicError(RuntimeError):
    """A topic driftline needs is missing or misconfigured."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    role: str
    configs: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    kafka = settings.kafka
    specs = [TopicSpec(t, "input", {}) for t in kafka.input_topics]
    specs += [TopicSpec(t, "feedback", {}) for t in kafka.feedback_topics]
    specs += [
        TopicSpec(kafka.alerts_topic, "alerts", {}),
        TopicSpec(kafka.retrain_topic, "retrain requests", {}),
        TopicSpec(
            kafka.dead_letter_topic,
            "dead letters",
            {"max.message.bytes": str(DEAD_LETTER_MAX_MESSAGE_BYTES)},
        ),
        TopicSpec(
            kafka.state_topic,
            "state",
            {
                "cleanup.policy": "compact",
                "segment.ms": str(60 * 60 * 1000),
                "min.cleanable.dirty.ratio": "0.1",
            },
        ),
    ]
    if settings.comparisons:  # only then: deployments without comparisons need no topic
        specs.append(TopicSpec(kafka.comparisons_topic, "comparisons", {}))
    return specs


async def _existing(admin: Any, names: list[str]) -> dict[str, int]:
    """Partition counts of the topics among ``names`` that exist."""
    present = set(await admin.list_topics())
    wanted = [n for n in names if n in present]
    counts: dict[str, int] = {}
    if wanted:
        for topic in await admin.describe_topics(wanted):
            counts[topic["topic"]] = len(topic["partitions"])
    return counts


async def _configs(admin: Any, name: str) -> dict[str, str]:
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    values: dict[str, str] = {}
    for response in responses:
        for resource in response.resources:
            for entry in resource[4]:
                values[entry[0]] = entry[1]
    return values


async def differences(settings: Settings, admin: Any) -> list[str]:
    """What is missing or differs from what driftline would create (human-readable)."""
    specs = topic_specs(settings)
    counts = await _existing(admin, [s.name for s in specs])
    problems = []
    for spec in specs:
        if spec.name not in counts:
            problems.append(f"{spec.role} topic {spec.name!r} does not exist")
            continue
        if spec.role == "feedback":
            inputs = counts.get(settings.kafka.input_topics[0])
            if inputs is not None and counts[spec.name] != inputs:
                problems.append(
                    f"feedback topic {spec.name!r} has {counts[spec.name]} partitions and input "
                    f"topic {settings.kafka.input_topics[0]!r} {inputs}: labels are joined "
                    "with predictions of the same partition number, so both must have the same "
                    "partition count and be produced with the same partitioner and key "
                    "(model_id)"
                )
            continue
        if spec.role == "input" and counts[spec.name] != settings.kafka.partitions:
            problems.append(
                f"input topic {spec.name!r} has {counts[spec.name]} partitions, "
                f"kafka.partitions is {settings.kafka.partitions} (fine if intended)"
            )
        if spec.configs:
            actual = await _configs(admin, spec.name)
            accepted = int(actual.get("max.message.bytes", "0") or "0")
            if spec.role == "state" and accepted < STATE_MIN_MAX_MESSAGE_BYTES:
                problems.append(
                    f"state topic {spec.name!r} accepts records up to {accepted} bytes; "
                    f"state records need {STATE_MIN_MAX_MESSAGE_BYTES}"
                )
            for key, value in spec.configs.items():
                if key == "cleanup.policy" and "compact" not in actual.get(key, ""):
                    problems.append(
                        f"state topic {spec.name!r} must be compacted "
                        f"(cleanup.policy={actual.get(key)!r})"
                    )
                elif key == "max.message.bytes" and int(actual.get(key, "0")) < int(value):
                    # an input record this large stops the service when dead-lettered
                    problems.append(
                        f"dead-letter topic {spec.name!r} accepts records up to "
                        f"{actual.get(key)} bytes, driftline creates it with {value}: a "
                        "larger dead letter stops the service (fine if intended)"
                    )
    return problems


def is_blocking(difference: str) -> bool:
    """Whether ``driftline run`` refuses to start with this difference (of
    :func:`differences`); the others are advisories ending in "(fine if intended)"."""
    return "(fine if intended)" not in difference


async def create_topics(settings: Settings) -> list[str]:
    """Create every missing topic; return a report line per topic (created / differences)."""
    admin = make_admin(settings.kafka)
    await admin.start()
    try:
        specs = topic_specs(settings)
        existing = await _existing(admin, [s.name for s in specs])
        replication = settings.kafka.replication_factor
        if replication is None:  # 3, or every broker of a smaller cluster
            cluster = await admin.describe_cluster()
            replication = max(1, min(3, len(cluster.get("brokers", []))))
        # A feedback topic is joined partition by partition with the input topic: it gets
        # the input topic's partition count, whatever kafka.partitions says.
        inputs = existing.get(settings.kafka.input_topics[0], settings.kafka.partitions)
        new = [
            NewTopic(
                spec.name,
                inputs if spec.role == "feedback" else settings.kafka.partitions,
                replication,
                topic_configs=spec.configs,
            )
            for spec in specs
            if spec.name not in existing
        ]
        report = []
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # created concurrently
                await admin.create_topics(new)
            report += [f"created {t.name} ({t.num_partitions} partitions)" for t in new]
        report += [f"differs: {p}" for p in await differences(settings, admin)]
        report += [f"exists: {name}" for name in existing]
        return report
    finally:
        await admin.close()


async def check_topics(settings: Settings) -> int:
    """Fail start-up with a clear message when a topic is missing or the state topic is not
    compacted; return the state topic's partition count."""
    admin = make_admin(settings.kafka)
    await admin.start()
    try:
        # A topic created a moment ago may not be in the broker's metadata yet: look again
        # for a few seconds before calling it missing.
        for attempt in range(MISSING_TOPIC_CHECKS):
            found = await differences(settings, admin)
            problems = [p for p in found if is_blocking(p)]
            missing = any(p.endswith("does not exist") for p in problems)
            if not missing or attempt == MISSING_TOPIC_CHECKS - 1:
                break
            await asyncio.sleep(1.0)
        for advisory in sorted(set(found) - set(problems)):
            log.warning("%s", advisory)
        counts = await _existing(admin, [settings.kafka.state_topic])
    finally:
        await admin.close()
    if problems:
        raise TopicError("; ".join(problems) + " — run `driftline topics create --config FILE`")
    return counts[settings.kafka.state_topic]

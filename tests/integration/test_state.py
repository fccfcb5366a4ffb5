"""State format 2 through a real broker: a partition whose state is far over 16 MiB
checkpoints and restores with the state topic at the broker's default
``max.message.bytes``; a kill -9 in the middle of a checkpoint write restores the previous
consistent checkpoint; a zombie's late head of an older epoch is never restored."""

from __future__ import annotations

import asyncio
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.service.checkpoints import (
    MAX_STATE_RECORD_BYTES,
    WriteId,
    decode_record,
    encode_parts,
)
from driftline.service.kafka_clients import MAX_INPUT_RECORD_BYTES
from driftline.service.topics import _configs
from tests.integration.service_support import (
    MODELS,
    Deployment,
    ServiceProcess,
    assert_outputs_equal,
    committed_offsets,
    make_deployment,
    produce,
    read_topic,
    replay_with_counts,
    scenario_events,
    service_status,
    status_counts,
    wait_processed,
)

pytestmark = pytest.mark.kafka

BROKER_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588


def _deployment(tmp_path: Path, bootstrap: str, prefix: str, **extra: Any) -> Deployment:
    unique = f"{prefix}-{uuid.uuid4().hex[:10]}"
    return make_deployment(tmp_path, bootstrap, unique, partitions=1, **extra)


def _wide_events(models: int, per_model: int, features: int) -> list[tuple[bytes, bytes]]:
    """Unconfigured models (learned profiles) with many numeric features, interleaved."""
    rng = np.random.default_rng(7)
    names = [f"f{j}" for j in range(features)]
    pairs = []
    for i in range(per_model):
        rows = np.round(rng.normal(0.0, 1.0, (models, features)), 5).tolist()
        for m, row in enumerate(rows):
            value = {
                "event_id": f"wide-{m}-{i}",
                "model_id": f"wide-{m}",
                "model_version": "1",
                "timestamp": 1_700_000_000 + i,
                "features": dict(zip(names, row, strict=True)),
            }
            pairs.append((f"wide-{m}".encode(), orjson.dumps(value)))
    return pairs


def _restored_holds(service: ServiceProcess, partitions: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(service_status(service)["partitions"]) < partitions:
        if service.proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"partitions not assigned:\n{service.output()}")
        time.sleep(0.2)


def _state_config(deployment: Deployment) -> dict[str, str]:
    async def configs() -> dict[str, str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=deployment.settings.kafka.bootstrap_servers)
        await admin.start()
        try:
            return await _configs(admin, deployment.settings.kafka.state_topic)
        finally:
            await admin.close()

    return asyncio.run(configs())


def test_state_over_16_mib_checkpoints_and_restores_at_the_default_record_size(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """The crash loop of format 1: several unconfigured 300-feature models mid-warm-up."""
    # A warm-up sample as large as the warm-up keeps every raw value, as format 1's states
    # did: the largest per-version state the settings allow.
    deployment = _deployment(tmp_path, kafka_bootstrap, "big", warmup_sample_values=10_000)
    assert int(_state_config(deployment)["max.message.bytes"]) == BROKER_DEFAULT_MAX_MESSAGE_BYTES
    pairs = _wide_events(models=4, per_model=4_000, features=300)
    values = [v for _, v in pairs]
    expected = replay_with_counts(deployment, values)
    # What format 1 wrote as one record: more than the producer ever accepted.
    reference = Pipeline(build_plan(deployment.settings))
    for start in range(0, len(values), 1000):
        reference.process(values[start : start + 1000])
    assert len(zlib.compress(reference.to_state(), 1)) > MAX_INPUT_RECORD_BYTES
    assert all(v.warming_up for v in reference.snapshot().versions)
    produce(deployment, pairs)
    service = ServiceProcess(deployment, "first")
    try:
        wait_processed(deployment, [service], len(pairs), timeout=300)
    finally:
        assert service.terminate() == 0, service.output()
    assert "MessageSizeTooLarge" not in service.output()
    state = read_topic(deployment, deployment.settings.kafka.state_topic)
    live = [r for r in state if r.value is not None]
    assert len(live) > 16
    assert max(len(r.key or b"") + len(r.value or b"") for r in live) <= MAX_STATE_RECORD_BYTES
    assert any(decode_record(r.key or b"", r.value).kind == "head" for r in live if r.value)
    again = ServiceProcess(deployment, "again")
    try:
        again.wait_ready()
        _restored_holds(again, 1)
        assert status_counts(again) == (expected.events, expected.dead_letters)
        models = [m for m in service_status(again)["models"] if m["model_id"].startswith("wide")]
        assert len(models) == 4 and all(m["state"] == "warming_up" for m in models), models
    finally:
        assert again.terminate() == 0, again.output()
    assert f"resuming at offset {len(pairs)}" in again.output()
    assert committed_offsets(deployment) == {0: len(pairs)}


def test_kill_in_the_middle_of_a_checkpoint_restores_the_previous_one(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    deployment = _deployment(tmp_path, kafka_bootstrap, "torn")
    pairs = scenario_events(4_000)
    values = [v for _, v in pairs]
    expected = replay_with_counts(deployment, values)
    produce(deployment, pairs)
    # Checkpoints every 2,000 events (batches of 700): the third one dies after two of its
    # records (the three versions' chunks and the head are four).
    torn = ServiceProcess(deployment, "torn", module="tests.integration.torn_checkpoint 3 2")
    assert torn.proc.wait(120) == -9, torn.output()
    torn.handle.close()
    assert "killed in the middle of a checkpoint" in torn.output()
    written = read_topic(deployment, deployment.settings.kafka.state_topic)
    heads = [decode_record(r.key or b"", r.value) for r in written if r.value is not None]
    offsets = [h.head.next_offset for h in heads if h.head is not None]
    assert len(offsets) == 2, offsets  # the third head never written
    service = ServiceProcess(deployment, "after")
    try:
        wait_processed(deployment, [service], len(pairs), timeout=240)
        assert status_counts(service) == (expected.events, expected.dead_letters)
    finally:
        assert service.terminate() == 0, service.output()
    assert f"resuming at offset {max(offsets)}" in service.output()
    assert set(MODELS) <= {k.split("/")[0] for k in expected.events}
    assert_outputs_equal(deployment, expected.outputs)


async def _write_zombie_head(deployment: Deployment, next_offset: int, epoch: int) -> None:
    """A head of an older owner's ``epoch``, written after a later owner's claim: an empty
    state claiming every event as covered."""
    kafka = deployment.settings.kafka
    empty = Pipeline(build_plan(deployment.settings))
    encoded = encode_parts(
        kafka.group_id,
        kafka.input_topics[0],
        0,
        WriteId(epoch, 10_000, "zombie"),
        next_offset,
        empty.head_state(),
        [],
        {},
        {},
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(kafka.state_topic, encoded.head[1], key=encoded.head[0])
    finally:
        await producer.stop()


def test_a_zombie_head_of_an_older_epoch_is_never_restored(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    deployment = _deployment(tmp_path, kafka_bootstrap, "zombie")
    pairs = scenario_events(3_000)
    values = [v for _, v in pairs]
    expected = replay_with_counts(deployment, values)
    first_half, second_half = pairs[: len(pairs) // 2], pairs[len(pairs) // 2 :]
    produce(deployment, first_half)
    first = ServiceProcess(deployment, "first")  # epoch 1: evicted (killed) mid-stream
    wait_processed(deployment, [first], len(first_half), timeout=240)
    first.kill()
    produce(deployment, second_half)
    survivor = ServiceProcess(deployment, "survivor")  # epoch 2
    try:
        wait_processed(deployment, [survivor], len(pairs), timeout=240)
    finally:
        assert survivor.terminate() == 0, survivor.output()
    assert "epoch 2" in survivor.output()
    # The first owner, a zombie, writes a head later: highest sequence, last in the log.
    asyncio.run(_write_zombie_head(deployment, len(pairs) + 5, epoch=1))
    again = ServiceProcess(deployment, "again")
    try:
        again.wait_ready()
        _restored_holds(again, 1)
        assert status_counts(again) == (expected.events, expected.dead_letters)
    finally:
        assert again.terminate() == 0, again.output()
    assert f"epoch 3, resuming at offset {len(pairs)}" in again.output()
    # Epoch 3 claimed the partition at adoption but never wrote a checkpoint (nothing new
    # to process). The survivor of epoch 2, now a zombie in turn, writes a head after that
    # claim: the next owner resumes from what epoch 3 resumed from, not from the zombie's.
    asyncio.run(_write_zombie_head(deployment, len(pairs) + 7, epoch=2))
    last = ServiceProcess(deployment, "last")
    try:
        last.wait_ready()
        _restored_holds(last, 1)
        assert status_counts(last) == (expected.events, expected.dead_letters)
    finally:
        assert last.terminate() == 0, last.output()
    assert f"epoch 4, resuming at offset {len(pairs)}" in last.output()
    assert "written by an owner evicted from the group" in last.output()
    assert_outputs_equal(deployment, expected.outputs)

"""The local Apache Kafka broker, exercised with aiokafka as driftline's services will."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from driftline import localkafka
from driftline.localkafka import LocalKafka, LocalKafkaError, broker_ready, ensure_jars

pytestmark = pytest.mark.kafka

Names = Callable[[str], str]


async def _create_topic(bootstrap: str, topic: str, partitions: int = 1) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, partitions, 1)])
        errors = [(name, code) for name, code, *_ in response.topic_errors if code != 0]
        assert errors == [], f"create_topics failed: {errors}"
        # Metadata reaches the broker's cache shortly after creation (KRaft): wait for it.
        for _ in range(100):
            topics: list[str] = await admin.list_topics()
            if topic in topics:
                break
            await asyncio.sleep(0.1)
        return topics
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=value[:1])
    finally:
        await producer.stop()


async def _consume(
    bootstrap: str, topic: str, group: str, count: int, commit_at: int | None = None
) -> list[tuple[int, bytes]]:
    """Read ``count`` records in group ``group``; optionally commit offset ``commit_at``."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records: list[tuple[int, bytes]] = []
        async with asyncio.timeout(60):
            while len(records) < count:
                batches = await consumer.getmany(timeout_ms=1000)
                for batch in batches.values():
                    records += [(r.offset, r.value) for r in batch if r.value is not None]
        if commit_at is not None:
            partition = TopicPartition(topic, 0)
            await consumer.commit({partition: commit_at})
            assert await consumer.committed(partition) == commit_at
        return records
    finally:
        await consumer.stop()


async def _group_offsets(bootstrap: str, group: str) -> dict[TopicPartition, OffsetAndMetadata]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()


def _messages(n: int) -> list[bytes]:
    return [f"event-{i:03d}".encode() for i in range(n)]


def test_admin_client_creates_a_topic(kafka_bootstrap: str, topic_name: Names) -> None:
    topic = topic_name("admin")
    topics = asyncio.run(_create_topic(kafka_bootstrap, topic, partitions=3))
    assert topic in topics


def test_messages_round_trip_in_order(
    kafka_bootstrap: str, topic_name: Names, group_id: Names
) -> None:
    topic = topic_name("roundtrip")
    asyncio.run(_create_topic(kafka_bootstrap, topic))
    sent = _messages(25)
    asyncio.run(_produce(kafka_bootstrap, topic, sent))
    received = asyncio.run(_consume(kafka_bootstrap, topic, group_id("roundtrip"), len(sent)))
    assert received == list(enumerate(sent))


def test_group_commit_is_read_back_and_resumed_from(
    kafka_bootstrap: str, topic_name: Names, group_id: Names
) -> None:
    topic, group = topic_name("commit"), group_id("commit")
    asyncio.run(_create_topic(kafka_bootstrap, topic))
    sent = _messages(12)
    asyncio.run(_produce(kafka_bootstrap, topic, sent))
    asyncio.run(_consume(kafka_bootstrap, topic, group, len(sent), commit_at=7))

    offsets = asyncio.run(_group_offsets(kafka_bootstrap, group))
    assert {tp: meta.offset for tp, meta in offsets.items()} == {TopicPartition(topic, 0): 7}
    resumed = asyncio.run(_consume(kafka_bootstrap, topic, group, len(sent) - 7))
    assert resumed == list(enumerate(sent))[7:]


def test_restart_on_the_same_data_dir_keeps_messages_and_port(
    tmp_path: Path, topic_name: Names, group_id: Names
) -> None:
    topic = topic_name("restart")
    sent = _messages(10)
    with LocalKafka(tmp_path / "kafka") as broker:
        bootstrap = broker.bootstrap
        asyncio.run(_create_topic(bootstrap, topic))
        asyncio.run(_produce(bootstrap, topic, sent))
        broker.stop()
        assert not broker.running
        broker.start()
        assert broker.bootstrap == bootstrap
        received = asyncio.run(_consume(bootstrap, topic, group_id("restart"), len(sent)))
    assert received == list(enumerate(sent))
    assert not broker.running


def test_foreground_run_prints_bootstrap_and_exits_0_on_sigterm() -> None:
    program = textwrap.dedent(
        """
        import sys
        from driftline.localkafka import run_local_kafka
        sys.exit(run_local_kafka(None, None))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", program],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the broker is up (or the run ends)
        found = re.fullmatch(r"bootstrap: (127\.0\.0\.1:\d+)\n", line)
        if found is None:
            process.kill()
            _, errors = process.communicate()
            pytest.fail(f"no bootstrap line (got {line!r}); standard error:\n{errors}")
        assert broker_ready(found.group(1))
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, errors
    data_dir = re.search(r"in (\S+) \.\.\.", errors)
    assert data_dir, errors
    assert not Path(data_dir.group(1)).exists()  # the temporary data dir is removed


def test_a_port_in_use_is_reported_before_starting(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = LocalKafka(tmp_path / "kafka", port=taken.getsockname()[1])
        with pytest.raises(LocalKafkaError, match=f"127.0.0.1:{broker.port} is in use"):
            broker.start()
    assert not broker.running


# --- fetching and prerequisites, with stand-in tools (no broker needed) ----------------


def _fake_tool(directory: Path, name: str, script: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tool = directory / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)


_FAKE_MVN = """
out=""
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}";; esac
done
echo run >> "$MVN_CALLS"
mkdir -p "$out" && touch "$out/kafka_2.13-0.jar" "$out/kafka-clients-0.jar"
"""


def test_jars_are_fetched_once_and_refetched_after_an_interrupted_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    _fake_tool(tmp_path / "bin", "mvn", _FAKE_MVN)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("MVN_CALLS", str(calls))
    lib = tmp_path / "cache" / "lib"

    assert ensure_jars(lib) == lib
    assert ensure_jars(lib) == lib
    assert calls.read_text().count("run") == 1
    assert (lib / "kafka_2.13-0.jar").is_file()

    (lib / localkafka._MARKER).unlink()  # as if the copy had been cut short
    ensure_jars(lib)
    assert calls.read_text().count("run") == 2


def test_cache_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(localkafka.CACHE_ENV, str(tmp_path / "jars"))
    assert localkafka.default_cache_dir() == tmp_path / "jars"
    monkeypatch.delenv(localkafka.CACHE_ENV)
    assert localkafka.default_cache_dir().parts[-2:] == (f"kafka-{localkafka.KAFKA_VERSION}", "lib")


def test_failed_maven_run_reports_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_tool(tmp_path / "bin", "mvn", "echo 'Could not resolve dependencies' >&2\nexit 1\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(LocalKafkaError, match="Could not resolve dependencies"):
        ensure_jars(tmp_path / "lib")
    assert not (tmp_path / "lib").exists()


def test_missing_maven_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LocalKafkaError, match="Maven"):
        ensure_jars(tmp_path / "lib")


def test_old_or_missing_java_names_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(LocalKafkaError, match="Java 17 or newer"):
        localkafka.find_java()
    _fake_tool(tmp_path / "bin", "java", """echo 'java version "1.8.0_402"' >&2\n""")
    with pytest.raises(LocalKafkaError, match=r"is Java 8: .* Java 17 or newer"):
        localkafka.find_java()


def test_topics_create_with_default_replication_on_one_broker(
    kafka_bootstrap: str, topic_name: Callable[[str], str]
) -> None:
    from driftline.config import parse_settings
    from driftline.service.topics import check_topics, create_topics

    prefix = topic_name("defaults")
    settings = parse_settings(
        {
            "kafka": {
                "bootstrap_servers": kafka_bootstrap,
                "input_topics": [f"{prefix}-in"],
                "alerts_topic": f"{prefix}-alerts",
                "retrain_topic": f"{prefix}-retrain",
                "dead_letter_topic": f"{prefix}-dead",
                "state_topic": f"{prefix}-state",
            }
        }
    )
    report = asyncio.run(create_topics(settings))
    assert sum(line.startswith("created") for line in report) == 5, report
    assert asyncio.run(check_topics(settings)) == settings.kafka.partitions
    again = asyncio.run(create_topics(settings))
    assert not any(line.startswith("created") for line in again), again

"""Integration-test fixtures: one real Kafka broker per test session.

Set ``DRIFTLINE_KAFKA_BOOTSTRAP=host:port`` to use an existing cluster instead of starting
a local broker from the Maven jars. A broker that cannot start fails the tests (it never
skips them): a green run must mean the tests ran against Kafka.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from driftline.localkafka import LocalKafka, LocalKafkaError

BOOTSTRAP_ENV = "DRIFTLINE_KAFKA_BOOTSTRAP"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "kafka: needs a real Kafka broker (tests/integration)")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of the session's Kafka cluster."""
    existing = os.environ.get(BOOTSTRAP_ENV)
    if existing:
        yield existing
        return
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"))
    problem = None
    try:
        broker.start()
    except LocalKafkaError as error:
        problem = str(error)
    if problem is not None:
        pytest.fail(
            f"the local Kafka broker did not start ({BOOTSTRAP_ENV}=host:port would use an "
            f"existing cluster instead): {problem}",
            pytrace=False,
        )
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


def _unique(kind: str) -> Callable[[str], str]:
    def make(prefix: str = "test") -> str:
        return f"driftline-{kind}-{prefix}-{uuid.uuid4().hex[:12]}"

    return make


@pytest.fixture
def topic_name() -> Callable[[str], str]:
    """Factory of unique topic names: ``topic_name("alerts")``."""
    return _unique("topic")


@pytest.fixture
def group_id() -> Callable[[str], str]:
    """Factory of unique consumer-group ids: ``group_id("monitor")``."""
    return _unique("group")

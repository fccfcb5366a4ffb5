"""Kafka client construction from settings (security included; secrets never logged)."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.helpers import create_ssl_context

from driftline.config import KafkaSettings

#: Largest input record the service forwards unchanged as a dead letter. Input topics keep
#: the broker's default (1 MiB) unless an operator raises their ``max.message.bytes``; up
#: to this size a dead letter is still produced (larger ones stop the service).
MAX_INPUT_RECORD_BYTES = 16 * 1024 * 1024
#: The producer's ``max_request_size``: a dead letter is the input record plus headers.
#: State records are far smaller (checkpoints.MAX_STATE_RECORD_BYTES, under 1 MiB).
MAX_REQUEST_BYTES = MAX_INPUT_RECORD_BYTES + 1024 * 1024
#: The state reader's fetch sizes: state records are at most 1 MiB each; a few MiB per
#: partition and request keep restores to few round trips.
STATE_FETCH_BYTES_PER_PARTITION = 8 * 1024 * 1024
STATE_FETCH_MAX_BYTES = 32 * 1024 * 1024
#: Most bytes the input consumer fetches per partition and request (aiokafka's default is
#: 1 MiB): larger fetches mean fewer round trips and larger batches through the core.
INPUT_FETCH_BYTES_PER_PARTITION = 4 * 1024 * 1024
#: The broker answers an input fetch once it has this many bytes, or after
#: INPUT_FETCH_WAIT_MS: under live traffic batches hold hundreds of events rather than a
#: few, which costs the core less per event (aiokafka's defaults: 1 byte, 500 ms).
INPUT_FETCH_MIN_BYTES = 512 * 1024
INPUT_FETCH_WAIT_MS = 100


def connection_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Options shared by every client: bootstrap servers, client id and security."""
    security = kafka.security
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": kafka.client_id,
        "security_protocol": security.security_protocol,
    }
    if security.security_protocol in ("SSL", "SASL_SSL"):
        context = create_ssl_context(
            cafile=None if security.ssl_cafile is None else str(security.ssl_cafile),
            certfile=None if security.ssl_certfile is None else str(security.ssl_certfile),
            keyfile=None if security.ssl_keyfile is None else str(security.ssl_keyfile),
            password=None
            if security.ssl_password is None
            else security.ssl_password.get_secret_value(),
        )
        context.check_hostname = security.ssl_check_hostname
        options["ssl_context"] = context
    if security.security_protocol.startswith("SASL"):
        assert security.sasl_password is not None
        options["sasl_mechanism"] = security.sasl_mechanism
        options["sasl_plain_username"] = security.sasl_username
        options["sasl_plain_password"] = security.sasl_password.get_secret_value()
    return options


def make_consumer(kafka: KafkaSettings, *, group: bool = True) -> AIOKafkaConsumer:
    """The input consumer (manual commits, no auto-subscribe) or, with ``group=False``, a
    group-less reader (for the state topic).

    With feedback topics the group assigns ranges (partition p of every topic to the same
    member, the topics having the same partition count) instead of aiokafka's round robin,
    so a feedback partition lands where its input partition is. A group's members must all
    use the same assignor: change ``kafka.feedback_topics`` with every member stopped.
    """
    options: dict[str, Any] = {}
    if group and kafka.feedback_topics:
        options["partition_assignment_strategy"] = (RangePartitionAssignor,)
    return AIOKafkaConsumer(
        **connection_options(kafka),
        **options,
        group_id=kafka.group_id if group else None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=(
            INPUT_FETCH_BYTES_PER_PARTITION if group else STATE_FETCH_BYTES_PER_PARTITION
        ),
        fetch_max_bytes=50 * 1024 * 1024 if group else STATE_FETCH_MAX_BYTES,
        fetch_min_bytes=INPUT_FETCH_MIN_BYTES if group else 1,
        fetch_max_wait_ms=INPUT_FETCH_WAIT_MS if group else 500,
    )


def make_producer(kafka: KafkaSettings) -> AIOKafkaProducer:
    """Idempotent producer (acks=all), allowed to send dead letters of large inputs, with
    the configured codec (``kafka.compression_type``). No linger: the service sends a
    batch's outputs together and then waits for their acknowledgements, so waiting for more
    records would only add its delay to every batch."""
    return AIOKafkaProducer(
        **connection_options(kafka),
        compression_type=None if kafka.compression_type == "none" else kafka.compression_type,
        acks="all",
        enable_idempotence=True,
        linger_ms=0,
        max_batch_size=256 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
    )


def make_admin(kafka: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**connection_options(kafka))

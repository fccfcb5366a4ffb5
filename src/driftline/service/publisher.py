"""Producing records at least once: send, wait for every acknowledgement, resend what a
retriable error refused (same records, same order, bounded backoff), stop on the rest."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError

log = logging.getLogger(__name__)

#: Backoff between attempts to publish outputs or read state (doubles up to the maximum).
RETRY_BACKOFF_SECONDS = (0.2, 5.0)
#: Log a warning this often while records wait for their acknowledgement.
ACK_WARNING_SECONDS = 5.0


class FatalKafkaError(KafkaError):  # type: ignore[misc]
    """A Kafka error retrying cannot fix (authorization, authentication, record too large)."""


def is_retriable(exc: BaseException) -> bool:
    """Whether waiting and trying again can succeed (broker away, leader moving, topic
    being recreated, timeouts); anything else stops the service.

    >>> from aiokafka.errors import NotLeaderForPartitionError, TopicAuthorizationFailedError
    >>> is_retriable(NotLeaderForPartitionError()), is_retriable(KafkaTimeoutError())
    (True, True)
    >>> is_retriable(TopicAuthorizationFailedError())
    False
    """
    if isinstance(exc, KafkaTimeoutError | TimeoutError | ConnectionError):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    """One output record, kept until Kafka acknowledged it (to resend it unchanged)."""

    topic: str
    value: bytes | None
    """None: a tombstone (state topic)."""
    key: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Publisher:
    """The service's one way to produce: :meth:`send_acked`."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def send_acked(self, outgoing: list[OutgoingRecord], *, holds_back: str) -> None:
        """Send ``outgoing`` and wait for every acknowledgement; resend what failed with a
        retriable error (same records, bounded backoff) until all are acknowledged.

        Raises :class:`FatalKafkaError` on an error retrying cannot fix. Callers do nothing
        that depends on these records (offsets, checkpoints) before this returns;
        ``holds_back`` names what waits, for the log.
        """
        pending = outgoing
        backoff, max_backoff = RETRY_BACKOFF_SECONDS
        while pending:
            attempt = asyncio.ensure_future(self._send_once(pending))
            waited = 0.0
            while not (await asyncio.wait({attempt}, timeout=ACK_WARNING_SECONDS))[0]:
                waited += ACK_WARNING_SECONDS
                log.warning(
                    "%d records (%s) not acknowledged after %.0f s; still waiting, %s held back",
                    len(pending),
                    ", ".join(sorted({item.topic for item in pending})),
                    waited,
                    holds_back,
                )
            failed = attempt.result()
            if not failed:
                return
            for item, error in failed:
                if not is_retriable(error):
                    raise FatalKafkaError(
                        f"producing to {item.topic} failed and cannot be retried: {error!r}"
                    ) from error
            log.warning(
                "%d of %d records not acknowledged (%s: %r); retrying in %.1f s",
                len(failed),
                len(pending),
                ", ".join(sorted({item.topic for item, _ in failed})),
                failed[0][1],
                backoff,
            )
            # Resend in the original order, so each key's records keep their order.
            retry = {id(item) for item, _ in failed}
            pending = [item for item in pending if id(item) in retry]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)

    async def _send_once(
        self, pending: list[OutgoingRecord]
    ) -> list[tuple[OutgoingRecord, BaseException]]:
        """Send every record once and wait for all answers; return the failures."""
        failed: list[tuple[OutgoingRecord, BaseException]] = []
        sent: list[tuple[OutgoingRecord, asyncio.Future[object]]] = []
        for item in pending:
            try:
                future = await self.producer.send(
                    item.topic, item.value, key=item.key, headers=item.headers or None
                )
            except Exception as exc:  # sorted by the caller: retriable or fatal
                failed.append((item, exc))
            else:
                sent.append((item, future))
        results = await asyncio.gather(*(f for _, f in sent), return_exceptions=True)
        for (item, _), result in zip(sent, results, strict=True):
            if isinstance(result, BaseException):
                failed.append((item, result))
        return failed

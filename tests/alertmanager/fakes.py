"""A stand-in for the bridge's Kafka consumer and a small Alertmanager HTTP endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from driftline.alertmanager.bridge import ALERTS_PATH


class FakeConsumer:
    """An alerts topic held in memory; ``commit`` blocks forever when ``commits_hang``
    (aiokafka retries a commit without limit while the group coordinator is down)."""

    def __init__(self, topic: str, partitions: dict[int, list[bytes]]) -> None:
        self.topic = topic
        self.records = partitions
        self.commits_hang = False
        self.commit_calls = 0
        self.committed_offsets: dict[TopicPartition, int] = {}
        self._assigned: list[TopicPartition] = []
        self._position: dict[TopicPartition, int] = {}

    def add_partition(self, partition: int, records: list[bytes]) -> None:
        self.records[partition] = records

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def assign(self, tps: list[TopicPartition]) -> None:
        self._assigned = list(tps)
        self._position = {tp: 0 for tp in tps}

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in tps}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: len(self.records[tp.partition]) for tp in tps}

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_offsets.get(tp)

    async def seek_to_beginning(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self._position[tp] = 0

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._position[tp] = offset

    async def position(self, tp: TopicPartition) -> int:
        return self._position[tp]

    async def getmany(
        self, *tps: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        out: dict[TopicPartition, list[ConsumerRecord[Any, Any]]] = {}
        for tp in tps or self._assigned:
            values = self.records[tp.partition]
            start = self._position[tp]
            if start < len(values):
                out[tp] = [
                    ConsumerRecord(
                        self.topic,
                        tp.partition,
                        offset,
                        0,
                        0,
                        None,
                        value,
                        None,
                        0,
                        len(value),
                        (),
                    )
                    for offset, value in enumerate(values[start:], start)
                ]
                self._position[tp] = len(values)
        if not out:
            await asyncio.sleep(timeout_ms / 1000)
        return out

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commit_calls += 1
        if self.commits_hang:
            await asyncio.Event().wait()
        self.committed_offsets.update(offsets)


class FakeAlertmanager:
    """``POST /api/v2/alerts`` on a loopback port, recording each request's alerts."""

    def __init__(self) -> None:
        self.requests: list[list[dict[str, Any]]] = []
        app = web.Application()
        app.router.add_post(ALERTS_PATH, self._handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        return web.Response(status=200)

    async def start(self) -> str:
        await self.server.start_server()
        return str(self.server.make_url("")).rstrip("/")

    async def close(self) -> None:
        await self.server.close()

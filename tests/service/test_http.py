"""HTTP endpoints and metrics without a broker: a service that is not (yet) ready."""

from __future__ import annotations

import asyncio

import orjson
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from driftline.config import parse_settings
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.service.app import MonitorService
from driftline.service.http import make_app
from driftline.service.metrics import ServiceMetrics
from driftline.service.partition_state import PartitionState
from tests.stream_support import event_stream


def _service() -> MonitorService:
    settings = parse_settings({"warmup_events": 500})
    metrics = ServiceMetrics(wall_clock=lambda: 2_000_000_000.0)
    service = MonitorService(settings, build_plan(settings), metrics)
    metrics.watch(service)
    return service


async def _get(service: MonitorService, path: str) -> tuple[int, bytes]:
    async with TestClient(TestServer(make_app(service))) as client:
        response = await client.get(path)
        return response.status, await response.read()


def test_not_ready_until_partitions_are_assigned() -> None:
    service = _service()
    assert asyncio.run(_get(service, "/healthz"))[0] == 200
    status, body = asyncio.run(_get(service, "/readyz"))
    assert status == 503 and orjson.loads(body) == {"ready": False}
    assert service.metrics.registry.get_sample_value("driftline_ready") == 0.0
    service.running = service.assigned_once = True
    assert asyncio.run(_get(service, "/readyz"))[0] == 200
    assert service.metrics.registry.get_sample_value("driftline_ready") == 1.0


def test_status_and_metrics_reflect_processed_batches() -> None:
    service = _service()
    tp = TopicPartition("in", 0)
    pipeline = Pipeline(build_plan(service.settings, {}))
    service.partitions[tp] = PartitionState(tp, pipeline, last_checkpoint=0.0, next_offset=0)
    events = [*event_stream(3_000), b"not json"]
    records = [
        ConsumerRecord("in", 0, i, 0, 0, None, value, None, len(value), -1, [])
        for i, value in enumerate(events)
    ]
    output = pipeline.process(events)
    service.metrics.batch_processed(tp, len(records), output, consumed_at=1_999_999_999.5)
    registry = service.metrics.registry
    assert registry.get_sample_value("driftline_events_consumed_total", {"topic": "in"}) == 3_001
    assert (
        registry.get_sample_value("driftline_dead_letters_total", {"reason": "invalid_json"}) == 1
    )
    assert (
        registry.get_sample_value(
            "driftline_processing_latency_seconds_count", {"source": "consume_time"}
        )
        == 1
    )
    series = {"model_id": "m", "model_version": "1", "feature": "x_normal", "detector": "psi"}
    assert registry.get_sample_value("driftline_drift_statistic", series) is not None

    status, body = asyncio.run(_get(service, "/v1/status"))
    assert status == 200
    [model] = orjson.loads(body)["models"]
    assert model["model_id"] == "m" and model["events"] == 3_000
    assert model["state"] == "monitoring" and model["learning_features"] == []
    assert "psi" in model["statistics"]["x_normal"]
    status, text = asyncio.run(_get(service, "/metrics"))
    assert status == 200 and b"driftline_drift_statistic{" in text


def test_status_lists_the_columns_learning_their_reference() -> None:
    service = _service()  # warm-up of 500 events, then __prediction__ appears
    tp = TopicPartition("in", 0)
    pipeline = Pipeline(build_plan(service.settings, {}))
    service.partitions[tp] = PartitionState(tp, pipeline, last_checkpoint=0.0, next_offset=0)
    events = event_stream(800)
    pipeline.process(events[:600])
    pipeline.process([orjson.dumps({**orjson.loads(e), "prediction": 0.5}) for e in events[600:]])
    _, body = asyncio.run(_get(service, "/v1/status"))
    [model] = orjson.loads(body)["models"]
    assert model["learning_features"] == [
        {"feature": "__prediction__", "events": 200, "warmup_events": 500}
    ]
    assert "__prediction__" not in model["monitored_features"]

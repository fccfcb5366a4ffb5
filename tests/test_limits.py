"""Every limit that bounds what driftline holds, without Kafka: what happens at the limit and
one past it (README "Limits")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from driftline.config import ConfigError, Settings, parse_settings
from driftline.demo.scenario import Drift, credit_scoring_scenario, event_lines
from driftline.events import DeadLetterReason
from driftline.findings import Finding
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.service.kafka_clients import MAX_REQUEST_BYTES
from driftline.service.metrics import ServiceMetrics
from driftline.service.snapshot import PartitionSnapshot, ServiceSnapshot
from driftline.service.topics import DEAD_LETTER_MAX_MESSAGE_BYTES, topic_specs

R = DeadLetterReason


def settings(**raw: Any) -> Settings:
    return parse_settings({"window": {"events": 250}, "warmup_events": 500, **raw})


def event(model: str = "m", version: str = "1", i: int = 0, **fields: Any) -> bytes:
    base: dict[str, Any] = {
        "event_id": f"{model}-{version}-{i}",
        "model_id": model,
        "model_version": version,
        "timestamp": 1_700_000_000 + i,
        "features": {"a": float(i % 7)},
    }
    return orjson.dumps({**base, **fields})


def run(pipeline: Pipeline, payloads: Sequence[bytes], chunk: int) -> dict[str, list[Any]]:
    """Outputs of ``payloads`` cut into batches of ``chunk``; dead letters with stream index."""
    out: dict[str, list[Any]] = {"alerts": [], "retrain": [], "dead": []}
    for start in range(0, len(payloads), chunk):
        output = pipeline.process(payloads[start : start + chunk])
        out["alerts"] += [a.to_json() for a in output.alerts]
        out["retrain"] += [r.to_json() for r in output.retrain_requests]
        out["dead"] += [(start + d.index, d.reason.value, d.payload) for d in output.dead_letters]
    return out


def drifting(model: str, events: int = 3_000, seed: int = 0) -> list[bytes]:
    scenario = credit_scoring_scenario(
        events=events,
        model_id=model,
        model_version="1",
        seed=seed,
        rate=100.0,
        drifts=(Drift("amount", "mean_shift", start=events // 2, magnitude=1.5),),
    )
    return list(event_lines(scenario))


# --- decode.max_payload_bytes and decode.max_features ----------------------------------


def test_payload_size_limit_is_inclusive_and_dead_letters_the_rest() -> None:
    small = event(features={"a": 1.0, "pad": "x"})
    limit = len(small)
    pipeline = Pipeline(build_plan(settings(decode={"max_payload_bytes": limit}), {}))
    bigger = event(features={"a": 1.0, "pad": "xy"})
    output = pipeline.process([small, bigger])
    assert [(d.index, d.reason, d.payload) for d in output.dead_letters] == [
        (1, R.PAYLOAD_TOO_LARGE, bigger)
    ]
    assert pipeline.counters.events[("m", "1")] == 1


def test_feature_count_limit_counts_features_and_prediction_classes() -> None:
    pipeline = Pipeline(build_plan(settings(decode={"max_features": 100}), {}))
    at_limit = event(features={f"f{i}": i for i in range(100)})
    over = event(features={f"f{i}": i for i in range(101)})
    classes = event(features={f"f{i}": i for i in range(99)}, prediction={"x": 0.1, "y": 0.9})
    output = pipeline.process([at_limit, over, classes])
    assert [(d.index, d.reason) for d in output.dead_letters] == [
        (1, R.TOO_MANY_FEATURES),
        (2, R.TOO_MANY_FEATURES),
    ]
    assert "limit of 100" in output.dead_letters[0].message


def test_limits_are_validated() -> None:
    for raw in (
        {"limits": {"max_model_versions": 0}},
        {"limits": {"max_warmup_values": -1}},
        {"limits": {"max_versions": 5}},
    ):
        with pytest.raises(ConfigError, match=r"limits\.max_"):
            parse_settings(raw)
    defaults = parse_settings({}).limits
    assert (defaults.max_model_versions, defaults.max_warmup_values) == (1_000, 10_000_000)


# --- limits.max_model_versions ----------------------------------------------------------


def test_versions_beyond_the_limit_are_dead_letters_and_the_others_unaffected() -> None:
    tracked = drifting("a", seed=1)
    tracked2 = drifting("b", seed=2)
    extra = [event("c", str(v), i) for i in range(300) for v in (1, 2)]
    stream = [
        value
        for group in zip(tracked, tracked2, [*extra, *[None] * len(tracked)], strict=False)
        for value in group
        if value is not None
    ]
    config = settings(limits={"max_model_versions": 2})
    clean = run(Pipeline(build_plan(config, {})), [v for v in stream if v not in set(extra)], 1000)
    assert clean["alerts"], "the drifting models must alert"
    assert clean["dead"] == []
    for chunk in (1000, 337, 1):
        if chunk == 1:
            stream = stream[:2000]  # one event per batch: a shorter stream keeps it fast
        limited = Pipeline(build_plan(config, {}))
        out = run(limited, stream, chunk)
        expected_dead = [
            (i, "too_many_models", value) for i, value in enumerate(stream) if value in set(extra)
        ]
        assert out["dead"] == expected_dead, chunk
        assert set(limited.versions) == {("a", "1"), ("b", "1")}
        assert limited.counters.dead_letters == {"too_many_models": len(expected_dead)}
        assert ("c", "1") not in limited.counters.events
        if chunk != 1:
            assert out["alerts"] == clean["alerts"]
            assert out["retrain"] == clean["retrain"]


def test_model_version_limit_message_and_ignored_versions_count() -> None:
    config = settings(limits={"max_model_versions": 1}, unconfigured_models="ignore")
    pipeline = Pipeline(build_plan(config, {}))
    output = pipeline.process([event("a"), event("b"), event("a", i=1)])
    assert [(d.index, d.reason) for d in output.dead_letters] == [(1, R.TOO_MANY_MODELS)]
    message = output.dead_letters[0].message
    assert "'b'" in message and "limits.max_model_versions" in message
    assert pipeline.counters.ignored[("a", "1")] == 2


def test_dead_letters_of_decoding_and_limits_come_in_input_order() -> None:
    pipeline = Pipeline(build_plan(settings(limits={"max_model_versions": 1}), {}))
    payloads = [event("b", i=0), b"{", event("a"), event("b", i=1), b"[]", event("c")]
    output = pipeline.process(payloads)
    assert [(d.index, d.reason.value) for d in output.dead_letters] == [
        (1, "invalid_json"),
        (2, "too_many_models"),
        (4, "not_an_object"),
        (5, "too_many_models"),
    ]
    assert [d.payload for d in output.dead_letters] == [payloads[i] for i in (1, 2, 4, 5)]


def test_version_limit_survives_a_checkpoint() -> None:
    config = settings(limits={"max_model_versions": 2})
    first = Pipeline(build_plan(config, {}))
    first.process([event("a"), event("b")])
    second = Pipeline(build_plan(config, {}))
    second.restore(first.to_state())
    output = second.process([event("c"), event("a", i=1)])
    assert [(d.index, d.reason) for d in output.dead_letters] == [(0, R.TOO_MANY_MODELS)]


# --- limits.max_warmup_values -----------------------------------------------------------


def test_warmup_columns_are_capped_and_wider_events_dead_lettered() -> None:
    # 4 warm-up events x 3 columns = 12 values.
    config = settings(warmup_events=4, limits={"max_warmup_values": 12})
    payloads = [
        event(i=0, features={"a": 1, "b": 2}),
        event(i=1, features={"c": 3, "d": None}),  # 4 columns: rejected
        event(i=2, features={"a": 1}, label=1),  # a, b, __label__: 3
        event(i=3, features={"zz": None}),  # a 4th column, even null-valued
        event(i=4, features={"a": 2}, prediction={"x": 0.5}),  # a 4th column
        event(i=5, features={"b": 3}),
        event(i=6, features={"a": 4, "b": 5}, label=0),  # the warm-up's 4th event
        event(i=7, features={"new": 1, "other": 2, "more": 3}),  # monitored: accepted
    ]
    for chunk in (8, 3, 1):
        pipeline = Pipeline(build_plan(config, {}))
        out = run(pipeline, payloads, chunk)
        assert [(i, reason) for i, reason, _ in out["dead"]] == [
            (1, "too_many_warmup_features"),
            (3, "too_many_warmup_features"),
            (4, "too_many_warmup_features"),
        ], chunk
        monitor = pipeline.monitors()[("m", "1")]
        assert monitor.profile is not None
        assert sorted(monitor.profile.features) == ["__label__", "a", "b"], chunk
        assert pipeline.counters.events[("m", "1")] == 5


def test_warmup_memory_stays_bounded_under_distinct_names() -> None:
    config = settings(warmup_events=1_000, limits={"max_warmup_values": 50_000})
    pipeline = Pipeline(build_plan(config, {}))
    assert pipeline.plan.warmup_columns == 50
    # Every event brings 20 names never seen before.
    payloads = [event(i=i, features={f"f{i}-{j}": j for j in range(20)}) for i in range(400)]
    output = pipeline.process(payloads)
    monitor = pipeline.monitors()[("m", "1")]
    held = monitor.warmup.held_values  # sample numbers, bin counts, tracked categories
    assert len(monitor.warmup) <= 50 and held <= 50_000
    assert len(output.dead_letters) == 400 - 2
    message = output.dead_letters[0].message
    assert "at most 50" in message and "limits.max_warmup_values" in message


def test_configured_profiles_have_no_warmup_limit() -> None:
    config = settings(warmup_events=10, limits={"max_warmup_values": 10})
    pipeline = Pipeline(build_plan(config, {}))
    pipeline.process([event(i=i, features={"a": 1.0}) for i in range(10)])  # profile learned
    output = pipeline.process([event(i=10, features={f"f{j}": j for j in range(30)})])
    assert output.dead_letters == []


# --- metric label cardinality: statistic series capped at 10,000 -------------------------


class _Part:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.next_offset: int | None = None
        self.last_checkpoint = 0.0


class _Service:
    """What ServiceCollector reads from MonitorService: its snapshot."""

    def __init__(self, pipelines: list[Pipeline]) -> None:
        self.partitions = {TopicPartition(f"in-{i}", 0): _Part(p) for i, p in enumerate(pipelines)}

    def snapshot(self) -> ServiceSnapshot:
        partitions = tuple(
            PartitionSnapshot(
                tp.topic,
                tp.partition,
                p.next_offset,
                None,
                p.last_checkpoint,
                None,
                p.pipeline.snapshot(),
            )
            for tp, p in self.partitions.items()
        )
        return ServiceSnapshot(ready=True, taken_at=0.0, partitions=partitions)


def _with_findings(versions: int, features: int, model: str = 'm\n"{}') -> Pipeline:
    pipeline = Pipeline(build_plan(settings(), {}))
    for v in range(versions):
        key = (model, str(v))
        pipeline.latest[key] = {
            (f"f{f}", "psi"): Finding(*key, f"f{f}", "psi", "psi", 0.5, 1, 0.0, 1.0, 1, 1, "e")
            for f in range(features)
        }
    return pipeline


def _samples(registry: CollectorRegistry, name: str) -> list[Any]:
    return [s for metric in registry.collect() for s in metric.samples if s.name == name]


def test_statistic_series_are_capped_at_ten_thousand_over_all_partitions() -> None:
    metrics = ServiceMetrics(CollectorRegistry())
    service = _Service(
        [_with_findings(30, 200), _with_findings(25, 200, model="n")]
    )  # 11,000 series
    metrics.watch(service)  # type: ignore[arg-type]
    exported = _samples(metrics.registry, "driftline_drift_statistic")
    assert len(exported) == 10_000
    assert len({tuple(sorted(s.labels.items())) for s in exported}) == 10_000
    [dropped] = _samples(metrics.registry, "driftline_statistic_series_dropped")
    assert dropped.value == 1_000


def test_statistic_series_under_the_cap_are_all_exported() -> None:
    metrics = ServiceMetrics(CollectorRegistry())
    metrics.watch(_Service([_with_findings(3, 4)]), max_series=12)  # type: ignore[arg-type]
    assert len(_samples(metrics.registry, "driftline_drift_statistic")) == 12
    [dropped] = _samples(metrics.registry, "driftline_statistic_series_dropped")
    assert dropped.value == 0


# --- Kafka record sizes: the dead-letter topic takes back what the service accepts --------


def test_dead_letter_topic_accepts_the_largest_record_the_service_produces() -> None:
    specs = {spec.role: spec for spec in topic_specs(settings())}
    dead = int(specs["dead letters"].configs["max.message.bytes"])
    assert dead == DEAD_LETTER_MAX_MESSAGE_BYTES
    assert dead >= MAX_REQUEST_BYTES  # the producer's max_request_size
    assert dead > 10 * 1024 * 1024 + 64 * 1024  # a 10 MB input plus headers
    assert specs["input"].configs == {}  # input topics keep the broker's default

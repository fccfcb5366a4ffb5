"""Champion / challenger comparisons as the service shows them: ``/v1/status`` (the state of
every configured comparison, from the partition that compares it) and the Prometheus
families ``driftline_comparison_*``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from driftline.pipeline import Pipeline
from driftline.service.http import status
from driftline.service.metrics import ServiceCollector
from driftline.service.snapshot import PartitionSnapshot, ServiceSnapshot
from tests.comparisons.test_pipeline_comparisons import _pipeline, stream


def _snapshot() -> ServiceSnapshot:
    compared = _pipeline()
    values = stream(4_000, shadow=True)
    for start in range(0, len(values), 1_000):
        compared.process(values[start : start + 1_000])
    idle: Pipeline = _pipeline()  # another partition: same config, no traffic of the model
    return ServiceSnapshot(
        ready=True,
        taken_at=0.0,
        partitions=(
            PartitionSnapshot("in", 0, 0, None, 0.0, None, idle.snapshot()),
            PartitionSnapshot("in", 1, 1, None, 0.0, None, compared.snapshot()),
        ),
    )


def test_status_shows_each_comparison_once_from_the_partition_that_compares_it() -> None:
    [comparison] = status(_snapshot())["comparisons"]
    assert comparison["partition"] == "in[1]"
    assert (comparison["model_id"], comparison["champion"], comparison["challenger"]) == (
        "m",
        "1",
        "2",
    )
    assert comparison["verdict"] == "challenger_better"
    assert comparison["pairs"] > 0 and comparison["difference"]["lower"] > 0


def test_an_idle_comparison_is_shown_without_a_partition() -> None:
    [comparison] = status(
        ServiceSnapshot(
            True, 0.0, (PartitionSnapshot("in", 0, 0, None, 0.0, None, _pipeline().snapshot()),)
        )
    )["comparisons"]
    assert comparison["partition"] is None
    assert comparison["verdict"] == "insufficient_data" and comparison["pairs"] == 0


def test_prometheus_exports_the_verdict_pairs_and_interval() -> None:
    snapshot = _snapshot()
    registry = CollectorRegistry()
    registry.register(ServiceCollector(lambda: snapshot, max_series=100))
    lines = generate_latest(registry).decode().splitlines()
    samples = dict(line.rsplit(" ", 1) for line in lines if line.startswith("driftline_comparison"))
    pair = 'challenger="2",champion="1",model_id="m"'
    verdicts = {
        verdict: float(samples[f'driftline_comparison_verdict{{{pair},verdict="{verdict}"}}'])
        for verdict in (
            "insufficient_data",
            "no_difference",
            "challenger_better",
            "champion_better",
        )
    }
    assert verdicts == {
        "insufficient_data": 0.0,
        "no_difference": 0.0,
        "challenger_better": 1.0,
        "champion_better": 0.0,
    }
    [comparison] = status(snapshot)["comparisons"]
    assert float(samples[f"driftline_comparison_pairs{{{pair}}}"]) == comparison["pairs"]
    for bound in ("estimate", "lower", "upper"):
        value = float(samples[f'driftline_comparison_difference{{bound="{bound}",{pair}}}'])
        assert value == comparison["difference"][bound]

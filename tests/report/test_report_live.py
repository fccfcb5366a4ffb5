"""The live report of the service's HTTP server, over a real pipeline, in a real Chromium:
behind the bearer token, rendered offline from the pipeline's current state, 404 for a
version the instance does not monitor."""

from __future__ import annotations

import asyncio
import gzip
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from driftline.config import load_settings
from driftline.pipeline import Pipeline
from driftline.planning import build_plan
from driftline.report.html import page_head, render
from driftline.service import report_page
from driftline.service.app import MonitorService
from driftline.service.http import start_http
from driftline.service.metrics import ServiceMetrics
from driftline.service.partition_state import PartitionState
from tests.report.browser import visit
from tests.report.conftest import DriftingModel

TOKEN = "s3cret-report-token"


@pytest.fixture
def served(drifting: DriftingModel, tmp_path: Path) -> Iterator[tuple[MonitorService, str]]:
    config = tmp_path / "live.yaml"
    config.write_text(
        drifting.config.read_text() + f"http:\n  port: 0\n  token: {TOKEN}\n"
        "report:\n  history_windows: 8\n"
    )
    settings = load_settings(config)
    service = MonitorService(settings, build_plan(settings), ServiceMetrics())
    tp = TopicPartition("in", 0)
    pipeline = Pipeline(service.plan)
    service.partitions[tp] = PartitionState(tp, pipeline, last_checkpoint=0.0, next_offset=0)
    lines = drifting.events.read_bytes().splitlines()
    for start in range(0, len(lines), 700):  # as MonitorService._process feeds them
        service.history.observe(pipeline.process(lines[start : start + 700]), tp)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop = asyncio.Event()
    port: list[int] = []

    async def serve() -> None:
        runner, bound = await start_http(service, "127.0.0.1", 0)
        port.append(bound)
        started.set()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    task = loop.create_task(serve())
    thread = threading.Thread(target=loop.run_until_complete, args=(task,), daemon=True)
    thread.start()
    assert started.wait(30)
    try:
        yield service, f"http://127.0.0.1:{port[0]}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


def _get(url: str, token: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_live_report_renders_behind_the_token(
    served: tuple[MonitorService, str], tmp_path: Path
) -> None:
    service, base = served
    url = f"{base}/v1/report/credit-scorer/3"
    assert _get(url, None)[0] == 401
    assert _get(url, "wrong")[0] == 401
    status, body = _get(f"{base}/v1/report/credit-scorer/4", TOKEN)
    assert status == 404
    assert "'credit-scorer' version '4' is not monitored" in orjson.loads(body)["detail"]

    status, body = _get(url, TOKEN)
    assert status == 200 and b"data-chart=" in body
    shot = tmp_path / "live.png"
    seen = visit(url, shot, headers={"Authorization": f"Bearer {TOKEN}"})
    assert seen.status == 200
    monitor = service.partitions[TopicPartition("in", 0)].pipeline.monitors()[
        ("credit-scorer", "3")
    ]
    expected = len(monitor.windows) + len(monitor.monitored())
    assert seen.rendered == str(expected), seen.console_errors
    assert len(seen.drawn) == expected
    assert seen.console_errors == []
    assert seen.outside_requests() == []
    assert shot.stat().st_size > 50_000
    # Rendered from the pipeline's current state: its firing alerts lead the summary, and
    # the history holds report.history_windows windows.
    firing = service.snapshot().partitions[0].pipeline.versions[0].firing
    assert firing and "firing: critical" in seen.dom
    for points in service.history.of(
        ("credit-scorer", "3"), TopicPartition("in", 0)
    ).series.values():
        assert len(points) == 8


def test_unknown_version_in_the_browser_is_a_clear_404(
    served: tuple[MonitorService, str], tmp_path: Path
) -> None:
    _, base = served
    seen = visit(
        f"{base}/v1/report/nope/1",
        tmp_path / "404.png",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert seen.status == 404
    assert "is not monitored by this instance" in seen.dom


def test_the_page_is_gzipped_when_asked_and_the_same_page_plain(
    served: tuple[MonitorService, str],
) -> None:
    _, base = served
    url = f"{base}/v1/report/credit-scorer/3"
    request = urllib.request.Request(url)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    request.add_header("Accept-Encoding", "gzip, deflate")
    for _ in range(2):  # the second reuses the compressed plotly.js
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["Content-Encoding"] == "gzip"
            zipped = gzip.decompress(response.read()).decode()  # checks the CRC and length
        status, plain = _get(url, TOKEN)
        assert status == 200
        assert zipped.startswith(page_head()) and zipped.endswith("</html>\n")
        # The same page but for the time it was made at.
        assert (
            zipped.split("live from driftline")[0] == plain.decode().split("live from driftline")[0]
        )
        assert len(zipped) == len(plain.decode())


def test_one_page_at_a_time_off_the_event_loop(
    served: tuple[MonitorService, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base = served
    url = f"{base}/v1/report/credit-scorer/3"
    entered, release = threading.Event(), threading.Event()

    def slow_render(*args: Any, **kwargs: Any) -> str:
        entered.set()
        assert release.wait(30)
        return render(*args, **kwargs)

    monkeypatch.setattr(report_page, "render", slow_render)
    first: list[tuple[int, bytes]] = []
    thread = threading.Thread(target=lambda: first.append(_get(url, TOKEN)))
    thread.start()
    try:
        assert entered.wait(30)
        # The event loop answers while the page is being made...
        assert _get(f"{base}/healthz", None)[0] == 200
        # ...and a second page waits for its turn, told when to come back.
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        with pytest.raises(urllib.error.HTTPError) as busy:
            urllib.request.urlopen(request, timeout=30)
        assert busy.value.code == 503
        assert busy.value.headers["Retry-After"] == str(report_page.RETRY_AFTER_SECONDS)
    finally:
        release.set()
        thread.join(30)
    assert first and first[0][0] == 200 and b"data-chart=" in first[0][1]
    assert _get(url, TOKEN)[0] == 200  # free again

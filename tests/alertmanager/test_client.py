"""One Alertmanager URL's client against a small HTTP server: what counts as accepted."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from driftline.alertmanager.bridge import ALERTS_PATH, AlertmanagerClient, PushError
from tests.integration.alertmanager_support import LocalAlertmanager, alertmanager_config


def _alert(name: str) -> dict[str, Any]:
    return {"labels": {"alertname": name}, "annotations": {}, "startsAt": "2026-01-01T00:00:00Z"}


async def _push(
    answer: int | None, alerts: list[dict[str, Any]], body: bytes = b"no"
) -> tuple[list[list[str]], list[str], int]:
    """Push ``alerts`` to a server answering ``answer`` with ``body`` (``None``: 400 with
    Alertmanager's reason for alerts named ``bad``, else 200); the alert names of every
    request, their Authorization headers and the client's rejected count."""
    requests: list[list[str]] = []
    auth: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        pushed = await request.json()
        names = [a["labels"]["alertname"] for a in pushed]
        requests.append(names)
        auth.append(request.headers.get("Authorization", ""))
        if answer is not None:
            return web.Response(status=answer, body=body)
        if "bad" in names:
            return web.Response(status=400, text='"invalid label set: invalid name \\"0bad\\""\n')
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post(ALERTS_PATH, handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            url = str(server.make_url("")).rstrip("/")
            client = AlertmanagerClient(session, url, {"Authorization": "Bearer t0k"})
            await client.deliver(alerts)
            return requests, auth, client.rejected
    finally:
        await server.close()


def test_accepted_push_sends_the_header() -> None:
    requests, auth, rejected = asyncio.run(_push(200, [_alert("a"), _alert("b")]))
    assert requests == [["a", "b"]] and auth == ["Bearer t0k"] and rejected == 0


def test_an_invalid_alert_is_found_and_dropped_the_others_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alerts = [_alert("a"), _alert("bad"), _alert("c"), _alert("d")]
    with caplog.at_level(logging.ERROR, logger="driftline.alertmanager.bridge"):
        requests, _, rejected = asyncio.run(_push(None, alerts))
    assert rejected == 1
    accepted = [names for names in requests if "bad" not in names]
    assert sorted(name for names in accepted for name in names) == ["a", "c", "d"]
    [drop] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "{'alertname': 'bad'}" in drop.getMessage()
    assert "1 dropped so far" in drop.getMessage()


@pytest.mark.parametrize(
    "body",
    [
        b"<html><center><h1>400 Bad Request</h1></center>"
        b"The plain HTTP request was sent to HTTPS port</html>",
        b"Request Header Or Cookie Too Large",
        b'"not a reason of Alertmanager"',
        b"\xff\xfe not UTF-8",
    ],
)
def test_a_400_that_is_not_alertmanagers_invalid_alert_is_retried(body: bytes) -> None:
    with pytest.raises(PushError, match=r"HTTP 400 .*a proxy"):
        asyncio.run(_push(400, [_alert("a"), _alert("b")], body))


def test_a_push_whose_every_alert_is_rejected_is_retried() -> None:
    with pytest.raises(PushError, match="every one of 2 alerts"):
        asyncio.run(_push(None, [_alert("bad"), _alert("bad")]))


def test_real_alertmanager_rejects_one_invalid_alert_the_others_are_kept(
    tmp_path: Path,
) -> None:
    """What Alertmanager 0.25 really answers to an invalid alert is recognised."""
    alertmanager = LocalAlertmanager(tmp_path, alertmanager_config("http://127.0.0.1:9/hook"))
    try:
        alertmanager.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:

        async def push() -> int:
            async with aiohttp.ClientSession() as session:
                client = AlertmanagerClient(session, alertmanager.url, {})
                invalid = {"labels": {"0bad": "x"}, "annotations": {}}
                await client.deliver([_alert("a"), invalid, _alert("c")])
                return client.rejected

        assert asyncio.run(push()) == 1
        names = sorted(a["labels"]["alertname"] for a in alertmanager.alerts())
        assert names == ["a", "c"]
    finally:
        alertmanager.stop()


@pytest.mark.parametrize("status", [401, 404, 429, 500, 503])
def test_other_answers_are_failures_to_retry(status: int) -> None:
    with pytest.raises(PushError, match=f"HTTP {status}"):
        asyncio.run(_push(status, [_alert("a")]))


def test_a_closed_port_is_a_failure_to_retry() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free, and nothing listens once closed

    async def push() -> None:
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}"
            await AlertmanagerClient(session, url, {}).deliver([_alert("a")])

    with pytest.raises(PushError, match="ClientConnectorError"):
        asyncio.run(push())

"""One Alertmanager URL's client against a small HTTP server: what counts as accepted."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from driftline.alertmanager.bridge import ALERTS_PATH, AlertmanagerClient, PushError


def _alert(name: str) -> dict[str, Any]:
    return {"labels": {"alertname": name}, "annotations": {}, "startsAt": "2026-01-01T00:00:00Z"}


async def _push(
    answer: int | None, alerts: list[dict[str, Any]]
) -> tuple[list[list[str]], list[str], int]:
    """Push ``alerts`` to a server answering ``answer`` (``None``: 400 for alerts named
    ``bad``, else 200); the alert names of every request, their Authorization headers and
    the client's rejected count."""
    requests: list[list[str]] = []
    auth: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        names = [a["labels"]["alertname"] for a in body]
        requests.append(names)
        auth.append(request.headers.get("Authorization", ""))
        if answer is not None:
            return web.Response(status=answer, text="no")
        return web.Response(status=400 if "bad" in names else 200, text="invalid label")

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


def test_an_invalid_alert_is_found_and_dropped_the_others_delivered() -> None:
    alerts = [_alert("a"), _alert("bad"), _alert("c"), _alert("d")]
    requests, _, rejected = asyncio.run(_push(None, alerts))
    assert rejected == 1
    accepted = [names for names in requests if "bad" not in names]
    assert sorted(name for names in accepted for name in names) == ["a", "c", "d"]


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

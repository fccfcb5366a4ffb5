"""The HTTP API's bearer token (``http.token``) and its loopback default."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from driftline.config import ConfigError, HttpSettings, parse_settings
from driftline.planning import build_plan
from driftline.service.app import MonitorService
from driftline.service.http import make_app, start_http
from driftline.service.metrics import ServiceMetrics

TOKEN = "tok-6c1f0e9a-not-a-real-secret"
GUARDED = ("/readyz", "/v1/status", "/no-such-page")
PUBLIC = ("/healthz", "/metrics")


def _service(**http: Any) -> MonitorService:
    settings = parse_settings({"warmup_events": 500, "http": http})
    metrics = ServiceMetrics(wall_clock=lambda: 2_000_000_000.0)
    service = MonitorService(settings, build_plan(settings), metrics)
    metrics.watch(service)
    service.running = service.assigned_once = True  # ready: /readyz answers 200 when allowed
    return service


async def _get_all(
    service: MonitorService, paths: tuple[str, ...], headers: dict[str, str] | None
) -> dict[str, tuple[int, dict[str, str], bytes]]:
    out = {}
    async with TestClient(TestServer(make_app(service))) as client:
        for path in paths:
            response = await client.get(path, headers=headers)
            out[path] = (response.status, dict(response.headers), await response.read())
    return out


def _get(
    service: MonitorService, paths: tuple[str, ...], headers: dict[str, str] | None = None
) -> dict[str, tuple[int, dict[str, str], bytes]]:
    return asyncio.run(_get_all(service, paths, headers))


def test_without_a_token_configured_everything_is_open() -> None:
    answers = _get(_service(), ("/readyz", "/v1/status", *PUBLIC))
    assert {path: status for path, (status, _, _) in answers.items()} == {
        "/readyz": 200,
        "/v1/status": 200,
        "/healthz": 200,
        "/metrics": 200,
    }


def test_healthz_and_metrics_need_no_token() -> None:
    answers = _get(_service(token=TOKEN), PUBLIC)
    assert [status for status, _, _ in answers.values()] == [200, 200]
    assert b"driftline_ready" in answers["/metrics"][2]


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
        {"Authorization": ""},
        {"X-Token": TOKEN},
    ],
    ids=[
        "none",
        "wrong",
        "longer",
        "shorter",
        "basic-scheme",
        "no-scheme",
        "empty-bearer",
        "empty-header",
        "other-header",
    ],
)
def test_guarded_paths_answer_401_with_a_challenge(headers: dict[str, str] | None) -> None:
    answers = _get(_service(token=TOKEN), GUARDED, headers)
    for path, (status, response_headers, body) in answers.items():
        assert status == 401, path
        challenge = response_headers["WWW-Authenticate"]
        assert challenge.startswith('Bearer realm="driftline"'), challenge
        sent_a_credential = headers is not None and "Authorization" in headers
        assert ('error="invalid_token"' in challenge) == sent_a_credential
        assert TOKEN.encode() not in body
        assert orjson.loads(body)["error"] == "unauthorized"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_right_token_opens_every_path(scheme: str) -> None:
    answers = _get(
        _service(token=TOKEN), ("/readyz", "/v1/status"), {"Authorization": f"{scheme} {TOKEN}"}
    )
    assert answers["/readyz"][0] == 200
    status, _, body = answers["/v1/status"]
    assert status == 200 and orjson.loads(body)["ready"] is True


def test_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import driftline.service.http as http

    compared: list[tuple[bytes, bytes]] = []
    real = http.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(http.hmac, "compare_digest", spy)
    assert (
        _get(_service(token=TOKEN), ("/v1/status",), {"Authorization": "Bearer nope"})[
            "/v1/status"
        ][0]
        == 401
    )
    assert compared == [(b"nope", TOKEN.encode())]


def test_token_comes_from_the_environment_verbatim() -> None:
    for raw in (TOKEN, "12345", "yes", "a: b", "[x"):
        settings = parse_settings({}, environ={"DRIFTLINE_HTTP__TOKEN": raw})
        assert settings.http.token is not None
        assert settings.http.token.get_secret_value() == raw


def test_empty_token_is_a_config_error_that_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"http\.token: must not be empty"):
        parse_settings({"http": {"token": "  "}})


def test_http_binds_loopback_by_default() -> None:
    assert HttpSettings().host == "127.0.0.1"
    assert parse_settings({}).http.host == "127.0.0.1"

    async def bound() -> list[Any]:
        service = _service(port=0)
        runner, port = await start_http(service, service.settings.http.host, 0)
        try:
            assert port > 0
            return list(runner.addresses)
        finally:
            await runner.cleanup()

    addresses = asyncio.run(bound())
    assert addresses, "the HTTP site must be listening"
    for address in addresses:
        assert ipaddress.ip_address(address[0]).is_loopback, address

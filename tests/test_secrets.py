"""Secrets (the SASL password, the TLS key password, the HTTP token) never show: not in
``config check`` output, config errors, ``repr``, the service's log or its HTTP bodies."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from driftline.config import ConfigError, load_settings, parse_settings
from driftline.planning import build_plan
from driftline.service.app import MonitorService
from driftline.service.http import make_app
from driftline.service.metrics import ServiceMetrics

SASL_PASSWORD = "sasl-pw-Zq81kX"
SSL_PASSWORD = "ssl-pw-Hd02mB"
TOKEN = "http-token-Vr77cN"
SECRETS = (SASL_PASSWORD, SSL_PASSWORD, TOKEN)


def _assert_no_secret(text: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret!r} leaked:\n{data.decode(errors='replace')}"


def _raw(**security: Any) -> dict[str, Any]:
    return {
        "kafka": {
            "security": {
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-256",
                "sasl_username": "alice",
                "sasl_password": SASL_PASSWORD,
                "ssl_password": SSL_PASSWORD,
                **security,
            }
        },
        "http": {"token": TOKEN, "port": 0},
    }


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def test_repr_str_and_dump_mask_secrets() -> None:
    settings = parse_settings(_raw())
    assert settings.kafka.security.sasl_password is not None
    assert settings.kafka.security.sasl_password.get_secret_value() == SASL_PASSWORD
    assert settings.http.token is not None and settings.http.token.get_secret_value() == TOKEN
    _assert_no_secret(repr(settings))
    _assert_no_secret(str(settings))
    _assert_no_secret(repr(settings.kafka.security))
    _assert_no_secret(str(settings.model_dump()))
    _assert_no_secret(settings.model_dump_json())


def test_config_check_masks_secrets_from_file_and_environment(tmp_path: Path) -> None:
    config = tmp_path / "driftline.yaml"
    raw = _raw()
    del raw["kafka"]["security"]["sasl_password"]
    config.write_text(yaml.safe_dump(raw))
    done = _cli(
        "config",
        "check",
        "--config",
        str(config),
        env={"DRIFTLINE_KAFKA__SECURITY__SASL_PASSWORD": SASL_PASSWORD},
    )
    assert done.returncode == 0, done.stderr
    _assert_no_secret(done.stdout + done.stderr)
    effective = yaml.safe_load(done.stdout)
    security = effective["kafka"]["security"]
    # present (masked), so the check proves each secret was read and hidden
    assert security["sasl_password"] == security["ssl_password"] == "**********"
    assert effective["http"]["token"] == "**********"
    assert security["sasl_username"] == "alice"


@pytest.mark.parametrize(
    "bad",
    [
        {"kafka": {"security": {"security_protocol": "SASL_PLAINTEXTX"}}},
        {"kafka": {"security": {"sasl_mechanism": "SCRAM-SHA-1"}}},
        {"kafka": {"security": {"sasl_username": None}}},
        {"kafka": {"security": {"ssl_check_hostname": "maybe"}}},
        {"kafka": {"security": {"sasl_passwort": SASL_PASSWORD}}},
        {"http": {"port": "not-a-port"}},
        {"http": {"hots": "0.0.0.0"}},
    ],
    ids=["protocol", "mechanism", "username", "hostname-flag", "typo-key", "port", "typo-host"],
)
def test_config_errors_next_to_secrets_do_not_quote_them(bad: dict[str, Any]) -> None:
    raw = _raw()
    for section, values in bad.items():
        node = raw[section]
        if section == "kafka":
            node = node["security"]
            values = values["security"]
        node.update(values)
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw, origin="driftline.yaml")
    _assert_no_secret(str(caught.value))
    _assert_no_secret(repr(caught.value))
    assert "driftline.yaml: " in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        f'kafka:\n  security:\n    sasl_password: "{SASL_PASSWORD}\n',
        f"kafka:\n  security:\n    sasl_password: {SASL_PASSWORD}\n    sasl_username: [x\n",
        f"kafka:\n  security:\n    sasl_password: {SASL_PASSWORD}: x\n",
        f"http:\n  token: {TOKEN}\n\tport: 1\n",
    ],
    ids=["unclosed-quote", "unclosed-list", "colon", "tab"],
)
def test_yaml_syntax_errors_do_not_quote_the_source(tmp_path: Path, text: str) -> None:
    config = tmp_path / "driftline.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        load_settings(config)
    _assert_no_secret(str(caught.value))
    assert "line " in str(caught.value)


def test_secret_environment_values_are_taken_verbatim() -> None:
    for raw in ("12345", "yes", "null", "a: b", "[x", "~"):
        settings = parse_settings(_raw(), environ={"DRIFTLINE_KAFKA__SECURITY__SASL_PASSWORD": raw})
        assert settings.kafka.security.sasl_password is not None
        assert settings.kafka.security.sasl_password.get_secret_value() == raw


async def _bodies(service: MonitorService) -> list[bytes]:
    async with TestClient(TestServer(make_app(service))) as client:
        bodies = []
        for path in ("/v1/status", "/metrics", "/readyz", "/healthz"):
            response = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert response.status in (200, 503), path
            bodies.append(await response.read())
        unauthorized = await client.get("/v1/status", headers={"Authorization": "Bearer x"})
        assert unauthorized.status == 401
        bodies.append(await unauthorized.read())
        bodies.append(str(unauthorized.headers).encode())
        return bodies


def test_http_bodies_hold_no_secret() -> None:
    settings = parse_settings(_raw())
    metrics = ServiceMetrics(wall_clock=lambda: 2_000_000_000.0)
    service = MonitorService(settings, build_plan(settings), metrics)
    metrics.watch(service)
    for body in asyncio.run(_bodies(service)):
        _assert_no_secret(body)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_without_a_broker_logs_no_secret_at_debug(tmp_path: Path) -> None:
    """The whole output of a failing ``driftline run`` at DEBUG (Kafka unreachable)."""
    raw = _raw()
    del raw["kafka"]["security"]["sasl_password"]
    raw["kafka"]["bootstrap_servers"] = f"127.0.0.1:{_closed_port()}"
    raw["logging"] = {"level": "DEBUG"}
    config = tmp_path / "driftline.yaml"
    config.write_text(yaml.safe_dump(raw))
    done = _cli(
        "run",
        "--config",
        str(config),
        env={"DRIFTLINE_KAFKA__SECURITY__SASL_PASSWORD": SASL_PASSWORD},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: " in done.stderr
    assert "authentication failed" not in done.stderr  # nothing listened: not a login problem
    _assert_no_secret(done.stdout + done.stderr)

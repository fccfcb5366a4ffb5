"""`driftline` over SASL/SCRAM against a real broker: topics created and events monitored
through the SCRAM listener, the password taken from the environment and never shown; wrong
credentials end `run` and `topics create` quickly with a clear message.

This module starts its own broker (``LocalKafka(scram_users=...)``): SCRAM users live in
the cluster metadata, written when the storage is formatted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from driftline.config import parse_settings
from driftline.demo.scenario import credit_scoring_scenario, write_reference_csv
from driftline.localkafka import LocalKafka, LocalKafkaError
from driftline.profile import save_profile
from driftline.profile_io import build_profile_from_file
from tests.integration.service_support import (
    MODELS,
    Deployment,
    ServiceProcess,
    dedup,
    produce,
    read_topic,
    replay_reference,
    scenario_events,
    wait_committed,
)

pytestmark = pytest.mark.kafka

USER = "alice"
PASSWORD = "alice-Scram-7f3e91"
TOKEN = "http-token-5b0d2c77"
PASSWORD_ENV = "DRIFTLINE_KAFKA__SECURITY__SASL_PASSWORD"
TOKEN_ENV = "DRIFTLINE_HTTP__TOKEN"
#: A wrong login must end a command well within this (it must not retry forever).
FAIL_FAST_SECONDS = 30.0


class Broker:
    def __init__(self, plaintext: str, sasl: str, sasl_ssl: str, ca_file: Path) -> None:
        self.plaintext = plaintext
        self.sasl = sasl
        self.sasl_ssl = sasl_ssl
        self.ca_file = ca_file


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = LocalKafka(
        tmp_path_factory.mktemp("kafka-scram"), scram_users={USER: PASSWORD}, tls=True
    )
    problem = None
    try:
        broker.start()
    except LocalKafkaError as error:
        problem = str(error)
    if problem is not None:
        pytest.fail(f"the SCRAM Kafka broker did not start: {problem}", pytrace=False)
    try:
        yield Broker(
            broker.bootstrap, broker.sasl_bootstrap, broker.sasl_ssl_bootstrap, broker.ca_file
        )
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    """Model entries with the reference profiles of the scenario's models."""
    root = tmp_path_factory.mktemp("profiles")
    models = []
    for model in MODELS:
        scenario = credit_scoring_scenario(events=10, model_id=model, model_version="1", drifts=())
        data = root / f"{model}.csv"
        write_reference_csv(scenario, 5_000, data)
        path = root / f"{model}.profile.json"
        save_profile(build_profile_from_file(data, model_id=model, model_version="1"), path)
        models.append({"model_id": model, "reference_profile": str(path)})
    return models


def _write_config(
    root: Path,
    broker: Broker,
    models: list[dict[str, str]] | None = None,
    *,
    tls: bool = False,
    **security: str,
) -> tuple[Path, dict[str, Any]]:
    """A config for the SCRAM listener; the password is *not* in it (see PASSWORD_ENV)."""
    unique = f"sec-{uuid.uuid4().hex[:10]}"
    raw: dict[str, Any] = {
        "deployment": "it",
        "window": {"events": 500},
        "models": models or [],
        "kafka": {
            "bootstrap_servers": broker.sasl_ssl if tls else broker.sasl,
            "group_id": f"{unique}-group",
            "input_topics": [f"{unique}-in"],
            "alerts_topic": f"{unique}-alerts",
            "retrain_topic": f"{unique}-retrain",
            "dead_letter_topic": f"{unique}-dead",
            "state_topic": f"{unique}-state",
            "partitions": 2,
            "replication_factor": 1,
            "max_batch_records": 700,
            "security": {
                "security_protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
                "sasl_mechanism": "SCRAM-SHA-256",
                "sasl_username": USER,
                **security,
            },
        },
        "checkpoint": {"interval_seconds": 1.0, "interval_events": 2_000},
        "http": {"port": 0},
        "logging": {"level": "DEBUG"},
    }
    config = root / "driftline.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert PASSWORD not in config.read_text()
    return config, raw


def _cli(
    config: Path, *args: str, password: str, timeout: float = 60.0
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, PASSWORD_ENV: password}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "driftline", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    return done, time.monotonic() - started


class AuthorizedService(ServiceProcess):
    """The service with ``http.token`` set (from the environment); requests carry it."""

    def get(self, path: str, token: str | None = TOKEN) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (Linux /proc/net/tcp{,6})."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port and fields[3] == "0A":  # TCP_LISTEN
                found.add(address)
    return found


def test_service_over_scram_end_to_end(
    tmp_path: Path,
    scram_broker: Broker,
    profiles: list[dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, raw = _write_config(tmp_path, scram_broker, profiles)
    created, _ = _cli(config, "topics", "create", password=PASSWORD)
    assert created.returncode == 0, created.stdout + created.stderr
    assert created.stderr.count("created ") == 5, created.stderr
    assert PASSWORD not in created.stdout + created.stderr

    # The test itself produces and reads through the PLAINTEXT listener of the same broker.
    settings = parse_settings(raw, environ={PASSWORD_ENV: PASSWORD})
    plain = {
        **raw,
        "kafka": {**raw["kafka"], "bootstrap_servers": scram_broker.plaintext, "security": {}},
    }
    via_plaintext = Deployment(tmp_path, config, parse_settings(plain), plain)
    pairs = scenario_events(4_000)
    produce(via_plaintext, pairs)

    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    service = AuthorizedService(Deployment(tmp_path, config, settings, raw))
    try:
        service.wait_ready()
        wait_committed(via_plaintext, len(pairs))
        assert service.metric("driftline_events_consumed_total") == len(pairs)
        # the HTTP API: loopback only, token required except for /healthz and /metrics
        addresses = _listening_addresses(service.port)
        assert addresses == {"0100007F"}, addresses  # 127.0.0.1 only
        assert service.get("/v1/status", token=None)[0] == 401
        assert service.get("/v1/status", token="wrong")[0] == 401
        assert service.get("/healthz", token=None)[0] == 200
        status, status_body = service.get("/v1/status")
        assert status == 200
        models = {m["model_id"] for m in orjson.loads(status_body)["models"]}
        assert models == set(MODELS)
        metrics_status, metrics_body = service.get("/metrics", token=None)
        assert metrics_status == 200
        for body in (status_body, metrics_body):
            assert PASSWORD.encode() not in body and TOKEN.encode() not in body
    finally:
        assert service.terminate() == 0, service.output()
    log = service.output()
    assert "DEBUG" in log, "the service must have logged at DEBUG"
    assert PASSWORD not in log and TOKEN not in log

    expected = replay_reference(via_plaintext, [v for _, v in pairs])
    alerts = dedup(r.value for r in read_topic(via_plaintext, settings.kafka.alerts_topic))
    assert expected["alerts"], "the scenario must produce alerts"
    assert sorted(alerts) == sorted(expected["alerts"])
    retrain = dedup(r.value for r in read_topic(via_plaintext, settings.kafka.retrain_topic))
    assert sorted(retrain) == sorted(expected["retrain"])


def test_scram_sha_512_over_tls(tmp_path: Path, scram_broker: Broker) -> None:
    ca = str(scram_broker.ca_file)
    config, _ = _write_config(
        tmp_path, scram_broker, tls=True, sasl_mechanism="SCRAM-SHA-512", ssl_cafile=ca
    )
    done, _ = _cli(config, "topics", "create", password=PASSWORD)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count("created ") == 5, done.stderr
    again, _ = _cli(config, "topics", "create", password=PASSWORD)
    assert again.returncode == 0 and again.stderr.count("exists: ") == 5, again.stderr


def test_untrusted_broker_certificate_fails_fast(tmp_path: Path, scram_broker: Broker) -> None:
    """Without the broker's CA the TLS handshake fails: exit 1, no hang, not a login error."""
    config, _ = _write_config(tmp_path, scram_broker, tls=True)
    done, seconds = _cli(config, "topics", "create", password=PASSWORD)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert seconds < FAIL_FAST_SECONDS, f"took {seconds:.1f} s:\n{output}"
    assert "error: " in done.stderr and "authentication failed" not in done.stderr, output
    assert "Traceback" not in output and PASSWORD not in output


@pytest.mark.parametrize(
    ("command", "user", "password"),
    [
        (("topics", "create"), USER, "wrong-password-1c9a"),
        (("run",), USER, "wrong-password-1c9a"),
        (("run",), "mallory", PASSWORD),
    ],
    ids=["topics-wrong-password", "run-wrong-password", "run-unknown-user"],
)
def test_wrong_credentials_fail_fast_with_a_clear_message(
    tmp_path: Path, scram_broker: Broker, command: tuple[str, ...], user: str, password: str
) -> None:
    config, _ = _write_config(tmp_path, scram_broker, sasl_username=user)
    done, seconds = _cli(config, *command, password=password, timeout=FAIL_FAST_SECONDS * 2)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert seconds < FAIL_FAST_SECONDS, f"took {seconds:.1f} s:\n{output}"
    message = " ".join(done.stderr.split())
    assert f"error: authentication failed: Kafka rejected user {user!r} (SCRAM-SHA-256" in message
    assert "sasl_password" in message, message  # points at what to check
    assert "Traceback" not in output
    assert password not in output

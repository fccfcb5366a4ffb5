"""``alertmanager:`` settings: validation naming the key, secrets masked, the CLI's checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline.alertmanager.bridge import auth_headers, ssl_context
from driftline.config import ConfigError, parse_settings

PASSWORD = "am-pw-Kq20zT"
TOKEN = "am-token-Wd93pL"


def _settings(**alertmanager: Any) -> Any:
    return parse_settings({"alertmanager": alertmanager})


def test_defaults() -> None:
    settings = parse_settings({"kafka": {"group_id": "prod"}})
    assert settings.alertmanager.urls == ()
    assert settings.alertmanager_group_id == "prod-alertmanager"
    assert _settings(group_id="mine").alertmanager_group_id == "mine"
    # Each push keeps a firing alert active for 4 intervals.
    assert settings.alertmanager.alert_validity_seconds == 240


def test_urls_are_normalised() -> None:
    settings = _settings(urls=["http://am-0:9093/", "https://am-1.example.com/prefix"])
    assert settings.alertmanager.urls == ("http://am-0:9093", "https://am-1.example.com/prefix")


@pytest.mark.parametrize(
    ("alertmanager", "message"),
    [
        ({"urls": ["am:9093"]}, "alertmanager.urls: not an http:// or https:// URL"),
        ({"urls": ["http://a:1", "http://a:1/"]}, "alertmanager.urls: a URL is listed twice"),
        ({"urls": ["http://a:1?x=1"]}, "alertmanager.urls: a base URL has no query"),
        ({"generator_base_url": "driftline:8000"}, "alertmanager.generator_base_url: not an"),
        ({"username": "u"}, "alertmanager: username and password go together"),
        (
            {"username": "u", "password": "p", "bearer_token": "t"},
            "alertmanager: set either username/password or bearer_token",
        ),
        ({"bearer_token": " "}, "alertmanager.bearer_token: must not be empty"),
        ({"resend_interval_seconds": 0}, "alertmanager.resend_interval_seconds:"),
        ({"retry_initial_seconds": 5, "retry_max_seconds": 1}, "retry_max_seconds is below"),
        ({"tls": {"key_file": "k.pem"}}, "alertmanager.tls: key_file is set without cert_file"),
        ({"tls": {"verfy": False}}, "alertmanager.tls.verfy: unknown key"),
        ({"url": "http://a"}, "alertmanager.url: unknown key"),
    ],
)
def test_bad_settings_name_the_key(alertmanager: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        _settings(**alertmanager)


def test_credentials_in_a_url_are_refused_without_repeating_them() -> None:
    with pytest.raises(ConfigError) as error:
        _settings(urls=[f"htp://admin:{PASSWORD}@am:9093"])
    assert "credentials in a URL" in str(error.value)
    assert PASSWORD not in str(error.value)


def test_secrets_are_masked_and_taken_verbatim_from_the_environment() -> None:
    settings = parse_settings(
        {"alertmanager": {"urls": ["http://am:9093"], "username": "bridge"}},
        environ={"DRIFTLINE_ALERTMANAGER__PASSWORD": "12345"},
    )
    assert settings.alertmanager.password is not None
    assert settings.alertmanager.password.get_secret_value() == "12345"  # not the int 12345
    settings = _settings(urls=["http://am:9093"], username="bridge", password=PASSWORD)
    for text in (repr(settings), str(settings.model_dump()), settings.model_dump_json()):
        assert PASSWORD not in text
    assert auth_headers(settings.alertmanager) == {
        "Authorization": "Basic YnJpZGdlOmFtLXB3LUtxMjB6VA=="
    }
    bearer = _settings(bearer_token=TOKEN).alertmanager
    assert auth_headers(bearer) == {"Authorization": f"Bearer {TOKEN}"}
    assert TOKEN not in repr(bearer)


def test_tls_context_only_for_https_and_bad_files_name_the_key(tmp_path: Path) -> None:
    assert ssl_context(_settings(urls=["http://am:9093"]).alertmanager) is None
    unverified = ssl_context(
        _settings(urls=["https://am:9093"], tls={"verify": False}).alertmanager
    )
    assert unverified is not None and not unverified.check_hostname
    missing = _settings(urls=["https://am:9093"], tls={"ca_file": str(tmp_path / "no.pem")})
    with pytest.raises(ConfigError, match=r"alertmanager\.tls\.ca_file"):
        ssl_context(missing.alertmanager)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def test_bridge_without_urls_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"alertmanager": {"password": PASSWORD, "username": "u"}}))
    done = _cli("alertmanager-bridge", "--config", str(config))
    assert done.returncode == 2, done.stderr
    assert "alertmanager.urls: at least one Alertmanager URL is required" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


def test_config_check_masks_alertmanager_secrets(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"alertmanager": {"urls": ["http://am:9093"]}}))
    done = _cli(
        "config",
        "check",
        "--config",
        str(config),
        env={"DRIFTLINE_ALERTMANAGER__BEARER_TOKEN": TOKEN},
    )
    assert done.returncode == 0, done.stderr
    assert "bearer_token: '**********'" in done.stdout
    assert TOKEN not in done.stdout + done.stderr

"""Settings of the Alertmanager bridge (config key ``alertmanager``)."""

from __future__ import annotations

from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from driftline.settings_base import StrictSettings


def _check_http_url(url: str) -> str:
    """An ``http``/``https`` URL with a host and no credentials, query or fragment.

    Errors never repeat the URL: a mistyped one may still hold a password.

    >>> _check_http_url("http://alertmanager:9093/")
    'http://alertmanager:9093'
    """
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        # URLs are logged; credentials belong in username/password or bearer_token.
        raise ValueError("credentials in a URL are not allowed (use username/password)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http:// or https:// URL with a host")
    if parts.query or parts.fragment:
        raise ValueError("a base URL has no query or fragment")
    return url.rstrip("/")


class AlertmanagerTls(StrictSettings):
    """TLS towards ``https://`` Alertmanager URLs."""

    ca_file: Path | None = None
    """CA bundle (PEM) to verify Alertmanager's certificate; default: the system's."""
    cert_file: Path | None = None
    """Client certificate (PEM) for mutual TLS."""
    key_file: Path | None = None
    """Key of ``cert_file`` (PEM), unless ``cert_file`` holds it."""
    verify: bool = True
    """Verify Alertmanager's certificate and host name (turn off only for testing)."""

    @model_validator(mode="after")
    def _key_needs_cert(self) -> Self:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file is set without cert_file")
        return self


class AlertmanagerSettings(StrictSettings):
    """Where and how ``driftline alertmanager-bridge`` pushes alerts."""

    urls: tuple[str, ...] = ()
    """Base URLs of the Alertmanagers (every peer of an HA cluster); at least one is
    required to run the bridge. Each receives every alert."""
    group_id: str | None = Field(None, min_length=1)
    """Consumer group of the bridge's committed offsets; default
    ``<kafka.group_id>-alertmanager``."""
    generator_base_url: str | None = None
    """External base URL of the driftline service's HTTP port (e.g.
    ``https://driftline.example.com``): alerts link to ``<it>/v1/report/<model_id>/
    <model_version>`` as their ``generatorURL``. Unset: no ``generatorURL``."""
    timeout_seconds: float = Field(10.0, gt=0, allow_inf_nan=False)
    """Longest one push request may take, connecting included."""
    connect_timeout_seconds: float = Field(5.0, gt=0, allow_inf_nan=False)
    """Longest connecting to an Alertmanager may take."""
    resend_interval_seconds: float = Field(60.0, gt=0, allow_inf_nan=False)
    """Firing alerts are re-sent this often; each push says they end 4 intervals later
    unless re-sent (as Prometheus does), so Alertmanager keeps them while the bridge runs."""
    retry_initial_seconds: float = Field(1.0, gt=0, allow_inf_nan=False)
    """Wait before the first retry of a failed push; doubled per failure."""
    retry_max_seconds: float = Field(60.0, gt=0, allow_inf_nan=False)
    """Longest wait between retries."""
    max_alerts_per_request: int = Field(500, gt=0)
    """Alerts per ``POST /api/v2/alerts``."""
    username: str | None = Field(None, min_length=1)
    """HTTP basic auth user (with ``password``)."""
    password: SecretStr | None = None
    """HTTP basic auth password (secret)."""
    bearer_token: SecretStr | None = None
    """Sent as ``Authorization: Bearer <token>`` (secret); not with ``username``."""
    tls: AlertmanagerTls = AlertmanagerTls()

    @field_validator("urls")
    @classmethod
    def _urls(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        urls = tuple(_check_http_url(url) for url in v)
        if len(set(urls)) != len(urls):
            raise ValueError("a URL is listed twice")
        return urls

    @field_validator("generator_base_url")
    @classmethod
    def _generator_base_url(cls, v: str | None) -> str | None:
        return None if v is None else _check_http_url(v)

    @field_validator("password", "bearer_token")
    @classmethod
    def _secret_not_empty(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and not v.get_secret_value().strip():
            raise ValueError("must not be empty (leave it out instead)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (HTTP basic auth)")
        if self.username is not None and self.bearer_token is not None:
            raise ValueError("set either username/password or bearer_token, not both")
        if self.retry_max_seconds < self.retry_initial_seconds:
            raise ValueError("retry_max_seconds is below retry_initial_seconds")
        return self

    @property
    def alert_validity_seconds(self) -> float:
        """How long a pushed firing alert stays active in Alertmanager unless re-sent."""
        return 4 * self.resend_interval_seconds

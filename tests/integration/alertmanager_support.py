"""A real Alertmanager (Debian's ``prometheus-alertmanager``) on a free loopback port, a
webhook receiver for its notifications, and the bridge as a child process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import yaml

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


class WebhookReceiver:
    """An HTTP server that records the JSON bodies Alertmanager's webhook posts."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self, status: str) -> list[dict[str, Any]]:
        """The alerts of every notification with ``status`` (firing or resolved)."""
        return [
            alert
            for notification in list(self.notifications)
            for alert in notification["alerts"]
            if alert["status"] == status
        ]


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """A route sending every alert to the webhook quickly (1 s waits), resolved ones too."""
    return {
        "route": {
            "receiver": "pager",
            "group_by": ["alertname", "model_id", "model_version"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {"name": "pager", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}
        ],
    }


class LocalAlertmanager:
    """``prometheus-alertmanager`` with clustering off, its own storage and a fixed port
    (kept across :meth:`stop` / :meth:`start`, so the bridge's URL stays valid)."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_file = root / "alertmanager.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 30.0) -> None:
        if not os.access(ALERTMANAGER, os.X_OK):
            raise RuntimeError(
                f"{ALERTMANAGER} is missing (Debian package prometheus-alertmanager)"
            )
        self.starts += 1
        storage = self.root / f"storage-{self.starts}"  # a fresh one: alerts are not kept
        log = (self.root / f"alertmanager-{self.starts}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={self.config_file}",
                f"--storage.path={storage}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"alertmanager was not ready after {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        return "\n".join(
            path.read_text(errors="replace")
            for path in sorted(self.root.glob("alertmanager-*.log"))
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: the alerts Alertmanager holds as active (not ended)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as response:
            alerts: list[dict[str, Any]] = json.loads(response.read())
        return alerts

    def alert(self, feature: str) -> dict[str, Any] | None:
        found = [a for a in self.alerts() if a["labels"].get("feature") == feature]
        return found[0] if found else None


class BridgeProcess:
    """``python -m driftline alertmanager-bridge --config FILE`` as a child process."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        handle = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "driftline", "alertmanager-bridge", "--config", str(config)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the bridge did not stop on SIGTERM:\n{self.output()}") from None


def alertmanager_available() -> str | None:
    """Why the Alertmanager binary cannot run, or ``None``."""
    if shutil.which(ALERTMANAGER) is None:
        return f"{ALERTMANAGER} not found (install the Debian package prometheus-alertmanager)"
    return None

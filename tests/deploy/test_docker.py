"""docker/: the compose file as `docker-compose config` reads it, the configs it mounts as
their own tools read them, and the Dockerfile's references. No Docker engine is needed
(none of this builds the image or starts a container)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from driftline.config import Settings
from tests.deploy.promql import DASHBOARD, RULES, run_promtool

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
DOCKERFILE = DOCKER / "Dockerfile"
DRIFTLINE_CONFIG = DOCKER / "driftline" / "driftline.yaml"
SERVICES = {
    "kafka",
    "topics",
    "driftline",
    "alertmanager-bridge",
    "alertmanager",
    "prometheus",
    "grafana",
}


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (Debian package `{package}`)", pytrace=False)
    return path


def _compose_config(compose: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    return subprocess.run(
        [_tool("docker-compose", "docker-compose"), "-f", str(compose), "config"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=compose.parent,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as docker-compose resolves it (paths absolute, anchors merged)."""
    result = _compose_config(COMPOSE)
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = yaml.safe_load(result.stdout)
    return resolved


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (``HOST:CONTAINER[:MODE]``)."""
    out = {}
    for volume in service.get("volumes", ()):
        host, container, *_ = volume.split(":")
        out[container] = Path(host)
    return out


def _host_path(service: dict[str, Any], container_path: str) -> Path:
    for target, source in _mounts(service).items():
        if container_path == target:
            return source
        if container_path.startswith(target.rstrip("/") + "/"):
            return source / container_path[len(target.rstrip("/")) + 1 :]
    raise AssertionError(f"{container_path} is not mounted")


def test_compose_file_has_the_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name in ("topics", "driftline", "alertmanager-bridge"):
        build = services[name]["build"]
        assert Path(build["context"]) == ROOT
        assert (Path(build["context"]) / build["dockerfile"]) == DOCKERFILE
    assert services["driftline"]["command"][:1] == ["run"]
    assert services["alertmanager-bridge"]["command"][:1] == ["alertmanager-bridge"]
    assert services["topics"]["command"][:2] == ["topics", "create"]
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    waits = services["driftline"]["depends_on"]["topics"]["condition"]
    assert waits == "service_completed_successfully"


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for container, host in _mounts(service).items():
            assert host.exists(), f"{name}: {host} (mounted at {container}) does not exist"


def test_driftline_services_read_the_checked_config(compose: dict[str, Any]) -> None:
    for name in ("topics", "driftline", "alertmanager-bridge"):
        service = compose["services"][name]
        command = service["command"]
        config = command[command.index("--config") + 1]
        assert _host_path(service, config) == DRIFTLINE_CONFIG, name


def test_prometheus_and_grafana_get_the_shipped_rules_and_dashboard(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    prometheus_config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    [rules_glob] = prometheus_config["rule_files"]
    mounted = {c: h for c, h in _mounts(services["prometheus"]).items() if h == RULES}
    assert len(mounted) == 1
    assert Path(next(iter(mounted))).match(rules_glob)
    assert _host_path(services["prometheus"], "/etc/prometheus/prometheus.yml") == (
        DOCKER / "prometheus" / "prometheus.yml"
    )
    provider = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "dashboards" / "driftline.yml").read_text()
    )
    [dashboards] = provider["providers"]
    folder = _host_path(services["grafana"], dashboards["options"]["path"])
    assert (folder / DASHBOARD.name).resolve() == DASHBOARD
    datasource = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    [source] = datasource["datasources"]
    assert urlparse(source["url"]).hostname == "prometheus"


def test_addresses_between_services_agree(compose: dict[str, Any]) -> None:
    """Prometheus scrapes driftline where it listens; driftline, its bridge and Prometheus
    reach Kafka and Alertmanager by their service names."""
    raw = yaml.safe_load(DRIFTLINE_CONFIG.read_text())
    settings = Settings.model_validate({k: v for k, v in raw.items() if k != "alertmanager"})
    services = compose["services"]
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert (
        "PLAINTEXT://kafka:9092" in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert settings.http.host == "0.0.0.0"
    prometheus_config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus_config["scrape_configs"]}
    [[target]] = [c["targets"] for c in jobs["driftline"]["static_configs"]]
    assert target == f"driftline:{settings.http.port}"
    published = {p["target"] for p in services["driftline"]["ports"]}
    assert settings.http.port in published
    [alertmanagers] = prometheus_config["alerting"]["alertmanagers"]
    [[alertmanager]] = [c["targets"] for c in alertmanagers["static_configs"]]
    assert alertmanager == "alertmanager:9093"
    assert raw["alertmanager"]["urls"] == ["http://alertmanager:9093"]
    # Alerts link to the live report where a person on the host reaches it.
    [host_port] = [
        int(p["published"]) for p in services["driftline"]["ports"] if p["target"] == 8000
    ]
    assert raw["alertmanager"]["generator_base_url"] == f"http://localhost:{host_port}"


def test_compose_check_can_fail(tmp_path: Path) -> None:
    broken = COMPOSE.read_text().replace("condition: service_healthy", "condition: when_ready")
    (tmp_path / "docker-compose.yml").write_text(broken)
    result = _compose_config(tmp_path / "docker-compose.yml")
    assert result.returncode != 0
    assert "when_ready" in result.stderr


def test_prometheus_config_is_valid() -> None:
    result = run_promtool("check", "config", DOCKER / "prometheus" / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_is_valid() -> None:
    amtool = _tool("amtool", "prometheus-alertmanager")
    config = DOCKER / "alertmanager" / "alertmanager.yml"
    result = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_driftline_config_passes_config_check() -> None:
    """`driftline config check` on the config the stack mounts (the bridge's `alertmanager`
    section included)."""
    result = subprocess.run(
        [sys.executable, "-m", "driftline", "config", "check", "--config", str(DRIFTLINE_CONFIG)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kafka:9092" in result.stdout


def test_dockerfile_runs_as_non_root_with_a_health_check() -> None:
    text = DOCKERFILE.read_text()
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    assert len(stages) == 2, "a build stage with the compiler, and the runtime stage"
    runtime = stages[-1]
    assert "gcc" not in runtime
    [user] = re.findall(r"^USER (\S+)", runtime, flags=re.MULTILINE)
    assert user.split(":")[0] not in ("root", "0")
    [health] = re.findall(r"^HEALTHCHECK .*?(?<!\\)$", runtime, flags=re.MULTILINE | re.DOTALL)
    assert f"http://127.0.0.1:{Settings().http.port}/healthz" in health
    assert re.search(rf"^EXPOSE {Settings().http.port}$", runtime, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["driftline"]' in runtime


def test_dockerfile_copies_files_the_build_context_has() -> None:
    """Every COPY source exists in the repository and the .dockerignore lets it through."""
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignore, "the context is only what the image needs"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += line.split()[1:-1]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"

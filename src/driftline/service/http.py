"""One HTTP port: ``/metrics``, ``/healthz``, ``/readyz``, ``/v1/status`` and the live drift
report ``/v1/report/<model_id>/<model_version>`` (HTML, see :mod:`driftline.report`; made
off the event loop, one at a time: :mod:`driftline.service.report_page`).

With ``http.token`` set, every request but ``/healthz`` and ``/metrics`` needs the header
``Authorization: Bearer <token>``; without it, or with another token, the answer is 401 with
a ``WWW-Authenticate: Bearer`` challenge. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from driftline import __version__
from driftline.cloudevents import format_time
from driftline.config import Settings
from driftline.plan import ModelKey
from driftline.report.model import VersionReport
from driftline.service.metrics import ServiceMetrics
from driftline.service.report_page import ReportPages
from driftline.service.snapshot import ServiceSnapshot


class Served(Protocol):
    """What the HTTP API reads of the service."""

    @property
    def settings(self) -> Settings: ...

    @property
    def metrics(self) -> ServiceMetrics: ...

    @property
    def ready(self) -> bool: ...

    def snapshot(self) -> ServiceSnapshot: ...

    def version_report(self, key: ModelKey) -> VersionReport | None: ...


def status(snapshot: ServiceSnapshot) -> dict[str, Any]:
    """Models, features, current statistics and active alerts, as JSON."""
    models: dict[str, dict[str, Any]] = {}
    for part in snapshot.partitions:
        pipeline = part.pipeline
        for version in pipeline.versions:
            key = version.key
            features: dict[str, dict[str, Any]] = {}
            for finding in pipeline.findings.get(key, ()):
                features.setdefault(finding.feature, {})[finding.detector] = {
                    "statistic": finding.statistic,
                    "value": finding.value,
                    "window_end": format_time(finding.window_end),
                    "sample_size": finding.sample_size,
                }
            models[f"{key[0]}/{key[1]}"] = {
                "model_id": key[0],
                "model_version": key[1],
                "partition": f"{part.topic}[{part.partition}]",
                "events": version.events,
                "state": "warming_up" if version.warming_up else "monitoring",
                "profile_id": version.profile_id,
                "monitored_features": list(version.monitored_features),
                # Columns the profile lacks, learning their reference from live events.
                "learning_features": [
                    {
                        "feature": learning.feature,
                        "events": learning.events,
                        "warmup_events": learning.warmup_events,
                    }
                    for learning in version.learning_features
                ],
                "statistics": features,
                "firing_alerts": [a.event for a in version.firing],
                # Ground truth: join counts, label delays, reference / realized /
                # estimated performance (null until it starts).
                "performance": version.performance,
            }
    return {
        "ready": snapshot.ready,
        "partitions": [
            {
                "topic": part.topic,
                "partition": part.partition,
                "next_offset": part.next_offset,
                "checkpointed_offset": part.checkpointed_offset,
                # Totals since the partition's first event (checkpointed with the state):
                # events per model version and dead letters per reason.
                "events": {f"{k[0]}/{k[1]}": n for k, n in sorted(part.pipeline.events.items())},
                "dead_letters": dict(sorted(part.pipeline.dead_letters.items())),
                "feedback_partitions": [
                    {
                        "topic": joined.topic,
                        "partition": joined.partition,
                        "next_offset": joined.next_offset,
                        "checkpointed_offset": joined.checkpointed_offset,
                    }
                    for joined in part.feedback
                ],
            }
            for part in sorted(snapshot.partitions, key=lambda p: (p.topic, p.partition))
        ],
        "models": [models[k] for k in sorted(models)],
        # Champion / challenger: verdict, metrics, interval, pairs (README, "Champion vs
        # challenger"), with the partition that compares them.
        "comparisons": snapshot.comparisons(),
    }


#: Paths served without the bearer token: liveness and Prometheus scraping.
PUBLIC_PATHS = frozenset({"/healthz", "/metrics"})
_REALM = 'Bearer realm="driftline"'


def bearer_guard(token: str) -> Middleware:
    """Middleware answering 401 to requests outside :data:`PUBLIC_PATHS` that do not carry
    ``Authorization: Bearer <token>``."""
    expected = token.encode()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS:
            return await handler(request)
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, given = header.partition(" ")
            valid = hmac.compare_digest(given.strip().encode(), expected)
            if scheme.lower() == "bearer" and valid:
                return await handler(request)
        challenge = _REALM if header is None else f'{_REALM}, error="invalid_token"'
        return web.json_response(
            {"error": "unauthorized", "detail": "a valid bearer token is required"},
            status=401,
            headers={"WWW-Authenticate": challenge},
        )

    return guard


def make_app(service: Served) -> web.Application:
    pages = ReportPages()

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(service.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ready = service.ready
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def status_page(_: web.Request) -> web.Response:
        return web.json_response(status(service.snapshot()))

    async def report_page(request: web.Request) -> web.Response:
        key = (request.match_info["model_id"], request.match_info["model_version"])
        report = service.version_report(key)
        if report is None:
            detail = (
                f"model {key[0]!r} version {key[1]!r} is not monitored by this instance "
                "(unknown, not configured, or its partition is assigned to another instance)"
            )
            return web.json_response({"error": "not_found", "detail": detail}, status=404)
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return await pages.respond(
            request,
            report,
            title=f"driftline drift report: {key[0]} version {key[1]}",
            generated=f"live from driftline {__version__} ({service.settings.deployment}), "
            f"{now}: reload for the latest state",
            note=f"statistics of the last {service.settings.report.history_windows:,} closed "
            "windows since this instance started (at most)",
        )

    token = service.settings.http.token
    guards = [] if token is None else [bearer_guard(token.get_secret_value())]
    app = web.Application(middlewares=guards)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/v1/status", status_page)
    app.router.add_get("/v1/report/{model_id}/{model_version}", report_page)
    return app


async def start_http(service: Served, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; return the runner (to clean up) and the bound port."""
    runner = web.AppRunner(make_app(service), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for address in runner.addresses:  # the real port when 0 asked for a free one
        bound = int(address[1])
    return runner, bound

"""The live report page (``GET /v1/report/<model_id>/<model_version>``) as an HTTP response.

Rendering a large version (40 series of 500 windows) and compressing its page (plotly.js
alone is about 4.8 MB) take a few hundred milliseconds of CPU, so a page is made on a worker
thread (the event loop goes on consuming, answering health checks and scrapes), from a
:class:`~driftline.report.model.VersionReport`: frozen dataclasses and tuples, a copy of
the state taken on the event loop, which nothing changes while the thread reads it.

One page is made at a time: a request that comes while one is being made is answered
``503 Service Unavailable`` with ``Retry-After`` (reloads of an impatient person, or many
people paged at once, never stack up renders). The page begins with plotly.js
(:func:`~driftline.report.html.page_head`); its gzip compression is done once and the
compressor's state after it copied for each page, so only the rest is compressed per request.
"""

from __future__ import annotations

import asyncio
import zlib

from aiohttp import web

from driftline.report.html import page_head, render
from driftline.report.model import VersionReport, drift_report

#: Seconds a client is told to wait when a page is being made already.
RETRY_AFTER_SECONDS = 2
#: gzip (``wbits`` 16 + 15: a gzip header and trailer around deflate).
_GZIP_WBITS = 31


def accepts_gzip(request: web.Request) -> bool:
    """Whether the client accepts ``Content-Encoding: gzip`` (not refused with ``q=0``)."""
    for item in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().replace(" ", "")
            return quality not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


class ReportPages:
    """Makes live report pages one at a time, off the event loop."""

    def __init__(self) -> None:
        self._busy = asyncio.Lock()
        self._head: tuple[zlib._Compress, bytes] | None = None
        """A compressor that has read :func:`page_head`, and what it wrote of it."""

    async def respond(
        self, request: web.Request, report: VersionReport, *, title: str, generated: str, note: str
    ) -> web.Response:
        if self._busy.locked():
            return web.json_response(
                {"error": "busy", "detail": "a report page is being made; retry shortly"},
                status=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        gzip = accepts_gzip(request)
        async with self._busy:
            body = await asyncio.to_thread(self._page, report, title, generated, note, gzip)
        headers = {"Vary": "Accept-Encoding"}
        if gzip:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, content_type="text/html", charset="utf-8", headers=headers)

    def _page(
        self, report: VersionReport, title: str, generated: str, note: str, gzip: bool
    ) -> bytes:
        """The page, gzipped when asked (on a worker thread, one at a time)."""
        page = render(drift_report([report]), title=title, generated=generated, note=note)
        if not gzip:
            return page.encode()
        head = page_head()
        assert page.startswith(head)
        if self._head is None:
            compressor = zlib.compressobj(6, zlib.DEFLATED, _GZIP_WBITS)
            self._head = compressor, compressor.compress(head.encode())
        base, written = self._head
        compressor = base.copy()
        return written + compressor.compress(page[len(head) :].encode()) + compressor.flush()

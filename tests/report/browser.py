"""Open a page in a real headless Chromium (Debian's ``chromium``) as a person would, through
the DevTools protocol: wait until the report says its charts are drawn, then collect the
console errors, every request the page made, the rendered DOM and a full-page screenshot.

The browser runs with the network blocked (every host name resolves to nothing, every
non-loopback request goes to a proxy that does not exist): a page that needs the network
cannot render, and the requests it tried are listed anyway.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM = "chromium"
TIMEOUT_SECONDS = 90.0


@dataclass
class PageVisit:
    url: str
    rendered: str | None
    """``data-rendered`` of the body: the number of charts drawn ('error' when one failed)."""
    dom: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    status: int | None = None
    """HTTP status of the page itself (None for a file)."""
    drawn: list[str] = field(default_factory=list)
    """Ids (``data-chart``) of the chart containers holding a plotly SVG, in page order."""

    @property
    def chart_svgs(self) -> int:
        """plotly's rendered charts: one ``<svg class="main-svg">`` pair per chart."""
        return len(re.findall(r'<svg class="main-svg"', self.dom))

    def outside_requests(self) -> list[str]:
        """Requests to anything but the page itself (inline ``data:``/``blob:`` excluded)."""
        return [u for u in self.requests if u != self.url and not u.startswith(("data:", "blob:"))]


def chromium_path() -> str:
    path = shutil.which(CHROMIUM)
    if path is None:
        pytest.fail(
            "Debian's chromium is needed to test the drift report as a person would "
            "(apt-get install chromium)",
            pytrace=False,
        )
    return path


def visit(
    url: str, screenshot: Path, headers: dict[str, str] | None = None, width: int = 1400
) -> PageVisit:
    """Open ``url`` (sending ``headers``), wait for the charts, screenshot the whole page."""
    return asyncio.run(
        asyncio.wait_for(_visit(url, screenshot, headers or {}, width), TIMEOUT_SECONDS)
    )


async def _visit(url: str, screenshot: Path, headers: dict[str, str], width: int) -> PageVisit:
    profile = tempfile.mkdtemp(prefix="driftline-chromium-")
    process = subprocess.Popen(
        [
            chromium_path(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
            f"--window-size={width},1000",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        endpoint = await _devtools_endpoint(process)
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(endpoint, max_msg_size=0) as ws,
        ):
            return await _drive(_Cdp(ws), url, screenshot, headers, width)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_endpoint(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    loop = asyncio.get_running_loop()
    seen = []
    while True:
        line = await loop.run_in_executor(None, process.stderr.readline)
        if not line:
            pytest.fail(f"chromium exited before DevTools listened: {''.join(seen)[-2000:]}")
        seen.append(line)
        match = re.search(r"DevTools listening on (ws://\S+)", line)
        if match:
            # Keep draining stderr so chromium never blocks on a full pipe.
            loop.run_in_executor(None, process.stderr.read)
            return match.group(1)


class _Cdp:
    """A minimal DevTools protocol client over one browser websocket (flattened sessions)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            else:
                await self.events.put(data)

    async def call(self, method: str, session: str | None = None, **params: Any) -> Any:
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.ws.send_str(json.dumps(message))
        answer = await future
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})


async def _drive(
    cdp: _Cdp, url: str, screenshot: Path, headers: dict[str, str], width: int
) -> PageVisit:
    target = await cdp.call("Target.createTarget", url="about:blank")
    attached = await cdp.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
    session = attached["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        await cdp.call(f"{domain}.enable", session)
    if headers:
        await cdp.call("Network.setExtraHTTPHeaders", session, headers=headers)
    errors: list[str] = []
    requests: list[str] = []
    status: dict[str, int] = {}

    def take(event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )
        elif method == "Runtime.exceptionThrown":
            errors.append(json.dumps(params["exceptionDetails"])[:2000])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(f"{params['entry']['source']}: {params['entry']['text']}")
        elif method == "Network.requestWillBeSent":
            requests.append(params["request"]["url"])
        elif method == "Network.responseReceived" and params["response"]["url"] == url:
            status["page"] = params["response"]["status"]

    await cdp.call("Page.navigate", session, url=url)
    rendered: str | None = None
    while True:
        while not cdp.events.empty():
            take(cdp.events.get_nowait())
        result = await cdp.call(
            "Runtime.evaluate",
            session,
            expression="document.body ? document.body.getAttribute('data-rendered') : null",
            returnByValue=True,
        )
        rendered = result.get("result", {}).get("value")
        if rendered is not None or status.get("page", 200) >= 400:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.3)  # late console messages, if any
    while not cdp.events.empty():
        take(cdp.events.get_nowait())
    dom = await cdp.call(
        "Runtime.evaluate",
        session,
        expression="document.documentElement.outerHTML",
        returnByValue=True,
    )
    drawn = await cdp.call(
        "Runtime.evaluate",
        session,
        expression="Array.from(document.querySelectorAll('[data-chart]'))"
        ".filter(d => d.querySelector('svg.main-svg')).map(d => d.getAttribute('data-chart'))",
        returnByValue=True,
    )
    metrics = await cdp.call("Page.getLayoutMetrics", session)
    height = int(metrics["cssContentSize"]["height"])
    await cdp.call(
        "Emulation.setDeviceMetricsOverride",
        session,
        width=width,
        height=min(height, 16000),
        deviceScaleFactor=1,
        mobile=False,
    )
    shot = await cdp.call(
        "Page.captureScreenshot", session, format="png", captureBeyondViewport=True
    )
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    with contextlib.suppress(Exception):
        await cdp.call("Target.closeTarget", targetId=target["targetId"])
    cdp.reader.cancel()
    return PageVisit(
        url=url,
        rendered=rendered,
        dom=dom["result"]["value"],
        console_errors=errors,
        requests=requests,
        status=status.get("page"),
        drawn=drawn["result"]["value"],
    )

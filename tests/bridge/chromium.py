"""A real headless Chromium, driven over the DevTools protocol (CDP) with aiohttp's websocket.

Debian's ``chromium`` (``make system-deps``) with ``--remote-debugging-port``: the browser
writes the port it picked to ``DevToolsActivePort`` in its profile folder; the page target's
websocket takes JSON commands.  Console errors, uncaught exceptions and failed loads (the
``Log`` domain: a 404 for an asset) are collected as they happen.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"


class Page:
    """One browser tab: send commands, evaluate scripts, read what went wrong."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.errors: list[str] = []
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data:
                self._waiting.pop(data["id"]).set_result(data)
            else:
                self._event(data["method"], data.get("params", {}))

    def _event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            args = [str(arg.get("value", arg.get("description", ""))) for arg in params["args"]]
            self.errors.append("console: " + " ".join(args))
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details["text"]
            self.errors.append(f"exception: {text}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry['text']} {entry.get('url', '')}".strip())

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One CDP command; its result, or an AssertionError with the browser's complaint."""
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = future
        await self.ws.send_str(json.dumps({"id": command_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 30)
        assert "error" not in reply, f"{method}: {reply['error']}"
        result: dict[str, Any] = reply["result"]
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a script expression in the page."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    async def wait_for(self, expression: str, within: float = 30) -> Any:
        """Evaluate until the expression gives something truthy; that value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not (value := await self.evaluate(expression)):
            assert loop.time() < deadline, f"the page never satisfied: {expression}"
            await asyncio.sleep(0.2)
        return value

    async def screenshot(self) -> bytes:
        """The page as PNG."""
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        return base64.b64decode(shot["data"])


def launch(profile: Path, size: tuple[int, int]) -> tuple[subprocess.Popen[bytes], int]:
    """Start Chromium with a fresh profile; the process and its DevTools port."""
    profile.mkdir(parents=True, exist_ok=True)
    log = profile / "chromium.log"
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # tests run as root in CI containers
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={size[0]},{size[1]}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not (active.exists() and active.read_text().strip()):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"chromium did not start:\n{log.read_text()}")
        time.sleep(0.1)
    return process, int(active.read_text().splitlines()[0])


@contextlib.asynccontextmanager
async def browser(
    profile: Path, url: str, size: tuple[int, int] = (1280, 900)
) -> AsyncIterator[Page]:
    """Chromium headless with a fresh profile, one tab on ``url``; closed afterwards."""
    process, port = await asyncio.to_thread(launch, profile, size)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            target = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                for domain in ("Runtime", "Log", "Page"):
                    await page.send(f"{domain}.enable")
                await page.send("Page.navigate", url=url)
                yield page
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 10)

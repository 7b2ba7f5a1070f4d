"""The status server on ``http.port``: ``/healthz``, ``/metrics`` and a page a person looks at.

It only reads what the bridge keeps anyway (counters, ``metrics.Telemetry``, the models'
states), so serving it costs the frame path nothing.  The page is plain files shipped in the
package (``bridge/web/``): nothing is fetched from anywhere else, ever.  It polls
``/api/status`` and shows each camera's last frame with the JPEG the bridge already published.
"""

from __future__ import annotations

import json
import logging
import time
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from aiohttp import web

from bridge import __version__
from bridge.metrics import CONTENT_TYPE, HISTORY_SECONDS, exposition
from bridge.scheduler import Status

if TYPE_CHECKING:
    from bridge.service import BridgeService

_LOGGER = logging.getLogger(__name__)
#: The page's own files, by URL name, with their content types.
ASSETS = {
    "app.js": "text/javascript",
    "style.css": "text/css",
}


def health_problems(service: BridgeService) -> list[str]:
    """Why the bridge is not healthy; empty when connected and every model is loaded."""
    problems = []
    mqtt = service.config.mqtt
    transport = service.transport
    if transport is None or not transport.connected.is_set():
        problems.append(f"broker {mqtt.host}:{mqtt.port} not connected")
    for task, worker in service.workers.items():
        if worker.status is Status.FAILED:
            detail = worker.error.detail if worker.error is not None else "failed"
            problems.append(f"model for {task} ({worker.label}) failed to load: {detail}")
        elif worker.status is Status.LOADING:
            problems.append(f"model for {task} ({worker.label}) still loading")
    return problems


class StatusServer:
    """An aiohttp server bound to ``http.host:http.port``; started and stopped by the service."""

    def __init__(self, service: BridgeService) -> None:
        self.service = service
        self.app = web.Application()
        self.app.add_routes(
            [
                web.get("/", self.page),
                web.get("/healthz", self.healthz),
                web.get("/metrics", self.metrics),
                web.get("/api/status", self.status),
                web.get("/api/frame/{camera}", self.frame),
                web.get("/static/{name}", self.asset),
            ]
        )
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen; a port already in use is logged and the bridge runs on without the server."""
        http = self.service.config.http
        assert http.port is not None
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, http.host, http.port).start()
        except OSError as err:
            _LOGGER.error("status server: cannot listen on %s:%s: %s", http.host, http.port, err)  # noqa: TRY400
            return
        _LOGGER.info("status page on http://%s:%s/", http.host, http.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    # the handlers

    async def healthz(self, request: web.Request) -> web.Response:
        """200 ``ok`` when healthy, else 503 with the reasons; JSON unless text is asked for."""
        problems = health_problems(self.service)
        status = 503 if problems else 200
        line = "; ".join(problems) if problems else "ok"
        if "application/json" not in request.headers.get("Accept", "application/json"):
            return web.Response(status=status, text=line + "\n")
        body = {"status": "unhealthy" if problems else "ok", "problems": problems, "detail": line}
        return web.json_response(body, status=status)

    async def metrics(self, _request: web.Request) -> web.Response:
        """Prometheus' text format."""
        service = self.service
        transport = service.transport
        text = exposition(
            service.accounts.cameras,
            service.accounts.telemetry,
            service.workers,
            connected=transport is not None and transport.connected.is_set(),
            info={"version": __version__, "bridge_id": service.config.bridge_id},
        )
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})

    async def page(self, _request: web.Request) -> web.Response:
        """The status page itself."""
        return web.Response(body=_read("index.html"), content_type="text/html", charset="utf-8")

    async def asset(self, request: web.Request) -> web.Response:
        """The page's script and style sheet (only the files listed in ``ASSETS``)."""
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound
        return web.Response(body=_read(name), content_type=ASSETS[name], charset="utf-8")

    async def frame(self, request: web.Request) -> web.Response:
        """A camera's last analysed frame: the JPEG the bridge published for it."""
        last = self.service.accounts.telemetry.last.get(request.match_info["camera"])
        if last is None or last.jpeg is None:
            raise web.HTTPNotFound
        return web.Response(
            body=last.jpeg, content_type="image/jpeg", headers={"Cache-Control": "no-store"}
        )

    async def status(self, _request: web.Request) -> web.Response:
        """Everything the page shows, as JSON."""
        return web.json_response(status_payload(self.service), dumps=_dumps)


def status_payload(service: BridgeService) -> dict[str, Any]:
    """The page's data: the bridge, its models, each camera with its last frame, the last hour."""
    telemetry = service.accounts.telemetry
    cameras: dict[str, Any] = {}
    for name, state in service.accounts.cameras.items():
        cam = state.config
        entry: dict[str, Any] = {
            "topic": cam.topic,
            "tasks": list(cam.tasks),
            "counters": state.counters.as_dict(),
        }
        if cam.meter is not None:
            entry["meter"] = {
                "digits": cam.meter.digits,
                "roi": cam.meter.roi,
                "corners": cam.meter.corners,
            }
        last = telemetry.last.get(name)
        if last is not None:
            entry["last"] = {
                "frame_id": last.frame_id,
                "at": last.at,
                "size": last.size,
                "image": f"/api/frame/{quote(name, safe='')}?f={last.frame_id[:16]}"
                if last.jpeg
                else None,
                "results": last.results,
            }
        cameras[name] = entry
    problems = health_problems(service)
    return {
        "bridge_id": service.config.bridge_id,
        "version": __version__,
        "now": time.time(),
        "healthy": not problems,
        "problems": problems,
        "models": {
            task: {"model": w.label, "status": str(w.status), "load_seconds": w.load_seconds}
            for task, w in service.workers.items()
        },
        "cameras": cameras,
        "latency": telemetry.history_since(time.time() - HISTORY_SECONDS),
        "errors": list(telemetry.recent_errors)[::-1],
    }


def _read(name: str) -> bytes:
    return resources.files("bridge").joinpath("web", name).read_bytes()


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)

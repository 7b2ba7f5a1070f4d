"""Publishing: results with their frame's image, error events, replies, the bridge info.

The last stage of a frame's path.  Each method returns the payload as published, so later
frames of the same scene can repeat it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from bridge import __version__
from bridge.config import BridgeConfig
from bridge.discovery import discovery_messages
from bridge.engines.base import EngineOutput
from bridge.frames import preview_of
from bridge.protocol import Topics, build_error, build_info, build_result, encode, now_iso
from bridge.scheduler import ModelWorker
from bridge.transport import MqttTransport
from bridge.work import Accounts, FrameWork

_LOGGER = logging.getLogger(__name__)
#: Counters change with every frame; the info is published at most this often for them.
STATS_INTERVAL = 5.0


class Publisher:
    """Puts the bridge's answers on the broker; ``transport`` is set once connected."""

    def __init__(
        self,
        config: BridgeConfig,
        topics: Topics,
        accounts: Accounts,
        workers: dict[str, ModelWorker],
    ) -> None:
        self.config = config
        self.topics = topics
        self.accounts = accounts
        self.workers = workers
        self.transport: MqttTransport | None = None
        #: Told when a camera's latest news became an error (scenes forget the camera then).
        self.on_camera_error: Callable[[str], None] = lambda _camera: None
        self._started_at = now_iso()

    def _link(self) -> MqttTransport:
        assert self.transport is not None, "publishing before the transport started"
        return self.transport

    async def result(
        self, work: FrameWork, task: str, output: EngineOutput, unchanged_from: str | None = None
    ) -> dict[str, Any]:
        """Publish a result (and the analysed frame); returns the result as published.

        ``unchanged_from``: the frame whose analysis this repeats (the same scene again); the
        result says so and no new image is published for it.
        """
        transport = self._link()
        extra = dict(output.extra)
        if task == "meter" and work.camera.meter is not None:
            extra.setdefault("unit", work.camera.meter.unit)
            extra.setdefault("device_class", work.camera.meter.device_class)
        if unchanged_from is not None:
            extra.update(unchanged=True, unchanged_since=unchanged_from)
        latency_ms = (time.monotonic() - work.received) * 1000
        payload = build_result(
            camera=work.camera.name,
            task=task,
            text=output.text,
            frame_id=work.frame_id,
            model=self.workers[task].label,
            latency_ms=latency_ms,
            captured_at=work.captured_at,
            extra=extra,
            request_id=work.request.id if work.request else None,
        )
        if work.request is not None:
            await transport.publish(work.request.reply_to, encode(payload))
            return payload
        name = work.camera.name
        publishes = [
            transport.publish(self.topics.result(name, task), encode(payload), retain=True)
        ]
        if self.config.frames.publish_image and work.image is not None and unchanged_from is None:
            if work.preview is None:
                work.preview = asyncio.ensure_future(
                    asyncio.to_thread(preview_of, work.data, work.image)
                )
            jpeg = await work.preview
            publishes.append(transport.publish(self.topics.image(name, task), jpeg, retain=True))
        await asyncio.gather(*publishes)
        self.accounts.cameras[name].counters.latency_ms = round(latency_ms, 1)
        self.accounts.changed.set()
        _LOGGER.info(
            "%s %s: %s (%.0f ms%s)",
            name,
            task,
            output.text[:80],
            latency_ms,
            ", unchanged scene" if unchanged_from is not None else "",
        )
        return payload

    async def error(
        self,
        work: FrameWork,
        code: str,
        detail: str,
        *,
        task: str | None = None,
        model: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Publish an error event (or an error reply); returns it as published."""
        transport = self._link()
        payload = build_error(
            camera=work.camera.name,
            frame_id=work.frame_id,
            code=code,
            detail=detail,
            task=task,
            model=model,
            extra=extra,
            request_id=work.request.id if work.request else None,
        )
        _LOGGER.warning(
            "%s frame %s: %s: %s", work.camera.name, (work.frame_id or "-")[:12], code, detail
        )
        if work.request is not None:
            await transport.publish(work.request.reply_to, encode(payload))
            return payload
        # The camera's latest news is now an error: its next good frame is analysed even if it
        # shows the scene last analysed (garbage, then the same snapshot again, gets a result).
        self.on_camera_error(work.camera.name)
        await transport.publish(self.topics.error(work.camera.name), encode(payload))
        return payload

    # the bridge's own topics

    def info_payload(self) -> dict[str, Any]:
        """The bridge info as published now: cameras, model states, counters."""
        cameras: dict[str, dict[str, Any]] = {}
        for cam in self.config.cameras.values():
            entry: dict[str, Any] = {"topic": cam.topic, "tasks": list(cam.tasks)}
            if cam.meter is not None:
                entry["meter"] = {
                    "unit": cam.meter.unit,
                    "device_class": cam.meter.device_class,
                    "decimals": cam.meter.decimals,
                }
            cameras[cam.name] = entry
        models: dict[str, dict[str, Any]] = {}
        for task, worker in self.workers.items():
            model: dict[str, Any] = {
                "engine": self.config.models[task].engine,
                "model": worker.label,
                "status": str(worker.status),
            }
            if worker.error is not None:
                model["error"] = worker.error.detail
            elif worker.loaded.is_set():
                model.update(worker.engine.details())
            models[task] = model
        return build_info(
            version=__version__,
            bridge_id=self.config.bridge_id,
            base_topic=self.config.mqtt.base_topic,
            cameras=cameras,
            models=models,
            counters=self.accounts.counters(),
            started_at=self._started_at,
        )

    def info(self) -> None:
        """Publish the bridge info (retained), when connected."""
        if self.transport is not None and self.transport.connected.is_set():
            self.transport.publish(self.topics.info, encode(self.info_payload()), retain=True)

    def discovery(self) -> None:
        """Publish Home Assistant MQTT discovery for every camera's tasks, when it is on."""
        if not self.config.mqtt.discovery:
            return
        transport = self._link()
        for topic, payload in discovery_messages(self.config):
            transport.publish(topic, encode(payload), retain=True)

    async def counters_loop(self) -> None:
        """Publish the info a little after counters change, at most every ``STATS_INTERVAL``."""
        while True:
            await self.accounts.changed.wait()
            await asyncio.sleep(STATS_INTERVAL)
            self.accounts.changed.clear()
            self.info()

    async def info_when_loaded(self, worker: ModelWorker) -> None:
        """Publish the info once the worker's model has loaded (or failed to)."""
        await worker.loaded.wait()
        self.info()

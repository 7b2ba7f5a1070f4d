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
from bridge.group import GroupView, encode_signature
from bridge.protocol import Topics, build_error, build_info, build_result, encode, now_iso
from bridge.scheduler import ModelWorker
from bridge.transport import MqttTransport
from bridge.work import Accounts, FrameWork

_LOGGER = logging.getLogger(__name__)
#: Counters change with every frame; the info is published at most this often for them.
STATS_INTERVAL = 5.0


async def _drawn(preview: Callable[[], bytes], work: FrameWork) -> bytes | None:
    """An engine's picture of its result; the plain frame (if any) when drawing it fails."""
    try:
        return await asyncio.to_thread(preview)
    except Exception as err:  # noqa: BLE001 - a drawing bug must not lose the result
        _LOGGER.warning("%s: could not draw the result's picture: %s", work.camera.name, err)
    return await _picture(work)


async def _picture(work: FrameWork) -> bytes | None:
    """The frame's own picture, made once for all its tasks; then its bytes and image go.

    Each task's result then waits for the broker's acknowledgement, which can take seconds
    while a burst of incoming frames queues ahead of it: holding the frame's bytes and decoded
    image until then cost 6 + 8 MB per waiting result in the QoS 0 burst test (1080p PNGs).
    """
    if work.preview is None:
        if work.image is None:
            return None
        work.preview = asyncio.ensure_future(asyncio.to_thread(preview_of, work.data, work.image))
    jpeg = await work.preview
    work.data, work.image = b"", None
    return jpeg


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
        self.group = GroupView(config, topics)
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
        if work.signature is not None and self.config.mqtt.share is not None:
            # other bridges of the group dedup by it
            extra.setdefault("scene", encode_signature(work.signature))
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
            bridge_id=self.config.bridge_id,
        )
        if work.request is not None:
            await transport.publish(work.request.reply_to, encode(payload))
            return payload
        name = work.camera.name
        newest = await self.group.claim(
            name, task, work.captured_at, late=bool(work.extra.get("late"))
        )
        if not newest:  # older than what the group published: never over it (not retained)
            payload["newest"] = False
        publishes = [
            transport.publish(self.topics.result(name, task), encode(payload), retain=newest)
        ]
        jpeg = None
        size = work.image.size if work.image is not None else None
        wanted = self.config.frames.publish_image and newest and unchanged_from is None
        if wanted:
            drawn = output.preview
            jpeg = await (_drawn(drawn, work) if drawn is not None else _picture(work))
            if jpeg is not None:
                publishes.append(
                    transport.publish(self.topics.image(name, task), jpeg, retain=True)
                )
        await asyncio.gather(*publishes)
        self.accounts.state(name).counters.latency_ms = round(latency_ms, 1)
        self.accounts.changed.set()
        self.accounts.telemetry.result(name, task, payload, latency_ms, jpeg=jpeg, size=size)
        _LOGGER.info(
            "%s %s: %s (%.0f ms%s)",
            name,
            task,
            output.text[:80],
            latency_ms,
            ", unchanged scene" if unchanged_from is not None else "",
            extra={"camera": name, "frame_id": work.frame_id},
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
        preview: Callable[[], bytes] | None = None,
    ) -> dict[str, Any]:
        """Publish an error event (or an error reply); returns it as published.

        ``preview`` draws a picture of what was read (a meter reading held back), published on
        the task's image topic so the user sees why.
        """
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
            bridge_id=self.config.bridge_id,
        )
        _LOGGER.warning(
            "%s frame %s: %s: %s",
            work.camera.name,
            (work.frame_id or "-")[:12],
            code,
            detail,
            extra={"camera": work.camera.name, "frame_id": work.frame_id},
        )
        if work.request is not None:
            await transport.publish(work.request.reply_to, encode(payload))
            return payload
        self.accounts.telemetry.error(work.camera.name, code, payload)
        # The camera's latest news is now an error: its next good frame is analysed even if it
        # shows the scene last analysed (garbage, then the same snapshot again, gets a result).
        self.on_camera_error(work.camera.name)
        await transport.publish(self.topics.error(work.camera.name), encode(payload))
        if preview is not None and task is not None and self.config.frames.publish_image:
            drawn = await _drawn(preview, work)
            if drawn is not None:
                topic = self.topics.image(work.camera.name, task)
                await transport.publish(topic, drawn, retain=True)
        return payload

    # the bridge's own topics

    def info_payload(self, group: bool = True) -> dict[str, Any]:
        """The bridge info as published now: cameras, model states, counters.

        ``group``: with ``site_id`` and ``share``, as ``<base>/bridges/<bridge_id>/info`` has
        them.  Without, it is the single-bridge ``<base>/bridge/info`` exactly as before: its
        ``bridge_id`` is the site id (what ``bridge.id`` defaulted to), which integrations
        already installed build their unique ids from.
        """
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
            bridge_id=self.config.bridge_id if group else self.config.site_id,
            base_topic=self.config.mqtt.base_topic,
            cameras=cameras,
            models=models,
            counters=self.accounts.counters(),
            started_at=self._started_at,
            site_id=self.config.site_id if group else None,
            share=self.config.mqtt.share,
        )

    def info(self) -> None:
        """Publish the bridge's info (retained), when connected; the legacy one when alone."""
        if self.transport is None or not self.transport.connected.is_set():
            return
        info = self.topics.bridge_info(self.config.bridge_id)
        self.transport.publish(info, encode(self.info_payload()), retain=True)
        if self.config.mqtt.share is None:
            legacy = encode(self.info_payload(group=False))
            self.transport.publish(self.topics.info, legacy, retain=True)

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

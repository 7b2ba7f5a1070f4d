"""The running bridge: wires transport, frames, scheduler and engines together.

This is the one boundary where ``BridgeError``s become error events.  Every frame it accepts
ends as exactly one of: a result per task, an error event, or a counted ``superseded``; only
then is the frame acknowledged to the broker.  A frame that shows the scene last analysed
(``dedup``) costs no model time but is still answered: its result repeats the last one's text
with the new frame's id and ``"unchanged": true``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from paho.mqtt.client import topic_matches_sub
from PIL import Image

from bridge import __version__
from bridge.config import BridgeConfig, CameraConfig
from bridge.dedup import SceneMemory, Signature, scene_signature, threshold_for
from bridge.discovery import discovery_messages
from bridge.engines.base import Engine, EngineOutput, JobOptions, create_engine
from bridge.engines.faces_engine import FacesEngine
from bridge.errors import BridgeError, FrameError, ModelError
from bridge.faces import commands as faces_commands
from bridge.fetch import fetch_url
from bridge.frames import decode_image, frame_id_of, preview_of, unpack_payload
from bridge.meter.state import state_path_for
from bridge.protocol import (
    RESULT_FRAME_FIELDS,
    STATE_ONLINE,
    Request,
    Topics,
    build_error,
    build_info,
    build_result,
    encode,
    now_iso,
    parse_request,
)
from bridge.scheduler import Ended, Job, ModelWorker, Outcome
from bridge.transport import IncomingMessage, MqttTransport

_LOGGER = logging.getLogger(__name__)
STATS_INTERVAL = 5.0
#: Frames of one camera that may wait for decoding before older ones are dropped undecoded.
MAX_UNDECODED = 2


#: How a frame ended, for the counters: the worst of its tasks' endings counts.
_ENDING_RANK = {"results": 0, "superseded": 1, "errors": 2}


@dataclass
class Counters:
    """Per-camera accounting of frames, published in the bridge info (health sensors read it).

    Each frame received is counted once when it has ended, whatever its number of tasks:
    ``received == results + errors + superseded`` once nothing is in flight.  A frame ends as
    an error if any of its tasks did, else as superseded if any was, else as a result.
    ``duplicates`` counts the results among them answered from the last analysis (dedup).
    """

    received: int = 0
    results: int = 0
    errors: int = 0
    superseded: int = 0
    duplicates: int = 0
    latency_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The counters as published in ``info.counters.<camera>``."""
        return {
            "received": self.received,
            "results": self.results,
            "errors": self.errors,
            "superseded": self.superseded,
            "duplicates": self.duplicates,
            "latency_ms": self.latency_ms,
        }


class AckTicket:
    """Acknowledges one MQTT message once every piece of work it started has ended."""

    def __init__(self, ack: Callable[[], None]) -> None:
        self._ack = ack
        self._open = 1  # the message's own handling; released by ``release``
        self.cancelled = False

    def hold(self, count: int = 1) -> None:
        """One more piece of work must end before the message is acknowledged."""
        self._open += count

    def release(self) -> None:
        """One piece of work ended; acknowledge when none is left (unless handed back)."""
        self._open -= 1
        if self._open == 0 and not self.cancelled:
            self._ack()


@dataclass(eq=False)
class FrameWork:
    """One frame of one camera on its way through the tasks."""

    camera: CameraConfig
    frame_id: str
    received: float
    captured_at: str
    ticket: AckTicket
    image: Image.Image | None = None
    #: The image bytes as the camera sent them (the preview reuses them when it can).
    data: bytes = b""
    preview: asyncio.Future[bytes] | None = None
    request: Request | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The camera's frame number, given on arrival (a higher one supersedes this frame).
    seq: int = 0
    #: Tasks still running, and the worst ending so far (see ``Counters``).
    open_tasks: int = 0
    ending: str = "results"
    #: Each task's outcome, for later frames of the same scene that wait to repeat it.
    outcomes: dict[str, asyncio.Future[SceneOutcome]] = field(default_factory=dict)


#: What a task made of a scene: ("result", payload), ("error", payload), ("superseded", None)
#: or ("cancelled", None).
SceneOutcome = tuple[str, dict[str, Any] | None]


class BridgeService:
    """The bridge process's core; ``run`` serves until ``stop`` is called."""

    def __init__(
        self,
        config: BridgeConfig,
        *,
        engines: dict[str, Engine] | None = None,
        protocol: int = 5,
        keep_meter_state: bool = True,
    ) -> None:
        self.config = config
        #: Meters' previous values go to a file next to the configuration (the demo: memory).
        self.keep_meter_state = keep_meter_state
        self.topics = Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix)
        self.protocol = protocol
        self.counters = {name: Counters() for name in config.cameras}
        self._engines = engines
        self.workers: dict[str, ModelWorker] = {}
        self._seq: dict[str, int] = dict.fromkeys(config.cameras, 0)
        self._latest_seq: dict[str, int] = dict.fromkeys(config.cameras, 0)
        self._last_frame: dict[str, str] = {}
        self._scenes = SceneMemory()
        #: Per camera, the outcomes of the analysis its next frames are compared with (only the
        #: outcomes: the analysed frame's image and bytes are not kept alive for this).
        self._scene_outcomes: dict[str, dict[str, asyncio.Future[SceneOutcome]]] = {}
        self._undecoded: dict[str, int] = dict.fromkeys(config.cameras, 0)
        self._connections = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._stats_dirty = asyncio.Event()
        self._stopping = False
        self._started_at = now_iso()
        self._http: aiohttp.ClientSession | None = None
        self.transport: MqttTransport | None = None
        self.ready = asyncio.Event()

    # lifecycle

    async def start(self, connect_wait: float | None = 10.0) -> None:
        """Start loading models, connect, subscribe; returns once connected (or timed out)."""
        for task, model_config in self.config.models.items():
            engine = (self._engines or {}).get(task)
            if engine is None:
                try:
                    engine = create_engine(model_config)
                except ModelError as err:
                    engine = _BrokenEngine(model_config, err)
            attach_state = getattr(engine, "attach_state", None)
            if attach_state is not None:  # the meter engine keeps previous values by the config
                path = state_path_for(self.config.source) if self.keep_meter_state else None
                attach_state(path)
            worker = ModelWorker(task, engine)
            self.workers[task] = worker
            worker.start()
            self._background.add(asyncio.create_task(self._announce_when_loaded(worker)))
        self._http = aiohttp.ClientSession()
        subscriptions = {cam.topic for cam in self.config.cameras.values()}
        subscriptions |= {self.topics.request, self.topics.ha_status}
        subscriptions.add(f"{self.config.mqtt.base_topic}/+/meter/set")
        if "faces" in self.config.models:  # enrolment is only listened to when faces are on
            subscriptions.add(f"{self.config.mqtt.base_topic}/faces/+")
        self.transport = MqttTransport(
            self.config.mqtt,
            subscriptions=subscriptions,
            on_message=self._on_message,
            on_connected=self._on_connected,
            protocol=self.protocol,
        )
        await self.transport.start(wait=connect_wait)
        self._background.add(asyncio.create_task(self._stats_loop()))
        self.ready.set()

    async def stop(self) -> None:
        """Stop taking frames, let running model calls finish, publish ``offline``, disconnect.

        Frames still waiting are not acknowledged, so the broker delivers them again to the
        persistent session when the bridge comes back.
        """
        self._stopping = True
        for task in self._background:  # housekeeping loops: nothing of theirs to finish
            task.cancel()
        await asyncio.gather(*(w.stop() for w in self.workers.values()))
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=3)
        for task in self._tasks:
            task.cancel()
        self._publish_info()  # the final counters, so every frame handled is accounted for
        if self.transport is not None:
            await self.transport.stop()
        if self._http is not None:
            await self._http.close()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # connection

    def _on_connected(self) -> None:
        assert self.transport is not None
        self._connections += 1
        if self._connections > 1:
            # A broker that restarted without persistence lost the retained results: the next
            # frame of every camera is analysed again, whatever it shows, to restore them.
            for camera in self.config.cameras:
                self._forget_scene(camera)
        self.transport.publish(self.topics.state, STATE_ONLINE, retain=True)
        self._publish_info()
        if self.config.mqtt.discovery:
            self._publish_discovery()

    def _publish_discovery(self) -> None:
        assert self.transport is not None
        for topic, payload in discovery_messages(self.config):
            self.transport.publish(topic, encode(payload), retain=True)

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
            models[task] = model
        return build_info(
            version=__version__,
            bridge_id=self.config.bridge_id,
            base_topic=self.config.mqtt.base_topic,
            cameras=cameras,
            models=models,
            counters={name: c.as_dict() for name, c in self.counters.items()},
            started_at=self._started_at,
        )

    def _publish_info(self) -> None:
        if self.transport is not None and self.transport.connected.is_set():
            self.transport.publish(self.topics.info, encode(self.info_payload()), retain=True)

    async def _stats_loop(self) -> None:
        while True:
            await self._stats_dirty.wait()
            await asyncio.sleep(STATS_INTERVAL)
            self._stats_dirty.clear()
            self._publish_info()

    async def _announce_when_loaded(self, worker: ModelWorker) -> None:
        await worker.loaded.wait()
        self._publish_info()

    # incoming messages

    def _on_message(self, message: IncomingMessage) -> None:
        assert self.transport is not None
        transport = self.transport
        if self._stopping:
            return  # not acknowledged: the broker keeps it for the next run
        ticket = AckTicket(lambda: transport.ack(message))
        if message.topic == self.topics.ha_status:
            if message.payload == b"online" and self.config.mqtt.discovery:
                self._publish_discovery()
            ticket.release()
            return
        if message.topic == self.topics.request:
            self._spawn(self._handle_request(message, ticket))
            return
        action = faces_commands.topic_action(self.topics.base, message.topic)
        if action is not None:
            self._spawn(self._answer_faces(action, message.payload))
            ticket.release()
            return
        if message.topic.endswith("/meter/set") and message.topic.startswith(self.topics.base):
            self._handle_meter_set(message)
            ticket.release()
            return
        cameras = [
            cam
            for cam in self.config.cameras.values()
            if topic_matches_sub(cam.topic, message.topic)
        ]
        for cam in cameras:
            ticket.hold()
            self._seq[cam.name] += 1  # on arrival: a later frame supersedes this one at once
            self._spawn(self._handle_frame(cam, message.payload, ticket, self._seq[cam.name]))
        ticket.release()

    def _handle_meter_set(self, message: IncomingMessage) -> None:
        camera = message.topic[len(self.topics.base) + 1 :].split("/")[0]
        worker = self.workers.get("meter")
        setter = getattr(worker.engine if worker else None, "set_value", None)
        try:
            value = float(message.payload.decode())
        except (UnicodeDecodeError, ValueError):
            _LOGGER.warning("ignored %s: %r is not a number", message.topic, message.payload[:40])
            return
        if camera not in self.config.cameras or setter is None:
            _LOGGER.warning("ignored %s: %s is not a meter camera", message.topic, camera)
            return
        setter(camera, value)
        _LOGGER.info("meter %s set by hand to %s", camera, value)

    async def _answer_faces(self, action: str, payload: bytes) -> None:
        """``<base>/faces/<action>``: enrolment commands, answered on their ``reply_to``."""
        worker = self.workers.get("faces")
        ready = worker is not None and worker.loaded.is_set() and worker.error is None
        engine = worker.engine if worker is not None and ready else None
        assert self.transport is not None
        await faces_commands.answer(
            engine if isinstance(engine, FacesEngine) else None,
            action,
            payload,
            self.config.frames.max_bytes,
            self.transport.publish,
        )

    async def _image_bytes(self, payload: bytes) -> bytes:
        frames = self.config.frames
        unpacked = unpack_payload(payload, frames.max_bytes)
        if unpacked.kind == "bytes":
            return unpacked.data
        assert self._http is not None
        return await fetch_url(
            self._http, unpacked.url, frames.url_allowed_hosts, frames.max_bytes, frames.url_timeout
        )

    def _target_size(self, tasks: tuple[str, ...]) -> int | None:
        sizes = []
        for task in tasks:
            worker = self.workers.get(task)
            size = worker.engine.input_size if worker else None
            if size is None:
                return None
            sizes.append(size)
        return max(sizes) if sizes else None

    async def _decode(self, data: bytes, tasks: tuple[str, ...]) -> Image.Image:
        return await asyncio.to_thread(
            decode_image, data, self.config.frames.max_pixels, self._target_size(tasks)
        )

    async def _handle_frame(
        self, cam: CameraConfig, payload: bytes, ticket: AckTicket, seq: int
    ) -> None:
        workers = [self.workers[task] for task in cam.tasks if task in self.workers]
        for worker in workers:  # a batch starting meanwhile may wait a moment for this frame
            worker.expect(cam.name)
        self._undecoded[cam.name] += 1
        try:
            unchanged = await self._analyse_frame(cam, payload, ticket, seq)
        finally:
            self._undecoded[cam.name] -= 1
            for worker in workers:
                worker.forget(cam.name)
        if unchanged is not None:  # waits for the scene's analysis: no batch waits for it
            await self._answer_unchanged(unchanged)

    def _count(self, work: FrameWork, ending: str) -> None:
        """One of the frame's tasks (or the frame as a whole) ended; count the frame once."""
        if _ENDING_RANK[ending] > _ENDING_RANK[work.ending]:
            work.ending = ending
        work.open_tasks -= 1
        if work.open_tasks > 0 or work.request is not None:
            return
        counters = self.counters[work.camera.name]
        setattr(counters, work.ending, getattr(counters, work.ending) + 1)
        self._stats_dirty.set()

    async def _analyse_frame(
        self, cam: CameraConfig, payload: bytes, ticket: AckTicket, seq: int
    ) -> FrameWork | None:
        """Decode and check one frame, then submit it to its models.

        Returns the frame when it shows the scene last analysed: the caller answers it with
        that analysis (``_answer_unchanged``).
        """
        received = time.monotonic()
        self.counters[cam.name].received += 1
        work = FrameWork(cam, frame_id_of(payload), received, now_iso(), ticket, seq=seq)
        work.open_tasks = 1  # the frame itself, until its tasks are submitted
        try:
            data = await self._image_bytes(payload)
            work.frame_id = frame_id_of(data)
            if self._undecoded[cam.name] > MAX_UNDECODED and seq < self._seq[cam.name]:
                # A burst: more frames of this camera wait for decoding than the model could
                # use, and a newer one has arrived. Dropped undecoded, so memory stays bounded.
                self._count(work, "superseded")
                ticket.release()
                return None
            if cam.dedup and self._last_frame.get(cam.name) == work.frame_id:
                return work
            work.data = data
            work.image = await self._decode(data, cam.tasks)
        except FrameError as err:
            await self._publish_error(work, err.code, err.detail)
            self._count(work, "errors")
            ticket.release()
            return None
        signature: Signature | None = None
        threshold = threshold_for(cam.tasks, cam.dedup_threshold)
        if cam.dedup and threshold is not None:
            signature = await asyncio.to_thread(scene_signature, work.image)
            if not self._scenes.is_new_scene(cam.name, signature, threshold):
                return work  # same scene as the last analysed frame
        if seq < self._latest_seq[cam.name]:
            # A newer frame of this camera was decoded first; this one is already stale.
            self._count(work, "superseded")
            ticket.release()
            return None
        self._latest_seq[cam.name] = seq
        self._submit(work, remember=signature)
        return None

    def _submit(self, work: FrameWork, remember: Signature | None) -> None:
        """Hand the decoded frame to each of its tasks' models; it becomes the camera's scene."""
        cam = work.camera
        assert work.image is not None
        loop = asyncio.get_running_loop()
        work.outcomes = {task: loop.create_future() for task in cam.tasks}
        self._last_frame[cam.name] = work.frame_id
        self._scene_outcomes[cam.name] = work.outcomes
        if remember is not None:
            self._scenes.remember(cam.name, remember)
        options = JobOptions(prompt=cam.prompt, meter=cam.meter, camera=cam.name)
        work.open_tasks = len(cam.tasks)
        for task in cam.tasks:
            work.ticket.hold()
            self.workers[task].submit(
                Job(cam.name, task, work.image, options, self._job_done, work)
            )
        work.ticket.release()

    async def _answer_unchanged(self, work: FrameWork) -> None:
        """Answer a frame of the scene last analysed with that analysis, at no model time.

        Waits for the analysis when it is still running.  Its result comes again under this
        frame's id, marked ``unchanged``; an error comes again as an error; if that analysis was
        superseded, so is this frame.
        """
        name = work.camera.name
        outcomes = self._scene_outcomes.get(name, {})
        work.open_tasks = len(work.camera.tasks)
        try:
            for task in work.camera.tasks:
                future = outcomes.get(task)
                kind, payload = await future if future is not None else ("cancelled", None)
                if kind == "result" and payload is not None:
                    await self._publish_result(
                        work,
                        task,
                        EngineOutput(
                            text=str(payload.get("text", "")),
                            extra={
                                k: v for k, v in payload.items() if k not in RESULT_FRAME_FIELDS
                            },
                        ),
                        unchanged_from=str(payload.get("frame_id", "")),
                    )
                    self.counters[name].duplicates += 1
                    self._count(work, "results")
                elif kind == "error" and payload is not None:
                    await self._publish_error(
                        work,
                        str(payload.get("error", "model_failed")),
                        str(payload.get("detail", "")),
                        task=task,
                        model=payload.get("model"),
                    )
                    self._count(work, "errors")
                elif kind == "superseded":
                    self._count(work, "superseded")
                else:  # the analysis was handed back (stopping, or not published): so is this
                    work.ticket.cancelled = True
                    self._count(work, "superseded")
        except BridgeError as err:
            _LOGGER.error("could not publish for %s: %s", name, err)  # noqa: TRY400
            work.ticket.cancelled = True
        finally:
            work.ticket.release()

    async def _job_done(self, job: Job, outcome: Outcome) -> None:
        work = job.context
        assert isinstance(work, FrameWork)
        scene: SceneOutcome = ("cancelled", None)
        ending = "superseded"
        try:
            if outcome is Ended.CANCELLED:
                work.ticket.cancelled = True
            elif outcome is Ended.SUPERSEDED:
                scene = ("superseded", None)
            elif isinstance(outcome, ModelError):
                ending = "errors"
                scene = (
                    "error",
                    await self._publish_error(
                        work,
                        outcome.code,
                        outcome.detail,
                        task=job.task,
                        model=outcome.model or None,
                        extra=getattr(outcome, "extra", None),
                    ),
                )
            elif isinstance(outcome, EngineOutput):
                ending = "results"
                scene = ("result", await self._publish_result(work, job.task, outcome))
        except BridgeError as err:
            # Not published: leave the frame unacknowledged so the broker hands it over again.
            _LOGGER.error("could not publish for %s: %s", work.camera.name, err)  # noqa: TRY400
            work.ticket.cancelled = True
            scene, ending = ("cancelled", None), "superseded"
        finally:
            future = work.outcomes.get(job.task)
            if future is not None and not future.done():
                future.set_result(scene)
            self._count(work, ending)  # requests are not counted (see _count)
            work.ticket.release()

    # publishing

    async def _publish_result(
        self, work: FrameWork, task: str, output: EngineOutput, unchanged_from: str | None = None
    ) -> dict[str, Any]:
        """Publish a result (and the analysed frame); returns the result as published.

        ``unchanged_from``: the frame whose analysis this repeats (the same scene again); the
        result says so and no new image is published for it.
        """
        assert self.transport is not None
        worker = self.workers[task]
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
            model=worker.label,
            latency_ms=latency_ms,
            captured_at=work.captured_at,
            extra=extra,
            request_id=work.request.id if work.request else None,
        )
        if work.request is not None:
            await self.transport.publish(work.request.reply_to, encode(payload))
            return payload
        publishes = [
            self.transport.publish(
                self.topics.result(work.camera.name, task), encode(payload), retain=True
            )
        ]
        if self.config.frames.publish_image and work.image is not None and unchanged_from is None:
            if work.preview is None:
                work.preview = asyncio.ensure_future(
                    asyncio.to_thread(preview_of, work.data, work.image)
                )
            jpeg = await work.preview
            publishes.append(
                self.transport.publish(self.topics.image(work.camera.name, task), jpeg, retain=True)
            )
        await asyncio.gather(*publishes)
        self.counters[work.camera.name].latency_ms = round(latency_ms, 1)
        self._stats_dirty.set()
        _LOGGER.info(
            "%s %s: %s (%.0f ms%s)",
            work.camera.name,
            task,
            output.text[:80],
            latency_ms,
            ", unchanged scene" if unchanged_from is not None else "",
        )
        return payload

    async def _publish_error(
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
        assert self.transport is not None
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
            await self.transport.publish(work.request.reply_to, encode(payload))
            return payload
        # The camera's latest news is now an error: its next good frame is analysed even if it
        # shows the scene last analysed (garbage, then the same snapshot again, gets a result).
        self._forget_scene(work.camera.name)
        await self.transport.publish(self.topics.error(work.camera.name), encode(payload))
        return payload

    def _forget_scene(self, camera: str) -> None:
        """Deduplicate the camera's next frame against nothing."""
        self._scenes.forget(camera)
        self._last_frame.pop(camera, None)
        self._scene_outcomes.pop(camera, None)

    # on-demand requests

    async def _handle_request(self, message: IncomingMessage, ticket: AckTicket) -> None:
        assert self.transport is not None
        try:
            request = parse_request(message.payload)
        except FrameError as err:
            _LOGGER.warning("ignored a request on %s: %s", message.topic, err.detail)
            ticket.release()
            return
        cam = self.config.cameras.get(request.camera) or CameraConfig(
            name=request.camera, topic="", tasks=(request.task,)
        )
        work = FrameWork(cam, "", time.monotonic(), now_iso(), ticket, request=request)
        worker = self.workers.get(request.task)
        if worker is None:
            detail = (
                f"this bridge has no model for {request.task!r} "
                f"(configured: {', '.join(self.workers) or 'none'})"
            )
            await self._publish_error(work, "unknown_task", detail, task=request.task)
            ticket.release()
            return
        try:
            if request.image is not None:
                data = request.image
            else:
                data = await self._image_bytes(encode({"url": request.url or ""}))
            work.frame_id = frame_id_of(data)
            work.data = data
            work.image = await self._decode(data, (request.task,))
        except FrameError as err:
            await self._publish_error(work, err.code, err.detail, task=request.task)
            ticket.release()
            return
        prompt = request.prompt or cam.prompt
        options = JobOptions(prompt=prompt, meter=cam.meter, camera=cam.name)
        ticket.hold()
        worker.submit(
            Job(f"request:{request.id}", request.task, work.image, options, self._job_done, work)
        )
        ticket.release()


class _BrokenEngine(Engine):
    """Stands in for an engine that could not even be created, so its task reports why."""

    def __init__(self, config: Any, error: ModelError) -> None:
        super().__init__(config)
        self.error = error

    def load(self) -> None:
        raise self.error

    def run_batch(
        self, images: list[Image.Image], options: list[JobOptions]
    ) -> list[EngineOutput | ModelError]:
        return [self.error for _ in images]

"""The running bridge: wires the stages of a frame's path and runs them.

The stages, in the order a frame travels: ``intake`` (payload -> frame, limits, URL fetch),
``scenes`` (deduplication, "unchanged" answers), ``dispatch`` over ``scheduler`` (newest frame
per camera, batches), ``engines``, ``publishing`` (results, errors, images, info, counters);
``requests`` beside them.  ``pipeline.FramePath`` is the path itself; ``routing.Router`` sends
each message to it, to requests, to enrolment commands (``faces/commands.py``) or to the
bridge's own handlers.  This is the one boundary where ``BridgeError``s become error events.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from bridge.config import BridgeConfig
from bridge.dispatch import Dispatch
from bridge.engines.base import Engine
from bridge.faces.commands import Enrolment
from bridge.intake import Intake
from bridge.pipeline import FramePath
from bridge.presence import Presence
from bridge.protocol import STATE_ONLINE, Topics
from bridge.publishing import Publisher
from bridge.reload import Reload, plan_reload
from bridge.requests import Requests
from bridge.routing import Route, Router
from bridge.scenes import Scenes
from bridge.scheduler import ModelWorker
from bridge.status_server import StatusServer
from bridge.transport import IncomingMessage, MqttTransport
from bridge.work import Accounts, AckTicket

_LOGGER = logging.getLogger(__name__)


class BridgeService:
    """The bridge process's core; ``start`` serves until ``stop`` is called."""

    def __init__(
        self,
        config: BridgeConfig,
        *,
        engines: dict[str, Engine] | None = None,
        protocol: int = 5,
        keep_meter_state: bool = True,
    ) -> None:
        self.config = config
        self.protocol = protocol
        self.topics = Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix)
        self.router = Router(self.topics, config.cameras, faces="faces" in config.models)
        self.accounts = Accounts(dict(config.cameras))
        self.workers: dict[str, ModelWorker] = {}
        self.publisher = Publisher(config, self.topics, self.accounts, self.workers)
        self.intake = Intake(config.frames, self.workers)
        self.scenes = Scenes(self.accounts, self.publisher)
        self.publisher.on_camera_error = self.scenes.forget
        self.dispatch = Dispatch(
            config,
            self.accounts,
            self.publisher,
            self.workers,
            engines=engines,
            keep_meter_state=keep_meter_state,
        )
        self.frames = FramePath(
            self.accounts, self.intake, self.scenes, self.dispatch, self.publisher
        )
        self.requests = Requests(config, self.intake, self.dispatch, self.publisher)
        self.enrolment = Enrolment(self.workers, config.frames.max_bytes, config.bridge_id)
        self.transport: MqttTransport | None = None
        self.group = self.publisher.group
        self.group.on_remote = self._learn
        #: The single-bridge state topic's own connection (only without ``mqtt.share``).
        self.presence: Presence | None = None
        if config.mqtt.share is None:
            self.presence = Presence(config.mqtt, self.topics.state, protocol)
        #: ``/healthz``, ``/metrics`` and the status page, when ``http.port`` is set.
        self.status_server: StatusServer | None = None
        self.ready = asyncio.Event()
        self._connections = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # lifecycle

    async def start(self, connect_wait: float | None = 10.0) -> None:
        """Start loading models, connect, subscribe; returns once connected (or timed out)."""
        for worker in self.dispatch.start():
            self._background.add(asyncio.create_task(self.publisher.info_when_loaded(worker)))
        if self.config.http.port is not None:
            self.status_server = StatusServer(self)
            await self.status_server.start()
        self.intake.http = aiohttp.ClientSession()
        self.transport = MqttTransport(
            self.config.mqtt,
            subscriptions=self.router.subscriptions_for(self.config.mqtt.share),
            on_message=self._on_message,
            on_connected=self._on_connected,
            protocol=self.protocol,
            will_topic=self.topics.bridge_state(self.config.bridge_id),
            always_retained=self.group.subscriptions,
        )
        self.publisher.transport = self.transport
        if self.presence is not None:
            self.presence.start()
        await self.transport.start(wait=connect_wait)
        self._background.add(asyncio.create_task(self.publisher.counters_loop()))
        self.ready.set()

    async def stop(self) -> None:
        """Stop taking frames, let running model calls finish, publish ``offline``, disconnect.

        Frames still waiting are not acknowledged, so the broker delivers them again to the
        persistent session when the bridge comes back.
        """
        self._stopping = True
        for task in self._background:  # housekeeping loops: nothing of theirs to finish
            task.cancel()
        await self.dispatch.stop()
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=3)
        for task in self._tasks:
            task.cancel()
        self.publisher.info()  # the final counters, so every frame handled is accounted for
        if self.presence is not None:
            await self.presence.stop()
        if self.transport is not None:
            await self.transport.stop()
        if self.intake.http is not None:
            await self.intake.http.close()
        if self.status_server is not None:
            await self.status_server.stop()

    def reload(self, new: BridgeConfig) -> Reload:
        """Run ``new``'s cameras from now on (SIGHUP).

        Raises ``ConfigError`` and changes nothing when they cannot be.  Frames on their way
        finish under the settings they arrived with.
        """
        plan = plan_reload(self.config, new)
        self.config = plan.config
        self.publisher.config = self.dispatch.config = self.requests.config = plan.config
        self.accounts.reconfigure(dict(plan.config.cameras))
        for camera in (*plan.changed, *plan.removed):
            self.scenes.forget(camera)  # the next frame is analysed under the new settings
        self.router = Router(self.topics, plan.config.cameras, faces="faces" in plan.config.models)
        self.group.follow(plan.config)  # an added camera's results: its group state, at once
        if self.transport is not None:
            self.transport.resubscribe(
                self.router.subscriptions_for(plan.config.mqtt.share), self.group.subscriptions
            )
            if self.transport.connected.is_set():
                self.publisher.info()
                self.publisher.discovery()
        return plan

    def info_payload(self) -> dict[str, Any]:
        """The bridge info as published now: cameras, model states, counters."""
        return self.publisher.info_payload()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # the broker

    def _on_connected(self) -> None:
        assert self.transport is not None
        self._connections += 1
        if self._connections > 1:
            # A broker that restarted without persistence lost the retained results: the next
            # frame of every camera is analysed again, whatever it shows, to restore them.
            for camera in self.config.cameras:
                self.scenes.forget(camera)
        self.group.connected(self.transport.resumed)
        # After subscribing: coming back through the broker, it marks the end of any backlog.
        self.transport.publish(self.transport.will_topic, STATE_ONLINE, retain=True)
        if self.presence is not None:
            self.presence.online()
        self.publisher.info()
        self.publisher.discovery()

    def _on_message(self, message: IncomingMessage) -> None:
        """Route one message; it is acknowledged once everything it started has ended."""
        transport = self.transport
        assert transport is not None
        if self.group.take(message.topic, message.payload, message.retain):
            transport.ack(message)  # the group's retained state: learnt at once
            return
        if self._stopping:
            return  # not acknowledged: the broker keeps it for the next run
        receipt = message.receipt()  # the ticket keeps no frame's bytes alive
        ticket = AckTicket(lambda: transport.ack(receipt))
        for routed in self.router.route(message.topic):
            if routed.route is Route.FRAME and routed.camera is not None:
                ticket.hold()
                seq = self.frames.arrived(routed.camera)
                late = not self.group.caught_up.is_set()
                self._spawn(
                    self.frames.handle(routed.camera, message.payload, ticket, seq, late=late)
                )
            elif routed.route is Route.REQUEST:
                ticket.hold()
                self._spawn(self.requests.handle(message.topic, message.payload, ticket))
            elif routed.route is Route.FACES and routed.action is not None:
                # Acknowledged at once: a command delivered again would enrol twice.
                self._spawn(
                    self.enrolment.handle(routed.action, message.payload, transport.publish)
                )
            elif routed.route is Route.METER_SET:
                self._set_meter(message, routed.camera)
            elif routed.route is Route.HA_STATUS and message.payload == b"online":
                self.publisher.discovery()
        ticket.release()

    def _learn(self, camera: str, task: str, result: dict[str, Any]) -> None:
        """Another bridge published the camera's newest result: its scene and meter value."""
        self.scenes.adopt(camera, task, result)
        value = result.get("value")
        if task == "meter" and isinstance(value, int | float) and not isinstance(value, bool):
            self.dispatch.set_meter(camera, float(value))

    def _set_meter(self, message: IncomingMessage, camera: str | None) -> None:
        try:
            value = float(message.payload.decode())
        except (UnicodeDecodeError, ValueError):
            _LOGGER.warning("ignored %s: %r is not a number", message.topic, message.payload[:40])
            return
        if camera not in self.config.cameras or not self.dispatch.set_meter(camera, value):
            _LOGGER.warning("ignored %s: %s is not a meter camera", message.topic, camera)
            return
        _LOGGER.info("meter %s set by hand to %s", camera, value)

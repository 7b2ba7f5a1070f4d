"""The bridge's one MQTT session (paho-mqtt 2.x), seen from asyncio.

Why paho and not an asyncio-native client: a frame must be acknowledged to the broker only after
its result is published, so that a frame survives a bridge crash (redelivered to the persistent
session).  paho 2.x's ``manual_ack`` does that; aiomqtt acknowledges on receipt.  paho runs its
network loop in its own thread, which also keeps MQTT keep-alives flowing while the event loop is
busy.  Every paho callback is handed to the event loop with ``call_soon_threadsafe``; nothing
here takes a lock shared with paho (paho calls ``on_publish`` while holding its own mutex).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from bridge.config import MqttConfig
from bridge.errors import TransportError
from bridge.protocol import STATE_OFFLINE, Topics

_LOGGER = logging.getLogger(__name__)
AUTH_FAILURES = frozenset({4, 5, 134, 135})  # 3.1.1 bad credentials / not authorised, MQTT 5 same


def secure(client: mqtt.Client, cfg: MqttConfig) -> None:
    """Credentials and TLS from the configuration, for each of the bridge's connections."""
    if cfg.username is not None:
        client.username_pw_set(cfg.username, cfg.secret)
    if cfg.tls is not None:
        client.tls_set(
            ca_certs=cfg.tls.ca_certs,
            certfile=cfg.tls.certfile,
            keyfile=cfg.tls.keyfile,
            cert_reqs=ssl.CERT_NONE if cfg.tls.insecure else ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(cfg.tls.insecure)


@dataclass(frozen=True)
class IncomingMessage:
    """One received message; ``mid`` is what ``ack`` needs once it has been dealt with."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    #: Which broker session delivered it: a packet id means nothing in a later, new session.
    session: int = 0

    def receipt(self) -> IncomingMessage:
        """The message without its payload: what acknowledging it later needs.

        A frame is acknowledged only once its result has been acknowledged in turn, which can
        take seconds while a burst of frames queues ahead of that PUBACK on the socket.
        """
        return replace(self, payload=b"")


class MqttTransport:
    """Connects, reconnects with capped backoff, publishes with broker acks, acks frames late."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        subscriptions: Iterable[str],
        on_message: Callable[[IncomingMessage], None],
        on_connected: Callable[[], None],
        protocol: int = 5,
        will_topic: str | None = None,
        always_retained: Iterable[str] = (),
    ) -> None:
        self.config = config
        self.topics = Topics(config.base_topic, config.discovery_prefix)
        self.will_topic = will_topic or self.topics.state
        self.subscriptions = sorted(set(subscriptions))
        #: Filters whose retained messages are wanted on every connect (the group's state).
        self.always_retained = sorted(set(always_retained))
        #: Whether the current connection resumed the broker session (it may hold a backlog).
        self.resumed = False
        self.on_message = on_message
        self.on_connected = on_connected
        self.protocol = protocol
        self.connected = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._early: set[int] = set()
        #: Counts broker sessions; a connect that did not resume the session starts a new one.
        #: Written in paho's thread before that connection's first message is handed over.
        self._session = 0
        self._first_connect: asyncio.Future[None] = self._loop.create_future()
        self._was_connected = False
        self._last_failure = ""
        self._stopping = False
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        cfg = self.config
        v5 = self.protocol == 5
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        client.will_set(self.will_topic, STATE_OFFLINE, qos=1, retain=True)
        secure(client, cfg)
        client.reconnect_delay_set(min_delay=1, max_delay=max(1, round(cfg.reconnect_max_delay)))
        client.max_queued_messages_set(cfg.outbox_limit)
        client.max_inflight_messages_set(50)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    async def start(self, wait: float | None = None) -> None:
        """Start connecting (in paho's thread); with ``wait``, fail if refused or not up in time.

        A broker that is down is retried forever; bad credentials are reported at once, since
        retrying them cannot help.
        """
        cfg = self.config
        properties = None
        if self.protocol == 5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = cfg.session_expiry
        kwargs: dict[str, Any] = {"keepalive": cfg.keepalive}
        if self.protocol == 5:
            # Clean start off on every connect: a restarted bridge resumes its session and gets
            # the frames the broker kept for it, including those it never acknowledged.
            kwargs.update(clean_start=False, properties=properties)
        try:
            self.client.connect_async(cfg.host, cfg.port, **kwargs)
        except (OSError, ValueError) as err:
            raise TransportError(f"cannot connect to {cfg.host}:{cfg.port}: {err}") from err
        self.client.loop_start()
        if wait is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._first_connect), wait)
            except TimeoutError:
                _LOGGER.warning(
                    "broker %s:%s not reachable yet; retrying in the background", cfg.host, cfg.port
                )

    async def stop(self, final_state: bytes | None = STATE_OFFLINE.encode()) -> None:
        """Publish the final state (``offline``), then disconnect cleanly."""
        self._stopping = True
        if final_state is not None and self.client.is_connected():
            try:
                await asyncio.wait_for(self.publish(self.will_topic, final_state, retain=True), 3)
            except (TimeoutError, TransportError):
                _LOGGER.warning("could not publish %s before disconnecting", final_state)
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)
        for future in self._pending.values():
            if not future.done():
                future.cancel()

    def publish(
        self, topic: str, payload: bytes | str, *, retain: bool = False, qos: int = 1
    ) -> asyncio.Future[None]:
        """Publish; the future completes when the broker has acknowledged it (QoS 1).

        While disconnected, paho keeps the message in its bounded outbox and sends it after
        reconnecting; the future then completes at that point.
        """
        future: asyncio.Future[None] = self._loop.create_future()
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            future.set_exception(
                TransportError(f"outbox full ({self.config.outbox_limit}); dropped {topic}")
            )
        elif qos == 0 or info.mid in self._early:
            self._early.discard(info.mid)
            future.set_result(None)
        else:
            self._pending[info.mid] = future
        return future

    def ack(self, message: IncomingMessage) -> None:
        """Acknowledge a received QoS 1 frame: the broker may now forget it.

        Not when the broker has started a new session since (it restarted without persistence):
        the old packet id may by now name a newer frame, which must not be acknowledged early.
        """
        if message.qos > 0 and message.session == self._session:
            self.client.ack(message.mid, message.qos)

    def _subscribe(self, topics: list[str], always: list[str] | None = None) -> None:
        if wanted := subscription_options(self.protocol, topics, always or []):
            self.client.subscribe(wanted)

    def resubscribe(self, subscriptions: Iterable[str], always_retained: Iterable[str]) -> None:
        """A reload's topic filters: new ones on, dropped ones off (or at the next connect).

        A new ``always_retained`` filter (an added camera's results) brings its retained
        message at once, so the group's state of that camera is known before its first frame.
        """
        subs, always = set(subscriptions), set(always_retained)
        old, old_always = set(self.subscriptions), set(self.always_retained)
        self.subscriptions, self.always_retained = sorted(subs), sorted(always)
        if self.client.is_connected():
            if dropped := sorted((old | old_always) - (subs | always)):
                self.client.unsubscribe(dropped)
            self._subscribe(sorted(subs - old), sorted(always - old_always))

    # paho callbacks: they run in paho's network thread and only hand over to the event loop.

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self._loop.call_soon_threadsafe(self._refused, reason)
            return
        self._subscribe(self.subscriptions, self.always_retained)
        if not flags.session_present:
            self._session += 1
        self._loop.call_soon_threadsafe(self._connected, bool(flags.session_present))

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._loop.call_soon_threadsafe(self._disconnected, str(reason))

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` block: the exception is the reason.
        error = sys.exc_info()[1]
        self._loop.call_soon_threadsafe(self._connect_failed, error)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        message = IncomingMessage(
            msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), msg.mid, self._session
        )
        self._loop.call_soon_threadsafe(self.on_message, message)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        self._loop.call_soon_threadsafe(self._published, mid)

    # event-loop side

    def _connected(self, session_present: bool) -> None:
        cfg = self.config
        if self._was_connected:
            _LOGGER.info("reconnected to %s:%s", cfg.host, cfg.port)
        else:
            _LOGGER.info(
                "connected to %s:%s (session %s)",
                cfg.host,
                cfg.port,
                "resumed" if session_present else "new",
            )
        self._was_connected = True
        self.resumed = session_present
        self._last_failure = ""
        self.connected.set()
        if not self._first_connect.done():
            self._first_connect.set_result(None)
        self.on_connected()

    def _refused(self, reason: Any) -> None:
        cfg = self.config
        message = f"broker {cfg.host}:{cfg.port} refused the connection: {reason}"
        if getattr(reason, "value", reason) in AUTH_FAILURES:
            message += "; check mqtt.username and mqtt.password"
        _LOGGER.error(message)
        if not self._first_connect.done():
            self._first_connect.set_exception(TransportError(message))

    def _connect_failed(self, error: BaseException | None) -> None:
        """A connection attempt failed before MQTT started: broker down, TLS refused...

        Logged when the reason changes (not on every retry).  A certificate the bridge cannot
        verify is fatal on the first connect, like bad credentials: retrying cannot fix it.
        """
        cfg = self.config
        message = f"cannot connect to {cfg.host}:{cfg.port}: {error or 'connection failed'}"
        if isinstance(error, ssl.SSLError):
            message += "; check mqtt.tls (ca_certs, certfile, keyfile) and the broker's certificate"
        if message != self._last_failure:
            self._last_failure = message
            _LOGGER.warning("%s; retrying", message)
        if isinstance(error, ssl.SSLError) and not self._first_connect.done():
            self._first_connect.set_exception(TransportError(message))

    def _disconnected(self, reason: str) -> None:
        if self.connected.is_set() and not self._stopping:
            _LOGGER.warning("disconnected from the broker (%s); reconnecting", reason)
        self.connected.clear()

    def _published(self, mid: int) -> None:
        future = self._pending.pop(mid, None)
        if future is None:
            self._early.add(mid)
        elif not future.done():
            future.set_result(None)

    async def wait_first_connect(self) -> None:
        """Wait for the first successful connect; raise ``TransportError`` if it was refused."""
        await asyncio.shield(self._first_connect)


def subscription_options(protocol: int, topics: list[str], always: list[str]) -> list[Any]:
    """What to subscribe with; ``always`` topics get their retained messages on every resume."""
    if protocol != 5:
        return [(t, 1) for t in [*topics, *always]]
    # retainHandling=1: retained frames only on a new subscription, not on every resume.
    fresh, every = (SubscribeOptions(qos=1, retainHandling=h) for h in (1, 0))
    return [(t, fresh) for t in topics] + [(t, every) for t in always]

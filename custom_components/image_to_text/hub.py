"""The hub: one per config entry, it listens to one bridge and tells the entities what it heard.

It owns every MQTT subscription of the entry, keeps the latest info, results, images and errors
(so that an entity added later starts from what is known) and fans messages out through dispatcher
signals (see const.py). An invalid payload is logged once, naming its topic, and ignored: one bad
message never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from homeassistant.components import mqtt
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util

from .bridges import BridgeSet
from .const import (
    CONF_BASE_TOPIC,
    EVENT_ERROR,
    EVENT_RESULT,
    camera_identifier,
    signal_availability,
    signal_error,
    signal_image,
    signal_info,
    signal_result,
    signal_state,
)
from .devices import async_update_bridge_devices
from .faces import async_fire_person_events
from .issues import async_update_model_issues, model_failures
from .limits import MAX_EVENT_BYTES, fit
from .migrate import known_bridge_id, rekey
from .protocol import (
    ProtocolError,
    Topics,
    is_camera_name,
    parse_error,
    parse_info,
    parse_result,
    parse_state,
)

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry

    from .announce import Announcer

_LOGGER = logging.getLogger(__name__)

# Levels below the base topic: <camera>/<task> is a result, <camera>/<task>/image a frame.
_RESULT_LEVELS = 2
_IMAGE_LEVELS = 3


@dataclass(slots=True)
class ImageToTextData:
    """What a loaded config entry keeps in ``entry.runtime_data``."""

    hub: ImageToTextHub
    announcer: Announcer


if TYPE_CHECKING:
    # Type-checked against today's core (generic ConfigEntry); 2024.3 never evaluates this.
    ImageToTextConfigEntry = ConfigEntry[ImageToTextData]


@dataclass(frozen=True, slots=True)
class ReceivedImage:
    """The latest analysed frame of one camera and task."""

    jpeg: bytes
    received_at: datetime
    content_type: str = "image/jpeg"


class ImageToTextHub:
    """Subscribes to one site's topics (a bridge, or a group of bridges), keeps what they said."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.base_topic: str = entry.data[CONF_BASE_TOPIC]
        self.topics = Topics(self.base_topic)
        # The id the registry already uses (the site's, as last seen), else the base topic (the
        # protocol's default) until a bridge's info says otherwise.
        self.site_id: str = known_bridge_id(hass, entry) or self.base_topic
        self.bridges = BridgeSet()
        self.cameras: dict[str, dict[str, Any]] = {}
        self.last_result: dict[tuple[str, str], dict[str, Any]] = {}
        self.last_image: dict[tuple[str, str], ReceivedImage] = {}
        self.last_error: dict[str, dict[str, Any]] = {}
        self.ignored_payloads = 0
        self._listed: set[str] = set()  # the cameras when every bridge's info was last known
        self._broker_connected = True
        self._was_online = False
        self._lost_logged = False
        self._members_online: dict[str, bool] = {}
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._listening_since: datetime | None = None
        self._site_id_warned = False

    @property
    def info(self) -> dict[str, Any] | None:
        """A bridge's latest info (an online one's first); None before any bridge sent one."""
        return self.bridges.newest_info()

    @property
    def online(self) -> bool:
        """Some bridge is online: it has published its info and not its last will.

        While Home Assistant has lost the broker nothing can be known, so that counts as offline.
        """
        return self._broker_connected and self.bridges.online

    def serves(self, camera: str, task: str | None = None) -> bool:
        """A bridge that lists this camera (and task) in its info is online."""
        return self._broker_connected and self.bridges.serves(camera, task)

    def offline_reason(self) -> str:
        """Why the bridge counts as offline, in words for a log line or an error."""
        if not self._broker_connected:
            return "Home Assistant lost its MQTT broker"
        bridges = self.bridges.all()
        if bridges and all(bridge.state is False for bridge in bridges):
            return "it published 'offline'" if len(bridges) == 1 else "every bridge is offline"
        if any(bridge.state is False for bridge in bridges):
            return "it published 'offline'"
        return "it has not published its info"

    def tasks(self, camera: str) -> list[str]:
        """The tasks the bridges run for one camera (empty when none knows the camera)."""
        return list(self.cameras.get(camera, {}).get("tasks", []))

    def models(self) -> dict[str, dict[str, Any]]:
        """The models of the site's own bridge by task (a group's members have their own)."""
        return self.bridges.site_models()

    def counters(self, camera: str) -> dict[str, Any]:
        """The counters of one camera, added up over the bridges."""
        return self.bridges.counters(camera)

    def camera_device_id(self, camera: str) -> str | None:
        """The device registry id of a camera's device, if it has been created."""
        device = dr.async_get(self.hass).async_get_device(
            identifiers={camera_identifier(self.site_id, camera)}
        )
        return device.id if device else None

    async def async_start(self) -> None:
        """Subscribe to the bridges' topics; retained states and infos arrive right after."""
        base = self.base_topic
        self._listening_since = dt_util.utcnow()
        handlers: list[tuple[str, Callable[[mqtt.ReceiveMessage], None]]] = [
            (self.topics.state, self._on_state),
            (self.topics.info, self._on_info),
            (self.topics.member_states, self._on_state),
            (self.topics.member_infos, self._on_info),
            (f"{base}/+/+", self._on_result),
            (f"{base}/+/+/image", self._on_image),
        ]
        for topic, handler in handlers:
            self._unsubscribe.append(
                await mqtt.async_subscribe(self.hass, topic, handler, qos=1, encoding=None)
            )
        self._broker_connected = mqtt.is_connected(self.hass)
        self._unsubscribe.append(
            mqtt.async_subscribe_connection_status(self.hass, self._on_broker_connection)
        )

    @callback
    def _on_broker_connection(self, connected: bool) -> None:
        """The broker reconnects: retained state and info are delivered again."""
        self._broker_connected = connected
        self._availability_changed()

    @callback
    def async_stop(self) -> None:
        """Drop every subscription (the entry is unloading)."""
        while self._unsubscribe:
            self._unsubscribe.pop()()

    def _ignore(self, topic: str, err: ProtocolError) -> None:
        self.ignored_payloads += 1
        _LOGGER.warning("Ignoring an invalid payload on %s: %s", topic, err)

    @callback
    def _on_state(self, msg: mqtt.ReceiveMessage) -> None:
        """``<base>/bridge/state`` or ``<base>/bridges/<id>/state``."""
        try:
            state = parse_state(msg.payload)
        except ProtocolError as err:
            self._ignore(msg.topic, err)
            return
        self.bridges.get(self.topics.member_of(msg.topic)).state = state
        self._availability_changed()

    @callback
    def _on_info(self, msg: mqtt.ReceiveMessage) -> None:
        """``<base>/bridge/info`` or ``<base>/bridges/<id>/info``."""
        if not msg.payload:
            return  # the retained info was cleared; the bridge's state says whether it is gone
        try:
            info = parse_info(msg.payload)
        except ProtocolError as err:
            self._ignore(msg.topic, err)
            return
        self.bridges.get(self.topics.member_of(msg.topic)).info = info
        self._adopt_site_id()
        self.cameras = self.bridges.cameras()
        removed: set[str] = set()
        if self.bridges.complete:
            # Only once every bridge has spoken is a camera none of them lists really gone.
            removed = self._listed - set(self.cameras)
            self._listed = set(self.cameras)
        for key in [key for key in self.last_result if key[0] in removed]:
            del self.last_result[key]
        async_update_bridge_devices(self.hass, self.entry.entry_id, self.site_id, self.bridges)
        async_update_model_issues(
            self.hass, self.entry.entry_id, self.base_topic, model_failures(self.bridges)
        )
        async_dispatcher_send(self.hass, signal_info(self.entry.entry_id), info)
        for camera in removed:
            _LOGGER.info(
                "Camera %s left bridge %s: its entities are unavailable; delete its device "
                "if it is gone for good",
                camera,
                self.base_topic,
            )
        self._availability_changed()

    def _adopt_site_id(self) -> None:
        """Take the site id the bridges name; when it differs from the one in use, move the ids.

        The first time a bridge with its own ``bridge.id`` is seen, or after the base topic
        changed (reconfigure) and the default id with it, every unique id and device identifier
        moves to the new id (history and Energy statistics stay). Bridges of a group name one
        site id; while any bridge still names the id in use, nothing moves (no moving back and
        forth). An id another entry already uses is refused with a warning.
        """
        named = self.bridges.site_ids()
        if not named or self.site_id in named:
            if len(named) > 1:
                self._warn_site_id(
                    "bridges on %s name different site ids (%s); keeping %s",
                    ", ".join(sorted(named)),
                )
            return
        site_id = sorted(named)[0]
        if rekey(self.hass, self.entry, self.site_id, site_id):
            _LOGGER.info(
                "Image to text bridge %s has id %s (was %s)",
                self.base_topic,
                site_id,
                self.site_id,
            )
            self.site_id = site_id
        else:
            self._warn_site_id(
                "Image to text bridge %s says its id is %s, which another bridge already has; "
                "give each bridge its own bridge.id. Keeping %s",
                site_id,
            )

    def _warn_site_id(self, message: str, named: str) -> None:
        if not self._site_id_warned:
            self._site_id_warned = True
            _LOGGER.warning(message, self.base_topic, named, self.site_id)

    def _availability_changed(self) -> None:
        """Tell the entities; log the site's loss and recovery once each, and a member's changes."""
        for bridge in self.bridges.all():
            was = self._members_online.get(bridge.name)
            if not bridge.shared or was == bridge.online:
                continue
            self._members_online[bridge.name] = bridge.online
            if was is not None:  # a change, not the first word of a bridge
                _LOGGER.info(
                    "Image to text bridge %s of %s is %s",
                    bridge.name,
                    self.base_topic,
                    "online" if bridge.online else "offline",
                )
        online = self.online
        async_dispatcher_send(self.hass, signal_availability(self.entry.entry_id), online)
        if online == self._was_online:
            return
        if online and self._lost_logged:
            _LOGGER.info("Image to text bridge %s is back online", self.base_topic)
            self._lost_logged = False
        elif not online:
            _LOGGER.warning(
                "Image to text bridge %s is unavailable: %s",
                self.base_topic,
                self.offline_reason(),
            )
            self._lost_logged = True
        self._was_online = online

    @callback
    def _on_result(self, msg: mqtt.ReceiveMessage) -> None:
        levels = self.topics.split(msg.topic)
        if levels is None or len(levels) != _RESULT_LEVELS:
            return
        camera, task = levels
        # Reserved names are the bridge's own topics, ``reply`` the analyze action's replies.
        if not is_camera_name(camera) or camera == "reply" or task in ("request", "set"):
            return
        if task == "error":
            self._handle_error(msg, camera)
            return
        previous = self.last_result.get((camera, task))
        result = self._read_result(msg, camera, task, previous)
        if result is None:
            return
        self.last_result[(camera, task)] = result
        async_dispatcher_send(self.hass, signal_state(self.entry.entry_id), camera, task)
        # A retained result replayed on subscribing restores the sensors; it is not news. Nor
        # is an "unchanged" one: the bridge answered a frame of the same scene with the last
        # analysis, so the sensor shows the newer frame's id and time, but no event fires.
        replayed = msg.retain and not self._is_news(result, previous)
        if replayed or result.get("unchanged") is True:
            return
        async_dispatcher_send(self.hass, signal_result(self.entry.entry_id), result)
        where = {
            "entry_id": self.entry.entry_id,
            "base_topic": self.base_topic,
            "device_id": self.camera_device_id(camera),
        }
        self.hass.bus.async_fire(
            EVENT_RESULT, fit({**result, **where}, MAX_EVENT_BYTES, whole_text=True)
        )
        async_fire_person_events(self.hass, result, where)  # faces results only

    def _read_result(
        self,
        msg: mqtt.ReceiveMessage,
        camera: str,
        task: str,
        previous: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        """The result to show, or None: cleared, invalid (logged), or older than the shown one."""
        if not msg.payload:
            return None  # a retained result was cleared
        try:
            result = parse_result(msg.payload, camera=camera, task=task)
        except ProtocolError as err:
            self._ignore(msg.topic, err)
            return None
        return None if self._steps_back(result, previous) else result

    def _steps_back(self, result: dict[str, Any], previous: dict[str, Any] | None) -> bool:
        """Whether a result would take a sensor back to an older frame (bridges of a group).

        A bridge marks a result it knows is older than one already published ``newest: false``;
        one captured before the result the sensor shows is just as old, whoever sent it.
        """
        where = f"{result['camera']}/{result['task']}"
        if result.get("newest") is False:
            _LOGGER.debug(
                "Ignoring %s from bridge %s: not the newest result (captured at %s)",
                where,
                result.get("bridge_id", self.base_topic),
                result.get("captured_at"),
            )
            return True
        if previous is None:
            return False
        captured_at = _captured_at(result)
        shown = _captured_at(previous)
        if captured_at is None or shown is None or captured_at >= shown:
            return False
        _LOGGER.debug(
            "Ignoring %s from bridge %s: captured at %s, before the shown one (%s)",
            where,
            result.get("bridge_id", self.base_topic),
            result.get("captured_at"),
            previous.get("captured_at"),
        )
        return True

    def _is_news(self, result: dict[str, Any], previous: dict[str, Any] | None) -> bool:
        """Whether a retained result is new rather than replayed.

        A broker replays retained results when Home Assistant subscribes (or resubscribes), and
        those are old news. Some brokers (MQTT 5 "retain as published", bridged brokers) also pass
        the retain flag on with live results: one captured after this hub started listening, and
        not the one already known, is news all the same.
        """
        if previous is not None and (
            previous.get("frame_id"),
            previous.get("captured_at"),
        ) == (result.get("frame_id"), result.get("captured_at")):
            return False
        captured_at = _captured_at(result)
        if captured_at is None or self._listening_since is None:
            return False
        return captured_at >= self._listening_since

    def _handle_error(self, msg: mqtt.ReceiveMessage, camera: str) -> None:
        try:
            error = parse_error(msg.payload)
        except ProtocolError as err:
            self._ignore(msg.topic, err)
            return
        self.last_error[camera] = error
        _LOGGER.debug("Bridge %s reported %s on %s", self.base_topic, error["error"], camera)
        async_dispatcher_send(self.hass, signal_error(self.entry.entry_id), error)
        # For automations: "tell me when the gas meter's reading is held back", say.
        self.hass.bus.async_fire(
            EVENT_ERROR,
            fit(
                {
                    **error,
                    "entry_id": self.entry.entry_id,
                    "base_topic": self.base_topic,
                    "device_id": self.camera_device_id(camera),
                },
                MAX_EVENT_BYTES,
                whole_text=True,
            ),
        )

    @callback
    def _on_image(self, msg: mqtt.ReceiveMessage) -> None:
        levels = self.topics.split(msg.topic)
        if levels is None or len(levels) != _IMAGE_LEVELS or not msg.payload:
            return
        camera, task, _ = levels
        payload = msg.payload
        jpeg = (
            bytes(payload) if isinstance(payload, bytes | bytearray) else payload.encode("latin-1")
        )
        content_type = _image_type(jpeg)
        if content_type is None:
            self._ignore(msg.topic, ProtocolError("neither a JPEG nor a PNG"))
            return
        self.last_image[(camera, task)] = ReceivedImage(jpeg, dt_util.utcnow(), content_type)
        async_dispatcher_send(self.hass, signal_image(self.entry.entry_id), camera, task, jpeg)


def _captured_at(result: dict[str, Any]) -> datetime | None:
    """A result's ``captured_at`` as an aware time (naive is UTC); None when it has none."""
    captured_at = dt_util.parse_datetime(str(result.get("captured_at", "")))
    if captured_at is not None and captured_at.tzinfo is None:
        captured_at = captured_at.replace(tzinfo=dt_util.UTC)
    return captured_at


def _image_type(data: bytes) -> str | None:
    """The content type of an analysed frame: JPEG (what the bridge sends) or PNG."""
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None

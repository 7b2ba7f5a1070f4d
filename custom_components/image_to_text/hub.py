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

from .const import (
    CONF_BASE_TOPIC,
    DOMAIN,
    EVENT_ERROR,
    EVENT_RESULT,
    bridge_identifier,
    camera_identifier,
    signal_availability,
    signal_error,
    signal_image,
    signal_info,
    signal_result,
    signal_state,
)
from .faces import async_fire_person_events
from .issues import async_update_model_issues
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
    """Subscribes to one bridge's topics and keeps what it said."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.base_topic: str = entry.data[CONF_BASE_TOPIC]
        self.topics = Topics(self.base_topic)
        # The id the registry already uses (the bridge's own, as last seen), else the base topic
        # (the protocol's default bridge id) until the bridge's info says otherwise.
        self.bridge_id: str = known_bridge_id(hass, entry) or self.base_topic
        self.info: dict[str, Any] | None = None
        self.cameras: dict[str, dict[str, Any]] = {}
        self.last_result: dict[tuple[str, str], dict[str, Any]] = {}
        self.last_image: dict[tuple[str, str], ReceivedImage] = {}
        self.last_error: dict[str, dict[str, Any]] = {}
        self.ignored_payloads = 0
        self._state: bool | None = None
        self._broker_connected = True
        self._was_online = False
        self._lost_logged = False
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._listening_since: datetime | None = None
        self._bridge_id_warned = False

    @property
    def online(self) -> bool:
        """The bridge is online: it has published its info and not its last will.

        While Home Assistant has lost the broker nothing can be known, so that counts as offline.
        """
        return self._broker_connected and self._state is not False and self.info is not None

    def offline_reason(self) -> str:
        """Why the bridge counts as offline, in words for a log line or an error."""
        if not self._broker_connected:
            return "Home Assistant lost its MQTT broker"
        if self._state is False:
            return "it published 'offline'"
        return "it has not published its info"

    def tasks(self, camera: str) -> list[str]:
        """The tasks the bridge runs for one camera (empty when it does not know the camera)."""
        return list(self.cameras.get(camera, {}).get("tasks", []))

    def models(self) -> dict[str, dict[str, Any]]:
        """The bridge's models by task, from its info: engine, model, status and error."""
        models = (self.info or {}).get("models")
        if not isinstance(models, dict):
            return {}
        return {task: model for task, model in models.items() if isinstance(model, dict)}

    def counters(self, camera: str) -> dict[str, Any]:
        """The bridge's counters of one camera, from its info."""
        counters = (self.info or {}).get("counters", {})
        value = counters.get(camera, {})
        return value if isinstance(value, dict) else {}

    def camera_device_id(self, camera: str) -> str | None:
        """The device registry id of a camera's device, if it has been created."""
        device = dr.async_get(self.hass).async_get_device(
            identifiers={camera_identifier(self.bridge_id, camera)}
        )
        return device.id if device else None

    async def async_start(self) -> None:
        """Subscribe to the bridge's topics; retained state and info arrive right after."""
        base = self.base_topic
        self._listening_since = dt_util.utcnow()
        handlers: list[tuple[str, Callable[[mqtt.ReceiveMessage], None]]] = [
            (self.topics.state, self._on_state),
            (self.topics.info, self._on_info),
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
        try:
            self._state = parse_state(msg.payload)
        except ProtocolError as err:
            self._ignore(msg.topic, err)
            return
        self._availability_changed()

    @callback
    def _on_info(self, msg: mqtt.ReceiveMessage) -> None:
        if not msg.payload:
            return  # the retained info was cleared; the bridge's state says whether it is gone
        try:
            info = parse_info(msg.payload)
        except ProtocolError as err:
            self._ignore(msg.topic, err)
            return
        self._adopt_bridge_id(info)
        removed = set(self.cameras) - set(info["cameras"])
        self.info = info
        self.cameras = info["cameras"]
        for key in [key for key in self.last_result if key[0] in removed]:
            del self.last_result[key]
        self._update_bridge_device(info)
        async_update_model_issues(self.hass, self.entry.entry_id, self.base_topic, self.models())
        async_dispatcher_send(self.hass, signal_info(self.entry.entry_id), info)
        for camera in removed:
            _LOGGER.info(
                "Camera %s left bridge %s: its entities are unavailable; delete its device "
                "if it is gone for good",
                camera,
                self.base_topic,
            )
        self._availability_changed()

    def _adopt_bridge_id(self, info: dict[str, Any]) -> None:
        """Take the bridge's ``bridge_id``; when it differs from the one in use, move the ids.

        The first time a bridge with its own ``bridge.id`` is seen, or after the base topic
        changed (reconfigure) and the default id with it, every unique id and device identifier
        moves to the new id (history and Energy statistics stay). An id another entry already
        uses is refused with a warning: two bridges must not share one.
        """
        bridge_id = info.get("bridge_id")
        if not isinstance(bridge_id, str) or not bridge_id or bridge_id == self.bridge_id:
            return
        if rekey(self.hass, self.entry, self.bridge_id, bridge_id):
            _LOGGER.info(
                "Image to text bridge %s has id %s (was %s)",
                self.base_topic,
                bridge_id,
                self.bridge_id,
            )
            self.bridge_id = bridge_id
        elif not self._bridge_id_warned:
            self._bridge_id_warned = True
            _LOGGER.warning(
                "Image to text bridge %s says its id is %s, which another bridge already has; "
                "give each bridge its own bridge.id. Keeping %s",
                self.base_topic,
                bridge_id,
                self.bridge_id,
            )

    def _update_bridge_device(self, info: dict[str, Any]) -> None:
        registry = dr.async_get(self.hass)
        device = registry.async_get_device(identifiers={bridge_identifier(self.bridge_id)})
        version = info.get("version")
        if device is not None and isinstance(version, str) and device.sw_version != version:
            registry.async_update_device(device.id, sw_version=version)

    def _availability_changed(self) -> None:
        online = self.online
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
        async_dispatcher_send(self.hass, signal_availability(self.entry.entry_id), online)

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
        if not msg.payload:
            return  # a retained result was cleared
        try:
            result = parse_result(msg.payload, camera=camera, task=task)
        except ProtocolError as err:
            self._ignore(msg.topic, err)
            return
        previous = self.last_result.get((camera, task))
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
        captured_at = dt_util.parse_datetime(str(result.get("captured_at", "")))
        if captured_at is None or self._listening_since is None:
            return False
        if captured_at.tzinfo is None:
            captured_at = captured_at.replace(tzinfo=dt_util.UTC)
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


def _image_type(data: bytes) -> str | None:
    """The content type of an analysed frame: JPEG (what the bridge sends) or PNG."""
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    return None


def bridge_device_info(base_topic: str, bridge_id: str) -> dict[str, Any]:
    """Keyword arguments for the bridge device in the device registry."""
    return {
        "identifiers": {bridge_identifier(bridge_id)},
        "name": f"Image to text bridge ({base_topic})"
        if base_topic != DOMAIN
        else "Image to text bridge",
        "manufacturer": "image-to-text",
        "model": "MQTT bridge",
    }

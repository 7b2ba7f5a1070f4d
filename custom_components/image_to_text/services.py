"""Actions of the integration: ask the bridge about one picture, and set a meter by hand.

The actions are registered once, in the integration's ``async_setup`` (not per config entry), so
that automations using them validate even while no entry is loaded; each call then picks its
entry by ``config_entry_id`` (optional while exactly one bridge is set up).

``image_to_text.analyze`` speaks the request/reply half of the protocol (docs/protocol.md,
"Request"): subscribe to a private ``reply_to`` topic first, then publish the request, so a fast
bridge can never answer before anyone listens.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import uuid
from typing import Any

import voluptuous as vol
from homeassistant.components import camera, mqtt
from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr

from .ask import async_ask_bridge, ensure_online
from .const import CONF_BASE_TOPIC, DOMAIN, TASKS
from .face_services import async_setup_face_services
from .protocol import ProtocolError, is_camera_name, parse_error, parse_result

_LOGGER = logging.getLogger(__name__)

SERVICE_ANALYZE = "analyze"
SERVICE_SET_METER = "set_meter"

ATTR_CONFIG_ENTRY_ID = "config_entry_id"
ATTR_CAMERA_ENTITY = "camera_entity"
ATTR_IMAGE = "image"
ATTR_URL = "url"
ATTR_TASK = "task"
ATTR_PROMPT = "prompt"
ATTR_CAMERA = "camera"
ATTR_TIMEOUT = "timeout"
ATTR_VALUE = "value"

DEFAULT_TIMEOUT = 30.0
_DATA_URL_PREFIX = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,")


def _bridge_camera(value: Any) -> str:
    """A camera's device (the form's device selector) or its name by the protocol's one rule.

    A device id is also a valid camera name; which one it is is decided at call time
    (``_camera_name``), against the device registry.
    """
    text = str(cv.string(value))
    if not is_camera_name(text):
        raise vol.Invalid(
            "a bridge camera name is one MQTT topic level of 1 to 64 characters "
            "(no '/', '+', '#', spaces or control characters) and not a reserved name"
        )
    return text


ANALYZE_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
            vol.Exclusive(ATTR_CAMERA_ENTITY, "source"): cv.entity_domain("camera"),
            vol.Exclusive(ATTR_IMAGE, "source"): cv.string,
            vol.Exclusive(ATTR_URL, "source"): cv.url,
            vol.Optional(ATTR_TASK, default="caption"): vol.In(TASKS),
            vol.Optional(ATTR_PROMPT): cv.string,
            vol.Optional(ATTR_CAMERA): _bridge_camera,
            vol.Optional(ATTR_TIMEOUT, default=DEFAULT_TIMEOUT): vol.All(
                # the form offers 1 to 300 s; scripts (and tests) may ask for less
                vol.Coerce(float),
                vol.Range(min=0, min_included=False, max=300),
            ),
        }
    ),
    cv.has_at_least_one_key(ATTR_CAMERA_ENTITY, ATTR_IMAGE, ATTR_URL),
)

SET_METER_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_CAMERA): _bridge_camera,
        vol.Required(ATTR_VALUE): vol.All(vol.Coerce(float), vol.Range(min=0)),
    }
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions (once, from ``async_setup``)."""
    if hass.services.has_service(DOMAIN, SERVICE_ANALYZE):
        return

    async def _analyze(call: ServiceCall) -> ServiceResponse:
        return await async_analyze(hass, call)

    async def _set_meter(call: ServiceCall) -> None:
        await async_set_meter(hass, call)

    hass.services.async_register(
        DOMAIN,
        SERVICE_ANALYZE,
        _analyze,
        schema=ANALYZE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(DOMAIN, SERVICE_SET_METER, _set_meter, schema=SET_METER_SCHEMA)
    async_setup_face_services(hass)  # faces_add, faces_list, faces_remove, faces_rename


def _resolve_entry(hass: HomeAssistant, call: ServiceCall) -> ConfigEntry:
    """The loaded config entry a call is meant for, or a validation error naming the problem."""
    entry_id: str | None = call.data.get(ATTR_CONFIG_ENTRY_ID)
    if entry_id:
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN:
            raise ServiceValidationError(
                f"No Image to text bridge with config entry id {entry_id}",
                translation_domain=DOMAIN,
                translation_key="entry_not_found",
                translation_placeholders={"entry_id": entry_id},
            )
    else:
        entries = [
            entry
            for entry in hass.config_entries.async_entries(DOMAIN)
            if entry.state is ConfigEntryState.LOADED
        ]
        if len(entries) != 1:
            raise ServiceValidationError(
                "Name the bridge with config_entry_id: "
                f"{len(entries)} Image to text bridges are loaded",
                translation_domain=DOMAIN,
                translation_key="entry_ambiguous",
                translation_placeholders={"count": str(len(entries))},
            )
        entry = entries[0]
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            f"The Image to text bridge {entry.title} is not loaded",
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"title": entry.title},
        )
    return entry


def _base_topic(entry: ConfigEntry) -> str:
    """The bridge's base topic, as the config entry stores it."""
    return str(entry.data[CONF_BASE_TOPIC])


def _checked_base64(text: str) -> str:
    """The base64 of an ``image`` field, data-URL prefix removed; invalid base64 is refused here.

    Refusing it before publishing saves a round trip and gives the user the error at once.
    """
    payload = _DATA_URL_PREFIX.sub("", text.strip())
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ServiceValidationError(
            "The image field is not base64",
            translation_domain=DOMAIN,
            translation_key="invalid_image",
        ) from err
    if not raw:
        raise ServiceValidationError(
            "The image field is empty",
            translation_domain=DOMAIN,
            translation_key="invalid_image",
        )
    return payload


async def _snapshot(hass: HomeAssistant, entity_id: str) -> str:
    """A snapshot of a camera entity, base64-encoded, taken through HA's camera component."""
    try:
        image = await camera.async_get_image(hass, entity_id)
    except HomeAssistantError as err:
        raise HomeAssistantError(
            f"Could not take a snapshot from {entity_id}: {err}",
            translation_domain=DOMAIN,
            translation_key="snapshot_failed",
            translation_placeholders={"entity_id": entity_id, "detail": str(err)},
        ) from err
    return base64.b64encode(image.content).decode("ascii")


async def _build_request(
    hass: HomeAssistant, data: dict[str, Any], request_id: str, reply_to: str
) -> dict[str, Any]:
    """The request JSON of docs/protocol.md for one analyze call."""
    request: dict[str, Any] = {
        "id": request_id,
        "reply_to": reply_to,
        "task": data[ATTR_TASK],
    }
    if ATTR_CAMERA_ENTITY in data:
        request["image"] = await _snapshot(hass, data[ATTR_CAMERA_ENTITY])
    elif ATTR_IMAGE in data:
        request["image"] = _checked_base64(data[ATTR_IMAGE])
    else:
        request["url"] = data[ATTR_URL]
    if ATTR_CAMERA in data:
        request["camera"] = data[ATTR_CAMERA]  # already a camera name (_camera_name)
    if ATTR_PROMPT in data:
        request["prompt"] = data[ATTR_PROMPT]
    return request


async def async_analyze(hass: HomeAssistant, call: ServiceCall) -> ServiceResponse:
    """Send one picture to the bridge and return its reply (a result JSON) as the response."""
    entry = _resolve_entry(hass, call)
    base = _base_topic(entry)
    hub = entry.runtime_data.hub
    ensure_online(hub, base)
    request_id = uuid.uuid4().hex
    reply_to = f"{base}/reply/{request_id}"
    data = dict(call.data)
    if ATTR_CAMERA in data:
        data[ATTR_CAMERA] = _camera_name(hass, entry, data[ATTR_CAMERA])
    request = await _build_request(hass, data, request_id, reply_to)
    timeout: float = call.data[ATTR_TIMEOUT]

    payload = await async_ask_bridge(
        hass,
        base,
        f"{base}/request",
        request,
        wait_seconds=timeout,
        unanswered_hint="is it running and connected to the same broker?",
    )
    return _checked_reply(payload)


def _checked_reply(payload: bytes | bytearray | str) -> dict[str, Any]:
    """The bridge's reply as the response; an error reply, or one without a text, raises.

    The reply is a result or an error (docs/protocol.md, "Request"), checked by protocol.py. A
    result that lacks a field the caller may not need (``latency_ms``, say) is still the answer
    the caller waited for: it is returned as it came, with one log line about what is missing.
    """
    try:
        if "error" in json.loads(payload):
            error = parse_error(payload)
        else:
            try:
                return parse_result(payload)
            except ProtocolError as err:
                data = json.loads(payload)
                if not isinstance(data, dict) or not isinstance(data.get("text"), str):
                    raise
                _LOGGER.warning("Accepting a reply that breaks the protocol: %s", err)
                return dict(data)
    except ProtocolError as err:
        raise HomeAssistantError(
            f"The bridge's reply breaks the protocol: {err}",
            translation_domain=DOMAIN,
            translation_key="bad_reply",
            translation_placeholders={"detail": str(err)},
        ) from err
    code = str(error["error"])
    detail = str(error.get("detail") or code)
    raise HomeAssistantError(
        f"The bridge refused the picture ({code}): {detail}",
        translation_domain=DOMAIN,
        translation_key="bridge_error",
        translation_placeholders={"error": code, "detail": detail},
    )


def _format_number(value: float) -> str:
    """A number as text the bridge reads back exactly (``float()``), without a needless ``.0``."""
    if value.is_integer():
        return str(int(value))
    return repr(value)


async def async_set_meter(hass: HomeAssistant, call: ServiceCall) -> None:
    """Publish a meter's current value, read by a person, for the bridge's plausibility checks."""
    entry = _resolve_entry(hass, call)
    base = _base_topic(entry)
    camera_name = _camera_name(hass, entry, call.data[ATTR_CAMERA])
    cameras = _known_cameras(entry)
    if cameras is not None and "meter" not in cameras.get(camera_name, {}).get("tasks", []):
        raise ServiceValidationError(
            f"The bridge has no meter camera named {camera_name}",
            translation_domain=DOMAIN,
            translation_key="unknown_meter",
            translation_placeholders={"camera": camera_name},
        )
    await mqtt.async_publish(
        hass,
        f"{base}/{camera_name}/meter/set",
        _format_number(call.data[ATTR_VALUE]),
        qos=1,
        retain=False,
    )


def _camera_name(hass: HomeAssistant, entry: ConfigEntry, value: str) -> str:
    """The bridge camera a call names: a camera device of this bridge, else the name itself."""
    device = dr.async_get(hass).async_get(value)
    if device is None:
        return value
    prefix = f"{entry.runtime_data.hub.site_id}/"
    for domain, identifier in device.identifiers:
        if domain == DOMAIN and identifier.startswith(prefix):
            camera = identifier[len(prefix) :]
            if is_camera_name(camera):
                return camera
    raise ServiceValidationError(
        f"Device {device.name or value} is not a camera of this Image to text bridge",
        translation_domain=DOMAIN,
        translation_key="not_a_camera",
        translation_placeholders={"device": str(device.name or value)},
    )


def _known_cameras(entry: ConfigEntry) -> dict[str, dict[str, Any]] | None:
    """The bridge's cameras from its last info message, or None while it has not sent one."""
    runtime = getattr(entry, "runtime_data", None)
    hub = getattr(runtime, "hub", None)
    if hub is None or getattr(hub, "info", None) is None:
        return None
    cameras: dict[str, dict[str, Any]] = hub.cameras
    return cameras

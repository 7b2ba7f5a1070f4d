"""Enrolment actions: ``faces_add``, ``faces_list``, ``faces_remove``, ``faces_rename``.

They speak the bridge's ``<base>/faces/<action>`` commands (docs/protocol.md, "Faces"): subscribe
to a private reply topic, publish the command, return the bridge's reply as the response. Photos
for ``faces_add`` come from files Home Assistant may read (``allowlist_external_dirs``), camera
snapshots, or image entities; they go to the bridge once and are never stored by either side
(only descriptors are, by the bridge). A refused photo is listed with its reason in the response;
an add where no photo could be used raises, naming the reasons. While the bridge is offline a
command is refused at once.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import voluptuous as vol
from homeassistant.components import camera
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv

from .ask import async_ask_bridge, ensure_online
from .const import CONF_BASE_TOPIC, DOMAIN

SERVICE_FACES_ADD = "faces_add"
SERVICE_FACES_LIST = "faces_list"
SERVICE_FACES_REMOVE = "faces_remove"
SERVICE_FACES_RENAME = "faces_rename"
ATTR_NAME = "name"
ATTR_NEW_NAME = "new_name"
ATTR_FILES = "files"
ATTR_CAMERA_ENTITIES = "camera_entity"
ATTR_IMAGE_ENTITIES = "image_entity"
ATTR_THRESHOLD = "threshold"
#: Enrolment runs dlib on every photo: slower than one analysis.
TIMEOUT = 60.0
MAX_PHOTOS = 10

_ENTRY: dict[vol.Marker, Any] = {vol.Optional("config_entry_id"): cv.string}
_ADD_FIELDS: dict[vol.Marker, Any] = {
    **_ENTRY,
    vol.Required(ATTR_NAME): cv.string,
    vol.Optional(ATTR_FILES, default=[]): vol.All(cv.ensure_list, [cv.string]),
    vol.Optional(ATTR_CAMERA_ENTITIES, default=[]): cv.entity_ids_or_uuids,
    vol.Optional(ATTR_IMAGE_ENTITIES, default=[]): cv.entity_ids_or_uuids,
    vol.Optional(ATTR_THRESHOLD): vol.All(vol.Coerce(float), vol.Range(min=0.05, max=0.95)),
}
_NAME: dict[vol.Marker, Any] = {**_ENTRY, vol.Required(ATTR_NAME): cv.string}
_NEW_NAME: dict[vol.Marker, Any] = {**_NAME, vol.Required(ATTR_NEW_NAME): cv.string}
ADD_SCHEMA = vol.Schema(_ADD_FIELDS)
LIST_SCHEMA = vol.Schema(_ENTRY)
REMOVE_SCHEMA = vol.Schema(_NAME)
RENAME_SCHEMA = vol.Schema(_NEW_NAME)


def async_setup_face_services(hass: HomeAssistant) -> None:
    """Register the enrolment actions (from ``services.async_setup_services``)."""
    for service, schema, action in (
        (SERVICE_FACES_ADD, ADD_SCHEMA, "add"),
        (SERVICE_FACES_LIST, LIST_SCHEMA, "list"),
        (SERVICE_FACES_REMOVE, REMOVE_SCHEMA, "remove"),
        (SERVICE_FACES_RENAME, RENAME_SCHEMA, "rename"),
    ):

        async def _handle(call: ServiceCall, action: str = action) -> ServiceResponse:
            return await async_faces_command(hass, call, action)

        hass.services.async_register(
            DOMAIN, service, _handle, schema=schema, supports_response=SupportsResponse.OPTIONAL
        )


async def _photos(hass: HomeAssistant, data: dict[str, Any]) -> list[str]:
    """Every photo of a ``faces_add`` call, base64, in the order files, cameras, images."""
    photos: list[str] = []
    for name in data[ATTR_FILES]:
        path = Path(name)
        if not hass.config.is_allowed_path(str(path)):
            raise ServiceValidationError(
                f"Home Assistant may not read {name}; add its folder to allowlist_external_dirs",
                translation_domain=DOMAIN,
                translation_key="file_not_allowed",
                translation_placeholders={"file": name},
            )
        try:
            content = await hass.async_add_executor_job(path.read_bytes)
        except OSError as err:
            raise ServiceValidationError(
                f"Cannot read {name}: {err.strerror}",
                translation_domain=DOMAIN,
                translation_key="file_unreadable",
                translation_placeholders={"file": name, "detail": str(err.strerror)},
            ) from err
        photos.append(base64.b64encode(content).decode("ascii"))
    for entity_id in data[ATTR_CAMERA_ENTITIES]:
        image = await camera.async_get_image(hass, entity_id)
        photos.append(base64.b64encode(image.content).decode("ascii"))
    for entity_id in data[ATTR_IMAGE_ENTITIES]:
        photos.append(base64.b64encode(await _image_entity_bytes(hass, entity_id)).decode())
    if not photos:
        raise ServiceValidationError(
            "Give at least one photo: files, camera_entity or image_entity",
            translation_domain=DOMAIN,
            translation_key="no_photos",
        )
    if len(photos) > MAX_PHOTOS:
        raise ServiceValidationError(
            f"At most {MAX_PHOTOS} photos at a time",
            translation_domain=DOMAIN,
            translation_key="too_many_photos",
            translation_placeholders={"max": str(MAX_PHOTOS)},
        )
    return photos


async def _image_entity_bytes(hass: HomeAssistant, entity_id: str) -> bytes:
    """The current picture of an image entity (e.g. this integration's analysed frame)."""
    component = hass.data.get("image")
    entity = component.get_entity(entity_id) if component is not None else None
    content = await entity.async_image() if entity is not None else None
    if not content:
        raise ServiceValidationError(
            f"{entity_id} has no picture",
            translation_domain=DOMAIN,
            translation_key="no_picture",
            translation_placeholders={"entity_id": entity_id},
        )
    return bytes(content)


async def async_faces_command(
    hass: HomeAssistant, call: ServiceCall, action: str
) -> ServiceResponse:
    """Send one enrolment command and return the bridge's reply."""
    from .services import _resolve_entry  # one place decides which bridge a call is for

    entry = _resolve_entry(hass, call)
    base = str(entry.data[CONF_BASE_TOPIC])
    hub = entry.runtime_data.hub
    ensure_online(hub, base)
    command_id = uuid.uuid4().hex
    reply_to = f"{base}/reply/{command_id}"
    command: dict[str, Any] = {"id": command_id, "reply_to": reply_to}
    if action in ("add", "remove", "rename"):
        command["name"] = call.data[ATTR_NAME]
    if action == "rename":
        command["new_name"] = call.data[ATTR_NEW_NAME]
    if action == "add":
        command["images"] = await _photos(hass, dict(call.data))
        if ATTR_THRESHOLD in call.data:
            command["threshold"] = call.data[ATTR_THRESHOLD]

    payload = await async_ask_bridge(
        hass,
        base,
        f"{base}/faces/{action}",
        command,
        wait_seconds=TIMEOUT,
        unanswered_hint="does a camera of it run the faces task?",
    )
    answer: dict[str, Any] = json.loads(payload)
    if answer.get("ok") is not True:
        refused = "; ".join(
            f"{r.get('photo')}: {r.get('reason')}" for r in answer.get("refused", []) if r
        )
        detail = str(answer.get("detail") or answer.get("error"))
        detail = f"{detail} ({refused})" if refused else detail
        raise HomeAssistantError(
            f"The bridge refused: {detail}",
            translation_domain=DOMAIN,
            translation_key="bridge_error",
            translation_placeholders={"error": str(answer.get("error")), "detail": detail},
        )
    return answer

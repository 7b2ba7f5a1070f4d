"""Device triggers of a camera: a new caption or text, one with a keyword, a known/unknown person.

Captions (``new_caption``, ``caption_matches``) and OCR text such as plates and labels
(``new_text``, ``text_matches``) each get the pair where the camera runs that task. They listen to
the ``image_to_text_result`` bus event that the hub fires for every result, keeping those of the
trigger's device and task. ``*_matches`` take ``keywords`` in the options' syntax
(``parcel|package``: any of them), matched as the keyword binary sensors match. Cameras with the
faces task offer ``known_person`` (anyone enrolled, or one ``name``) and ``unknown_person``, which
listen to ``image_to_text_person`` (faces.py) and offer ``trigger.name`` and ``trigger.distance``.

Variables of the caption and text triggers: ``trigger.text`` (and ``trigger.caption`` for captions),
``trigger.camera``, ``trigger.camera_name``, ``trigger.keyword`` (the alternative that matched,
or None) and ``trigger.event`` (the whole event).
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.const import CONF_DEVICE_ID, CONF_DOMAIN, CONF_NAME, CONF_PLATFORM, CONF_TYPE
from homeassistant.core import CALLBACK_TYPE, Event, HassJob, HomeAssistant, callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType

from .announce import keyword_alternatives, matching_keyword
from .const import (
    BRIDGE_PART,
    DOMAIN,
    EVENT_RESULT,
    MEMBERS_PART,
    TASK_CAPTION,
    TASK_FACES,
    TASK_OCR,
    camera_display_name,
)
from .faces import (
    PERSON_TRIGGERS,
    TRIGGER_KNOWN_PERSON,
    TRIGGER_UNKNOWN_PERSON,
    async_attach_person_trigger,
)

TRIGGER_NEW_CAPTION = "new_caption"
TRIGGER_CAPTION_MATCHES = "caption_matches"
TRIGGER_NEW_TEXT = "new_text"
TRIGGER_TEXT_MATCHES = "text_matches"
#: trigger type -> (task, whether it takes keywords)
TRIGGERS: dict[str, tuple[str, bool]] = {
    TRIGGER_NEW_CAPTION: (TASK_CAPTION, False),
    TRIGGER_CAPTION_MATCHES: (TASK_CAPTION, True),
    TRIGGER_NEW_TEXT: (TASK_OCR, False),
    TRIGGER_TEXT_MATCHES: (TASK_OCR, True),
    TRIGGER_KNOWN_PERSON: (TASK_FACES, False),
    TRIGGER_UNKNOWN_PERSON: (TASK_FACES, False),
}
TRIGGER_TYPES = tuple(TRIGGERS)
CONF_KEYWORDS = "keywords"


def _keywords(value: Any) -> str:
    """A keyword string with at least one non-empty alternative."""
    text = str(cv.string(value))
    if not keyword_alternatives(text):
        raise vol.Invalid("give at least one keyword; separate alternatives with |")
    return text


def _keywords_needed(config: ConfigType) -> ConfigType:
    """``caption_matches`` and ``text_matches`` are meaningless without keywords."""
    if TRIGGERS[config[CONF_TYPE]][1] and CONF_KEYWORDS not in config:
        raise vol.Invalid(f"{config[CONF_TYPE]} needs keywords", path=[CONF_KEYWORDS])
    return config


TRIGGER_SCHEMA = vol.All(
    DEVICE_TRIGGER_BASE_SCHEMA.extend(
        {
            vol.Required(CONF_TYPE): vol.In(TRIGGER_TYPES),
            vol.Optional(CONF_KEYWORDS): _keywords,
            vol.Optional(CONF_NAME): cv.string,
        }
    ),
    _keywords_needed,
)


def _camera_of_device(
    hass: HomeAssistant, device_id: str
) -> tuple[str, dict[str, Any] | None] | None:
    """The bridge camera a device stands for, with its info (None while unknown), or None.

    The bridge device itself, a group member's device (``<site_id>/bridges/<bridge_id>``) and
    devices of other integrations have no camera.
    """
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        return None
    for entry_id in device.config_entries:
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN:
            continue
        for domain, identifier in device.identifiers:
            if domain != DOMAIN or "/" not in identifier:
                continue
            camera = identifier.rsplit("/", 1)[1]  # <site_id>/<camera>: read from the right
            hub = getattr(getattr(entry, "runtime_data", None), "hub", None)
            site_id = getattr(hub, "site_id", None)
            member = f"{site_id}/{MEMBERS_PART}/" if site_id else f"/{MEMBERS_PART}/"
            if camera == BRIDGE_PART or member in identifier:
                return None
            cameras = getattr(hub, "cameras", None) or {}
            return camera, cameras.get(camera)
    return None


async def async_get_triggers(hass: HomeAssistant, device_id: str) -> list[dict[str, Any]]:
    """The triggers a camera device offers: those of its tasks (all while not known yet)."""
    found = _camera_of_device(hass, device_id)
    if found is None:
        return []
    _camera, info = found
    tasks = None if info is None else set(info.get("tasks", []))
    return [
        {
            CONF_PLATFORM: "device",
            CONF_DOMAIN: DOMAIN,
            CONF_DEVICE_ID: device_id,
            CONF_TYPE: trigger_type,
        }
        for trigger_type, (task, _) in TRIGGERS.items()
        if tasks is None or task in tasks
    ]


async def async_get_trigger_capabilities(
    hass: HomeAssistant, config: ConfigType
) -> dict[str, vol.Schema]:
    """``caption_matches`` and ``text_matches`` ask for their keywords, ``known_person`` a name."""
    if TRIGGERS[config[CONF_TYPE]][1]:
        return {"extra_fields": vol.Schema({vol.Required(CONF_KEYWORDS): cv.string})}
    if config[CONF_TYPE] == TRIGGER_KNOWN_PERSON:
        return {"extra_fields": vol.Schema({vol.Optional(CONF_NAME): cv.string})}
    return {}


async def async_attach_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Run ``action`` for each caption or text of the device (matching the keywords, if any).

    Person triggers listen to ``image_to_text_person`` instead (faces.py).
    """
    device_id: str = config[CONF_DEVICE_ID]
    trigger_type: str = config[CONF_TYPE]
    if trigger_type in PERSON_TRIGGERS:
        return async_attach_person_trigger(hass, config, action, trigger_info)
    task, takes_keywords = TRIGGERS[trigger_type]
    keywords = [config[CONF_KEYWORDS]] if takes_keywords else []
    trigger_data = trigger_info["trigger_data"]
    job = HassJob(action, f"image_to_text device trigger {trigger_type}")

    @callback
    def _on_result(event: Event) -> None:
        data = event.data
        if data.get("device_id") != device_id or data.get("task") != task:
            return
        text = str(data.get("text") or "")
        keyword = matching_keyword(keywords, text) if keywords else None
        if keywords and keyword is None:
            return
        camera = str(data.get("camera") or "")
        hass.async_run_hass_job(
            job,
            {
                "trigger": {
                    **trigger_data,
                    CONF_PLATFORM: "device",
                    CONF_DOMAIN: DOMAIN,
                    CONF_DEVICE_ID: device_id,
                    CONF_TYPE: trigger_type,
                    **({"caption": text} if task == TASK_CAPTION else {}),
                    "text": text,
                    "camera": camera,
                    "camera_name": camera_display_name(camera),
                    "keyword": keyword,
                    "event": event,
                    "description": f"{camera_display_name(camera)} {task}",
                }
            },
            event.context,
        )

    return hass.bus.async_listen(EVENT_RESULT, _on_result)

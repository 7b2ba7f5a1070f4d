"""Device triggers of a camera: a new caption, a caption with a keyword, a known/unknown person.

"Known person seen" (anyone enrolled, or one ``name``) and "unknown person seen" are offered by
cameras with the faces task; they listen to ``image_to_text_person`` (faces.py).

Both listen to the ``image_to_text_result`` bus event that the hub fires for every result, keeping
those of the trigger's device and task ``caption``. ``caption_matches`` takes ``keywords`` in the
options' syntax (``parcel|package``: any of them), matched as the keyword binary sensors match.

The trigger variables offer ``trigger.caption``, ``trigger.camera``, ``trigger.camera_name``,
``trigger.keyword`` (the alternative that matched, or None) and ``trigger.event`` (the whole event).
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
    CONF_BASE_TOPIC,
    DOMAIN,
    EVENT_RESULT,
    TASK_CAPTION,
    TASK_FACES,
    camera_display_name,
)
from .faces import PERSON_TRIGGERS, TRIGGER_KNOWN_PERSON, async_attach_person_trigger

TRIGGER_NEW_CAPTION = "new_caption"
TRIGGER_CAPTION_MATCHES = "caption_matches"
CAPTION_TRIGGERS = (TRIGGER_NEW_CAPTION, TRIGGER_CAPTION_MATCHES)
TRIGGER_TYPES = (*CAPTION_TRIGGERS, *PERSON_TRIGGERS)
CONF_KEYWORDS = "keywords"


def _keywords(value: Any) -> str:
    """A keyword string with at least one non-empty alternative."""
    text = str(cv.string(value))
    if not keyword_alternatives(text):
        raise vol.Invalid("give at least one keyword; separate alternatives with |")
    return text


def _keywords_needed(config: ConfigType) -> ConfigType:
    """``caption_matches`` is meaningless without keywords."""
    if config[CONF_TYPE] == TRIGGER_CAPTION_MATCHES and CONF_KEYWORDS not in config:
        raise vol.Invalid("caption_matches needs keywords", path=[CONF_KEYWORDS])
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

    The bridge device itself, and devices of other integrations, have no camera.
    """
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        return None
    for entry_id in device.config_entries:
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN:
            continue
        base = str(entry.data[CONF_BASE_TOPIC])
        for domain, identifier in device.identifiers:
            if domain != DOMAIN or not identifier.startswith(f"{base}_"):
                continue
            if identifier == f"{base}_bridge":
                return None
            camera = identifier[len(base) + 1 :]
            hub = getattr(getattr(entry, "runtime_data", None), "hub", None)
            cameras = getattr(hub, "cameras", None) or {}
            return camera, cameras.get(camera)
    return None


async def async_get_triggers(hass: HomeAssistant, device_id: str) -> list[dict[str, Any]]:
    """The triggers a camera device offers: only cameras that caption (or not known yet)."""
    found = _camera_of_device(hass, device_id)
    if found is None:
        return []
    _camera, info = found
    tasks = None if info is None else info.get("tasks", [])
    types = [
        *(CAPTION_TRIGGERS if tasks is None or TASK_CAPTION in tasks else ()),
        *(PERSON_TRIGGERS if tasks is None or TASK_FACES in tasks else ()),
    ]
    return [
        {
            CONF_PLATFORM: "device",
            CONF_DOMAIN: DOMAIN,
            CONF_DEVICE_ID: device_id,
            CONF_TYPE: trigger_type,
        }
        for trigger_type in types
    ]


async def async_get_trigger_capabilities(
    hass: HomeAssistant, config: ConfigType
) -> dict[str, vol.Schema]:
    """``caption_matches`` asks for its keywords."""
    if config[CONF_TYPE] == TRIGGER_CAPTION_MATCHES:
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
    """Run ``action`` for each caption of the device (that matches the keywords, if any)."""
    device_id: str = config[CONF_DEVICE_ID]
    trigger_type: str = config[CONF_TYPE]
    if trigger_type in PERSON_TRIGGERS:
        return async_attach_person_trigger(hass, config, action, trigger_info)
    keywords = [config[CONF_KEYWORDS]] if trigger_type == TRIGGER_CAPTION_MATCHES else []
    trigger_data = trigger_info["trigger_data"]
    job = HassJob(action, f"image_to_text device trigger {trigger_type}")

    @callback
    def _on_result(event: Event) -> None:
        data = event.data
        if data.get("device_id") != device_id or data.get("task") != TASK_CAPTION:
            return
        caption = str(data.get("text") or "")
        keyword = matching_keyword(keywords, caption) if keywords else None
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
                    "caption": caption,
                    "camera": camera,
                    "camera_name": camera_display_name(camera),
                    "keyword": keyword,
                    "event": event,
                    "description": f"{camera_display_name(camera)} caption",
                }
            },
            event.context,
        )

    return hass.bus.async_listen(EVENT_RESULT, _on_result)

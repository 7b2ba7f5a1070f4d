"""Binary sensors: the bridge's connectivity, and keyword sensors on each camera's captions.

A keyword sensor (one per camera with captions and per keyword string of the entry's options) is
on while the camera's latest caption contains the keyword as a word, case-insensitively, and for at
most ``keyword_hold`` seconds after it: a caption that no longer matches turns it off at once, and
so does the end of the hold when no newer caption came. ``parcel|package`` matches either word.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
)
from homeassistant.const import EntityCategory
from homeassistant.core import CALLBACK_TYPE, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.event import async_call_later
from homeassistant.util import slugify

from .const import (
    CONF_KEYWORD_HOLD,
    CONF_KEYWORDS,
    DEFAULT_KEYWORD_HOLD,
    TASK_CAPTION,
    TASK_LABELS,
    TASK_OCR,
    bridge_identifier,
    bridge_unique_id,
    entity_unique_id,
    member_identifier,
    member_unique_id,
    signal_info,
    signal_result,
)
from .entity import CameraEntity, EntityFactories, ImageToTextEntity, async_follow_cameras
from .issues import model_failed
from .limits import MAX_ATTRIBUTES_BYTES, fit

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddEntitiesCallback

    from .hub import ImageToTextHub

KEYWORD_KIND = "keyword"
#: Keyword sensors watch captions and OCR text (plates, labels).
KEYWORD_TASKS = (TASK_CAPTION, TASK_OCR)
MODEL_KIND = "model"


def keyword_pattern(keyword: str) -> re.Pattern[str] | None:
    """A case-insensitive whole-word pattern for ``a|b|c``; None when there is no word in it."""
    words = [word.strip() for word in keyword.split("|") if word.strip()]
    if not words:
        return None
    alternatives = "|".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def keyword_label(keyword: str) -> str:
    """How a keyword reads in an entity's name: ``parcel|package`` → ``parcel or package``."""
    return " or ".join(word.strip() for word in keyword.split("|") if word.strip())


def keyword_slug(keyword: str) -> str:
    """The keyword's part of a unique id."""
    return slugify(keyword_label(keyword).replace(" or ", " "))


# Push only: entities are written from MQTT callbacks, never polled or updated in parallel.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add the bridge's connectivity sensor and the keyword sensors of each captioned camera."""
    hub = entry.runtime_data.hub
    async_add_entities([BridgeConnectivity(hub)])
    keywords = {
        keyword_slug(keyword): keyword
        for keyword in entry.options.get(CONF_KEYWORDS, [])
        if isinstance(keyword, str) and keyword_pattern(keyword) is not None
    }
    hold = float(entry.options.get(CONF_KEYWORD_HOLD, DEFAULT_KEYWORD_HOLD))
    _remove_dropped_keywords(hass, entry, hub, set(keywords))

    def wanted(hub: ImageToTextHub) -> EntityFactories:
        return {
            entity_unique_id(hub.site_id, camera, task, f"{KEYWORD_KIND}_{slug}"): (
                partial(KeywordSensor, hub, camera, keyword, hold, task)
            )
            for camera in hub.cameras
            for task in KEYWORD_TASKS
            if task in hub.tasks(camera)
            for slug, keyword in keywords.items()
        }

    async_follow_cameras(entry, hub, async_add_entities, wanted)

    def wanted_models(hub: ImageToTextHub) -> EntityFactories:
        wanted: EntityFactories = {
            bridge_unique_id(hub.site_id, f"{MODEL_KIND}_{task}"): partial(ModelProblem, hub, task)
            for task in hub.models()
        }
        for bridge in hub.bridges.all():
            if not bridge.shared:
                continue
            uid = partial(member_unique_id, hub.site_id, bridge.name)
            wanted[uid("connectivity")] = partial(MemberConnectivity, hub, bridge.name)
            for task in bridge.models():
                wanted[uid(f"{MODEL_KIND}_{task}")] = partial(ModelProblem, hub, task, bridge.name)
        return wanted

    async_follow_cameras(entry, hub, async_add_entities, wanted_models)


def _remove_dropped_keywords(
    hass: HomeAssistant, entry: ConfigEntry, hub: ImageToTextHub, slugs: set[str]
) -> None:
    """Keyword sensors whose keyword left the options leave the entity registry too."""
    registry = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        if entity.domain != "binary_sensor":
            continue
        if not entity.unique_id.startswith(f"{hub.site_id}/"):
            continue
        for task in KEYWORD_TASKS:
            marker = f"/{task}/{KEYWORD_KIND}_"
            if marker in entity.unique_id and entity.unique_id.rsplit(marker, 1)[1] not in slugs:
                registry.async_remove(entity.entity_id)


class BridgeConnectivity(ImageToTextEntity, BinarySensorEntity):
    """Whether the bridge is online; the one entity that stays available to say it is not."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "connectivity"

    def __init__(self, hub: ImageToTextHub) -> None:
        super().__init__(hub)
        self._attr_device_info = DeviceInfo(identifiers={bridge_identifier(hub.site_id)})

    @property
    def unique_id(self) -> str:
        """``<bridge_id>/bridge/connectivity``, following the bridge's id if it changes."""
        return bridge_unique_id(self.hub.site_id, "connectivity")

    @property
    def available(self) -> bool:
        """Always: its state is the bridge's availability."""
        return True

    @property
    def is_on(self) -> bool:
        """The bridge is online and has published its info."""
        return self.hub.online


class MemberConnectivity(ImageToTextEntity, BinarySensorEntity):
    """Whether one bridge of a group is online (on its own device)."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "connectivity"

    def __init__(self, hub: ImageToTextHub, bridge_id: str) -> None:
        super().__init__(hub)
        self.bridge_id = bridge_id
        self._attr_device_info = DeviceInfo(identifiers={member_identifier(hub.site_id, bridge_id)})

    @property
    def unique_id(self) -> str:
        """``<site_id>/bridges/<bridge_id>/connectivity``."""
        return member_unique_id(self.hub.site_id, self.bridge_id, "connectivity")

    @property
    def available(self) -> bool:
        """Always: its state is the bridge's availability."""
        return True

    @property
    def is_on(self) -> bool:
        """The bridge has published its info and not its last will (and HA has the broker)."""
        return self.hub.online and self.hub.bridges.peek(self.bridge_id).online

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The cameras this bridge serves: the others' entities stay available without it."""
        return {"cameras": sorted(self.hub.bridges.peek(self.bridge_id).cameras())}


class ModelProblem(ImageToTextEntity, BinarySensorEntity):
    """On while a bridge reports that one task's model failed to load (with its reason).

    A single bridge's sensors are on the site's bridge device; a group member's (``member``)
    on that bridge's own device.
    """

    _attr_device_class = BinarySensorDeviceClass.PROBLEM
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = MODEL_KIND

    def __init__(self, hub: ImageToTextHub, task: str, member: str | None = None) -> None:
        super().__init__(hub)
        self.task = task
        self.member = member
        self._attr_translation_placeholders = {"task": TASK_LABELS.get(task, task)}
        device = bridge_identifier(hub.site_id)
        if member is not None:
            device = member_identifier(hub.site_id, member)
        self._attr_device_info = DeviceInfo(identifiers={device})

    @property
    def unique_id(self) -> str:
        """``<site_id>/bridge/model_<task>``, or ``<site_id>/bridges/<bridge_id>/model_<task>``."""
        kind = f"{MODEL_KIND}_{self.task}"
        if self.member is None:
            return bridge_unique_id(self.hub.site_id, kind)
        return member_unique_id(self.hub.site_id, self.member, kind)

    def _models(self) -> dict[str, dict[str, Any]]:
        if self.member is None:
            return self.hub.models()
        return self.hub.bridges.peek(self.member).models()

    async def async_added_to_hass(self) -> None:
        """Follow the bridge's info, where the models' status is."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(self.hass, signal_info(self.hub.entry.entry_id), self._on_info)
        )

    @callback
    def _on_info(self, _info: dict[str, Any]) -> None:
        self.async_write_ha_state()

    @property
    def available(self) -> bool:
        """The bridge is online and still has this task's model."""
        if self.member is not None and not self.hub.bridges.peek(self.member).online:
            return False
        return self.hub.online and self.task in self._models()

    @property
    def is_on(self) -> bool:
        """The model failed to load."""
        return model_failed(self._models().get(self.task))

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """Which model, its status, and the bridge's reason when it failed."""
        model = self._models().get(self.task, {})
        attributes = {key: model.get(key) for key in ("engine", "model", "status", "error")}
        return fit(attributes, MAX_ATTRIBUTES_BYTES)


class KeywordSensor(CameraEntity, BinarySensorEntity):
    """On while a camera's latest caption (or OCR text) names the keyword, at most the hold time."""

    def __init__(
        self,
        hub: ImageToTextHub,
        camera: str,
        keyword: str,
        hold: float,
        task: str = TASK_CAPTION,
    ) -> None:
        super().__init__(hub, camera, task, f"{KEYWORD_KIND}_{keyword_slug(keyword)}")
        self._attr_translation_key = KEYWORD_KIND if task == TASK_CAPTION else f"{task}_keyword"
        self.keyword = keyword
        self._pattern = keyword_pattern(keyword)
        self._hold = hold
        self._attr_translation_placeholders = {"keyword": keyword_label(keyword)}
        self._attr_is_on = False
        self._matched_at: str | None = None
        self._matched_text: str | None = None
        self._cancel_hold: CALLBACK_TYPE | None = None

    async def async_added_to_hass(self) -> None:
        """Follow the camera's new captions."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_result(self.hub.entry.entry_id), self._on_result
            )
        )
        self.async_on_remove(self._stop_hold)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The keyword, and the caption (or OCR ``text``) that last matched it."""
        attributes = {
            "keyword": self.keyword,
            "caption" if self.task == TASK_CAPTION else "text": self._matched_text,
            "captured_at": self._matched_at,
        }
        return fit(attributes, MAX_ATTRIBUTES_BYTES)

    @callback
    def _stop_hold(self) -> None:
        if self._cancel_hold is not None:
            self._cancel_hold()
            self._cancel_hold = None

    @callback
    def _on_result(self, result: dict[str, Any]) -> None:
        if (result["camera"], result["task"]) != (self.camera, self.task):
            return
        self._stop_hold()
        text = str(result["text"])
        if self._pattern is not None and self._pattern.search(text):
            self._attr_is_on = True
            self._matched_text = text
            self._matched_at = result.get("captured_at")
            self._cancel_hold = async_call_later(self.hass, self._hold, self._on_hold_over)
        else:
            self._attr_is_on = False
        self.async_write_ha_state()

    @callback
    def _on_hold_over(self, _now: datetime) -> None:
        self._cancel_hold = None
        self._attr_is_on = False
        self.async_write_ha_state()

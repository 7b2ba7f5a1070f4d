"""Event entities: one per camera and task, firing ``result`` with the result's fields.

Only new results fire: a retained result replayed when Home Assistant subscribes is old news.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from homeassistant.components.event import EventEntity
from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import EVENT_TYPE_RESULT, TASKS, entity_unique_id, signal_result
from .entity import CameraEntity, EntityFactories, async_follow_cameras
from .limits import MAX_ATTRIBUTES_BYTES, PER_FRAME_ATTRIBUTES, fit

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddEntitiesCallback

    from .hub import ImageToTextHub


# Push only: entities are written from MQTT callbacks, never polled or updated in parallel.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add an event entity for each camera and task the bridge's info names."""
    async_follow_cameras(entry, entry.runtime_data.hub, async_add_entities, _wanted)


def _wanted(hub: ImageToTextHub) -> EntityFactories:
    return {
        entity_unique_id(hub.site_id, camera, task, "event"): partial(
            ResultEvent, hub, camera, task
        )
        for camera in hub.cameras
        for task in hub.tasks(camera)
    }


class ResultEvent(CameraEntity, EventEntity):
    """Fires ``result`` for each new result of one camera and task."""

    _attr_event_types = [EVENT_TYPE_RESULT]  # noqa: RUF012 - HA's declared attribute
    _unrecorded_attributes = PER_FRAME_ATTRIBUTES

    def __init__(self, hub: ImageToTextHub, camera: str, task: str) -> None:
        super().__init__(hub, camera, task, "event")
        self._use_task_name()  # "Caption event" (strings.json)
        if self.task not in TASKS:
            self._attr_name = f"{self.task.replace('_', ' ').capitalize()} event"
        self._keep_entity_id("event")

    async def async_added_to_hass(self) -> None:
        """Follow the camera's new results."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_result(self.hub.entry.entry_id), self._on_result
            )
        )

    @callback
    def _on_result(self, result: dict[str, Any]) -> None:
        if (result["camera"], result["task"]) != (self.camera, self.task):
            return
        attributes = {key: value for key, value in result.items() if key != "v"}
        self._trigger_event(EVENT_TYPE_RESULT, fit(attributes, MAX_ATTRIBUTES_BYTES))
        self.async_write_ha_state()

"""Image entities: the frame each camera's latest result was made from, as the bridge sent it."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from homeassistant.components.image import ImageEntity
from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import TASK_LABELS, entity_unique_id, signal_image
from .entity import CameraEntity, EntityFactories, async_follow_cameras

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
    """Add an image entity for each camera and task the bridge's info names."""
    hub = entry.runtime_data.hub

    def wanted(hub: ImageToTextHub) -> EntityFactories:
        return {
            entity_unique_id(hub.site_id, camera, task, "image"): (
                partial(AnalysedFrame, hass, hub, camera, task)
            )
            for camera in hub.cameras
            for task in hub.tasks(camera)
        }

    async_follow_cameras(entry, hub, async_add_entities, wanted)


class AnalysedFrame(CameraEntity, ImageEntity):
    """The JPEG on ``<base>/<camera>/<task>/image``."""

    _attr_content_type = "image/jpeg"

    def __init__(self, hass: HomeAssistant, hub: ImageToTextHub, camera: str, task: str) -> None:
        CameraEntity.__init__(self, hub, camera, task, "image")
        ImageEntity.__init__(self, hass)
        # "Analysed frame" for a camera with one task, else "Caption analysed frame" (strings.json)
        if len(hub.tasks(camera)) <= 1:
            self._attr_translation_key = "analysed_frame"
        else:
            self._attr_translation_key = "task_analysed_frame"
            self._attr_translation_placeholders = {"task": TASK_LABELS.get(task, task)}
        self._keep_entity_id("image")
        received = hub.last_image.get((camera, task))
        self._image = received.jpeg if received else None
        self._attr_image_last_updated = received.received_at if received else None
        if received:
            self._attr_content_type = received.content_type

    async def async_added_to_hass(self) -> None:
        """Follow the camera's analysed frames."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_image(self.hub.entry.entry_id), self._on_image
            )
        )

    @callback
    def _on_image(self, camera: str, task: str, _jpeg: bytes) -> None:
        if (camera, task) != (self.camera, self.task):
            return
        received = self.hub.last_image[(camera, task)]
        self._image = received.jpeg
        self._attr_image_last_updated = received.received_at
        self._attr_content_type = received.content_type
        self.async_write_ha_state()

    async def async_image(self) -> bytes | None:
        """The latest analysed frame's bytes."""
        return self._image

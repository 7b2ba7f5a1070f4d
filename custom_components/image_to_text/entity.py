"""Base classes of every entity: device, unique id, availability from the bridge, removal.

Camera entities belong to one camera's device (linked to the bridge device with ``via_device``)
and turn unavailable when the bridge's info no longer lists their camera and task: the device,
its entities, names, areas and Energy links stay until the user deletes the device (see
``async_remove_config_entry_device``), so a camera that is only briefly gone comes back whole.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.util import slugify

from .const import (
    TASKS,
    bridge_identifier,
    camera_display_name,
    camera_identifier,
    entity_unique_id,
    signal_availability,
    signal_info,
)

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry

    from .hub import ImageToTextHub

# unique id -> a function that builds the entity, for every entity the bridge's info calls for.
EntityFactories = dict[str, Callable[[], Entity]]


class ImageToTextEntity(Entity):
    """An entity of one site: unavailable whenever its bridges are offline."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, hub: ImageToTextHub) -> None:
        self.hub = hub

    @property
    def available(self) -> bool:
        """Every entity follows the bridges: all offline (or no info yet) means unavailable."""
        return self.hub.online

    async def async_added_to_hass(self) -> None:
        """Follow the bridges' availability."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_availability(self.hub.entry.entry_id), self._on_availability
            )
        )

    @callback
    def _on_availability(self, _online: bool) -> None:
        self.async_write_ha_state()


class CameraEntity(ImageToTextEntity):
    """An entity of one camera and task of the bridge.

    ``task`` is the bridge's task name, or a pseudo-task such as ``health`` for entities of the
    camera as a whole; ``kind`` tells the entity kinds of one camera and task apart.
    """

    def __init__(self, hub: ImageToTextHub, camera: str, task: str, kind: str) -> None:
        super().__init__(hub)
        self.camera = camera
        self.task = task
        self.kind = kind
        self._attr_device_info = DeviceInfo(
            identifiers={camera_identifier(hub.site_id, camera)},
            name=camera_display_name(camera),
            manufacturer="image-to-text",
            model="Camera",
            via_device=bridge_identifier(hub.site_id),
        )

    @property
    def unique_id(self) -> str:
        """``<bridge_id>/<camera>/<task>/<kind>``, following the bridge's id if it changes."""
        return entity_unique_id(self.hub.site_id, self.camera, self.task, self.kind)

    def _keep_entity_id(self, domain: str) -> None:
        """Suggest the entity id this entity always had (``event.front_door_caption``).

        Names say what an entity is ("Front door caption event"); entity ids, which automations,
        dashboards and blueprints use, stay as they were.
        """
        self.entity_id = f"{domain}.{slugify(self.camera)}_{slugify(self.task)}"

    def _use_task_name(self) -> None:
        """Name the entity after its task: a translation for known tasks, else the task itself."""
        if self.task in TASKS:
            self._attr_translation_key = self.task
        else:
            self._attr_name = self.task.replace("_", " ").capitalize()

    def still_provided(self) -> bool:
        """The bridge's info still lists this entity's camera (and task, for task entities)."""
        return self.task in self.hub.tasks(self.camera)

    @property
    def available(self) -> bool:
        """A bridge that has this entity's camera (and task) is online.

        Of a group, any one bridge serving the camera will do; an entity of the camera as a whole
        (health, announcements: not one of its tasks) follows any bridge that lists the camera.
        """
        task = self.task if self.task in self.hub.tasks(self.camera) else None
        return self.still_provided() and self.hub.serves(self.camera, task)

    async def async_added_to_hass(self) -> None:
        """Also watch the bridge's info: a camera or task may leave or come back."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(self.hass, signal_info(self.hub.entry.entry_id), self._on_info)
        )

    @callback
    def _on_info(self, _info: dict[str, Any]) -> None:
        if self.still_provided():
            self._handle_info()
        self.async_write_ha_state()

    @callback
    def _handle_info(self) -> None:
        """New info while still provided, for entities that show info fields."""


@callback
def async_follow_cameras(
    entry: ConfigEntry,
    hub: ImageToTextHub,
    async_add_entities: AddEntitiesCallback,
    wanted: Callable[[ImageToTextHub], EntityFactories],
) -> Callable[..., None]:
    """Add a platform's entities now and whenever the bridge's info names new cameras or tasks.

    Entities that are no longer wanted stay, unavailable (see ``CameraEntity``); one that is
    removed (its device deleted by the user) is forgotten here, so that its camera gets its
    entities again if it ever comes back.
    """
    known: set[str] = set()  # unique ids without the bridge id, which may change

    def _build(key: str, factory: Callable[[], Entity]) -> Entity:
        entity = factory()
        known.add(key)
        entity.async_on_remove(lambda: known.discard(key))
        return entity

    @callback
    def _update(_info: dict[str, Any] | None = None) -> None:
        factories = wanted(hub) if hub.info is not None else {}
        prefix = len(hub.site_id) + 1
        new = [
            _build(uid[prefix:], factory)
            for uid, factory in factories.items()
            if uid[prefix:] not in known
        ]
        if new:
            async_add_entities(new)

    _update()
    entry.async_on_unload(async_dispatcher_connect(hub.hass, signal_info(entry.entry_id), _update))
    return _update

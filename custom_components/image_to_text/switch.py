"""Mute switches for spoken announcements: one for the whole bridge, one per announced camera.

Turning one off silences announcements at once, with no reload; the state survives restarts
(restored). A camera gets its switch when its announcement is configured, also later from the
options flow.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.const import STATE_OFF, EntityCategory
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.restore_state import RestoreEntity

from .const import DOMAIN, bridge_identifier, bridge_unique_id, entity_unique_id
from .entity import CameraEntity, EntityFactories, ImageToTextEntity, async_follow_cameras

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddEntitiesCallback

    from .announce import Announcer
    from .hub import ImageToTextHub

ANNOUNCE_TASK = "announce"
SWITCH_KIND = "switch"


def signal_announcements(entry_id: str) -> str:
    """Dispatcher signal, no args: the announcement options changed (cameras may be new)."""
    return f"{DOMAIN}_{entry_id}_announcements"


# Push only: entities are written from MQTT callbacks, never polled or updated in parallel.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """The bridge's announcements switch, and one for each camera with an announcement."""
    data = entry.runtime_data
    hub, announcer = data.hub, data.announcer
    async_add_entities([BridgeAnnouncements(hub, announcer)])

    def wanted(hub: ImageToTextHub) -> EntityFactories:
        return {
            entity_unique_id(hub.site_id, camera, ANNOUNCE_TASK, SWITCH_KIND): (
                partial(CameraAnnouncements, hub, announcer, camera)
            )
            for camera in sorted(announcer.cameras)
        }

    add = async_follow_cameras(entry, hub, async_add_entities, wanted)
    entry.async_on_unload(async_dispatcher_connect(hass, signal_announcements(entry.entry_id), add))


class _MuteSwitch(RestoreEntity, SwitchEntity):
    """On: announcements are spoken. Restored after a restart."""

    _attr_entity_category = EntityCategory.CONFIG
    _attr_translation_key = "announcements"

    async def async_added_to_hass(self) -> None:
        """Take the state it had before the restart (on when it never had one)."""
        await super().async_added_to_hass()
        last = await self.async_get_last_state()
        self._set(last is None or last.state != STATE_OFF)

    def _set(self, on: bool) -> None:
        raise NotImplementedError

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Announce again."""
        self._set(True)
        self.async_write_ha_state()

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Mute."""
        self._set(False)
        self.async_write_ha_state()


class BridgeAnnouncements(_MuteSwitch, ImageToTextEntity):
    """Announcements of every camera of the bridge."""

    def __init__(self, hub: ImageToTextHub, announcer: Announcer) -> None:
        ImageToTextEntity.__init__(self, hub)
        self._announcer = announcer
        self._attr_device_info = DeviceInfo(identifiers={bridge_identifier(hub.site_id)})

    @property
    def unique_id(self) -> str:
        """``<bridge_id>/bridge/announcements``."""
        return bridge_unique_id(self.hub.site_id, "announcements")

    @property
    def available(self) -> bool:
        """A mute switch works whether or not the bridge is online."""
        return True

    @property
    def is_on(self) -> bool:
        """Announcements are not muted for the whole bridge."""
        return self._announcer.enabled

    def _set(self, on: bool) -> None:
        self._announcer.enabled = on


class CameraAnnouncements(_MuteSwitch, CameraEntity):
    """Announcements of one camera."""

    def __init__(self, hub: ImageToTextHub, announcer: Announcer, camera: str) -> None:
        CameraEntity.__init__(self, hub, camera, ANNOUNCE_TASK, SWITCH_KIND)
        self._announcer = announcer

    def still_provided(self) -> bool:
        """As long as the camera has an announcement (and the bridge has the camera)."""
        return self.camera in self._announcer.cameras and self.camera in self.hub.cameras

    @property
    def available(self) -> bool:
        """Usable while the camera has an announcement, whether or not the bridge is online."""
        return self.camera in self._announcer.cameras

    @property
    def is_on(self) -> bool:
        """Announcements of this camera are not muted."""
        return self._announcer.camera_enabled.get(self.camera, True)

    def _set(self, on: bool) -> None:
        self._announcer.camera_enabled[self.camera] = on

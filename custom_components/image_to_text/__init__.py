"""Image to text: Home Assistant entities from an image-to-text bridge, over MQTT.

The integration never talks to the models: it listens to the bridge's MQTT protocol
(docs/protocol.md) through Home Assistant's own MQTT integration. One config entry per bridge
(per base topic); its state lives in ``entry.runtime_data``, never in ``hass.data``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components import mqtt
from homeassistant.const import Platform
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .announce import ANNOUNCE_OPTIONS, Announcer, async_setup_announcements
from .const import DOMAIN, bridge_identifier, camera_identifier, member_identifier
from .devices import bridge_device_info
from .frigate_names import async_setup_frigate_names
from .hub import ImageToTextData, ImageToTextHub
from .issues import async_clear_model_issues
from .migrate import async_migrate_entry
from .services import async_setup_services
from .switch import signal_announcements

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.device_registry import DeviceEntry
    from homeassistant.helpers.typing import ConfigType

__all__ = ["async_migrate_entry"]

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.EVENT,
    Platform.IMAGE,
    Platform.SENSOR,
    Platform.SWITCH,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, _config: ConfigType) -> bool:
    """Register the integration's actions once, whatever the number of bridges."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Listen to one bridge: subscribe, create its device, then its entities."""
    if not await mqtt.async_wait_for_mqtt_client(hass):
        raise ConfigEntryNotReady("MQTT is not available")

    hub = ImageToTextHub(hass, entry)
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **bridge_device_info(hub.base_topic, hub.site_id)
    )
    announcer = Announcer(hass, entry)
    entry.runtime_data = ImageToTextData(hub=hub, announcer=announcer)
    await hub.async_start()
    entry.async_on_unload(hub.async_stop)

    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    entry.async_on_unload(async_setup_announcements(hass, entry, announcer))
    entry.async_on_unload(await async_setup_frigate_names(hass, entry))
    options = dict(entry.options)

    async def _async_entry_updated(hass: HomeAssistant, entry: ConfigEntry) -> None:
        """New options take effect: announcements at once, the rest by reloading the entry.

        Only options: Home Assistant also updates an entry for other reasons (since 2024.10 the
        discovery keys each time the bridge's retained info is seen), and a reload then would
        drop the state the bridge's retained messages gave the entities.
        """
        changed = {
            key
            for key in set(options) | set(entry.options)
            if options.get(key) != entry.options.get(key)
        }
        if not changed:
            return
        options.clear()
        options.update(entry.options)
        if changed <= ANNOUNCE_OPTIONS:
            # announcements (and their mute switches) follow at once: nothing to reload
            announcer.async_update_options(dict(entry.options))
            async_dispatcher_send(hass, signal_announcements(entry.entry_id))
            return
        await hass.config_entries.async_reload(entry.entry_id)

    entry.async_on_unload(entry.add_update_listener(_async_entry_updated))
    return True


async def async_unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Remove the entities; the subscriptions go with ``async_on_unload``."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """The bridge was deleted: its repair issues go too."""
    async_clear_model_issues(hass, entry.entry_id)


async def async_remove_config_entry_device(
    _hass: HomeAssistant, entry: ConfigEntry, device: DeviceEntry
) -> bool:
    """The device page offers Delete only for cameras (and group members) the site no longer has.

    The bridge device, the devices of bridges heard of and of cameras in their latest infos stay
    (they would come straight back); a camera that left, even while Home Assistant was down, can
    go. Until every bridge has said which cameras it has, nothing is deleted.
    """
    data: ImageToTextData | None = getattr(entry, "runtime_data", None)
    if data is None or not data.hub.bridges.complete:
        return False
    hub = data.hub
    present = {camera_identifier(hub.site_id, camera) for camera in hub.cameras}
    present |= {member_identifier(hub.site_id, member) for member in hub.bridges.members}
    ours = {identifier for identifier in device.identifiers if identifier[0] == DOMAIN}
    return bool(ours) and not ours & (present | {bridge_identifier(hub.site_id)})

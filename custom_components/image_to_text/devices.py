"""The site's devices: the bridge device every entry has, and one device per bridge of a group.

A single bridge is the site's bridge device, as it always was (its ids and entity ids never
change). Bridges of a group (``share`` in their info) each get a device of their own, named from
their ``bridge_id``, with their version, linked to the site's device with ``via_device``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr

from .const import DOMAIN, bridge_identifier, member_identifier

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .bridges import BridgeSet, BridgeStatus

MANUFACTURER = "image-to-text"


def bridge_device_info(base_topic: str, site_id: str) -> dict[str, Any]:
    """Keyword arguments for the site's bridge device in the device registry."""
    return {
        "identifiers": {bridge_identifier(site_id)},
        "name": f"Image to text bridge ({base_topic})"
        if base_topic != DOMAIN
        else "Image to text bridge",
        "manufacturer": MANUFACTURER,
        "model": "MQTT bridge",
    }


def member_device_name(bridge_id: str) -> str:
    """A group member's device name: ``Image to text bridge nuc``."""
    return f"Image to text bridge {bridge_id}"


def _version(bridge: BridgeStatus) -> str | None:
    version = (bridge.info or {}).get("version")
    return version if isinstance(version, str) else None


@callback
def async_update_bridge_devices(
    hass: HomeAssistant, entry_id: str, site_id: str, bridges: BridgeSet
) -> None:
    """Keep the bridge device's version, and a device for each bridge of a group."""
    registry = dr.async_get(hass)
    for bridge in bridges.all():
        version = _version(bridge)
        if not bridge.shared:
            device = registry.async_get_device(identifiers={bridge_identifier(site_id)})
            if device is not None and version is not None and device.sw_version != version:
                registry.async_update_device(device.id, sw_version=version)
            continue
        share = (bridge.info or {}).get("share")
        registry.async_get_or_create(
            config_entry_id=entry_id,
            identifiers={member_identifier(site_id, bridge.name)},
            name=member_device_name(bridge.name),
            manufacturer=MANUFACTURER,
            model=f"MQTT bridge, group {share}",
            sw_version=version,
            via_device=bridge_identifier(site_id),
        )

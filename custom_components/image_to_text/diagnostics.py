"""Diagnostics of a config entry: what the bridge said, with anything secret or bulky removed.

Credentials, URLs and base64 images are redacted; JPEG frames are described by their size only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.diagnostics import async_redact_data

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant

TO_REDACT = {
    "password",
    "username",
    "token",
    "access_token",
    "api_key",
    "url",
    "image",
    "image_url",
    "entity_picture",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant,
    entry: ConfigEntry,
) -> dict[str, Any]:
    """The entry, its bridges, their info and counters, and the latest results, images, errors."""
    hub = entry.runtime_data.hub
    info = hub.info or {}
    data = {
        "entry": {
            "title": entry.title,
            "data": dict(entry.data),
            "options": dict(entry.options),
        },
        "bridge": {
            "base_topic": hub.base_topic,
            "site_id": hub.site_id,
            "online": hub.online,
            "ignored_payloads": hub.ignored_payloads,
        },
        "bridges": [
            {
                "bridge_id": bridge.name,
                "topics": "legacy" if bridge.bridge_id is None else "own",
                "share": (bridge.info or {}).get("share"),
                "online": bridge.online,
                "state": {True: "online", False: "offline", None: None}[bridge.state],
                "version": (bridge.info or {}).get("version"),
                "cameras": sorted(bridge.cameras()),
                "published_at": (bridge.info or {}).get("published_at"),
            }
            for bridge in hub.bridges.all()
        ],
        "info": info,
        "counters": info.get("counters", {}),
        "last_results": {
            f"{camera}/{task}": result for (camera, task), result in hub.last_result.items()
        },
        "last_images": {
            f"{camera}/{task}": {
                "bytes": len(received.jpeg),
                "received_at": received.received_at.isoformat(),
            }
            for (camera, task), received in hub.last_image.items()
        },
        "last_errors": dict(hub.last_error),
    }
    return async_redact_data(data, TO_REDACT)

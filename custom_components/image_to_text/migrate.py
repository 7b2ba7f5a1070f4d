"""Unique ids and device identifiers that outlive a change of scheme, base topic or bridge id.

History, Energy statistics, names and areas hang on unique ids; they are rewritten in place, never
dropped. Version 1 entries joined the base topic, camera, task and kind with ``_`` (ambiguous:
base ``home`` + camera ``garden_door`` read the same as base ``home_garden`` + camera ``door``);
version 2 uses the bridge's ``bridge_id`` and ``/`` (see const.py). Within one entry the version 1
ids can still be read: the base topic is known and each camera entity's device names its camera.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from .const import (
    BRIDGE_PART,
    CONF_BASE_TOPIC,
    DOMAIN,
    MEMBERS_PART,
    bridge_identifier,
    bridge_unique_id,
    camera_identifier,
    entity_unique_id,
)

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant

_LOGGER = logging.getLogger(__name__)

CURRENT_VERSION = 2
_HEALTH = "health_"
_KEYWORD = "_keyword_"


async def async_migrate_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Bring an entry written by an older version to the current one."""
    if entry.version > CURRENT_VERSION:
        return False  # a newer version of the integration wrote it; do not guess
    if entry.version == 1:
        base = str(entry.data[CONF_BASE_TOPIC])
        migrate_v1_ids(hass, entry, base, base)
        hass.config_entries.async_update_entry(entry, version=CURRENT_VERSION)
        _LOGGER.info("Image to text bridge %s: unique ids moved to its bridge id", base)
    return True


def _v1_task_and_kind(rest: str) -> tuple[str, str] | None:
    """``caption_text`` → (caption, text); ``health_latency``; ``caption_keyword_person``."""
    if rest.startswith(_HEALTH):
        return "health", rest[len(_HEALTH) :]
    if _KEYWORD in rest:
        task, slug = rest.split(_KEYWORD, 1)
        return task, f"keyword_{slug}"
    task, _, kind = rest.rpartition("_")
    return (task, kind) if task and kind else None


def migrate_v1_ids(hass: HomeAssistant, entry: ConfigEntry, base: str, bridge_id: str) -> None:
    """Rewrite the ``<base>_...`` ids of one version 1 entry to ``<bridge_id>/...``."""
    devices = dr.async_get(hass)
    cameras: dict[str, str] = {}  # device id -> camera
    for device in dr.async_entries_for_config_entry(devices, entry.entry_id):
        old = {ident for ident in device.identifiers if ident[0] == DOMAIN}
        new = set(device.identifiers) - old
        for _, value in old:
            if value == f"{base}_{BRIDGE_PART}":
                new.add(bridge_identifier(bridge_id))
            elif value.startswith(f"{base}_"):
                camera = value[len(base) + 1 :]
                cameras[device.id] = camera
                new.add(camera_identifier(bridge_id, camera))
            else:
                new.add((DOMAIN, value))
        if new != set(device.identifiers):
            devices.async_update_device(device.id, new_identifiers=new)

    entities = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(entities, entry.entry_id):
        new_id = _v1_entity_id(entity, base, bridge_id, cameras)
        if new_id is None or new_id == entity.unique_id:
            continue
        if entities.async_get_entity_id(entity.domain, DOMAIN, new_id) is not None:
            _LOGGER.warning("Not moving %s to %s: that id is taken", entity.entity_id, new_id)
            continue
        entities.async_update_entity(entity.entity_id, new_unique_id=new_id)


def _v1_entity_id(
    entity: er.RegistryEntry, base: str, bridge_id: str, cameras: dict[str, str]
) -> str | None:
    old = entity.unique_id
    if old == f"{base}_{BRIDGE_PART}_connectivity":
        return bridge_unique_id(bridge_id, "connectivity")
    camera = cameras.get(entity.device_id or "")
    prefix = f"{base}_{camera}_"
    if camera is None or not old.startswith(prefix):
        _LOGGER.warning(
            "Leaving %s (unique id %s) as it is: not ours to read", entity.entity_id, old
        )
        return None
    parts = _v1_task_and_kind(old[len(prefix) :])
    return None if parts is None else entity_unique_id(bridge_id, camera, *parts)


def known_bridge_id(hass: HomeAssistant, entry: ConfigEntry) -> str | None:
    """The site id this entry's ids use: its bridge device's identifier says it."""
    suffix = f"/{BRIDGE_PART}"
    member = f"/{MEMBERS_PART}"  # ``<site>/bridges/bridge``: a group member named "bridge"
    for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id):
        for domain, value in device.identifiers:
            site = value[: -len(suffix)]
            if domain == DOMAIN and value.endswith(suffix) and site and not site.endswith(member):
                return site
    return None


def rekey(hass: HomeAssistant, entry: ConfigEntry, old: str, new: str) -> bool:
    """Move this entry's ids from bridge id ``old`` to ``new``; False if ``new`` is taken."""
    devices = dr.async_get(hass)
    taken = devices.async_get_device(identifiers={bridge_identifier(new)})
    if taken is not None and entry.entry_id not in taken.config_entries:
        return False
    for device in dr.async_entries_for_config_entry(devices, entry.entry_id):
        identifiers = {
            (domain, f"{new}/{value[len(old) + 1 :]}")
            if domain == DOMAIN and value.startswith(f"{old}/")
            else (domain, value)
            for domain, value in device.identifiers
        }
        if identifiers != set(device.identifiers):
            devices.async_update_device(device.id, new_identifiers=identifiers)
    entities = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(entities, entry.entry_id):
        if entity.unique_id.startswith(f"{old}/"):
            new_id = f"{new}/{entity.unique_id[len(old) + 1 :]}"
            entities.async_update_entity(entity.entity_id, new_unique_id=new_id)
    return True

"""Devices a user can rely on: a camera that leaves the bridge keeps its device until deleted.

A device carries what the user gave it (its name, area, the meter's Energy link), so nothing the
bridge says deletes it; the device page offers Delete for a camera the bridge no longer has,
including one that left while Home Assistant was down, and refuses it for the bridge and for
cameras it still has.
"""

from __future__ import annotations

import json
from typing import Any

from conftest import BASE, load_protocol_fixture
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.loader import async_get_integration
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

DOMAIN = "image_to_text"


def _device(hass: HomeAssistant, name: str) -> dr.DeviceEntry:
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{BASE}/{name}")})
    assert device is not None, name
    return device


async def _delete_from_device_page(
    hass: HomeAssistant, entry: ConfigEntry, device: dr.DeviceEntry
) -> bool:
    """What the device page's Delete does (the ``config/device_registry/remove_config_entry``
    command): ask the integration, and only if it agrees take the entry off the device."""
    component = (await async_get_integration(hass, DOMAIN)).get_component()
    allowed = bool(await component.async_remove_config_entry_device(hass, entry, device))
    if allowed:
        dr.async_get(hass).async_update_device(device.id, remove_config_entry_id=entry.entry_id)
        await hass.async_block_till_done()
    return allowed


async def test_a_camera_that_left_can_be_deleted_and_takes_its_entities(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge()
    info = load_protocol_fixture("info")
    del info["cameras"]["driveway"]
    async_fire_mqtt_message(hass, f"{BASE}/bridge/info", json.dumps(info))
    await hass.async_block_till_done()
    driveway = _device(hass, "driveway")
    assert hass.states.get("sensor.driveway_caption").state == STATE_UNAVAILABLE

    response = await _delete_from_device_page(hass, entry, driveway)

    assert response
    assert dr.async_get(hass).async_get(driveway.id) is None
    assert hass.states.get("sensor.driveway_caption") is None
    # it comes back after all: its device and entities again
    async_fire_mqtt_message(hass, f"{BASE}/bridge/info", json.dumps(load_protocol_fixture("info")))
    await hass.async_block_till_done()
    assert _device(hass, "driveway")
    assert hass.states.get("sensor.driveway_caption").state != STATE_UNAVAILABLE


async def test_a_camera_the_bridge_still_has_cannot_be_deleted(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge()

    response = await _delete_from_device_page(hass, entry, _device(hass, "driveway"))

    assert not response
    assert hass.states.get("sensor.driveway_caption").state != STATE_UNAVAILABLE


async def test_the_bridge_device_cannot_be_deleted(hass: HomeAssistant, setup_bridge: Any) -> None:
    entry = await setup_bridge()

    response = await _delete_from_device_page(hass, entry, _device(hass, "bridge"))

    assert not response


async def test_a_camera_that_left_while_home_assistant_was_down_is_recognised_at_start(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge(online=False)
    # the device registry remembers a camera from before; the bridge no longer has it
    attic = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, f"{BASE}/attic")}, name="Attic"
    )
    refused = await _delete_from_device_page(hass, entry, attic)
    assert not refused, "nothing is deleted before the bridge says what it has"

    async_fire_mqtt_message(hass, f"{BASE}/bridge/state", "online", retain=True)
    info = json.dumps(load_protocol_fixture("info"))
    async_fire_mqtt_message(hass, f"{BASE}/bridge/info", info, retain=True)
    await hass.async_block_till_done()
    response = await _delete_from_device_page(hass, entry, attic)

    assert response
    assert dr.async_get(hass).async_get(attic.id) is None

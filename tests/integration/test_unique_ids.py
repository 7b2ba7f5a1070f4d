"""Unique ids a user's history hangs on: from the bridge's id, unambiguous, moved and never lost.

Ids are ``<bridge_id>/<camera>/<task>/<kind>``. Ids written by the first version (the base topic,
camera, task and kind joined with ``_``) are moved in place, so entity ids, names, history and
Energy statistics stay; so are the ids when the bridge reports its own id or the base topic
changes through the reconfigure flow.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from conftest import BASE, load_protocol_fixture
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

DOMAIN = "image_to_text"


def _info(base: str, bridge_id: str, cameras: dict[str, list[str]]) -> str:
    info = {**load_protocol_fixture("info"), "base_topic": base, "bridge_id": bridge_id}
    info["cameras"] = {name: {"topic": f"cams/{name}", "tasks": t} for name, t in cameras.items()}
    info["counters"] = {}
    return json.dumps(info)


async def _bridge_online(hass: HomeAssistant, base: str, info: str) -> None:
    async_fire_mqtt_message(hass, f"{base}/bridge/state", "online", retain=True)
    async_fire_mqtt_message(hass, f"{base}/bridge/info", info, retain=True)
    await hass.async_block_till_done()


def _ids(hass: HomeAssistant, entry_id: str) -> dict[str, str]:
    registry = er.async_get(hass)
    return {e.entity_id: e.unique_id for e in er.async_entries_for_config_entry(registry, entry_id)}


async def test_two_bridges_whose_old_ids_read_alike_get_distinct_ids(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    entries = {}
    for base, camera in (("home", "garden_door"), ("home_garden", "door")):
        entry = MockConfigEntry(domain=DOMAIN, data={"base_topic": base}, unique_id=base, version=2)
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await _bridge_online(hass, base, _info(base, base, {camera: ["caption"]}))
        entries[base] = entry.entry_id

    assert (
        _ids(hass, entries["home"])["sensor.garden_door_caption"] == "home/garden_door/caption/text"
    )
    assert (
        _ids(hass, entries["home_garden"])["sensor.door_caption"] == "home_garden/door/caption/text"
    )
    devices = dr.async_get(hass)
    assert devices.async_get_device(identifiers={(DOMAIN, "home/garden_door")})
    assert devices.async_get_device(identifiers={(DOMAIN, "home_garden/door")})


async def test_ids_of_the_first_version_are_moved_keeping_every_entity(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={"base_topic": "home"},
        unique_id="home",
        version=1,
        options={"keywords": ["person"]},
    )
    entry.add_to_hass(hass)
    devices, entities = dr.async_get(hass), er.async_get(hass)
    bridge = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, "home_bridge")}
    )
    door = devices.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, "home_garden_door")}
    )
    old = {
        ("sensor", "home_garden_door_caption_text", door.id): "sensor.garden_door_caption",
        ("sensor", "home_garden_door_health_latency", door.id): "sensor.garden_door_latency",
        ("event", "home_garden_door_caption_event", door.id): "event.garden_door_caption",
        ("binary_sensor", "home_garden_door_caption_keyword_person", door.id): (
            "binary_sensor.garden_door_keyword_person"
        ),
        ("binary_sensor", "home_bridge_connectivity", bridge.id): "binary_sensor.home_bridge",
    }
    for (domain, unique_id, device_id), entity_id in old.items():
        entities.async_get_or_create(
            domain,
            DOMAIN,
            unique_id,
            config_entry=entry,
            device_id=device_id,
            suggested_object_id=entity_id.split(".", 1)[1],
        )

    assert await hass.config_entries.async_setup(entry.entry_id)
    await _bridge_online(hass, "home", _info("home", "home", {"garden_door": ["caption"]}))

    assert entry.version == 2
    ids = _ids(hass, entry.entry_id)
    assert ids["sensor.garden_door_caption"] == "home/garden_door/caption/text"
    assert ids["sensor.garden_door_latency"] == "home/garden_door/health/latency"
    assert ids["event.garden_door_caption"] == "home/garden_door/caption/event"
    assert (
        ids["binary_sensor.garden_door_keyword_person"] == "home/garden_door/caption/keyword_person"
    )
    assert ids["binary_sensor.home_bridge"] == "home/bridge/connectivity"
    assert not [entity_id for entity_id in ids if entity_id.endswith("_2")]
    assert devices.async_get(door.id).identifiers == {(DOMAIN, "home/garden_door")}
    assert hass.states.get("binary_sensor.home_bridge").state == "on"


async def test_a_bridge_with_its_own_id_moves_the_ids_and_keeps_the_entities(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge()
    before = _ids(hass, entry.entry_id)
    assert before["sensor.front_door_caption"] == f"{BASE}/front_door/caption/text"

    info = {**load_protocol_fixture("info"), "bridge_id": "house-1"}
    async_fire_mqtt_message(hass, f"{BASE}/bridge/info", json.dumps(info))
    await hass.async_block_till_done()

    after = _ids(hass, entry.entry_id)
    assert set(after) == set(before)
    assert after["sensor.front_door_caption"] == "house-1/front_door/caption/text"
    assert after["binary_sensor.image_to_text_bridge_connectivity"] == "house-1/bridge/connectivity"
    assert all(unique_id.startswith("house-1/") for unique_id in after.values())
    assert hass.states.get("sensor.front_door_caption").state != "unavailable"


async def test_a_second_bridge_claiming_an_id_in_use_keeps_its_own(
    hass: HomeAssistant, setup_bridge: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await setup_bridge()
    garage = MockConfigEntry(domain=DOMAIN, data={"base_topic": "garage"}, unique_id="garage")
    garage.add_to_hass(hass)
    assert await hass.config_entries.async_setup(garage.entry_id)

    with caplog.at_level(logging.WARNING):
        await _bridge_online(hass, "garage", _info("garage", BASE, {"car": ["caption"]}))

    assert _ids(hass, garage.entry_id)["sensor.car_caption"] == "garage/car/caption/text"
    assert "which another bridge already has" in caplog.text


async def test_the_reconfigure_flow_changes_the_base_topic_keeping_entities_and_history(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge()
    before = _ids(hass, entry.entry_id)

    flow = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": "reconfigure", "entry_id": entry.entry_id}
    )
    assert flow["type"] == FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"base_topic": "house/itt"}
    )
    await hass.async_block_till_done()
    assert result["type"] == FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data["base_topic"] == "house/itt"
    assert entry.unique_id == "house/itt"

    # the bridge answers on its new base topic, with its default id (the base topic)
    info = {**load_protocol_fixture("info"), "base_topic": "house/itt", "bridge_id": "house/itt"}
    await _bridge_online(hass, "house/itt", json.dumps(info))

    after = _ids(hass, entry.entry_id)
    assert set(after) == set(before)
    assert after["sensor.front_door_caption"] == "house/itt/front_door/caption/text"
    assert hass.states.get("sensor.front_door_caption").state != "unavailable"


async def test_a_mistyped_new_base_topic_is_refused(hass: HomeAssistant, setup_bridge: Any) -> None:
    entry = await setup_bridge()
    flow = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": "reconfigure", "entry_id": entry.entry_id}
    )
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"base_topic": "house/+"}
    )
    assert result["type"] == FlowResultType.FORM
    assert result["errors"] == {"base_topic": "invalid_topic"}

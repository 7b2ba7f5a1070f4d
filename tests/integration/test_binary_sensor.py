"""Binary sensors: the bridge's connectivity, availability of everything, keyword sensors."""

from __future__ import annotations

import inspect
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from conftest import BASE, load_protocol_fixture
from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    async_fire_mqtt_message,
    async_fire_time_changed,
)

try:  # paho 2's reason codes, faked by the harness of HA 2024.4+; 2024.3 passes integers
    from pytest_homeassistant_custom_component.common import MockMqttReasonCode
except ImportError:  # pragma: no cover - only on the older core
    MockMqttReasonCode = None

CONNECTIVITY = "binary_sensor.image_to_text_bridge_connectivity"
KEYWORDS = {"keywords": ["person", "parcel|package"], "keyword_hold": 30}


async def _caption(hass: HomeAssistant, camera: str, text: str) -> None:
    result = {**load_protocol_fixture("caption_result"), "camera": camera, "text": text}
    async_fire_mqtt_message(hass, f"{BASE}/{camera}/caption", json.dumps(result))
    await hass.async_block_till_done()


async def _state(hass: HomeAssistant, payload: str) -> None:
    async_fire_mqtt_message(hass, f"{BASE}/bridge/state", payload)
    await hass.async_block_till_done()


def _entity_ids(hass: HomeAssistant, entry_id: str) -> list[str]:
    """The entry's enabled entities (diagnostic counters are disabled by default)."""
    return [
        entity.entity_id
        for entity in er.async_entries_for_config_entry(er.async_get(hass), entry_id)
        if not entity.disabled
    ]


async def test_the_bridge_connectivity_sensor_follows_its_last_will(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge()
    registry = er.async_get(hass)
    assert registry.async_get(CONNECTIVITY).unique_id == f"{BASE}/bridge/connectivity"
    assert hass.states.get(CONNECTIVITY).state == STATE_ON
    assert hass.states.get(CONNECTIVITY).attributes["device_class"] == "connectivity"

    await _state(hass, "offline")
    assert hass.states.get(CONNECTIVITY).state == STATE_OFF

    await _state(hass, "online")
    assert hass.states.get(CONNECTIVITY).state == STATE_ON
    assert entry.entry_id


async def test_every_camera_entity_is_unavailable_while_the_bridge_is_offline(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge(KEYWORDS)
    # the connectivity says the bridge is offline; a mute switch works whether it is or not
    camera_entities = [
        e
        for e in _entity_ids(hass, entry.entry_id)
        if e != CONNECTIVITY and not e.startswith("switch.")
    ]
    assert len(camera_entities) > 10
    assert all(hass.states.get(e).state != STATE_UNAVAILABLE for e in camera_entities)

    await _state(hass, "offline")
    assert [e for e in camera_entities if hass.states.get(e).state != STATE_UNAVAILABLE] == []

    await _state(hass, "online")
    assert all(hass.states.get(e).state != STATE_UNAVAILABLE for e in camera_entities)


async def test_losing_and_regaining_the_bridge_is_logged_once_each(
    hass: HomeAssistant, setup_bridge: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await setup_bridge()
    caplog.set_level(logging.INFO, logger="custom_components.image_to_text")
    caplog.clear()

    await _state(hass, "offline")
    await _state(hass, "offline")
    await _state(hass, "online")
    await _state(hass, "online")

    messages = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components")]
    assert messages == [
        "Image to text bridge image_to_text is unavailable: it published 'offline'",
        "Image to text bridge image_to_text is back online",
    ]


def _paho_v2(client: Any) -> bool:
    """Whether HA's MQTT client speaks paho 2's callbacks (newer cores): reason code objects.

    paho 1's ``on_disconnect(client, userdata, rc)`` has no disconnect flags before the code.
    """
    return "reason_code" in inspect.signature(client.on_disconnect).parameters


def _broker_drops(client: Any) -> None:
    """paho tells Home Assistant the connection to the broker was lost."""
    if _paho_v2(client):
        client.on_disconnect(None, None, None, MockMqttReasonCode())
    else:
        client.on_disconnect(None, None, 0)


def _broker_returns(client: Any) -> None:
    """paho tells Home Assistant it is connected again."""
    client.on_connect(None, None, None, MockMqttReasonCode() if _paho_v2(client) else 0)


async def test_entities_are_unavailable_while_home_assistant_has_lost_the_broker(
    hass: HomeAssistant, setup_bridge: Any, mqtt_client_mock: Any
) -> None:
    await setup_bridge()

    _broker_drops(mqtt_client_mock)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.front_door_caption").state == STATE_UNAVAILABLE
    assert hass.states.get(CONNECTIVITY).state == STATE_OFF

    _broker_returns(mqtt_client_mock)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.front_door_caption").state != STATE_UNAVAILABLE
    assert hass.states.get(CONNECTIVITY).state == STATE_ON


async def test_a_caption_naming_a_person_turns_the_person_keyword_on_for_the_hold_time(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge(KEYWORDS)
    sensor = "binary_sensor.front_door_keyword_person"
    assert hass.states.get(sensor).state == STATE_OFF

    await _caption(hass, "front_door", "a Person standing at the door")
    assert hass.states.get(sensor).state == STATE_ON
    assert hass.states.get(sensor).attributes["caption"] == "a Person standing at the door"

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=20))
    await hass.async_block_till_done()
    assert hass.states.get(sensor).state == STATE_ON

    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=31))
    await hass.async_block_till_done()
    assert hass.states.get(sensor).state == STATE_OFF


async def test_a_new_matching_caption_restarts_the_hold(
    hass: HomeAssistant, setup_bridge: Any, freezer: FrozenDateTimeFactory
) -> None:
    await setup_bridge(KEYWORDS)
    sensor = "binary_sensor.front_door_keyword_person"

    await _caption(hass, "front_door", "a person at the door")
    freezer.tick(timedelta(seconds=20))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    await _caption(hass, "front_door", "a person walking away")
    freezer.tick(timedelta(seconds=20))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(sensor).state == STATE_ON

    freezer.tick(timedelta(seconds=11))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert hass.states.get(sensor).state == STATE_OFF


async def test_a_caption_that_no_longer_matches_turns_the_keyword_off_at_once(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge(KEYWORDS)
    sensor = "binary_sensor.front_door_keyword_person"

    await _caption(hass, "front_door", "a person at the door")
    await _caption(hass, "front_door", "an empty porch")

    assert hass.states.get(sensor).state == STATE_OFF


async def test_either_alternative_of_parcel_or_package_matches_whole_words_only(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge(KEYWORDS)
    sensor = "binary_sensor.front_door_keyword_parcel_or_package"

    await _caption(hass, "front_door", "a PACKAGE on the step")
    assert hass.states.get(sensor).state == STATE_ON
    await _caption(hass, "front_door", "packages everywhere")
    assert hass.states.get(sensor).state == STATE_OFF
    await _caption(hass, "front_door", load_protocol_fixture("caption_result")["text"])
    assert hass.states.get(sensor).state == STATE_ON


async def test_a_keyword_sensor_hears_only_its_own_camera(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge(KEYWORDS)

    await _caption(hass, "driveway", "a person on the driveway")

    assert hass.states.get("binary_sensor.driveway_keyword_person").state == STATE_ON
    assert hass.states.get("binary_sensor.front_door_keyword_person").state == STATE_OFF
    # the gas meter has no captions, so no keyword sensors
    assert hass.states.get("binary_sensor.gas_meter_keyword_person") is None


async def test_a_keyword_removed_from_the_options_loses_its_sensors(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge(KEYWORDS)
    assert er.async_get(hass).async_get("binary_sensor.front_door_keyword_person") is not None

    hass.config_entries.async_update_entry(entry, options={"keywords": ["parcel|package"]})
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, f"{BASE}/bridge/state", "online", retain=True)
    async_fire_mqtt_message(
        hass, f"{BASE}/bridge/info", json.dumps(load_protocol_fixture("info")), retain=True
    )
    await hass.async_block_till_done()

    assert er.async_get(hass).async_get("binary_sensor.front_door_keyword_person") is None
    assert hass.states.get("binary_sensor.front_door_keyword_parcel_or_package") is not None


async def test_a_camera_added_to_the_bridge_gets_entities_and_one_that_left_keeps_its_device(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge(KEYWORDS)
    info = load_protocol_fixture("info")
    del info["cameras"]["driveway"]
    info["cameras"]["back_yard"] = {"topic": "cameras/back_yard", "tasks": ["caption"]}

    async_fire_mqtt_message(hass, f"{BASE}/bridge/info", json.dumps(info))
    await hass.async_block_till_done()

    # the driveway's entities stay, unavailable, with its device (names, areas, Energy links)
    driveway = [e for e in _entity_ids(hass, entry.entry_id) if "driveway" in e]
    assert "sensor.driveway_caption" in driveway
    for entity_id in driveway:
        assert hass.states.get(entity_id).state == STATE_UNAVAILABLE, entity_id
    assert hass.states.get("sensor.back_yard_caption") is not None
    assert hass.states.get("binary_sensor.back_yard_keyword_person") is not None
    devices = dr.async_get(hass)
    assert devices.async_get_device(identifiers={("image_to_text", f"{BASE}/driveway")})
    assert devices.async_get_device(identifiers={("image_to_text", f"{BASE}/back_yard")})

    # the driveway comes back: the same entities are available again
    async_fire_mqtt_message(hass, f"{BASE}/bridge/info", json.dumps(load_protocol_fixture("info")))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.driveway_caption").state != STATE_UNAVAILABLE
    assert [e for e in _entity_ids(hass, entry.entry_id) if "driveway" in e] == driveway


async def test_a_task_dropped_from_a_camera_makes_only_that_tasks_entities_unavailable(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    info = load_protocol_fixture("info")
    info["cameras"]["driveway"]["tasks"] = ["caption"]

    async_fire_mqtt_message(hass, f"{BASE}/bridge/info", json.dumps(info))
    await hass.async_block_till_done()

    for entity_id in ("sensor.driveway_ocr", "event.driveway_ocr", "image.driveway_ocr"):
        assert hass.states.get(entity_id).state == STATE_UNAVAILABLE, entity_id
    assert hass.states.get("sensor.driveway_caption").state != STATE_UNAVAILABLE


async def test_a_keyword_read_by_ocr_turns_its_text_keyword_sensor_on(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge({"keywords": ["deliveries"], "keyword_hold": 30})
    sensor = "binary_sensor.driveway_text_keyword_deliveries"
    assert hass.states.get(sensor).state == STATE_OFF

    result = load_protocol_fixture("ocr_result")  # "NO PARKING\nDELIVERIES ONLY"
    async_fire_mqtt_message(hass, f"{BASE}/driveway/ocr", json.dumps(result))
    await hass.async_block_till_done()

    state = hass.states.get(sensor)
    assert state.state == STATE_ON
    assert state.attributes["text"] == result["text"]
    assert hass.states.get("binary_sensor.driveway_keyword_deliveries").state == STATE_OFF
    assert hass.states.get("binary_sensor.front_door_text_keyword_deliveries") is None

"""Sensors: what the bridge reads from each camera, as Home Assistant shows it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import BASE, load_protocol_fixture
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message


async def test_a_caption_published_by_the_bridge_becomes_the_front_door_caption_sensor(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    result = load_protocol_fixture("caption_result")
    assert hass.states.get("sensor.front_door_caption").state == STATE_UNKNOWN

    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(result))
    await hass.async_block_till_done()

    state = hass.states.get("sensor.front_door_caption")
    assert state.state == result["text"]
    for key in ("camera", "model", "latency_ms", "frame_id", "captured_at"):
        assert state.attributes[key] == result[key]
    assert "full_text" not in state.attributes


async def test_a_long_caption_is_cut_to_255_characters_and_kept_whole_in_full_text(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    long_text = "a very long caption " * 20
    result = {**load_protocol_fixture("caption_result"), "text": long_text}

    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(result))
    await hass.async_block_till_done()

    state = hass.states.get("sensor.front_door_caption")
    assert state.state == long_text[:255]
    assert state.attributes["full_text"] == long_text


async def test_ocr_on_the_driveway_shows_its_lines(hass: HomeAssistant, setup_bridge: Any) -> None:
    await setup_bridge()
    result = load_protocol_fixture("ocr_result")

    async_fire_mqtt_message(hass, f"{BASE}/driveway/ocr", json.dumps(result))
    await hass.async_block_till_done()

    state = hass.states.get("sensor.driveway_ocr")
    assert state.state == "NO PARKING\nDELIVERIES ONLY"
    assert state.attributes["lines"] == result["lines"]
    assert state.attributes["model"] == "rapidocr"
    # the driveway's caption sensor is a different entity and saw nothing
    assert hass.states.get("sensor.driveway_caption").state == STATE_UNKNOWN


async def test_a_gas_meter_reading_is_a_numeric_total_increasing_sensor_in_cubic_metres(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    result = load_protocol_fixture("meter_result")

    async_fire_mqtt_message(hass, f"{BASE}/gas_meter/meter", json.dumps(result))
    await hass.async_block_till_done()

    state = hass.states.get("sensor.gas_meter_meter")
    assert float(state.state) == result["value"]
    assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == "m³"
    assert state.attributes["device_class"] == SensorDeviceClass.GAS
    assert state.attributes["state_class"] == SensorStateClass.TOTAL_INCREASING
    assert state.attributes["raw"] == "01234567"
    assert state.attributes["digit_confidence"] == result["digit_confidence"]
    assert "confirmed_by" not in state.attributes


async def test_a_meter_reading_the_second_reader_vouched_for_says_so(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    result = load_protocol_fixture("meter_result")
    result["digit_confidence"][-1] = 0.88  # below the networks' own threshold
    result["confirmed_by"] = "ocr"

    async_fire_mqtt_message(hass, f"{BASE}/gas_meter/meter", json.dumps(result))
    await hass.async_block_till_done()

    state = hass.states.get("sensor.gas_meter_meter")
    assert float(state.state) == result["value"]
    assert state.attributes["confirmed_by"] == "ocr"


async def test_a_retained_result_restores_the_sensor_when_home_assistant_subscribes(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    result = load_protocol_fixture("caption_result")

    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(result), retain=True)
    await hass.async_block_till_done()

    assert hass.states.get("sensor.front_door_caption").state == result["text"]


@pytest.mark.usefixtures("diagnostics_enabled")
async def test_each_camera_reports_model_latency_and_frames_superseded_and_refused(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    registry = er.async_get(hass)

    latency = hass.states.get("sensor.front_door_model_latency")
    assert float(latency.state) == 412.7
    assert latency.attributes[ATTR_UNIT_OF_MEASUREMENT] == "ms"
    assert latency.attributes["state_class"] == SensorStateClass.MEASUREMENT
    assert hass.states.get("sensor.front_door_frames_superseded").state == "1"
    assert hass.states.get("sensor.gas_meter_frames_refused").state == "1"
    assert hass.states.get("sensor.driveway_frames_refused").state == "0"
    refused = registry.async_get("sensor.gas_meter_frames_refused")
    assert refused.entity_category == "diagnostic"
    assert refused.unique_id == f"{BASE}/gas_meter/health/refused"
    assert (
        hass.states.get("sensor.gas_meter_frames_refused").attributes["state_class"]
        == SensorStateClass.TOTAL_INCREASING
    )


@pytest.mark.usefixtures("diagnostics_enabled")
async def test_new_counters_in_the_bridges_info_update_the_health_sensors(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    info = load_protocol_fixture("info")
    info["counters"]["front_door"] = {**info["counters"]["front_door"], "superseded": 7}

    # a live update reaches a subscriber without the retain flag, as a broker delivers it
    async_fire_mqtt_message(hass, f"{BASE}/bridge/info", json.dumps(info))
    await hass.async_block_till_done()

    assert hass.states.get("sensor.front_door_frames_superseded").state == "7"


async def test_every_camera_is_a_device_behind_the_bridge_with_stable_unique_ids(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge()
    devices = dr.async_get(hass)
    entities = er.async_get(hass)

    bridge = devices.async_get_device(identifiers={("image_to_text", f"{BASE}/bridge")})
    front_door = devices.async_get_device(identifiers={("image_to_text", f"{BASE}/front_door")})
    assert bridge is not None
    assert front_door is not None
    assert front_door.name == "Front door"
    assert front_door.via_device_id == bridge.id
    assert bridge.sw_version == "0.1.0"
    caption = entities.async_get("sensor.front_door_caption")
    assert caption.unique_id == f"{BASE}/front_door/caption/text"
    assert caption.device_id == front_door.id
    assert caption.config_entry_id == entry.entry_id


async def test_sensors_are_unavailable_until_the_bridge_has_said_it_is_online(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge(online=False)
    assert hass.states.get("sensor.front_door_caption") is None

    async_fire_mqtt_message(
        hass, f"{BASE}/bridge/info", json.dumps(load_protocol_fixture("info")), retain=True
    )
    await hass.async_block_till_done()
    assert hass.states.get("sensor.front_door_caption").state == STATE_UNKNOWN

    async_fire_mqtt_message(hass, f"{BASE}/bridge/state", "offline", retain=True)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.front_door_caption").state == STATE_UNAVAILABLE


async def test_a_result_that_arrives_before_the_bridges_info_is_shown_once_the_camera_exists(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge(online=False)
    result = load_protocol_fixture("caption_result")
    async_fire_mqtt_message(hass, f"{BASE}/bridge/state", "online", retain=True)
    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(result), retain=True)
    await hass.async_block_till_done()

    async_fire_mqtt_message(
        hass, f"{BASE}/bridge/info", json.dumps(load_protocol_fixture("info")), retain=True
    )
    await hass.async_block_till_done()

    assert hass.states.get("sensor.front_door_caption").state == result["text"]


async def test_two_bridges_on_different_base_topics_do_not_hear_each_other(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    other = MockConfigEntry(
        domain="image_to_text", data={"base_topic": "garage"}, unique_id="garage"
    )
    other.add_to_hass(hass)
    assert await hass.config_entries.async_setup(other.entry_id)
    info = {**load_protocol_fixture("info"), "base_topic": "garage", "bridge_id": "garage"}
    info["cameras"] = {"front_door": {"topic": "garage/cam", "tasks": ["caption"]}}
    async_fire_mqtt_message(hass, "garage/bridge/state", "online", retain=True)
    async_fire_mqtt_message(hass, "garage/bridge/info", json.dumps(info), retain=True)
    await hass.async_block_till_done()
    result = load_protocol_fixture("caption_result")

    async_fire_mqtt_message(hass, "garage/front_door/caption", json.dumps(result))
    await hass.async_block_till_done()

    assert hass.states.get("sensor.front_door_caption").state == STATE_UNKNOWN
    assert hass.states.get("sensor.front_door_caption_2").state == result["text"]
    registry = er.async_get(hass)
    assert registry.async_get("sensor.front_door_caption_2").unique_id == (
        "garage/front_door/caption/text"
    )


async def test_a_meter_without_a_known_device_class_is_still_a_plain_numeric_sensor(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    info = load_protocol_fixture("info")
    info["cameras"]["gas_meter"]["meter"] = {"unit": None, "device_class": "banana"}
    await setup_bridge(info=info)
    result = {**load_protocol_fixture("meter_result"), "unit": None, "device_class": None}

    async_fire_mqtt_message(hass, f"{BASE}/gas_meter/meter", json.dumps(result))
    await hass.async_block_till_done()

    state = hass.states.get("sensor.gas_meter_meter")
    assert float(state.state) == 1234.567
    assert "device_class" not in state.attributes
    assert ATTR_UNIT_OF_MEASUREMENT not in state.attributes
    assert state.attributes["state_class"] == SensorStateClass.TOTAL_INCREASING


async def test_a_bridge_that_speaks_the_briefs_minimal_payloads_still_gives_sensors(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    """Info without "v" and only task lists; results with only camera, task, text (and value)."""
    info = {
        "version": "0.1.0",
        "cameras": {"porch": {"tasks": ["caption"]}, "gas": {"tasks": ["meter"]}},
    }
    await setup_bridge(info=info)

    async_fire_mqtt_message(
        hass,
        f"{BASE}/porch/caption",
        json.dumps({"camera": "porch", "task": "caption", "text": "a cat on the porch"}),
    )
    reading = {"camera": "gas", "task": "meter", "text": "0042.5", "value": 42.5}
    async_fire_mqtt_message(
        hass, f"{BASE}/gas/meter", json.dumps({**reading, "unit": "m³", "device_class": "gas"})
    )
    await hass.async_block_till_done()

    assert hass.states.get("sensor.porch_caption").state == "a cat on the porch"
    meter = hass.states.get("sensor.gas_meter")
    assert float(meter.state) == 42.5
    # the info named no unit: the reading's own unit and device class are used
    assert meter.attributes[ATTR_UNIT_OF_MEASUREMENT] == "m³"
    assert meter.attributes["device_class"] == SensorDeviceClass.GAS
    assert meter.attributes["state_class"] == SensorStateClass.TOTAL_INCREASING

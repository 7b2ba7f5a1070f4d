"""Event entities and the ``image_to_text_result`` bus event: one per new result."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import BASE, load_protocol_fixture
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

RESULTS = [
    ("caption_result", "event.front_door_caption"),
    ("ocr_result", "event.driveway_ocr"),
    ("meter_result", "event.gas_meter_meter"),
]


def _capture_bus_events(
    hass: HomeAssistant, event_type: str = "image_to_text_result"
) -> list[Event]:
    events: list[Event] = []

    @callback
    def _listener(event: Event) -> None:
        events.append(event)

    hass.bus.async_listen(event_type, _listener)
    return events


@pytest.mark.parametrize(("fixture", "entity_id"), RESULTS)
async def test_each_result_fires_the_cameras_event_entity_with_its_fields(
    hass: HomeAssistant, setup_bridge: Any, fixture: str, entity_id: str
) -> None:
    await setup_bridge()
    result = load_protocol_fixture(fixture)
    assert hass.states.get(entity_id).state == STATE_UNKNOWN

    async_fire_mqtt_message(hass, f"{BASE}/{result['camera']}/{result['task']}", json.dumps(result))
    await hass.async_block_till_done()

    state = hass.states.get(entity_id)
    assert state.state != STATE_UNKNOWN  # the time it fired
    assert state.attributes["event_type"] == "result"
    assert state.attributes["event_types"] == ["result"]
    for key, value in result.items():
        if key != "v":
            assert state.attributes[key] == value


@pytest.mark.parametrize(("fixture", "entity_id"), RESULTS)
async def test_each_result_is_an_image_to_text_result_event_on_the_bus(
    hass: HomeAssistant, setup_bridge: Any, fixture: str, entity_id: str
) -> None:
    entry = await setup_bridge()
    events = _capture_bus_events(hass)
    result = load_protocol_fixture(fixture)

    async_fire_mqtt_message(hass, f"{BASE}/{result['camera']}/{result['task']}", json.dumps(result))
    await hass.async_block_till_done()

    assert len(events) == 1
    device = dr.async_get(hass).async_get_device(
        identifiers={("image_to_text", f"{BASE}/{result['camera']}")}
    )
    assert events[0].data == {
        **result,
        "entry_id": entry.entry_id,
        "base_topic": BASE,
        "device_id": device.id,
    }
    assert entity_id


async def test_a_retained_result_replayed_on_subscribing_is_not_a_new_event(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    events = _capture_bus_events(hass)
    result = load_protocol_fixture("caption_result")

    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(result), retain=True)
    await hass.async_block_till_done()

    assert events == []
    assert hass.states.get("event.front_door_caption").state == STATE_UNKNOWN
    assert hass.states.get("sensor.front_door_caption").state == result["text"]


async def test_two_results_in_a_row_fire_twice(hass: HomeAssistant, setup_bridge: Any) -> None:
    await setup_bridge()
    events = _capture_bus_events(hass)
    result = load_protocol_fixture("caption_result")

    for text in ("a cat on the porch", "a dog on the porch"):
        payload = json.dumps({**result, "text": text})
        async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", payload)
        await hass.async_block_till_done()

    assert [event.data["text"] for event in events] == ["a cat on the porch", "a dog on the porch"]
    assert hass.states.get("event.front_door_caption").attributes["text"] == "a dog on the porch"


async def test_an_unchanged_scene_updates_the_sensor_but_fires_no_event(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    events = _capture_bus_events(hass)
    first = load_protocol_fixture("caption_result")
    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(first))
    await hass.async_block_till_done()
    fired = hass.states.get("event.front_door_caption").state

    again = {**first, "frame_id": "b" * 64, "unchanged": True, "unchanged_since": first["frame_id"]}
    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(again))
    await hass.async_block_till_done()

    assert len(events) == 1
    assert hass.states.get("event.front_door_caption").state == fired
    assert hass.states.get("sensor.front_door_caption").attributes["frame_id"] == "b" * 64


async def test_an_error_event_of_the_bridge_is_an_image_to_text_error_event_on_the_bus(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    errors = _capture_bus_events(hass, "image_to_text_error")
    error = load_protocol_fixture("meter_error")
    async_fire_mqtt_message(hass, f"{BASE}/gas_meter/error", json.dumps(error))
    await hass.async_block_till_done()

    assert len(errors) == 1
    assert errors[0].data["error"] == error["error"]
    assert errors[0].data["camera"] == "gas_meter"
    assert errors[0].data["device_id"] is not None

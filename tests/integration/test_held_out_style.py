"""The integration as someone who only read docs/protocol.md would try it, from scratch.

No helper of this suite is used: the bridge is added through the config flow with nothing but its
base topic, the "bridge" is a handful of MQTT messages built from the protocol's example payloads,
and the ``image_to_text.analyze`` action is answered by a stand-in that reads the request's ``id``
and ``reply_to`` the way the protocol describes.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from homeassistant.components import mqtt
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "protocol"
DOMAIN = "image_to_text"
BASE = "home/itt"


def example(name: str) -> dict[str, Any]:
    """An example payload of docs/protocol.md."""
    payload: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return payload


async def add_bridge_through_the_config_flow(hass: HomeAssistant) -> str:
    """The user types the base topic and nothing else; returns the entry id."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] == FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"base_topic": BASE})
    if result["type"] == FlowResultType.FORM:
        # No bridge answered yet (it comes online later in these stories): add it anyway.
        assert result["step_id"] == "no_answer"
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()
    assert result["type"] == FlowResultType.CREATE_ENTRY
    entry_id: str = result["result"].entry_id
    return entry_id


def bridge_comes_online(hass: HomeAssistant) -> None:
    """What the bridge publishes when it connects: retained state and info."""
    info = {**example("info"), "base_topic": BASE}
    async_fire_mqtt_message(hass, f"{BASE}/bridge/state", "online", retain=True)
    async_fire_mqtt_message(hass, f"{BASE}/bridge/info", json.dumps(info), retain=True)


def capture(hass: HomeAssistant, event_type: str) -> list[Event]:
    """Every bus event of one type from now on."""
    events: list[Event] = []

    @callback
    def _record(event: Event) -> None:
        events.append(event)

    hass.bus.async_listen(event_type, _record)
    return events


async def test_a_bridge_added_by_base_topic_turns_its_messages_into_entities(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    entry_id = await add_bridge_through_the_config_flow(hass)
    entry = hass.config_entries.async_get_entry(entry_id)
    assert entry is not None
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data == {"base_topic": BASE}

    bridge_comes_online(hass)
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.image_to_text_bridge_home_itt_connectivity").state == (
        STATE_ON
    )
    assert hass.states.get("sensor.front_door_caption").state == STATE_UNKNOWN

    results = capture(hass, "image_to_text_result")
    caption = {**example("caption_result"), "captured_at": dt_util.utcnow().isoformat()}
    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(caption))
    await hass.async_block_till_done()

    sensor = hass.states.get("sensor.front_door_caption")
    assert sensor.state == "a man holding a parcel standing at a front door"
    assert sensor.attributes["camera"] == "front_door"
    assert sensor.attributes["model"] == "Salesforce/blip-image-captioning-base"
    assert sensor.attributes["latency_ms"] == 412.7
    assert sensor.attributes["frame_id"] == caption["frame_id"]
    assert sensor.attributes["captured_at"] == caption["captured_at"]
    assert [event.data["text"] for event in results] == [caption["text"]]
    event_entity = hass.states.get("event.front_door_caption")
    assert event_entity.attributes["event_type"] == "result"
    assert event_entity.attributes["text"] == caption["text"]

    ocr = example("ocr_result")
    async_fire_mqtt_message(hass, f"{BASE}/driveway/ocr", json.dumps(ocr), retain=True)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.driveway_ocr").state == "NO PARKING\nDELIVERIES ONLY"

    # The broker hands its last will to a subscriber that is already listening without the
    # retain flag (Home Assistant passes a retained message on only once per topic).
    async_fire_mqtt_message(hass, f"{BASE}/bridge/state", "offline")
    await hass.async_block_till_done()
    assert hass.states.get("sensor.front_door_caption").state == STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.image_to_text_bridge_home_itt_connectivity").state == (
        STATE_OFF
    )


@pytest.mark.parametrize("retain", [False, True])
async def test_a_result_updates_the_sensor_whether_it_arrives_retained_or_not(
    hass: HomeAssistant, mqtt_mock: Any, retain: bool
) -> None:
    await add_bridge_through_the_config_flow(hass)
    bridge_comes_online(hass)
    await hass.async_block_till_done()

    meter = example("meter_result")
    async_fire_mqtt_message(hass, f"{BASE}/gas_meter/meter", json.dumps(meter), retain=retain)
    await hass.async_block_till_done()

    state = hass.states.get("sensor.gas_meter_meter")
    assert float(state.state) == meter["value"]
    assert state.attributes["unit_of_measurement"] == "m³"
    assert state.attributes["state_class"] == "total_increasing"


async def test_a_result_captured_before_home_assistant_listened_is_not_news(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    """The broker replays the retained result on subscribing: the sensor shows it, nothing fires."""
    await add_bridge_through_the_config_flow(hass)
    results = capture(hass, "image_to_text_result")
    bridge_comes_online(hass)
    old = example("caption_result")  # captured the day before this test runs
    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(old), retain=True)
    await hass.async_block_till_done()

    assert hass.states.get("sensor.front_door_caption").state == old["text"]
    assert results == []
    assert hass.states.get("event.front_door_caption").state == STATE_UNKNOWN


async def test_a_new_result_that_keeps_its_retain_flag_is_still_news(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    """Bridged brokers and MQTT 5 "retain as published" pass the flag on with live results."""
    await add_bridge_through_the_config_flow(hass)
    bridge_comes_online(hass)
    await hass.async_block_till_done()
    results = capture(hass, "image_to_text_result")

    caption = {**example("caption_result"), "captured_at": dt_util.utcnow().isoformat()}
    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(caption), retain=True)
    await hass.async_block_till_done()

    assert hass.states.get("sensor.front_door_caption").state == caption["text"]
    assert [event.data["frame_id"] for event in results] == [caption["frame_id"]]
    assert hass.states.get("event.front_door_caption").attributes["text"] == caption["text"]


async def test_analyze_returns_what_a_stand_in_bridge_replies(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await add_bridge_through_the_config_flow(hass)
    bridge_comes_online(hass)
    await hass.async_block_till_done()
    requests: list[dict[str, Any]] = []

    @callback
    def stand_in_bridge(msg: mqtt.ReceiveMessage) -> None:
        request = json.loads(msg.payload)
        requests.append(request)
        reply = {**example("caption_result"), "camera": "", "id": request["id"]}
        async_fire_mqtt_message(hass, request["reply_to"], json.dumps(reply))

    await mqtt.async_subscribe(hass, f"{BASE}/request", stand_in_bridge)

    response = await hass.services.async_call(
        DOMAIN,
        "analyze",
        {"url": "http://camera.local/snapshot.jpg", "task": "caption", "prompt": "a photo of"},
        blocking=True,
        return_response=True,
    )

    assert response["text"] == "a man holding a parcel standing at a front door"
    (request,) = requests
    assert request["task"] == "caption"
    assert request["url"] == "http://camera.local/snapshot.jpg"
    assert request["prompt"] == "a photo of"
    assert request["reply_to"].startswith(f"{BASE}/")
    assert set(request) == {"id", "reply_to", "task", "url", "prompt"}


async def test_analyze_without_an_answer_fails_with_a_home_assistant_error(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await add_bridge_through_the_config_flow(hass)
    bridge_comes_online(hass)
    await hass.async_block_till_done()

    with pytest.raises(HomeAssistantError):
        await hass.services.async_call(
            DOMAIN,
            "analyze",
            {"image": base64.b64encode(b"\xff\xd8\xff\xd9").decode(), "timeout": 0.1},
            blocking=True,
            return_response=True,
        )


async def test_adding_a_bridge_before_mqtt_is_set_up_is_refused_with_the_reason(
    hass: HomeAssistant,
) -> None:
    """Without Home Assistant's MQTT integration the flow stops and says what to set up first."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})

    assert result["type"] == FlowResultType.ABORT
    assert result["reason"] == "mqtt_not_configured"
    assert hass.config_entries.async_entries(DOMAIN) == []

"""Device triggers of a camera: "new caption" and "caption mentions a keyword" run automations."""

from __future__ import annotations

import json
from typing import Any

import pytest
import voluptuous_serialize
from ha_support import (
    BASE,
    DOMAIN,
    REPO,
    async_publish_caption,
    async_setup_bridge,
    camera_device,
    protocol_fixture,
)
from homeassistant.components.device_automation import (
    DeviceAutomationType,
    async_get_device_automation_platform,
    async_get_device_automations,
)
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    async_fire_mqtt_message,
    async_mock_service,
)


@pytest.fixture
def calls(hass: HomeAssistant) -> list[ServiceCall]:
    """What the test automations did."""
    return async_mock_service(hass, "test", "automation")


async def _automation(hass: HomeAssistant, trigger: dict[str, Any]) -> None:
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "trigger": trigger,
                "action": {
                    "service": "test.automation",
                    "data": {
                        "caption": "{{ trigger.caption }}",
                        "camera": "{{ trigger.camera }}",
                        "keyword": "{{ trigger.keyword }}",
                        "frame_id": "{{ trigger.event.data.frame_id }}",
                    },
                },
            }
        },
    )
    await hass.async_block_till_done()


async def test_a_captioning_camera_offers_both_triggers(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    door = camera_device(hass, "front_door")

    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, [door.id])

    offered = {(t["domain"], t["type"]) for t in triggers[door.id] if t["domain"] == DOMAIN}
    assert offered == {(DOMAIN, "new_caption"), (DOMAIN, "caption_matches")}


async def test_a_meter_camera_and_the_bridge_offer_no_caption_triggers(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    bridge = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{BASE}/bridge")})
    assert bridge is not None
    meter = camera_device(hass, "gas_meter")

    triggers = await async_get_device_automations(
        hass, DeviceAutomationType.TRIGGER, [bridge.id, meter.id]
    )

    assert [t for t in triggers[bridge.id] if t["domain"] == DOMAIN] == []
    assert [t for t in triggers[meter.id] if t["domain"] == DOMAIN] == []


async def test_new_caption_runs_the_automation_for_its_camera_only(
    hass: HomeAssistant, mqtt_mock: Any, calls: list[ServiceCall]
) -> None:
    await async_setup_bridge(hass)
    door = camera_device(hass, "front_door")
    await _automation(
        hass, {"platform": "device", "domain": DOMAIN, "device_id": door.id, "type": "new_caption"}
    )

    await async_publish_caption(hass, "front_door", "a man holding a parcel")
    await async_publish_caption(hass, "driveway", "a car parked in a driveway")

    assert [call.data["caption"] for call in calls] == ["a man holding a parcel"]
    assert calls[0].data["camera"] == "front_door"
    assert len(calls[0].data["frame_id"]) == 64


async def test_caption_matches_runs_only_for_captions_naming_a_keyword(
    hass: HomeAssistant, mqtt_mock: Any, calls: list[ServiceCall]
) -> None:
    await async_setup_bridge(hass)
    door = camera_device(hass, "front_door")
    await _automation(
        hass,
        {
            "platform": "device",
            "domain": DOMAIN,
            "device_id": door.id,
            "type": "caption_matches",
            "keywords": "parcel|package",
        },
    )

    await async_publish_caption(hass, "front_door", "a cat sitting on a porch")
    await async_publish_caption(hass, "front_door", "a Package in front of a door")

    assert [(call.data["caption"], call.data["keyword"]) for call in calls] == [
        ("a Package in front of a door", "Package")
    ]


async def test_caption_matches_asks_the_user_for_keywords(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    door = camera_device(hass, "front_door")
    platform = await async_get_device_automation_platform(
        hass, DOMAIN, DeviceAutomationType.TRIGGER
    )

    capabilities = await platform.async_get_trigger_capabilities(
        hass,
        {"platform": "device", "domain": DOMAIN, "device_id": door.id, "type": "caption_matches"},
    )

    # What the automation editor receives (the websocket API serialises it the same way).
    fields = voluptuous_serialize.convert(
        capabilities["extra_fields"], custom_serializer=cv.custom_serializer
    )
    assert fields == [{"name": "keywords", "required": True, "type": "string"}]


async def test_caption_matches_without_keywords_is_an_invalid_automation(
    hass: HomeAssistant, mqtt_mock: Any, calls: list[ServiceCall]
) -> None:
    await async_setup_bridge(hass)
    door = camera_device(hass, "front_door")
    await _automation(
        hass,
        {"platform": "device", "domain": DOMAIN, "device_id": door.id, "type": "caption_matches"},
    )

    await async_publish_caption(hass, "front_door", "a parcel")

    assert calls == []
    (automation,) = hass.states.async_all("automation")
    assert automation.state == "unavailable"  # Home Assistant refused its trigger


async def test_a_camera_that_reads_text_offers_text_triggers_too(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    driveway = camera_device(hass, "driveway")  # caption and ocr

    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, [driveway.id])

    offered = {t["type"] for t in triggers[driveway.id] if t["domain"] == DOMAIN}
    assert offered == {"new_caption", "caption_matches", "new_text", "text_matches"}


async def test_a_plate_read_by_ocr_fires_text_matches(
    hass: HomeAssistant, mqtt_mock: Any, calls: list[ServiceCall]
) -> None:
    await async_setup_bridge(hass)
    driveway = camera_device(hass, "driveway")
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "trigger": {
                    "platform": "device",
                    "domain": DOMAIN,
                    "device_id": driveway.id,
                    "type": "text_matches",
                    "keywords": "KA 1234|B 777",
                },
                "action": {
                    "service": "test.automation",
                    "data": {"text": "{{ trigger.text }}", "keyword": "{{ trigger.keyword }}"},
                },
            }
        },
    )
    await hass.async_block_till_done()

    for text in ("NO PARKING", "KA 1234"):
        result = {**protocol_fixture("ocr_result"), "text": text, "lines": []}
        async_fire_mqtt_message(hass, f"{BASE}/driveway/ocr", json.dumps(result))
        await hass.async_block_till_done()
    await async_publish_caption(hass, "driveway", "a car with plate KA 1234")  # not OCR

    assert [call.data for call in calls] == [{"text": "KA 1234", "keyword": "KA 1234"}]


def test_every_trigger_and_field_the_editor_shows_has_its_english_words() -> None:
    from custom_components.image_to_text.device_trigger import TRIGGER_TYPES

    strings = json.loads(
        (REPO / "custom_components" / "image_to_text" / "strings.json").read_text()
    )["device_automation"]

    assert set(strings["trigger_type"]) == set(TRIGGER_TYPES)
    assert set(strings["extra_fields"]) == {"keywords", "name"}

"""The image_to_text.analyze and image_to_text.set_meter actions, against a stand-in bridge."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import pytest
from ha_support import (
    BASE,
    DOMAIN,
    REPO,
    StandInBridge,
    async_setup_bridge,
    camera_device,
    protocol_fixture,
)
from homeassistant.components.camera import Camera
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import yaml
from pytest_homeassistant_custom_component.common import MockConfigEntry

SAMPLE_JPEGS = sorted((REPO / "config" / "samples").glob("*.jpg"))


def _sample_jpeg() -> bytes:
    assert SAMPLE_JPEGS, "config/samples/ has no JPEG to send"
    return SAMPLE_JPEGS[0].read_bytes()


async def _analyze(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN, "analyze", data, blocking=True, return_response=True
    )
    assert response is not None
    return dict(response)


async def test_a_picture_sent_to_analyze_comes_back_as_the_bridges_caption(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    bridge = StandInBridge(hass, protocol_fixture("reply"))
    await bridge.async_start()
    picture = base64.b64encode(_sample_jpeg()).decode()

    response = await _analyze(
        hass, image=picture, task="caption", camera="front_door", prompt="a picture of"
    )

    assert response["text"] == protocol_fixture("reply")["text"]
    (request,) = bridge.requests
    # exactly the fields of docs/protocol.md's request (request.json), nothing more
    assert set(request) == set(protocol_fixture("request"))
    assert request["task"] == "caption"
    assert request["image"] == picture
    assert request["camera"] == "front_door"
    assert request["prompt"] == "a picture of"
    assert request["reply_to"] == f"{BASE}/reply/{request['id']}"
    assert response["id"] == request["id"]


async def test_a_data_url_is_sent_as_plain_base64(hass: HomeAssistant, mqtt_mock: Any) -> None:
    await async_setup_bridge(hass)
    bridge = StandInBridge(hass, protocol_fixture("reply"))
    await bridge.async_start()
    picture = base64.b64encode(_sample_jpeg()).decode()

    await _analyze(hass, image=f"data:image/jpeg;base64,{picture}")

    assert bridge.requests[0]["image"] == picture
    assert bridge.requests[0]["task"] == "caption"


async def test_a_url_is_passed_to_the_bridge_to_fetch(hass: HomeAssistant, mqtt_mock: Any) -> None:
    await async_setup_bridge(hass)
    bridge = StandInBridge(hass, protocol_fixture("reply"))
    await bridge.async_start()

    await _analyze(hass, url="http://frigate.local:5000/api/front_door/latest.jpg", task="ocr")

    (request,) = bridge.requests
    assert request["url"] == "http://frigate.local:5000/api/front_door/latest.jpg"
    assert request["task"] == "ocr"
    assert "image" not in request


class PorchCamera(Camera):
    """A camera entity as any camera integration adds one (YAML ``local_file`` is gone in 2025)."""

    _attr_name = "porch"
    _attr_unique_id = "porch"

    async def async_camera_image(
        self, width: int | None = None, height: int | None = None
    ) -> bytes | None:
        """The porch's current picture."""
        return _sample_jpeg()


async def _add_porch_camera(hass: HomeAssistant) -> None:
    """``camera.porch`` on Home Assistant's camera component (its data key on every core)."""
    assert await async_setup_component(hass, "camera", {})
    await hass.data["camera"].async_add_entities([PorchCamera()])
    await hass.async_block_till_done()


async def test_a_camera_entity_is_snapshotted_through_home_assistants_camera(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    await _add_porch_camera(hass)
    bridge = StandInBridge(hass, protocol_fixture("reply"))
    await bridge.async_start()

    await _analyze(hass, camera_entity="camera.porch")

    (request,) = bridge.requests
    assert base64.b64decode(request["image"]) == _sample_jpeg()


async def test_an_error_reply_becomes_a_translated_home_assistant_error(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    await StandInBridge(hass, protocol_fixture("reply_error")).async_start()

    with pytest.raises(HomeAssistantError) as raised:
        await _analyze(hass, url="http://example.org/door.jpg")

    assert raised.value.translation_domain == DOMAIN
    assert raised.value.translation_key == "bridge_error"
    assert raised.value.translation_placeholders == {
        "error": "url_not_allowed",
        "detail": protocol_fixture("reply_error")["detail"],
    }
    assert "url_not_allowed" in str(raised.value)


async def test_a_silent_bridge_makes_analyze_fail_with_a_clear_message(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    bridge = StandInBridge(hass, reply=None)
    await bridge.async_start()

    with pytest.raises(HomeAssistantError) as raised:
        await _analyze(hass, url="http://frigate.local/latest.jpg", timeout=1)

    assert raised.value.translation_key == "no_reply"
    assert "did not answer within 1 seconds" in str(raised.value)
    assert len(bridge.requests) == 1


async def test_a_reply_for_another_request_is_not_taken_for_ours(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    # The answer lands on our reply topic but carries someone else's request id.
    bridge = StandInBridge(hass, protocol_fixture("reply"), answer_as="someone-else")
    await bridge.async_start()

    with pytest.raises(HomeAssistantError) as raised:
        await _analyze(hass, url="http://frigate.local/latest.jpg", timeout=0.2)
    assert raised.value.translation_key == "no_reply"


async def test_invalid_base64_is_refused_before_anything_is_published(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    bridge = StandInBridge(hass, protocol_fixture("reply"))
    await bridge.async_start()

    with pytest.raises(ServiceValidationError) as raised:
        await _analyze(hass, image="this is not base64!")

    assert raised.value.translation_key == "invalid_image"
    assert bridge.requests == []


async def test_analyze_needs_a_picture_source(hass: HomeAssistant, mqtt_mock: Any) -> None:
    await async_setup_bridge(hass)
    with pytest.raises(Exception, match="must contain at least one of"):
        await _analyze(hass, task="caption")


async def test_two_bridges_need_a_config_entry_id(hass: HomeAssistant, mqtt_mock: Any) -> None:
    first = await async_setup_bridge(hass)
    second = MockConfigEntry(
        domain=DOMAIN, data={"base_topic": "garden"}, unique_id="garden", title="Garden"
    )
    second.add_to_hass(hass)
    assert await hass.config_entries.async_setup(second.entry_id)
    await hass.async_block_till_done()
    bridge = StandInBridge(hass, protocol_fixture("reply"))
    await bridge.async_start()

    with pytest.raises(ServiceValidationError) as raised:
        await _analyze(hass, url="http://frigate.local/latest.jpg")
    assert raised.value.translation_key == "entry_ambiguous"

    await _analyze(hass, url="http://frigate.local/latest.jpg", config_entry_id=first.entry_id)
    assert len(bridge.requests) == 1


async def test_set_meter_publishes_the_value_on_the_meters_set_topic(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    mqtt_mock.async_publish.reset_mock()

    await hass.services.async_call(
        DOMAIN, "set_meter", {"camera": "gas_meter", "value": 1234.567}, blocking=True
    )

    mqtt_mock.async_publish.assert_called_once_with(
        f"{BASE}/gas_meter/meter/set", "1234.567", 1, False
    )


async def test_set_meter_refuses_a_camera_that_reads_no_meter(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    mqtt_mock.async_publish.reset_mock()

    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, "set_meter", {"camera": "front_door", "value": 3}, blocking=True
        )

    assert raised.value.translation_key == "unknown_meter"
    mqtt_mock.async_publish.assert_not_called()


def test_every_action_field_and_error_has_words_in_strings_json() -> None:
    integration = REPO / "custom_components" / "image_to_text"
    strings = json.loads((integration / "strings.json").read_text())
    services = yaml.load_yaml(integration / "services.yaml")

    for action, spec in services.items():
        assert set(spec["fields"]) == set(strings["services"][action]["fields"]), action
    raised = set()
    for module in ("ask.py", "services.py", "face_services.py", "announce.py", "frigate_names.py"):
        raised |= set(re.findall(r'translation_key="(\w+)"', (integration / module).read_text()))
    assert raised
    assert raised <= set(strings["exceptions"])
    assert strings == json.loads((integration / "translations" / "en.json").read_text())


async def test_a_reply_without_a_text_fails_at_once(hass: HomeAssistant, mqtt_mock: Any) -> None:
    await async_setup_bridge(hass)
    broken = {k: v for k, v in protocol_fixture("reply").items() if k != "text"}
    await StandInBridge(hass, broken).async_start()

    with pytest.raises(HomeAssistantError) as raised:
        await _analyze(hass, url="http://frigate.local/latest.jpg")

    assert raised.value.translation_key == "bad_reply"
    assert "text" in str(raised.value)


async def test_a_reply_missing_a_minor_field_answers_without_complaint(
    hass: HomeAssistant, mqtt_mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await async_setup_bridge(hass)
    partial = {k: v for k, v in protocol_fixture("reply").items() if k != "latency_ms"}
    await StandInBridge(hass, partial).async_start()

    response = await _analyze(hass, url="http://frigate.local/latest.jpg")

    assert response["text"] == partial["text"]
    assert not [r for r in caplog.records if "breaks the protocol" in r.getMessage()]


async def test_a_reply_with_a_minor_field_mistyped_still_answers_with_one_log_line(
    hass: HomeAssistant, mqtt_mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await async_setup_bridge(hass)
    odd = {**protocol_fixture("reply"), "latency_ms": "fast"}
    await StandInBridge(hass, odd).async_start()

    response = await _analyze(hass, url="http://frigate.local/latest.jpg")

    assert response["text"] == odd["text"]
    warnings = [r for r in caplog.records if "breaks the protocol" in r.getMessage()]
    assert len(warnings) == 1
    assert "latency_ms" in warnings[0].getMessage()


async def test_the_actions_stay_registered_when_the_bridge_is_unloaded(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    entry = await async_setup_bridge(hass)
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    assert hass.services.has_service(DOMAIN, "analyze")
    assert hass.services.has_service(DOMAIN, "set_meter")
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN,
            "set_meter",
            {"camera": "gas_meter", "value": 1, "config_entry_id": entry.entry_id},
            blocking=True,
        )
    assert raised.value.translation_key == "entry_not_loaded"


async def test_an_unknown_config_entry_id_is_refused(hass: HomeAssistant, mqtt_mock: Any) -> None:
    await async_setup_bridge(hass)

    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN,
            "set_meter",
            {"camera": "gas_meter", "value": 1, "config_entry_id": "no-such-entry"},
            blocking=True,
        )

    assert raised.value.translation_key == "entry_not_found"


async def test_analyze_is_refused_at_once_while_the_bridge_is_offline(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass, online=False)
    bridge = StandInBridge(hass, protocol_fixture("reply"))
    await bridge.async_start()

    # bounded well below analyze's own 30 s: an offline bridge must not cost the timeout
    async with asyncio.timeout(5):
        with pytest.raises(HomeAssistantError) as raised:
            await _analyze(hass, url="http://frigate.local/latest.jpg")

    assert raised.value.translation_key == "bridge_offline"
    assert "offline" in str(raised.value)
    assert bridge.requests == []


async def test_the_bridge_camera_can_be_picked_as_its_device(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)
    bridge = StandInBridge(hass, protocol_fixture("reply"))
    await bridge.async_start()
    meter = camera_device(hass, "gas_meter")

    await _analyze(hass, image=base64.b64encode(_sample_jpeg()).decode(), camera=meter.id)

    (request,) = bridge.requests
    assert request["camera"] == "gas_meter"


async def test_a_device_that_is_not_a_bridge_camera_is_refused(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    entry = await async_setup_bridge(hass)
    other = MockConfigEntry(domain="demo")
    other.add_to_hass(hass)
    lamp = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("demo", "lamp")}, name="Lamp"
    )
    assert entry

    with pytest.raises(ServiceValidationError) as raised:
        await _analyze(hass, url="http://frigate.local/latest.jpg", camera=lamp.id)

    assert raised.value.translation_key == "not_a_camera"

"""Image entities: the frame each result was made from, as the bridge published it."""

from __future__ import annotations

from typing import Any

from conftest import BASE, REPO
from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

JPEG = (REPO / "config" / "samples" / "cat_on_porch.jpg").read_bytes()
OTHER_JPEG = (REPO / "config" / "samples" / "coffee_cup.jpg").read_bytes()


async def test_the_analysed_frame_is_shown_by_the_cameras_image_entity(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    # (served through the entity: this environment's HTTP stack cannot import hass_nabucasa)
    await setup_bridge()
    assert hass.states.get("image.front_door_caption").state == STATE_UNKNOWN

    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption/image", JPEG)
    await hass.async_block_till_done()

    state = hass.states.get("image.front_door_caption")
    assert state.state != STATE_UNKNOWN  # the time the frame arrived
    assert state.attributes["entity_picture"].startswith("/api/image_proxy/image.front_door")
    entity = hass.data["image"].get_entity("image.front_door_caption")
    assert entity.content_type == "image/jpeg"
    assert await entity.async_image() == JPEG


async def test_a_newer_frame_replaces_the_image_and_other_cameras_keep_theirs(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge()
    image_component = hass.data["image"]

    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption/image", JPEG)
    async_fire_mqtt_message(hass, f"{BASE}/driveway/ocr/image", JPEG)
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption/image", OTHER_JPEG)
    await hass.async_block_till_done()

    front_door = image_component.get_entity("image.front_door_caption")
    driveway = image_component.get_entity("image.driveway_ocr")
    assert await front_door.async_image() == OTHER_JPEG
    assert await driveway.async_image() == JPEG
    assert hass.states.get("image.driveway_caption").state == STATE_UNKNOWN
    assert entry.runtime_data.hub.last_image[("front_door", "caption")].jpeg == OTHER_JPEG


async def test_bytes_that_are_not_a_jpeg_are_ignored(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()

    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption/image", b"not a picture")
    await hass.async_block_till_done()

    assert hass.states.get("image.front_door_caption").state == STATE_UNKNOWN


async def test_a_png_frame_is_shown_with_its_own_content_type(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge()
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16

    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption/image", png)
    await hass.async_block_till_done()

    assert hass.states.get("image.front_door_caption").state != STATE_UNKNOWN
    assert entry.runtime_data.hub.last_image[("front_door", "caption")].content_type == "image/png"

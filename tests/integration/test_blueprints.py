"""The shipped blueprints load with Home Assistant's blueprint loader and work as automations."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from ha_support import BLUEPRINTS, async_publish_caption, async_setup_bridge, camera_device
from homeassistant.components.automation.helpers import async_get_blueprints
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_mock_service

BLUEPRINT_FILES = sorted(BLUEPRINTS.glob("*.yaml"))


def test_both_blueprints_are_shipped() -> None:
    assert [path.name for path in BLUEPRINT_FILES] == [
        "announce_visitor.yaml",
        "parcel_notify.yaml",
        "person_seen.yaml",
    ]


@pytest.fixture
async def blueprint_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A configuration folder of its own, with the blueprints installed as a user would."""
    hass.config.config_dir = str(tmp_path)
    target = tmp_path / "blueprints" / "automation" / "image_to_text"
    shutil.copytree(BLUEPRINTS, target)
    return target


@pytest.mark.parametrize("path", BLUEPRINT_FILES, ids=lambda path: path.name)
async def test_a_blueprint_loads_with_home_assistants_automation_blueprint_loader(
    hass: HomeAssistant, blueprint_dir: Path, path: Path
) -> None:
    # The loader automations use: YAML with !input, the blueprint schema, every !input declared.
    blueprint = await async_get_blueprints(hass).async_get_blueprint(f"image_to_text/{path.name}")

    assert blueprint.domain == "automation"
    assert blueprint.validate() is None  # this Home Assistant is new enough for it
    assert "camera_device" in blueprint.inputs


async def _use(hass: HomeAssistant, path: str, inputs: dict[str, Any]) -> None:
    assert await async_setup_component(
        hass,
        "automation",
        {"automation": {"use_blueprint": {"path": path, "input": inputs}}},
    )
    await hass.async_block_till_done()
    (automation,) = hass.states.async_all("automation")
    assert automation.state == "on", automation.attributes


async def test_announce_visitor_reads_the_caption_aloud(
    hass: HomeAssistant, mqtt_mock: Any, blueprint_dir: Path
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await async_setup_bridge(hass)
    door = camera_device(hass, "front_door")
    await _use(
        hass,
        "image_to_text/announce_visitor.yaml",
        {
            "camera_device": door.id,
            "tts_entity": "tts.piper",
            "media_players": ["media_player.kitchen"],
            "quiet_time": 0,
        },
    )

    await async_publish_caption(hass, "front_door", "a man holding a sign saying {{ 7*6 }}")

    (call,) = speak
    assert call.data["entity_id"] == ["tts.piper"]
    assert call.data["media_player_entity_id"] == ["media_player.kitchen"]
    assert call.data["message"] == "Someone at Front door: a man holding a sign saying {{ 7*6 }}"


async def test_parcel_notify_sends_the_picture_when_a_parcel_is_seen(
    hass: HomeAssistant, mqtt_mock: Any, blueprint_dir: Path
) -> None:
    notify = async_mock_service(hass, "notify", "mobile_app_phone")
    await async_setup_bridge(hass)
    door = camera_device(hass, "front_door")
    await _use(
        hass,
        "image_to_text/parcel_notify.yaml",
        {
            "camera_device": door.id,
            "keywords": "parcel|package",
            "notify_service": "notify.mobile_app_phone",
            "image_entity": "image.front_door_caption",
            "quiet_time": 0,
        },
    )

    await async_publish_caption(hass, "front_door", "a cat sitting on a porch")
    await async_publish_caption(hass, "front_door", "a parcel in front of a door")

    (call,) = notify
    assert call.data["title"] == "Front door: parcel"
    assert call.data["message"] == "a parcel in front of a door"
    assert call.data["data"] == {
        "image": "/api/image_proxy/image.front_door_caption",
        "entity_id": "image.front_door_caption",
    }

"""Names Frigate recognised (faces, licence plates) as announcements can use them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from ha_support import async_publish_caption, async_setup_bridge
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    async_fire_mqtt_message,
    async_mock_service,
)

from custom_components.image_to_text.frigate_names import (
    RecentNames,
    parse_tracked_object_update,
)

# Shapes as Frigate 0.16 publishes them on frigate/tracked_object_update.
FACE = {
    "type": "face",
    "id": "1732529700.123456-abcdef",
    "name": "Alice",
    "score": 0.93,
    "camera": "front_door",
    "timestamp": 1732529701.5,
}
PLATE = {
    "type": "lpr",
    "name": "Bob's van",
    "plate": "AB12CDE",
    "score": 0.91,
    "id": "1732529800.5-xyz",
    "camera": "driveway",
    "timestamp": 1732529801.0,
}
DESCRIPTION = {
    "type": "description",
    "id": "1732529700.123456-abcdef",
    "description": "A person in a yellow jacket carries a box to the door.",
}


def _parse(payload: dict[str, Any]) -> tuple[str, str] | None:
    found = parse_tracked_object_update(json.dumps(payload))
    return None if found is None else (found.camera, found.name)


def test_a_recognised_face_gives_its_name_on_its_camera() -> None:
    assert _parse(FACE) == ("front_door", "Alice")


def test_an_unknown_face_gives_no_name() -> None:
    assert _parse({**FACE, "name": None}) is None


def test_a_known_plate_gives_its_name_and_an_unknown_one_its_characters() -> None:
    assert _parse(PLATE) == ("driveway", "Bob's van")
    assert _parse({**PLATE, "name": None}) == ("driveway", "AB12CDE")


def test_the_plate_cleared_message_gives_no_name() -> None:
    assert _parse({"type": "lpr", "name": None, "plate": None, "camera": "driveway"}) is None


def test_a_description_update_gives_no_name() -> None:
    assert _parse(DESCRIPTION) is None


def test_a_sub_label_pair_from_older_add_ons_is_read_as_a_name() -> None:
    update = {"type": "sub_label", "id": "x", "camera": "porch", "sub_label": ["Eli", 0.51]}
    assert _parse(update) == ("porch", "Eli")


def test_garbage_is_ignored() -> None:
    assert parse_tracked_object_update(b"\xff not json") is None
    assert parse_tracked_object_update("[1, 2]") is None


def test_a_name_counts_only_within_the_window() -> None:
    names = RecentNames(window_seconds=30)
    seen = dt_util.utcnow()
    names.remember("front_door", "Alice", seen)

    assert names.name_for("front_door", seen + timedelta(seconds=30)) == "Alice"
    assert names.name_for("front_door", seen + timedelta(seconds=31)) is None
    assert names.name_for("driveway", seen) is None


def test_the_latest_name_of_a_camera_wins() -> None:
    names = RecentNames(window_seconds=30)
    seen = dt_util.utcnow()
    names.remember("front_door", "Alice", seen)
    names.remember("front_door", "Bob", seen + timedelta(seconds=5))

    assert names.name_for("front_door", seen + timedelta(seconds=10)) == "Bob"


async def test_names_come_from_frigates_own_topic_prefix(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    door = {
        "tts_entity": "tts.piper",
        "media_players": ["media_player.hall"],
        "message": "{{ name or 'Someone' }}: {{ caption }}",
        "cooldown": 0,
    }
    options = {
        "frigate_names": True,
        "name_window": 30,
        "frigate_prefix": "cams/frigate",
        "announcements": {"front_door": door},
    }
    await async_setup_bridge(hass, options)
    face = {"type": "face", "id": "1", "camera": "front_door", "name": "Alice", "score": 0.9}

    async_fire_mqtt_message(hass, "frigate/tracked_object_update", json.dumps(face))
    await async_publish_caption(hass, "front_door", "a woman at the door")
    async_fire_mqtt_message(hass, "cams/frigate/tracked_object_update", json.dumps(face))
    await async_publish_caption(hass, "front_door", "a woman at the door")

    assert [call.data["message"] for call in speak] == [
        "Someone: a woman at the door",
        "Alice: a woman at the door",
    ]

"""Spoken announcements: a caption is read aloud through tts.speak, and only when wanted."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from ha_support import BASE, async_publish_caption, async_setup_bridge, protocol_fixture
from homeassistant.core import Event, HomeAssistant, ServiceCall, callback
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    async_fire_mqtt_message,
    async_mock_service,
)

DOOR = {
    "tts_entity": "tts.piper",
    "media_players": ["media_player.kitchen", "media_player.hall"],
    "message": "{{ name ~ ' is at ' if name else 'Someone at ' }}{{ camera_name }}: {{ caption }}",
    "cooldown": 60,
    "only_keywords": False,
    "only_changed": True,
}


def _options(**door: Any) -> dict[str, Any]:
    return {
        "keywords": ["person", "parcel|package"],
        "keyword_hold": 60,
        "frigate_names": False,
        "name_window": 30,
        "announcements": {"front_door": {**DOOR, **door}},
    }


def _spoken(calls: list[ServiceCall]) -> list[str]:
    return [call.data["message"] for call in calls]


async def test_a_new_caption_is_spoken_on_the_chosen_speakers(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await async_setup_bridge(hass, _options())

    await async_publish_caption(hass, "front_door", "a man holding a parcel")

    (call,) = speak
    assert call.data["entity_id"] == "tts.piper"
    assert call.data["media_player_entity_id"] == ["media_player.kitchen", "media_player.hall"]
    assert call.data["message"] == "Someone at Front door: a man holding a parcel"


async def test_a_camera_without_an_announcement_stays_silent(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await async_setup_bridge(hass, _options())

    await async_publish_caption(hass, "driveway", "a car parked in a driveway")

    assert speak == []


async def test_a_caption_that_looks_like_a_template_is_spoken_literally(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    message = "{{ caption }} ({{ camera }}, {{ task }}, {{ keyword }}, {{ text | length }})"
    await async_setup_bridge(hass, _options(message=message))

    await async_publish_caption(hass, "front_door", "a parcel saying {{ 7*6 }}")

    assert _spoken(speak) == ["a parcel saying {{ 7*6 }} (front_door, caption, parcel, 25)"]


async def test_the_cooldown_keeps_the_speaker_quiet_for_a_while(
    hass: HomeAssistant, mqtt_mock: Any, freezer: FrozenDateTimeFactory
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await async_setup_bridge(hass, _options(cooldown=60, message="{{ caption }}"))

    await async_publish_caption(hass, "front_door", "a man at the door")
    freezer.tick(timedelta(seconds=30))
    await async_publish_caption(hass, "front_door", "a woman at the door")
    freezer.tick(timedelta(seconds=31))
    await async_publish_caption(hass, "front_door", "a dog at the door")

    assert _spoken(speak) == ["a man at the door", "a dog at the door"]


async def test_only_changed_never_repeats_the_last_spoken_caption(
    hass: HomeAssistant, mqtt_mock: Any, freezer: FrozenDateTimeFactory
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await async_setup_bridge(hass, _options(cooldown=0, message="{{ caption }}"))

    await async_publish_caption(hass, "front_door", "a man at the door")
    freezer.tick(timedelta(seconds=5))
    await async_publish_caption(hass, "front_door", "A man  at the door ")
    freezer.tick(timedelta(seconds=5))
    await async_publish_caption(hass, "front_door", "a cat at the door")

    assert _spoken(speak) == ["a man at the door", "a cat at the door"]


async def test_without_only_changed_the_same_caption_is_spoken_again_after_the_cooldown(
    hass: HomeAssistant, mqtt_mock: Any, freezer: FrozenDateTimeFactory
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await async_setup_bridge(
        hass, _options(cooldown=10, only_changed=False, message="{{ caption }}")
    )

    await async_publish_caption(hass, "front_door", "a man at the door")
    freezer.tick(timedelta(seconds=11))
    await async_publish_caption(hass, "front_door", "a man at the door")

    assert _spoken(speak) == ["a man at the door", "a man at the door"]


async def test_only_keywords_speaks_only_captions_that_name_a_keyword(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await async_setup_bridge(
        hass, _options(cooldown=0, only_keywords=True, message="{{ caption }}")
    )

    await async_publish_caption(hass, "front_door", "a cat sitting on a porch")
    await async_publish_caption(hass, "front_door", "a package in front of a door")
    await async_publish_caption(hass, "front_door", "a parcelling machine")  # not the word

    assert _spoken(speak) == ["a package in front of a door"]


async def test_a_name_frigate_recognised_goes_into_the_message(
    hass: HomeAssistant, mqtt_mock: Any, freezer: FrozenDateTimeFactory
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    options = {**_options(cooldown=0), "frigate_names": True, "name_window": 30}
    await async_setup_bridge(hass, options)

    face = {
        "type": "face",
        "id": "1732529700.123456-abcdef",
        "camera": "front_door",
        "name": "Alice",
        "score": 0.93,
        "timestamp": 1732529701.5,
    }
    async_fire_mqtt_message(hass, "frigate/tracked_object_update", json.dumps(face))
    await hass.async_block_till_done()
    await async_publish_caption(hass, "front_door", "a woman holding a parcel")
    freezer.tick(timedelta(seconds=31))
    await async_publish_caption(hass, "front_door", "a woman walking away")

    assert _spoken(speak) == [
        "Alice is at Front door: a woman holding a parcel",
        "Someone at Front door: a woman walking away",
    ]


async def test_frigate_names_are_ignored_when_the_option_is_off(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await async_setup_bridge(hass, _options())

    face = {"type": "face", "id": "x", "camera": "front_door", "name": "Alice", "score": 0.9}
    async_fire_mqtt_message(hass, "frigate/tracked_object_update", json.dumps(face))
    await hass.async_block_till_done()
    await async_publish_caption(hass, "front_door", "a woman holding a parcel")

    assert _spoken(speak) == ["Someone at Front door: a woman holding a parcel"]


async def test_a_broken_template_falls_back_to_camera_and_caption(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await async_setup_bridge(hass, _options(message="{{ caption | no_such_filter }}"))

    await async_publish_caption(hass, "front_door", "a man at the door")

    assert _spoken(speak) == ["Front door: a man at the door"]


async def test_a_retained_caption_replayed_at_start_is_not_announced(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await async_setup_bridge(hass, _options())

    async_fire_mqtt_message(
        hass,
        f"{BASE}/front_door/caption",
        json.dumps(protocol_fixture("caption_result")),
        retain=True,
    )
    await hass.async_block_till_done()

    assert speak == []


async def test_a_frigate_camera_with_another_name_is_mapped_to_the_bridge_camera(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    options = {**_options(frigate_camera="doorbell"), "frigate_names": True}
    await async_setup_bridge(hass, options)

    for camera, name in (("front_door", "Mallory"), ("doorbell", "Alice")):
        face = {"type": "face", "id": "x", "camera": camera, "name": name, "score": 0.9}
        async_fire_mqtt_message(hass, "frigate/tracked_object_update", json.dumps(face))
    await hass.async_block_till_done()
    await async_publish_caption(hass, "front_door", "a woman holding a parcel")

    assert _spoken(speak) == ["Alice is at Front door: a woman holding a parcel"]


async def test_a_missing_tts_service_is_logged_not_raised(
    hass: HomeAssistant, mqtt_mock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await async_setup_bridge(hass, _options())

    await async_publish_caption(hass, "front_door", "a man at the door")

    assert "Could not speak the announcement" in caplog.text


async def test_an_announcement_set_up_in_the_options_flow_speaks_the_next_caption(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    entry = await async_setup_bridge(hass)
    flow = await hass.config_entries.options.async_init(entry.entry_id)
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"next_step_id": "announce"}
    )
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"camera": "front_door"}
    )
    await hass.config_entries.options.async_configure(
        flow["flow_id"],
        {
            "enabled": True,
            "tts_entity": "tts.piper",
            "media_players": ["media_player.kitchen"],
            "message": "{{ camera_name }} says {{ caption }}",
            "cooldown": 60,
            "only_keywords": False,
            "only_changed": True,
        },
    )
    await hass.async_block_till_done()  # the entry reloads with its new options

    await async_publish_caption(hass, "front_door", "a man at the door")

    assert _spoken(speak) == ["Front door says a man at the door"]


def _face(name: str) -> str:
    return json.dumps(
        {"type": "face", "id": f"{name}-1", "camera": "front_door", "name": name, "score": 0.9}
    )


async def test_the_same_words_are_news_again_after_the_cameras_window(
    hass: HomeAssistant, mqtt_mock: Any, freezer: FrozenDateTimeFactory
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await async_setup_bridge(
        hass, _options(cooldown=0, changed_window=600, message="{{ caption }}")
    )

    await async_publish_caption(hass, "front_door", "a man standing in front of a door")
    freezer.tick(timedelta(seconds=599))
    await async_publish_caption(hass, "front_door", "a man standing in front of a door")
    freezer.tick(timedelta(seconds=2))
    await async_publish_caption(hass, "front_door", "a man standing in front of a door")

    assert len(speak) == 2  # a real visitor ten minutes later is announced


async def test_a_different_name_is_always_news_even_with_the_same_caption(
    hass: HomeAssistant, mqtt_mock: Any, freezer: FrozenDateTimeFactory
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    options = {**_options(cooldown=60), "frigate_names": True, "name_window": 30}
    await async_setup_bridge(hass, options)

    async_fire_mqtt_message(hass, "frigate/tracked_object_update", _face("Anna"))
    await async_publish_caption(hass, "front_door", "a person at the door")
    freezer.tick(timedelta(seconds=5))
    async_fire_mqtt_message(hass, "frigate/tracked_object_update", _face("Bob"))
    await async_publish_caption(hass, "front_door", "a person at the door")

    assert _spoken(speak) == [
        "Anna is at Front door: a person at the door",
        "Bob is at Front door: a person at the door",
    ]


async def test_quiet_hours_keep_the_speakers_silent_across_midnight(
    hass: HomeAssistant, mqtt_mock: Any, freezer: FrozenDateTimeFactory
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    freezer.move_to(dt_util.as_utc(dt_util.now().replace(hour=23, minute=30)))
    quiet = {"quiet_start": "22:00:00", "quiet_end": "07:00:00"}
    await async_setup_bridge(hass, _options(cooldown=0, message="{{ caption }}", **quiet))

    await async_publish_caption(hass, "front_door", "a fox on the lawn")
    freezer.move_to(dt_util.as_utc(dt_util.now().replace(hour=7, minute=30)))
    await async_publish_caption(hass, "front_door", "a man with a parcel")

    assert _spoken(speak) == ["a man with a parcel"]


@pytest.mark.parametrize(
    "switch", ["switch.image_to_text_bridge_announcements", "switch.front_door_announcements"]
)
async def test_a_mute_switch_silences_announcements_without_a_reload(
    hass: HomeAssistant, mqtt_mock: Any, switch: str
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    entry = await async_setup_bridge(hass, _options(cooldown=0, message="{{ caption }}"))
    hub = entry.runtime_data.hub

    await hass.services.async_call("switch", "turn_off", {"entity_id": switch}, blocking=True)
    await async_publish_caption(hass, "front_door", "a man at the door")
    assert speak == []
    assert hass.states.get(switch).state == "off"

    await hass.services.async_call("switch", "turn_on", {"entity_id": switch}, blocking=True)
    await async_publish_caption(hass, "front_door", "a cat at the door")
    assert _spoken(speak) == ["a cat at the door"]
    assert entry.runtime_data.hub is hub


async def test_volume_is_set_on_the_speakers_before_speaking(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    calls: list[str] = []
    volume = async_mock_service(hass, "media_player", "volume_set")
    speak = async_mock_service(hass, "tts", "speak")

    @callback
    def _called(event: Event) -> None:
        calls.append(event.data["service"])

    hass.bus.async_listen("call_service", _called)
    await async_setup_bridge(hass, _options(volume=40))

    await async_publish_caption(hass, "front_door", "a man at the door")

    (set_volume,) = volume
    assert set_volume.data["volume_level"] == 0.4
    assert set_volume.data["entity_id"] == ["media_player.kitchen", "media_player.hall"]
    assert len(speak) == 1
    assert calls == ["volume_set", "speak"]


async def test_voice_satellites_announce_where_the_core_has_them(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    announce = async_mock_service(hass, "assist_satellite", "announce")
    speak = async_mock_service(hass, "tts", "speak")
    satellites = {"tts_entity": None, "media_players": [], "satellites": ["assist_satellite.hall"]}
    await async_setup_bridge(hass, _options(message="{{ caption }}", **satellites))

    await async_publish_caption(hass, "front_door", "a man at the door")

    (call,) = announce
    assert call.data == {"message": "a man at the door", "entity_id": ["assist_satellite.hall"]}
    assert speak == []


async def _settle(hass: HomeAssistant) -> None:
    """Let the loop run without waiting for the queued announcements (they wait on a speaker)."""
    for _ in range(20):
        await asyncio.sleep(0)


def _caption_message(camera: str, text: str) -> str:
    return json.dumps({**protocol_fixture("caption_result"), "camera": camera, "text": text})


async def test_announcements_wait_for_the_speakers_so_none_is_cut_off(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    options = _options(message="{{ caption }}", cooldown=0)
    options["announcements"]["driveway"] = {**DOOR, "message": "{{ caption }}", "cooldown": 0}
    hass.states.async_set("media_player.kitchen", "playing")
    await async_setup_bridge(hass, options)

    async_fire_mqtt_message(
        hass, f"{BASE}/front_door/caption", _caption_message("front_door", "a man")
    )
    async_fire_mqtt_message(hass, f"{BASE}/driveway/caption", _caption_message("driveway", "a car"))
    await _settle(hass)
    assert speak == []  # the kitchen is still playing something

    hass.states.async_set("media_player.kitchen", "idle")
    await _settle(hass)
    assert _spoken(speak) == ["a man"]
    hass.states.async_set("media_player.kitchen", "playing")  # the first announcement plays
    await _settle(hass)
    assert _spoken(speak) == ["a man"]

    hass.states.async_set("media_player.kitchen", "idle")
    await hass.async_block_till_done()
    assert _spoken(speak) == ["a man", "a car"]


async def test_changing_announcements_in_the_options_applies_without_a_reload(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    entry = await async_setup_bridge(hass, _options(message="{{ caption }}"))
    hub = entry.runtime_data.hub
    options = _options(message="Door: {{ caption }}")
    options["announcements"]["driveway"] = {**DOOR, "message": "Drive: {{ caption }}"}

    hass.config_entries.async_update_entry(entry, options=options)
    await hass.async_block_till_done()
    await async_publish_caption(hass, "front_door", "a man at the door")
    await async_publish_caption(hass, "driveway", "a car")

    assert entry.runtime_data.hub is hub  # not reloaded: sensors kept their state
    assert _spoken(speak) == ["Door: a man at the door", "Drive: a car"]
    assert hass.states.get("switch.driveway_announcements").state == "on"

"""Who is at the door: the bridge's faces results become a sensor, events, triggers and names."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory
from ha_support import (
    BASE,
    DOMAIN,
    async_publish_caption,
    async_setup_bridge,
    camera_device,
    protocol_fixture,
)
from homeassistant.components.device_automation import (
    DeviceAutomationType,
    async_get_device_automations,
)
from homeassistant.components.recorder import get_instance, history
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant, ServiceCall, State, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_mock_service,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

ANNOUNCE = {
    "tts_entity": "tts.piper",
    "media_players": ["media_player.hall"],
    "message": "{{ name ~ ' is at ' if name else 'Someone at ' }}{{ camera_name }}: {{ caption }}",
    "cooldown": 0,
    "only_keywords": False,
    "only_changed": False,
}
# The recorder drops state attributes over this many bytes (recorder.db_schema).
RECORDER_MAX_ATTRIBUTES = 16384


def _info(*front_door_tasks: str) -> dict[str, Any]:
    """The shared info.json, with the front door running these tasks."""
    info = protocol_fixture("info")
    info["cameras"]["front_door"]["tasks"] = list(front_door_tasks)
    return info


async def _setup(hass: HomeAssistant, options: dict[str, Any] | None = None) -> MockConfigEntry:
    """A bridge whose front door runs both faces and caption."""
    return await async_setup_bridge(hass, options, info=_info("caption", "faces"))


async def _info_changes(hass: HomeAssistant, info: dict[str, Any]) -> None:
    """The running bridge publishes new info (a live message, as the broker forwards it)."""
    async_fire_mqtt_message(hass, f"{BASE}/bridge/info", json.dumps(info))
    await hass.async_block_till_done()


async def _faces(hass: HomeAssistant, frame: str, *faces: tuple[str, float]) -> None:
    """The bridge publishes a faces result of the front door with these (name, distance)."""
    result = protocol_fixture("faces_result")
    result["frame_id"] = frame * 64
    result["faces"] = [
        {"name": name, "distance": distance, "box": [10, 10, 80, 80]} for name, distance in faces
    ]
    result["names"] = [name for name, _ in faces]
    known = [name for name, _ in faces if name != "unknown"]
    result["text"] = " and ".join(known + ["someone"] * (len(faces) - len(known))) or "nobody"
    async_fire_mqtt_message(hass, f"{BASE}/front_door/faces", json.dumps(result))
    await hass.async_block_till_done()


async def test_the_last_person_sensor_keeps_who_was_seen_until_someone_else_comes(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await _setup(hass)
    async_fire_mqtt_message(
        hass, f"{BASE}/front_door/faces", json.dumps(protocol_fixture("faces_result"))
    )
    await hass.async_block_till_done()

    state = hass.states.get("sensor.front_door_last_person")
    assert state is not None
    assert state.state == "Anna and someone"
    assert state.attributes["names"] == ["Anna", "unknown"]
    assert state.attributes["distance"] == 0.305
    assert state.attributes["faces"][1]["name"] == "unknown"

    await _faces(hass, "b")  # nobody at the door: the last person stays
    assert hass.states.get("sensor.front_door_last_person").state == "Anna and someone"

    await _faces(hass, "c", ("unknown", 0.8))
    assert hass.states.get("sensor.front_door_last_person").state == "someone"


async def test_a_camera_that_starts_recognising_faces_gets_named_entities_under_the_bridges_id(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await async_setup_bridge(hass)  # the front door only captions
    assert hass.states.get("sensor.front_door_last_person") is None

    await _info_changes(hass, _info("caption", "faces"))

    registry = er.async_get(hass)
    sensor = registry.async_get("sensor.front_door_last_person")
    assert sensor is not None
    assert sensor.unique_id == "image_to_text/front_door/faces/text"
    assert sensor.device_id == camera_device(hass, "front_door").id
    assert registry.async_get("event.front_door_faces").unique_id == (
        "image_to_text/front_door/faces/event"
    )

    def name(entity_id: str) -> str:
        return str(hass.states.get(entity_id).attributes["friendly_name"])

    assert name("sensor.front_door_last_person") == "Front door Last person"
    assert name("event.front_door_faces") == "Front door Faces event"
    assert name("image.front_door_faces") == "Front door Faces analysed frame"
    names = [state.name for state in hass.states.async_all()]
    assert len(names) == len(set(names)), "two entities share a name"


async def test_the_last_person_sensor_stays_while_faces_are_off_and_comes_back_as_it_was(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await _setup(hass)
    await _faces(hass, "a", ("Anna", 0.31))

    await _info_changes(hass, _info("caption"))  # faces switched off on the bridge
    assert hass.states.get("sensor.front_door_last_person").state == STATE_UNAVAILABLE
    assert er.async_get(hass).async_get("sensor.front_door_last_person") is not None

    await _info_changes(hass, _info("caption", "faces"))
    assert hass.states.get("sensor.front_door_last_person").state == "Anna"


async def _recorded(hass: HomeAssistant, entity_id: str) -> list[State]:
    start = dt_util.utcnow() - timedelta(hours=1)
    changes = await get_instance(hass).async_add_executor_job(
        partial(history.state_changes_during_period, hass, start, None, entity_id)
    )
    return list(changes.get(entity_id, []))


async def test_who_came_is_recorded_but_not_each_frames_id_and_time(
    recorder_mock: Any, hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await _setup(hass)
    await _faces(hass, "a", ("Anna", 0.31))
    await _faces(hass, "b", ("Ben", 0.4))
    await async_wait_recording_done(hass)

    live = hass.states.get("sensor.front_door_last_person")
    assert live.attributes["frame_id"] == "b" * 64
    recorded = await _recorded(hass, "sensor.front_door_last_person")
    assert [state.state for state in recorded][-2:] == ["Anna", "Ben"]
    for entity_id in ("sensor.front_door_last_person", "event.front_door_faces"):
        for state in await _recorded(hass, entity_id):
            assert not {"frame_id", "captured_at"} & set(state.attributes), entity_id
    assert recorded[-1].attributes["names"] == ["Ben"]


async def test_a_crowd_at_the_door_still_fits_what_the_recorder_keeps(
    recorder_mock: Any, hass: HomeAssistant, mqtt_mock: Any
) -> None:
    await _setup(hass)
    await _faces(hass, "a", ("Anna", 0.31), *[("unknown", 0.9)] * 400)
    await async_wait_recording_done(hass)

    for entity_id in ("sensor.front_door_last_person", "event.front_door_faces"):
        attributes = dict(hass.states.get(entity_id).attributes)
        assert len(json.dumps(attributes).encode()) < RECORDER_MAX_ATTRIBUTES, entity_id
        assert attributes["truncated"] is True
        assert 0 < len(attributes["faces"]) < 401
        recorded = await _recorded(hass, entity_id)
        assert recorded[-1].attributes["truncated"] is True, f"{entity_id} was not recorded"
    assert hass.states.get("sensor.front_door_last_person").attributes["distance"] == 0.31


async def test_every_face_fires_a_person_event(hass: HomeAssistant, mqtt_mock: Any) -> None:
    await _setup(hass)
    events: list[Event] = []

    @callback
    def _record(event: Event) -> None:  # a callback runs in firing order; a plain job may not
        events.append(event)

    hass.bus.async_listen("image_to_text_person", _record)

    await _faces(hass, "a", ("Anna", 0.31), ("unknown", 0.9))

    assert [(e.data["name"], e.data["known"]) for e in events] == [
        ("Anna", True),
        ("unknown", False),
    ]
    assert events[0].data["distance"] == 0.31
    assert events[0].data["camera"] == "front_door"
    assert events[0].data["device_id"] == camera_device(hass, "front_door").id


@pytest.fixture
def calls(hass: HomeAssistant) -> list[ServiceCall]:
    return async_mock_service(hass, "test", "automation")


async def test_known_and_unknown_person_triggers_run_automations(
    hass: HomeAssistant, mqtt_mock: Any, calls: list[ServiceCall]
) -> None:
    await _setup(hass)
    door = camera_device(hass, "front_door").id
    offered = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, [door])
    types = {t["type"] for t in offered[door] if t["domain"] == DOMAIN}
    assert {"known_person", "unknown_person", "new_caption"} <= types
    driveway = camera_device(hass, "driveway").id
    offered = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, [driveway])
    assert "known_person" not in {t["type"] for t in offered[driveway]}

    def automation(trigger_type: str, **extra: Any) -> dict[str, Any]:
        return {
            "trigger": {
                "platform": "device",
                "domain": DOMAIN,
                "device_id": door,
                "type": trigger_type,
                **extra,
            },
            "action": {
                "service": "test.automation",
                "data": {"who": f"{trigger_type}:{{{{ trigger.name }}}}"},
            },
        }

    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": [
                automation("known_person"),
                automation("known_person", name="anna"),
                automation("unknown_person"),
            ]
        },
    )
    await hass.async_block_till_done()

    await _faces(hass, "a", ("Anna", 0.31))
    await _faces(hass, "b", ("Ben", 0.4), ("unknown", 0.9))

    assert sorted(call.data["who"] for call in calls) == [
        "known_person:Anna",
        "known_person:Anna",
        "known_person:Ben",
        "unknown_person:unknown",
    ]


async def test_known_person_lets_the_user_name_one_person_or_leave_it_empty(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    import voluptuous_serialize
    from homeassistant.components.device_automation import (
        async_get_device_automation_platform,
    )
    from homeassistant.helpers import config_validation as cv

    await _setup(hass)
    door = camera_device(hass, "front_door").id
    platform = await async_get_device_automation_platform(
        hass, DOMAIN, DeviceAutomationType.TRIGGER
    )

    capabilities = await platform.async_get_trigger_capabilities(
        hass, {"platform": "device", "domain": DOMAIN, "device_id": door, "type": "known_person"}
    )

    (field,) = voluptuous_serialize.convert(
        capabilities["extra_fields"], custom_serializer=cv.custom_serializer
    )
    assert (field["name"], field["type"]) == ("name", "string")
    assert field.get("optional") is True
    assert not field.get("required")


async def test_a_name_clearly_below_the_threshold_is_announced_with_the_caption(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await _setup(hass, {"announcements": {"front_door": ANNOUNCE}})

    await _faces(hass, "a", ("Anna", 0.31))
    await async_publish_caption(hass, "front_door", "a woman holding a parcel")

    assert [call.data["message"] for call in speak] == [
        "Anna is at Front door: a woman holding a parcel"
    ]


async def test_a_borderline_name_is_announced_only_when_two_snapshots_agree(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    await _setup(hass, {"announcements": {"front_door": ANNOUNCE}})

    await _faces(hass, "a", ("Anna", 0.52))
    await async_publish_caption(hass, "front_door", "a woman at the door")
    await _faces(hass, "b", ("Anna", 0.53))
    await async_publish_caption(hass, "front_door", "a woman waving")

    assert [call.data["message"] for call in speak] == [
        "Someone at Front door: a woman at the door",
        "Anna is at Front door: a woman waving",
    ]


async def test_a_different_person_later_is_news_even_in_the_same_words(
    hass: HomeAssistant, mqtt_mock: Any, freezer: FrozenDateTimeFactory
) -> None:
    speak = async_mock_service(hass, "tts", "speak")
    door = {**ANNOUNCE, "only_changed": True, "changed_window": 600}
    await _setup(hass, {"announcements": {"front_door": door}})

    await _faces(hass, "a", ("Anna", 0.31))
    await async_publish_caption(hass, "front_door", "a person at the door")
    freezer.tick(timedelta(seconds=30))
    await async_publish_caption(hass, "front_door", "a person at the door")  # Anna, still
    freezer.tick(timedelta(minutes=2))
    await _faces(hass, "b", ("Ben", 0.3))
    await async_publish_caption(hass, "front_door", "a person at the door")

    assert [call.data["message"] for call in speak] == [
        "Anna is at Front door: a person at the door",
        "Ben is at Front door: a person at the door",
    ]


async def test_the_person_seen_blueprint_names_only_the_chosen_person(
    hass: HomeAssistant, mqtt_mock: Any, tmp_path: Any
) -> None:
    import shutil

    from ha_support import BLUEPRINTS

    hass.config.config_dir = str(tmp_path)
    shutil.copytree(BLUEPRINTS, tmp_path / "blueprints" / "automation" / "image_to_text")
    speak = async_mock_service(hass, "tts", "speak")
    await _setup(hass)
    door = camera_device(hass, "front_door").id
    inputs = {
        "camera_device": door,
        "person": "anna",
        "tts_entity": "tts.piper",
        "media_players": ["media_player.hall"],
        "quiet_time": 0,
    }
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "use_blueprint": {"path": "image_to_text/person_seen.yaml", "input": inputs}
            }
        },
    )
    await hass.async_block_till_done()

    await _faces(hass, "a", ("Ben", 0.3))
    await _faces(hass, "b", ("Anna", 0.3))

    assert [call.data["message"] for call in speak] == ["Anna is at Front door"]


class StandInFaces:
    """Answers ``<base>/faces/<action>`` commands as the bridge does, with a given reply."""

    def __init__(self, hass: HomeAssistant, reply: dict[str, Any]) -> None:
        self.hass = hass
        self.reply = reply
        self.commands: list[tuple[str, dict[str, Any]]] = []

    async def async_start(self) -> None:
        from homeassistant.components import mqtt

        await mqtt.async_subscribe(self.hass, f"{BASE}/faces/+", self._on_command, qos=1)

    @callback
    def _on_command(self, msg: Any) -> None:
        command = json.loads(msg.payload)
        self.commands.append((msg.topic.rsplit("/", 1)[1], command))
        answer = {**self.reply, "id": command["id"]}
        async_fire_mqtt_message(self.hass, command["reply_to"], json.dumps(answer))


async def test_enrolling_from_photo_files_sends_them_once_and_returns_the_bridges_answer(
    hass: HomeAssistant, mqtt_mock: Any, tmp_path: Any
) -> None:
    import base64

    from ha_support import REPO

    await _setup(hass)
    photo = tmp_path / "anna.jpg"
    photo.write_bytes((REPO / "tests" / "fixtures" / "faces" / "anna_1.jpg").read_bytes())
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    bridge = StandInFaces(hass, protocol_fixture("faces_add_reply"))
    await bridge.async_start()

    response = await hass.services.async_call(
        DOMAIN,
        "faces_add",
        {"name": "Anna", "files": [str(photo)]},
        blocking=True,
        return_response=True,
    )

    ((action, command),) = bridge.commands
    assert action == "add"
    assert command["name"] == "Anna"
    assert base64.b64decode(command["images"][0]) == photo.read_bytes()
    assert response["added"] == 2
    assert response["refused"][0]["code"] == "several_faces"


async def test_a_refused_enrolment_and_a_forbidden_file_say_why(
    hass: HomeAssistant, mqtt_mock: Any, tmp_path: Any
) -> None:
    from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

    await _setup(hass)
    with pytest.raises(ServiceValidationError, match="allowlist_external_dirs"):
        await hass.services.async_call(
            DOMAIN, "faces_add", {"name": "Anna", "files": ["/etc/passwd"]}, blocking=True
        )
    photo = tmp_path / "cup.jpg"
    photo.write_bytes(b"\xff\xd8 not really a face")
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    refusal = {
        "v": 1,
        "action": "add",
        "ok": False,
        "name": "Anna",
        "added": 0,
        "photos_total": 0,
        "refused": [{"photo": "photo 1", "code": "no_face", "reason": "no face found"}],
        "warnings": [],
        "error": "no_photo_added",
        "detail": "no photo could be used",
    }
    bridge = StandInFaces(hass, refusal)
    await bridge.async_start()
    with pytest.raises(HomeAssistantError, match="photo 1: no face found"):
        await hass.services.async_call(
            DOMAIN, "faces_add", {"name": "Anna", "files": [str(photo)]}, blocking=True
        )


async def test_enrolment_is_refused_at_once_while_the_bridge_is_offline(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    from homeassistant.exceptions import HomeAssistantError

    await async_setup_bridge(hass, online=False)
    bridge = StandInFaces(hass, protocol_fixture("faces_list_reply"))
    await bridge.async_start()

    # bounded well below the 60 s an enrolment may take: an offline bridge must not cost it
    async with asyncio.timeout(5):
        with pytest.raises(HomeAssistantError) as raised:
            await hass.services.async_call(
                DOMAIN, "faces_list", {}, blocking=True, return_response=True
            )

    assert raised.value.translation_key == "bridge_offline"
    assert bridge.commands == []

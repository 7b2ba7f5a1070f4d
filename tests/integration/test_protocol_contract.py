"""The integration's side of protocol v1, checked against the payloads both suites share.

Every file in tests/fixtures/protocol/ that the bridge publishes must parse here; payloads that
break the contract are refused by protocol.py, and the hub ignores them with one log line naming
the topic while everything else keeps working.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from conftest import BASE, PROTOCOL_FIXTURES, load_protocol_fixture
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

from custom_components.image_to_text.protocol import (
    CAMERA_NAME_PATTERN,
    RESERVED_CAMERA_NAMES,
    ProtocolError,
    Topics,
    is_camera_name,
    parse_error,
    parse_info,
    parse_result,
    parse_state,
)

RESULT_FIXTURES = [
    "caption_result",
    "ocr_result",
    "meter_result",
    "meter_dials_result",
    "faces_result",
    "reply",
]
# Enrolment commands the integration sends and the bridge's answers (test_faces.py uses them).
FACES_COMMAND_FIXTURES = ["faces_add", "faces_add_reply", "faces_list_reply", "faces_reply_error"]
ERROR_FIXTURES = ["error", "meter_error", "reply_error"]


def _raw(name: str) -> bytes:
    return (PROTOCOL_FIXTURES / f"{name}.json").read_bytes()


def test_every_shared_fixture_is_known_to_this_suite() -> None:
    names = {path.stem for path in PROTOCOL_FIXTURES.glob("*.json")}
    # request.json is what the integration sends, checked by the analyze service's tests;
    # camera_names.json is the camera-name rule, checked below
    assert names == {
        *RESULT_FIXTURES,
        *ERROR_FIXTURES,
        *FACES_COMMAND_FIXTURES,
        "info",
        "bridges_info",
        "request",
        "camera_names",
    }


@pytest.mark.parametrize("name", RESULT_FIXTURES)
def test_every_result_the_bridge_publishes_parses(name: str) -> None:
    result = parse_result(_raw(name))
    assert result == load_protocol_fixture(name)


@pytest.mark.parametrize("name", ERROR_FIXTURES)
def test_every_error_the_bridge_publishes_parses(name: str) -> None:
    assert parse_error(_raw(name))["error"] == load_protocol_fixture(name)["error"]


CAMERA_NAMES = load_protocol_fixture("camera_names")


def test_the_integration_applies_the_protocols_one_camera_name_rule() -> None:
    assert CAMERA_NAMES["pattern"] == CAMERA_NAME_PATTERN
    assert set(CAMERA_NAMES["reserved"]) == RESERVED_CAMERA_NAMES


@pytest.mark.parametrize("name", CAMERA_NAMES["valid"])
def test_a_valid_camera_name_gets_its_camera(name: str) -> None:
    assert is_camera_name(name)
    info = parse_info(json.dumps({"cameras": {name: {"tasks": ["caption"]}}}))
    assert list(info["cameras"]) == [name]


@pytest.mark.parametrize("name", CAMERA_NAMES["invalid"])
def test_an_invalid_or_reserved_camera_name_is_never_a_camera(name: str) -> None:
    assert not is_camera_name(name)
    with pytest.raises(ProtocolError, match="not a camera name"):
        parse_info(json.dumps({"cameras": {name: {"tasks": ["caption"]}}}))


async def test_a_result_on_the_bridges_own_topics_is_no_cameras_result(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    result = {**load_protocol_fixture("caption_result"), "camera": "bridge"}
    async_fire_mqtt_message(hass, f"{BASE}/bridge/caption", json.dumps(result))
    await hass.async_block_till_done()
    entry = hass.config_entries.async_entries("image_to_text")[0]
    assert ("bridge", "caption") not in entry.runtime_data.hub.last_result


def test_the_bridges_info_parses_with_its_cameras_tasks_and_counters() -> None:
    info = parse_info(_raw("info"))
    assert info["cameras"]["driveway"]["tasks"] == ["caption", "ocr"]
    assert info["cameras"]["gas_meter"]["meter"]["unit"] == "m³"
    assert info["counters"]["front_door"]["superseded"] == 1


def test_a_group_members_info_parses_with_its_bridge_site_and_group() -> None:
    info = parse_info(_raw("bridges_info"))
    assert (info["bridge_id"], info["site_id"], info["share"]) == ("nuc", "image_to_text", "home")
    assert info["cameras"]["front_door"]["tasks"] == ["caption"]
    assert info["counters"]["gas_meter"]["results"] == 4
    # a single bridge's info has no group: null is allowed
    assert parse_info(_with("bridges_info", share=None))["share"] is None


def test_the_bridge_state_is_online_or_offline_and_nothing_else() -> None:
    assert parse_state(b"online") is True
    assert parse_state("offline") is False
    with pytest.raises(ProtocolError):
        parse_state(b"maybe")


def test_topics_are_built_under_the_base_topic() -> None:
    topics = Topics("home/itt")
    assert topics.state == "home/itt/bridge/state"
    assert topics.info == "home/itt/bridge/info"
    assert topics.result("front_door", "caption") == "home/itt/front_door/caption"
    assert topics.image("front_door", "caption") == "home/itt/front_door/caption/image"
    assert topics.error("front_door") == "home/itt/front_door/error"
    assert topics.split("home/itt/front_door/caption") == ["front_door", "caption"]
    assert topics.split("elsewhere/front_door/caption") is None
    assert topics.member_states == "home/itt/bridges/+/state"
    assert topics.member_infos == "home/itt/bridges/+/info"
    assert topics.member_of("home/itt/bridges/nuc/state") == "nuc"
    assert topics.member_of("home/itt/bridges/nuc") is None
    assert topics.member_of("home/itt/front_door/caption/image") is None


def _without(name: str, key: str) -> str:
    data = load_protocol_fixture(name)
    del data[key]
    return json.dumps(data)


def _with(name: str, **changes: Any) -> str:
    return json.dumps({**load_protocol_fixture(name), **changes})


BAD_RESULTS = {
    "not json": "a man at the door",
    "a json list": "[1, 2]",
    "version 2": _with("caption_result", v=2),
    "version true": _with("caption_result", v=True),
    "no text": _without("caption_result", "text"),
    "text a number": _with("caption_result", text=3),
    "frame id a number": _with("caption_result", frame_id=7),
    "latency a string": _with("caption_result", latency_ms="fast"),
    "meter without value": _without("meter_result", "value"),
    "meter value a string": _with("meter_result", value="1234"),
    "lines not a list": _with("ocr_result", lines="NO PARKING"),
    "faces not a list": _with("faces_result", faces="Anna"),
    "names not strings": _with("faces_result", names=[1]),
    "a face without a box": _with("faces_result", faces=[{"name": "Anna", "distance": 0.3}]),
    "bridge id a number": _with("caption_result", bridge_id=3),
    "newest not a boolean": _with("caption_result", newest="false"),
    "a distance a string": _with(
        "faces_result", faces=[{"name": "Anna", "distance": "near", "box": [0, 0, 9, 9]}]
    ),
}


@pytest.mark.parametrize("payload", BAD_RESULTS.values(), ids=BAD_RESULTS.keys())
def test_a_result_that_breaks_the_contract_is_refused(payload: str) -> None:
    with pytest.raises(ProtocolError):
        parse_result(payload)


BAD_INFOS = {
    "no cameras": _without("info", "cameras"),
    "camera name with a slash": _with("info", cameras={"front/door": {"tasks": ["caption"]}}),
    "tasks not a list": _with("info", cameras={"front": {"tasks": "caption"}}),
    "meter not an object": _with("info", cameras={"m": {"tasks": ["meter"], "meter": 3}}),
    "counters not objects": _with("info", counters={"front_door": 3}),
    "site id a number": _with("bridges_info", site_id=1),
    "share a list": _with("bridges_info", share=["home"]),
}


@pytest.mark.parametrize("payload", BAD_INFOS.values(), ids=BAD_INFOS.keys())
def test_an_info_that_breaks_the_contract_is_refused(payload: str) -> None:
    with pytest.raises(ProtocolError):
        parse_info(payload)


def test_an_error_without_its_code_is_refused() -> None:
    with pytest.raises(ProtocolError):
        parse_error(_without("error", "error"))


def test_a_result_as_brief_as_the_design_brief_is_read_as_version_1() -> None:
    """Only what a sensor cannot do without is required; "v" defaults to 1."""
    result = parse_result(
        json.dumps({"camera": "front_door", "task": "caption", "text": "a man at the door"})
    )
    assert result["text"] == "a man at the door"
    meter = json.dumps({"camera": "gas", "task": "meter", "text": "1.5", "value": 1.5})
    assert parse_result(meter)["value"] == 1.5
    info = parse_info(json.dumps({"version": "0.1.0", "cameras": {"Front-Door": {"tasks": []}}}))
    assert "Front-Door" in info["cameras"]
    assert parse_error(json.dumps({"camera": "front_door", "error": "decode_failed"}))


def test_unknown_fields_are_kept_not_refused() -> None:
    result = parse_result(_with("caption_result", mood="cheerful"))
    assert result["mood"] == "cheerful"


BAD_MESSAGES = [
    ("front_door/caption", BAD_RESULTS["not json"]),
    ("front_door/caption", BAD_RESULTS["version 2"]),
    ("front_door/caption", BAD_RESULTS["no text"]),
    ("front_door/caption", _with("caption_result", camera="driveway")),
    ("gas_meter/meter", BAD_RESULTS["meter without value"]),
    ("front_door/error", "{}"),
    ("bridge/info", BAD_INFOS["no cameras"]),
    ("bridge/state", "sleepy"),
]


@pytest.mark.parametrize(("topic", "payload"), BAD_MESSAGES)
async def test_a_bad_payload_is_ignored_with_one_log_line_and_the_next_good_one_works(
    hass: HomeAssistant,
    setup_bridge: Any,
    caplog: pytest.LogCaptureFixture,
    topic: str,
    payload: str,
) -> None:
    entry = await setup_bridge()
    caplog.set_level(logging.WARNING, logger="custom_components.image_to_text")
    caplog.clear()

    async_fire_mqtt_message(hass, f"{BASE}/{topic}", payload)
    await hass.async_block_till_done()

    ours = [r for r in caplog.records if r.name.startswith("custom_components.image_to_text")]
    assert len(ours) == 1
    assert f"{BASE}/{topic}" in ours[0].getMessage()
    assert entry.runtime_data.hub.ignored_payloads == 1
    assert entry.runtime_data.hub.online  # the bridge's info and state are unchanged
    assert hass.states.get("sensor.front_door_caption").state == "unknown"

    result = load_protocol_fixture("caption_result")
    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(result))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.front_door_caption").state == result["text"]

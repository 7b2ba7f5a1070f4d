"""Several bridges, one site: a group of bridges (``mqtt.share``) shares the base topic.

A user runs two bridges, ``nuc`` and ``pi``, in one group. Each is a device of its own with a
connectivity sensor; a camera's entities stay available while any bridge that lists it is online;
unique ids derive from the group's ``site_id``, so they are those a single bridge had. A result
older than the one a sensor shows (a slower bridge) never takes the sensor back. A single bridge
that upgrades keeps every id and entity id, and its own last will rules over the old topics.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from conftest import BASE, load_protocol_fixture
from homeassistant.components.device_automation import (
    DeviceAutomationType,
    async_get_device_automations,
)
from homeassistant.config_entries import SOURCE_MQTT, SOURCE_USER
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

from custom_components.image_to_text import async_remove_config_entry_device
from custom_components.image_to_text.diagnostics import async_get_config_entry_diagnostics
from custom_components.image_to_text.protocol import (
    ProtocolError,
    Topics,
    parse_info,
    parse_result,
)

DOMAIN = "image_to_text"
SITE_CONNECTIVITY = "binary_sensor.image_to_text_bridge_connectivity"
NUC_CONNECTIVITY = "binary_sensor.image_to_text_bridge_nuc_connectivity"
PI_CONNECTIVITY = "binary_sensor.image_to_text_bridge_pi_connectivity"
FRONT_DOOR = "sensor.front_door_caption"
GAS_METER = "sensor.gas_meter_meter"


def _nuc() -> dict[str, Any]:
    """The group's first bridge: front door and gas meter (the shared fixture)."""
    return load_protocol_fixture("bridges_info")


def _pi() -> dict[str, Any]:
    """The group's second bridge: only the front door."""
    info = _nuc()
    info["bridge_id"] = "pi"
    info["version"] = "0.2.0"
    info["cameras"] = {"front_door": info["cameras"]["front_door"]}
    info["counters"] = {
        "front_door": {
            "received": 8,
            "results": 30,
            "errors": 0,
            "superseded": 2,
            "latency_ms": 100,
        }
    }
    return info


async def _member(
    hass: HomeAssistant, bridge_id: str, state: str | None, info: dict[str, Any] | None = None
) -> None:
    """A bridge of the group publishes its own state (``offline``: its last will) and info.

    Both are retained; a broker hands them to a subscriber already listening as live messages.
    """
    if state is not None:
        async_fire_mqtt_message(hass, f"{BASE}/bridges/{bridge_id}/state", state)
    if info is not None:
        async_fire_mqtt_message(hass, f"{BASE}/bridges/{bridge_id}/info", json.dumps(info))
    await hass.async_block_till_done()


async def _group(hass: HomeAssistant, setup_bridge: Any, options: Any = None) -> Any:
    """The entry, with both bridges of the group online."""
    entry = await setup_bridge(options, online=False)
    await _member(hass, "nuc", "online", _nuc())
    await _member(hass, "pi", "online", _pi())
    return entry


def _caption(text: str, captured_at: str, **fields: Any) -> str:
    result = load_protocol_fixture("caption_result")
    return json.dumps({**result, "text": text, "captured_at": captured_at, **fields})


def test_the_shared_group_info_fixture_is_read_with_its_bridge_site_and_group() -> None:
    fixture = load_protocol_fixture("bridges_info")
    info = parse_info(json.dumps(fixture))
    assert (info["bridge_id"], info["site_id"], info["share"]) == ("nuc", BASE, "home")
    assert set(info["cameras"]) == {"front_door", "gas_meter"}
    topics = Topics(BASE)
    assert topics.member_of(f"{BASE}/bridges/nuc/info") == "nuc"
    assert topics.member_of(f"{BASE}/bridges/nuc/state") == "nuc"
    assert topics.member_of(f"{BASE}/bridge/info") is None
    assert topics.member_of(f"{BASE}/front_door/caption") is None
    with pytest.raises(ProtocolError, match="site_id"):
        parse_info(json.dumps({**fixture, "site_id": 7}))
    result = parse_result(_caption("a cat", "2026-11-24T10:00:00+00:00", bridge_id="pi"))
    assert result["bridge_id"] == "pi"
    with pytest.raises(ProtocolError, match="newest"):
        parse_result(_caption("a cat", "2026-11-24T10:00:00+00:00", newest="no"))


async def test_each_bridge_of_a_group_is_a_device_under_the_sites_device(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await _group(hass, setup_bridge)
    devices = dr.async_get(hass)
    site = devices.async_get_device(identifiers={(DOMAIN, f"{BASE}/bridge")})
    nuc = devices.async_get_device(identifiers={(DOMAIN, f"{BASE}/bridges/nuc")})
    pi = devices.async_get_device(identifiers={(DOMAIN, f"{BASE}/bridges/pi")})
    assert site is not None
    assert nuc is not None
    assert pi is not None
    assert (nuc.name, nuc.sw_version, nuc.via_device_id) == (
        "Image to text bridge nuc",
        "0.1.0",
        site.id,
    )
    assert (pi.name, pi.sw_version, pi.model) == (
        "Image to text bridge pi",
        "0.2.0",
        "MQTT bridge, group home",
    )
    registry = er.async_get(hass)
    assert registry.async_get(NUC_CONNECTIVITY).unique_id == f"{BASE}/bridges/nuc/connectivity"
    assert registry.async_get(NUC_CONNECTIVITY).device_id == nuc.id
    assert hass.states.get(PI_CONNECTIVITY).attributes["cameras"] == ["front_door"]
    # unique ids come from the group's site id: what a single bridge's entities always had
    assert registry.async_get(FRONT_DOOR).unique_id == f"{BASE}/front_door/caption/text"
    assert registry.async_get(GAS_METER).unique_id == f"{BASE}/gas_meter/meter/text"
    assert hass.states.get(SITE_CONNECTIVITY).state == STATE_ON
    assert entry.entry_id in nuc.config_entries
    # a bridge is not a camera: its device offers no camera triggers
    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, [nuc.id])
    assert [t for t in triggers[nuc.id] if t["domain"] == DOMAIN] == []


async def test_a_camera_stays_available_while_any_bridge_serving_it_is_online(
    hass: HomeAssistant, setup_bridge: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await _group(hass, setup_bridge)
    caplog.set_level(logging.INFO, logger="custom_components.image_to_text")
    caplog.clear()

    await _member(hass, "pi", "offline")  # pi's last will
    assert hass.states.get(PI_CONNECTIVITY).state == STATE_OFF
    assert hass.states.get(NUC_CONNECTIVITY).state == STATE_ON
    assert hass.states.get(FRONT_DOOR).state != STATE_UNAVAILABLE
    assert hass.states.get(GAS_METER).state != STATE_UNAVAILABLE

    await _member(hass, "pi", "online")
    await _member(hass, "nuc", "offline")  # only nuc reads the gas meter
    assert hass.states.get(FRONT_DOOR).state != STATE_UNAVAILABLE
    assert hass.states.get(GAS_METER).state == STATE_UNAVAILABLE
    assert hass.states.get(SITE_CONNECTIVITY).state == STATE_ON

    await _member(hass, "pi", "offline")
    await _member(hass, "pi", "offline")
    assert hass.states.get(FRONT_DOOR).state == STATE_UNAVAILABLE
    assert hass.states.get(SITE_CONNECTIVITY).state == STATE_OFF

    await _member(hass, "nuc", "online")
    assert hass.states.get(FRONT_DOOR).state != STATE_UNAVAILABLE
    assert hass.states.get(GAS_METER).state != STATE_UNAVAILABLE

    site_lines = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("custom_components") and f"bridge {BASE} " in r.getMessage()
    ]
    assert site_lines == [
        f"Image to text bridge {BASE} is unavailable: every bridge is offline",
        f"Image to text bridge {BASE} is back online",
    ]
    member_lines = [r.getMessage() for r in caplog.records if f" of {BASE} is " in r.getMessage()]
    assert member_lines == [
        f"Image to text bridge pi of {BASE} is offline",
        f"Image to text bridge pi of {BASE} is online",
        f"Image to text bridge nuc of {BASE} is offline",
        f"Image to text bridge pi of {BASE} is offline",
        f"Image to text bridge nuc of {BASE} is online",
    ]


async def test_bridges_of_a_group_never_move_the_ids_back_and_forth(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await _group(hass, setup_bridge)
    registry = er.async_get(hass)
    before = {
        e.entity_id: e.unique_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }
    for _ in range(2):
        await _member(hass, "nuc", None, _nuc())
        await _member(hass, "pi", None, _pi())
    after = {
        e.entity_id: e.unique_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }
    assert after == before
    assert entry.runtime_data.hub.site_id == BASE


async def test_a_result_older_than_the_one_shown_never_takes_the_sensor_back(
    hass: HomeAssistant, setup_bridge: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await _group(hass, setup_bridge)
    caplog.set_level(logging.DEBUG, logger="custom_components.image_to_text")
    events: list[Any] = []
    hass.bus.async_listen("image_to_text_result", events.append)
    topic = f"{BASE}/front_door/caption"

    async_fire_mqtt_message(hass, topic, _caption("a parcel", "2026-11-24T10:00:05+00:00"))
    await hass.async_block_till_done()
    assert hass.states.get(FRONT_DOOR).state == "a parcel"

    # pi was slower with an earlier frame: it marks its result not newest ...
    old = _caption("an empty porch", "2026-11-24T10:00:01+00:00", bridge_id="pi", newest=False)
    async_fire_mqtt_message(hass, topic, old)
    # ... and an older result without the mark is just as old
    async_fire_mqtt_message(
        hass, topic, _caption("a cat", "2026-11-24T10:00:03+00:00", bridge_id="pi")
    )
    await hass.async_block_till_done()
    assert hass.states.get(FRONT_DOOR).state == "a parcel"
    assert [event.data["text"] for event in events] == ["a parcel"]
    ignored = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Ignoring")]
    assert len(ignored) == 2
    assert "not the newest result" in ignored[0]
    assert "before the shown one" in ignored[1]

    async_fire_mqtt_message(
        hass, topic, _caption("a man", "2026-11-24T10:00:09+00:00", bridge_id="pi")
    )
    await hass.async_block_till_done()
    assert hass.states.get(FRONT_DOOR).state == "a man"
    assert hass.states.get(FRONT_DOOR).attributes["bridge_id"] == "pi"


async def test_a_camera_no_bridge_lists_can_go_only_once_every_bridge_has_spoken(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge(online=False)
    await _member(hass, "nuc", "online", _nuc())
    devices = dr.async_get(hass)
    gas_meter = devices.async_get_device(identifiers={(DOMAIN, f"{BASE}/gas_meter")})
    assert gas_meter is not None
    without_meter = _nuc()
    del without_meter["cameras"]["gas_meter"]
    await _member(hass, "nuc", None, without_meter)
    # pi is online but has not sent its info: it may still read the gas meter
    await _member(hass, "pi", "online")
    assert not await async_remove_config_entry_device(hass, entry, gas_meter)

    await _member(hass, "pi", None, _pi())
    assert await async_remove_config_entry_device(hass, entry, gas_meter)
    front_door = devices.async_get_device(identifiers={(DOMAIN, f"{BASE}/front_door")})
    assert not await async_remove_config_entry_device(hass, entry, front_door)
    nuc = devices.async_get_device(identifiers={(DOMAIN, f"{BASE}/bridges/nuc")})
    assert not await async_remove_config_entry_device(hass, entry, nuc)


async def test_a_failed_model_is_a_problem_of_the_bridge_that_has_it(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await _group(hass, setup_bridge)
    broken = _pi()
    broken["models"]["caption"] = {
        "engine": "transformers",
        "model": "blip",
        "status": "failed",
        "error": "out of memory",
    }
    await _member(hass, "pi", None, broken)

    assert hass.states.get("binary_sensor.image_to_text_bridge_pi_caption_model").state == STATE_ON
    assert (
        hass.states.get("binary_sensor.image_to_text_bridge_nuc_caption_model").state == STATE_OFF
    )
    issues = [i for (domain, _), i in ir.async_get(hass).issues.items() if domain == DOMAIN]
    assert [i.translation_placeholders["bridge"] for i in issues] == [f"pi ({BASE})"]

    await _member(hass, "pi", None, _pi())
    assert hass.states.get("binary_sensor.image_to_text_bridge_pi_caption_model").state == STATE_OFF
    assert [i for (domain, _), i in ir.async_get(hass).issues.items() if domain == DOMAIN] == []


async def test_diagnostics_list_every_bridge_of_the_group_and_add_up_their_counters(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await _group(hass, setup_bridge)
    await _member(hass, "pi", "offline")

    diagnostics = await async_get_config_entry_diagnostics(hass, entry)

    bridges = {bridge["bridge_id"]: bridge for bridge in diagnostics["bridges"]}
    assert set(bridges) == {"nuc", "pi"}
    assert bridges["pi"]["online"] is False
    assert bridges["pi"]["cameras"] == ["front_door"]
    assert bridges["nuc"]["share"] == "home"
    assert diagnostics["bridge"]["site_id"] == BASE
    counters = entry.runtime_data.hub.counters("front_door")
    assert counters["received"] == 12 + 8
    assert counters["latency_ms"] == round((412.7 * 10 + 100 * 30) / 40, 1)


async def test_a_single_bridge_that_upgrades_keeps_every_id_and_its_own_will_rules(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge()  # today's bridge: bridge/state and bridge/info only
    registry = er.async_get(hass)
    # the ids today's entries have (test_unique_ids.py): they must not move
    assert registry.async_get(FRONT_DOOR).unique_id == f"{BASE}/front_door/caption/text"
    assert registry.async_get(SITE_CONNECTIVITY).unique_id == f"{BASE}/bridge/connectivity"
    assert registry.async_get("binary_sensor.image_to_text_bridge_ocr_model") is not None
    before = {
        e.entity_id: e.unique_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }
    devices_before = {
        d.id for d in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    }

    # the upgraded bridge: its host name as bridge_id, the old id as site id, no group
    info = {**load_protocol_fixture("info"), "bridge_id": "nuc", "site_id": BASE, "share": None}
    async_fire_mqtt_message(hass, f"{BASE}/bridge/info", json.dumps(info))
    await _member(hass, "nuc", "online", info)

    after = {
        e.entity_id: e.unique_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }
    assert after == before
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert {d.id for d in devices} == devices_before
    assert len(entry.runtime_data.hub.bridges.all()) == 1

    # it dies hard: its will is on its own topic, the old retained "online" stays behind
    await _member(hass, "nuc", "offline")
    assert hass.states.get(SITE_CONNECTIVITY).state == STATE_OFF
    assert hass.states.get(FRONT_DOOR).state == STATE_UNAVAILABLE


async def test_a_group_is_discovered_and_added_from_a_bridges_own_info(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    discovery = MqttServiceInfo(
        topic=f"{BASE}/bridges/nuc/info",
        payload=json.dumps(_nuc()),
        qos=1,
        retain=True,
        subscribed_topic=f"{BASE}/bridges/+/info",
        timestamp=dt_util.utcnow(),
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=discovery
    )
    assert result["type"] == FlowResultType.FORM
    assert result["step_id"] == "confirm"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] == FlowResultType.CREATE_ENTRY
    assert result["data"] == {"base_topic": BASE}


async def test_a_group_added_by_hand_answers_with_a_bridges_own_info(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    # not the default base topic, which MQTT discovery would offer first (see the test above)
    base = "home/itt"
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    step = asyncio.ensure_future(
        hass.config_entries.flow.async_configure(result["flow_id"], {"base_topic": base})
    )
    info = json.dumps({**_pi(), "base_topic": base, "site_id": base})
    async with asyncio.timeout(10):
        while not step.done():
            # a group has no single-bridge info; each bridge keeps its own retained
            async_fire_mqtt_message(hass, f"{base}/bridges/pi/info", info, retain=True)
            await asyncio.sleep(0.02)
    assert step.result()["type"] == FlowResultType.CREATE_ENTRY
    assert step.result()["data"] == {"base_topic": base}

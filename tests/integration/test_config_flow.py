"""Adding a bridge: by its base topic, or when Home Assistant sees its retained info."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from conftest import BASE, REPO, load_protocol_fixture
from ha_support import async_configure_while_bridge_answers
from homeassistant.config_entries import SOURCE_MQTT, SOURCE_USER, ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from custom_components.image_to_text import config_flow

DOMAIN = "image_to_text"


def _discovery(topic: str, payload: str | bytes) -> MqttServiceInfo:
    return MqttServiceInfo(
        topic=topic,
        payload=payload,
        qos=1,
        retain=True,
        subscribed_topic=f"{BASE}/bridge/info",
        timestamp=dt_util.utcnow(),
    )


async def test_a_user_adds_the_bridge_by_its_base_topic(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] == FlowResultType.FORM
    assert result["step_id"] == "user"

    result = await async_configure_while_bridge_answers(
        hass, result["flow_id"], {"base_topic": " home/image_to_text/ "}, base="home/image_to_text"
    )
    await hass.async_block_till_done()

    assert result["type"] == FlowResultType.CREATE_ENTRY
    assert result["title"] == "Image to text (home/image_to_text)"
    assert result["data"] == {"base_topic": "home/image_to_text"}
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    assert entry.unique_id == "home/image_to_text"


async def test_a_mistyped_base_topic_is_added_only_when_the_user_says_so(
    hass: HomeAssistant, mqtt_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_flow, "INFO_WAIT_SECONDS", 0.2)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})

    # A bridge is online, but on another base topic than the one typed.
    result = await async_configure_while_bridge_answers(
        hass, result["flow_id"], {"base_topic": "image_to_txet"}, base=BASE
    )

    assert result["type"] == FlowResultType.FORM
    assert result["step_id"] == "no_answer"
    assert result["description_placeholders"] == {"base_topic": "image_to_txet", "seconds": "0.2"}
    assert hass.config_entries.async_entries(DOMAIN) == []

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()

    assert result["type"] == FlowResultType.CREATE_ENTRY
    assert result["data"] == {"base_topic": "image_to_txet"}


async def test_a_message_on_the_info_topic_that_is_not_the_bridges_info_is_no_answer(
    hass: HomeAssistant, mqtt_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_flow, "INFO_WAIT_SECONDS", 0.3)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    step = asyncio.ensure_future(
        hass.config_entries.flow.async_configure(result["flow_id"], {"base_topic": BASE})
    )
    while not step.done():
        async_fire_mqtt_message(hass, f"{BASE}/bridge/info", "not json", retain=True)
        await asyncio.sleep(0.02)

    assert step.result()["step_id"] == "no_answer"


async def test_without_mqtt_the_flow_stops_and_says_why(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})

    assert result["type"] == FlowResultType.ABORT
    assert result["reason"] == "mqtt_not_configured"
    assert hass.config_entries.async_entries(DOMAIN) == []


async def test_the_user_form_offers_the_default_base_topic(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})

    schema = result["data_schema"].schema
    (key,) = schema
    assert key == "base_topic"
    assert key.default() == BASE


@pytest.mark.parametrize("topic", ["", "  /  ", "cameras/#", "a/+/b", "$SYS/x"])
async def test_a_base_topic_that_cannot_be_subscribed_to_is_refused(
    hass: HomeAssistant, mqtt_mock: Any, topic: str
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"base_topic": topic}
    )

    assert result["type"] == FlowResultType.FORM
    assert result["errors"] == {"base_topic": "invalid_topic"}


async def test_the_same_bridge_cannot_be_added_twice(hass: HomeAssistant, mqtt_mock: Any) -> None:
    MockConfigEntry(domain=DOMAIN, data={"base_topic": BASE}, unique_id=BASE).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"base_topic": BASE})

    assert result["type"] == FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_a_discovered_bridge_is_offered_and_added_after_confirmation(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    info = json.dumps(load_protocol_fixture("info"))
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=_discovery(f"{BASE}/bridge/info", info)
    )
    assert result["type"] == FlowResultType.FORM
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"] == {"base_topic": BASE}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()

    assert result["type"] == FlowResultType.CREATE_ENTRY
    assert result["data"] == {"base_topic": BASE}
    assert hass.config_entries.async_entries(DOMAIN)[0].unique_id == BASE


async def test_a_discovered_bridge_that_is_already_configured_is_not_offered_again(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    MockConfigEntry(domain=DOMAIN, data={"base_topic": BASE}, unique_id=BASE).add_to_hass(hass)
    info = json.dumps(load_protocol_fixture("info"))

    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=_discovery(f"{BASE}/bridge/info", info)
    )

    assert result["type"] == FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize(
    "payload", ["", "not json", json.dumps({"v": 2, "cameras": {}}), json.dumps({"v": 1})]
)
async def test_a_discovery_message_that_is_not_a_bridges_info_is_not_offered(
    hass: HomeAssistant, mqtt_mock: Any, payload: str
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_MQTT}, data=_discovery(f"{BASE}/bridge/info", payload)
    )

    assert result["type"] == FlowResultType.ABORT
    assert result["reason"] == "invalid_discovery_info"


async def test_the_bridges_retained_info_on_the_broker_starts_discovery(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    async_fire_mqtt_message(
        hass, f"{BASE}/bridge/info", json.dumps(load_protocol_fixture("info")), retain=True
    )
    await hass.async_block_till_done()

    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) == 1
    assert flows[0]["context"]["source"] == SOURCE_MQTT
    assert flows[0]["context"]["unique_id"] == BASE


async def test_without_a_broker_the_entry_waits_and_retries(hass: HomeAssistant) -> None:
    entry = MockConfigEntry(domain=DOMAIN, data={"base_topic": BASE}, unique_id=BASE)
    entry.add_to_hass(hass)

    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_an_unloaded_entry_stops_listening_to_the_bridge(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge()
    events: list[Any] = []
    hass.bus.async_listen("image_to_text_result", events.append)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    async_fire_mqtt_message(
        hass, f"{BASE}/front_door/caption", json.dumps(load_protocol_fixture("caption_result"))
    )
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.NOT_LOADED
    assert events == []
    assert hass.states.get("sensor.front_door_caption").state == STATE_UNAVAILABLE


def test_the_english_translation_is_strings_json_and_every_icon_names_a_translated_entity() -> None:
    component = REPO / "custom_components" / "image_to_text"
    strings = json.loads((component / "strings.json").read_text())
    english = json.loads((component / "translations" / "en.json").read_text())
    icons = json.loads((component / "icons.json").read_text())

    assert english == strings
    for platform, keys in icons["entity"].items():
        assert set(keys) <= set(strings["entity"][platform]), platform
    assert set(strings["config"]["step"]) == {"user", "no_answer", "confirm", "reconfigure"}


def _literals(source: str, pattern: str) -> set[str]:
    text = (REPO / "custom_components" / "image_to_text" / source).read_text()
    return set(re.findall(pattern, text))


@pytest.mark.parametrize(
    ("source", "section"), [("config_flow.py", "config"), ("options_flow.py", "options")]
)
def test_every_step_error_and_abort_reason_of_a_flow_has_its_english_text(
    source: str, section: str
) -> None:
    strings = json.loads(
        (REPO / "custom_components" / "image_to_text" / "strings.json").read_text()
    )[section]
    steps = _literals(source, r'step_id="(\w+)"')
    reasons = _literals(source, r'reason="(\w+)"')
    errors = _literals(source, r'errors\[\w+\] = "(\w+)"')
    assert steps, "the scan sees the flow's steps"
    assert reasons | errors, "the scan sees its reasons and errors"
    assert steps <= set(strings["step"])
    assert reasons <= set(strings["abort"])
    assert errors <= set(strings["error"])


def test_every_translated_exception_has_its_english_text() -> None:
    strings = json.loads(
        (REPO / "custom_components" / "image_to_text" / "strings.json").read_text()
    )
    keys = set()
    for source in (REPO / "custom_components" / "image_to_text").glob("*.py"):
        keys |= _literals(source.name, r'translation_key="(\w+)"')
    assert keys
    assert keys <= set(strings["exceptions"])


def test_the_manifest_asks_for_mqtt_and_discovers_the_bridges_info() -> None:
    manifest = json.loads(
        (REPO / "custom_components" / "image_to_text" / "manifest.json").read_text()
    )
    hacs = json.loads((REPO / "hacs.json").read_text())

    assert manifest["dependencies"] == ["mqtt"]
    assert manifest["mqtt"] == [f"{BASE}/bridge/info", f"{BASE}/bridges/+/info"]
    assert manifest["config_flow"] is True
    assert manifest["iot_class"] == "local_push"
    assert manifest["version"]
    assert hacs["name"] == manifest["name"]


def test_the_quality_scale_says_for_every_rule_whether_it_is_met_or_why_not() -> None:
    from homeassistant.util.yaml import load_yaml

    rules = load_yaml(str(REPO / "custom_components" / "image_to_text" / "quality_scale.yaml"))[
        "rules"
    ]
    for must in ("config-flow", "entity-unique-id", "parallel-updates", "repair-issues"):
        assert rules[must] == "done", must
    assert len(rules) >= 45
    for name, rule in rules.items():
        if isinstance(rule, dict):
            assert rule["status"] in ("exempt", "todo"), name
            assert rule["comment"].strip(), f"{name}: say why"
        else:
            assert rule == "done", name

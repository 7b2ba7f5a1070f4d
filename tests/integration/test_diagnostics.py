"""Diagnostics: what a user attaches to a bug report, without secrets or pictures."""

from __future__ import annotations

import json
from typing import Any

from conftest import BASE, REPO, load_protocol_fixture
from homeassistant.components.diagnostics import REDACTED
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

from custom_components.image_to_text.diagnostics import async_get_config_entry_diagnostics

JPEG = (REPO / "config" / "samples" / "cat_on_porch.jpg").read_bytes()


async def test_diagnostics_show_the_bridges_info_counters_and_latest_results(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge({"keywords": ["person"]})
    result = load_protocol_fixture("caption_result")
    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(result))
    async_fire_mqtt_message(
        hass, f"{BASE}/front_door/error", json.dumps(load_protocol_fixture("error"))
    )
    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption/image", JPEG)
    await hass.async_block_till_done()

    diagnostics = await async_get_config_entry_diagnostics(hass, entry)

    info = load_protocol_fixture("info")
    assert diagnostics["entry"]["data"] == {"base_topic": BASE}
    assert diagnostics["entry"]["options"] == {"keywords": ["person"]}
    assert diagnostics["bridge"] == {
        "base_topic": BASE,
        "site_id": BASE,
        "online": True,
        "ignored_payloads": 0,
    }
    (bridge,) = diagnostics["bridges"]
    assert (bridge["bridge_id"], bridge["topics"], bridge["online"]) == (BASE, "legacy", True)
    assert diagnostics["info"] == info
    assert diagnostics["counters"] == info["counters"]
    assert diagnostics["last_results"] == {"front_door/caption": result}
    assert diagnostics["last_errors"]["front_door"]["error"] == "decode_failed"
    assert diagnostics["last_images"]["front_door/caption"]["bytes"] == len(JPEG)
    json.dumps(diagnostics)  # what the download will be


async def test_diagnostics_redact_credentials_urls_and_base64_images(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    info = load_protocol_fixture("info")
    info["mqtt"] = {"username": "bridge", "password": "hunter2"}
    info["cameras"]["front_door"]["url"] = "http://admin:secret@192.0.2.7/snapshot.jpg"
    entry = await setup_bridge(info=info)
    result = {**load_protocol_fixture("reply"), "image": "aGVsbG8=", "url": "http://x/y.jpg"}
    result.pop("id")
    async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(result))
    await hass.async_block_till_done()

    diagnostics = await async_get_config_entry_diagnostics(hass, entry)

    assert diagnostics["info"]["mqtt"] == {"username": REDACTED, "password": REDACTED}
    assert diagnostics["info"]["cameras"]["front_door"]["url"] == REDACTED
    assert diagnostics["last_results"]["front_door/caption"]["image"] == REDACTED
    assert diagnostics["last_results"]["front_door/caption"]["url"] == REDACTED
    text = json.dumps(diagnostics)
    for secret in ("hunter2", "secret@", "aGVsbG8=", "http://x/y.jpg"):
        assert secret not in text

"""A model the bridge could not load is seen: a repair issue with the bridge's reason and a problem
binary sensor on the bridge device; both clear as soon as the bridge reports the model loaded."""

from __future__ import annotations

import json
from typing import Any

from conftest import BASE, REPO, load_protocol_fixture
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

DOMAIN = "image_to_text"
OCR_MODEL = "binary_sensor.image_to_text_bridge_ocr_model"
REASON = "rapidocr: could not load det.onnx (No such file or directory); set models.ocr.model_dir"


def _info(status: str, error: str | None = None) -> dict[str, Any]:
    info = load_protocol_fixture("info")
    info["models"]["ocr"] = {"engine": "rapidocr", "model": "rapidocr", "status": status}
    if error is not None:
        info["models"]["ocr"]["error"] = error
    return info


async def _publish(hass: HomeAssistant, info: dict[str, Any]) -> None:
    async_fire_mqtt_message(hass, f"{BASE}/bridge/info", json.dumps(info))
    await hass.async_block_till_done()


def _issues(hass: HomeAssistant) -> list[ir.IssueEntry]:
    return [issue for (domain, _), issue in ir.async_get(hass).issues.items() if domain == DOMAIN]


async def test_a_failed_model_raises_a_repair_issue_and_a_problem_until_it_loads(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge()
    assert _issues(hass) == []
    assert hass.states.get(OCR_MODEL).state == STATE_OFF

    await _publish(hass, _info("failed", REASON))

    (issue,) = _issues(hass)
    assert issue.translation_key == "model_failed"
    assert issue.severity == ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {
        "task": "ocr",
        "model": "rapidocr",
        "bridge": BASE,
        "error": REASON,
    }
    state = hass.states.get(OCR_MODEL)
    assert state.state == STATE_ON
    assert state.attributes["device_class"] == "problem"
    assert state.attributes["error"] == REASON
    assert hass.states.get("binary_sensor.image_to_text_bridge_caption_model").state == STATE_OFF
    entity = er.async_get(hass).async_get(OCR_MODEL)
    assert entity.entity_category == "diagnostic"
    assert entity.config_entry_id == entry.entry_id

    await _publish(hass, _info("ready"))

    assert _issues(hass) == []
    assert hass.states.get(OCR_MODEL).state == STATE_OFF


async def test_a_long_reason_is_cut_to_a_readable_length(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge(info=_info("failed", "x" * 5000))

    (issue,) = _issues(hass)
    assert len(issue.translation_placeholders["error"]) == 500


async def test_the_issue_goes_with_the_bridges_entry(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge(info=_info("failed", REASON))
    assert _issues(hass)

    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()

    assert _issues(hass) == []


async def test_the_issues_text_has_every_placeholder_it_is_given() -> None:
    strings = json.loads(
        (REPO / "custom_components" / "image_to_text" / "strings.json").read_text()
    )
    issue = strings["issues"]["model_failed"]
    for placeholder in ("{task}", "{model}", "{bridge}", "{error}"):
        assert placeholder in issue["title"] + issue["description"]


async def test_a_huge_reason_still_fits_the_recorder(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge(info=_info("failed", "é" * 40_000))

    attributes = dict(hass.states.get(OCR_MODEL).attributes)
    assert len(json.dumps(attributes).encode()) < 16384
    assert attributes["truncated"] is True

"""The options flow: keywords, spoken announcements per camera, and Frigate names."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from ha_support import REPO, async_setup_bridge
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData


async def _open(hass: HomeAssistant, entry_id: str, page: str) -> dict[str, Any]:
    result = await hass.config_entries.options.async_init(entry_id)
    assert result["type"] == FlowResultType.MENU
    assert result["menu_options"] == ["keywords", "announce", "names"]
    return dict(
        await hass.config_entries.options.async_configure(result["flow_id"], {"next_step_id": page})
    )


async def test_keywords_are_saved_trimmed_and_without_blanks_or_repeats(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    entry = await async_setup_bridge(hass, {"frigate_names": True, "name_window": 20})
    form = await _open(hass, entry.entry_id, "keywords")
    assert form["step_id"] == "keywords"

    result = await hass.config_entries.options.async_configure(
        form["flow_id"],
        {"keywords": ["person", " parcel | package ", "", "Person"], "keyword_hold": 30},
    )
    await hass.async_block_till_done()

    assert result["type"] == FlowResultType.CREATE_ENTRY
    assert entry.options == {
        "keywords": ["person", "parcel|package"],
        "keyword_hold": 30,
        "frigate_names": True,  # other pages' options are kept
        "name_window": 20,
    }


async def test_a_keyword_with_an_empty_alternative_is_refused(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    entry = await async_setup_bridge(hass)
    form = await _open(hass, entry.entry_id, "keywords")

    result = await hass.config_entries.options.async_configure(
        form["flow_id"], {"keywords": ["parcel||box"], "keyword_hold": 60}
    )

    assert result["type"] == FlowResultType.FORM
    assert result["errors"] == {"keywords": "invalid_keyword"}
    assert entry.options == {}
    typed = result["data_schema"]({})  # the form is shown again as the user typed it
    assert typed["keywords"] == ["parcel||box"]


async def test_an_announcement_is_set_up_for_a_camera_the_bridge_reported(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    entry = await async_setup_bridge(hass, {"keywords": ["person"]})
    form = await _open(hass, entry.entry_id, "announce")
    assert form["step_id"] == "announce"
    cameras = form["data_schema"].schema["camera"].config["options"]
    assert cameras == ["driveway", "front_door"]  # the bridge's captioning cameras (info.json)

    details = await hass.config_entries.options.async_configure(
        form["flow_id"], {"camera": "front_door"}
    )
    assert details["step_id"] == "announce_camera"
    assert details["description_placeholders"] == {"camera": "front_door"}
    result = await hass.config_entries.options.async_configure(
        details["flow_id"],
        {
            "enabled": True,
            "tts_entity": "tts.piper",
            "media_players": ["media_player.kitchen"],
            "message": "{{ camera_name }}: {{ caption }}",
            "cooldown": 45,
            "only_keywords": True,
            "only_changed": False,
        },
    )
    await hass.async_block_till_done()

    assert result["type"] == FlowResultType.CREATE_ENTRY
    assert entry.options["keywords"] == ["person"]
    assert entry.options["announcements"] == {
        "front_door": {
            "tts_entity": "tts.piper",
            "media_players": ["media_player.kitchen"],
            "message": "{{ camera_name }}: {{ caption }}",
            "cooldown": 45,
            "only_keywords": True,
            "only_changed": False,
            "changed_window": 600,
        }
    }


async def test_an_announcement_needs_a_tts_entity_and_speakers(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    entry = await async_setup_bridge(hass)
    form = await _open(hass, entry.entry_id, "announce")
    details = await hass.config_entries.options.async_configure(
        form["flow_id"], {"camera": "front_door"}
    )

    result = await hass.config_entries.options.async_configure(
        details["flow_id"],
        {
            "enabled": True,
            "message": "{{ caption }}",
            "cooldown": 60,
            "only_keywords": False,
            "only_changed": True,
        },
    )

    assert result["type"] == FlowResultType.FORM
    assert result["errors"] == {
        "tts_entity": "tts_required",
        "media_players": "media_player_required",
    }


async def test_a_message_that_is_not_a_template_is_refused(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    entry = await async_setup_bridge(hass)
    form = await _open(hass, entry.entry_id, "announce")
    details = await hass.config_entries.options.async_configure(
        form["flow_id"], {"camera": "front_door"}
    )

    with pytest.raises(InvalidData) as raised:
        await hass.config_entries.options.async_configure(
            details["flow_id"],
            {
                "enabled": True,
                "tts_entity": "tts.piper",
                "media_players": ["media_player.kitchen"],
                "message": "{{ caption ",
                "cooldown": 60,
                "only_keywords": False,
                "only_changed": True,
            },
        )

    assert "message" in raised.value.schema_errors
    assert "announcements" not in entry.options


async def test_switching_an_announcement_off_removes_it(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    door = {
        "tts_entity": "tts.piper",
        "media_players": ["media_player.kitchen"],
        "message": "{{ caption }}",
        "cooldown": 60,
        "only_keywords": False,
        "only_changed": True,
    }
    entry = await async_setup_bridge(
        hass, {"announcements": {"front_door": door, "driveway": door}}
    )
    form = await _open(hass, entry.entry_id, "announce")
    details = await hass.config_entries.options.async_configure(
        form["flow_id"], {"camera": "front_door"}
    )

    result = await hass.config_entries.options.async_configure(
        details["flow_id"], {**door, "enabled": False}
    )
    await hass.async_block_till_done()

    assert result["type"] == FlowResultType.CREATE_ENTRY
    assert entry.options["announcements"] == {"driveway": door}


async def test_announcements_wait_for_the_bridge_to_report_its_cameras(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    entry = await async_setup_bridge(hass, online=False)

    result = await _open(hass, entry.entry_id, "announce")

    assert result["type"] == FlowResultType.ABORT
    assert result["reason"] == "no_cameras"


async def test_frigate_names_are_switched_on_with_their_window(
    hass: HomeAssistant, mqtt_mock: Any
) -> None:
    entry = await async_setup_bridge(hass, {"keywords": ["person"]})
    form = await _open(hass, entry.entry_id, "names")

    result = await hass.config_entries.options.async_configure(
        form["flow_id"], {"frigate_names": True, "name_window": 45}
    )
    await hass.async_block_till_done()

    assert result["type"] == FlowResultType.CREATE_ENTRY
    assert entry.options == {
        "keywords": ["person"],
        "frigate_names": True,
        "name_window": 45,
        "frigate_prefix": "frigate",
    }


def test_every_options_page_field_and_error_has_words_in_strings_json() -> None:
    integration = REPO / "custom_components" / "image_to_text"
    options = json.loads((integration / "strings.json").read_text())["options"]
    source = (integration / "options_flow.py").read_text()

    pages = set(re.findall(r'step_id="(\w+)"', source)) | {"init"}
    assert pages == set(options["step"])
    errors = set(re.findall(r'errors\[\w+\] = "(\w+)"', source))
    assert errors == set(options["error"])
    aborts = set(re.findall(r'async_abort\(reason="(\w+)"\)', source))
    assert aborts == set(options["abort"])

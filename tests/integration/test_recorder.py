"""A lean recorder: per-frame attributes are never written, and nothing is too big to record.

Run against Home Assistant's real recorder (SQLite in memory): what a user's history and logbook
would hold after the bridge published its results.
"""

from __future__ import annotations

import json
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from conftest import BASE, load_protocol_fixture
from homeassistant.components.recorder import get_instance, history
from homeassistant.core import Event, HomeAssistant, State, callback
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.image_to_text.limits import MAX_ATTRIBUTES_BYTES, fit, json_size

# The recorder's own limits (homeassistant.components.recorder.db_schema): larger ones are dropped.
RECORDER_MAX_ATTRIBUTES = 16384
RECORDER_MAX_EVENT_DATA = 32768
PER_FRAME = {"frame_id", "captured_at", "latency_ms"}


async def _recorded(hass: HomeAssistant, entity_id: str) -> list[State]:
    start = dt_util.utcnow() - timedelta(hours=1)
    changes = await get_instance(hass).async_add_executor_job(
        partial(history.state_changes_during_period, hass, start, None, entity_id)
    )
    return list(changes.get(entity_id, []))


def _ocr(frame: int, lines: list[str]) -> dict[str, Any]:
    return {
        **load_protocol_fixture("ocr_result"),
        "frame_id": f"frame-{frame}",
        "captured_at": f"2026-11-24T10:00:{frame:02d}.000+00:00",
        "latency_ms": 100 + frame,
        "text": "\n".join(lines),
        "lines": [{"text": line, "confidence": 0.9, "box": [0, 0, 10, 10]} for line in lines],
    }


async def test_per_frame_attributes_are_shown_but_never_recorded(
    recorder_mock: Any, hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    for frame in (1, 2):
        result = {**load_protocol_fixture("caption_result"), "frame_id": f"frame-{frame}"}
        async_fire_mqtt_message(hass, f"{BASE}/front_door/caption", json.dumps(result))
        await hass.async_block_till_done()
    await async_wait_recording_done(hass)

    live = hass.states.get("sensor.front_door_caption")
    assert live.attributes["frame_id"] == "frame-2"
    recorded = await _recorded(hass, "sensor.front_door_caption")
    assert recorded
    for state in recorded:
        assert not PER_FRAME & set(state.attributes), state.attributes
    assert recorded[-1].attributes["camera"] == "front_door"
    for state in await _recorded(hass, "event.front_door_caption"):
        assert not PER_FRAME & set(state.attributes), state.attributes


async def test_a_huge_ocr_text_is_trimmed_for_attributes_and_whole_on_the_bus(
    recorder_mock: Any, hass: HomeAssistant, setup_bridge: Any
) -> None:
    await setup_bridge()
    lines = [f"line {n:03d} of a very long departure board: platform {n % 9}" for n in range(400)]
    result = _ocr(1, lines)
    seen: list[Event] = []

    @callback
    def _listen(event: Event) -> None:
        seen.append(event)

    hass.bus.async_listen("image_to_text_result", _listen)
    async_fire_mqtt_message(hass, f"{BASE}/driveway/ocr", json.dumps(result))
    await hass.async_block_till_done()
    await async_wait_recording_done(hass)

    for entity_id in ("sensor.driveway_ocr", "event.driveway_ocr"):
        attributes = dict(hass.states.get(entity_id).attributes)
        assert len(json.dumps(attributes).encode()) < RECORDER_MAX_ATTRIBUTES, entity_id
        assert attributes["truncated"] is True
        assert 0 < len(attributes["lines"]) < len(lines)
        recorded = await _recorded(hass, entity_id)
        assert recorded[-1].attributes["truncated"] is True, f"{entity_id} was not recorded"
    (event,) = seen
    assert event.data["text"] == result["text"]  # the whole text, for automations
    assert len(json.dumps(event.data).encode()) < RECORDER_MAX_EVENT_DATA


@pytest.mark.parametrize(
    "text",
    ['"' * 50_000, "\n" * 50_000, "é" * 50_000, "🚪" * 20_000, "plain text " * 5_000],
    ids=["quotes", "newlines", "accents", "emoji", "words"],
)
@pytest.mark.parametrize("whole_text", [False, True])
def test_whatever_the_text_the_trimmed_attributes_fit(text: str, whole_text: bool) -> None:
    lines = [{"text": text[:80], "score": 0.5, "box": [[0, 0], [1, 1]]}] * 500
    data = {"camera": "driveway", "text": text, "full_text": text, "lines": lines}

    trimmed = fit(data, MAX_ATTRIBUTES_BYTES, whole_text=whole_text)

    assert json_size(trimmed) <= MAX_ATTRIBUTES_BYTES
    assert trimmed["truncated"] is True
    assert trimmed["camera"] == "driveway"
    assert text.startswith(trimmed["text"])
    assert fit({"text": "short"}, MAX_ATTRIBUTES_BYTES) == {"text": "short"}

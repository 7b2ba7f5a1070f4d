"""Entities a user can tell apart and a lean default: names say what each entity is, counters
for troubleshooting are there but off, and a meter shows its gas, water or energy icon."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from custom_components.image_to_text import binary_sensor, event, image, sensor, switch


async def test_names_say_what_each_entity_is(hass: HomeAssistant, setup_bridge: Any) -> None:
    await setup_bridge()

    def name(entity_id: str) -> str:
        return str(hass.states.get(entity_id).attributes["friendly_name"]).lower()

    assert name("sensor.front_door_caption") == "front door caption"
    assert name("event.front_door_caption") == "front door caption event"
    assert name("image.front_door_caption") == "front door analysed frame"
    # a camera with two tasks: each frame says which
    assert name("image.driveway_caption") == "driveway caption analysed frame"
    assert name("image.driveway_ocr") == "driveway ocr analysed frame"
    names = [state.name for state in hass.states.async_all()]
    assert len(names) == len(set(names)), "two entities share a name"


async def test_diagnostic_counters_are_disabled_by_default(
    hass: HomeAssistant, setup_bridge: Any
) -> None:
    entry = await setup_bridge()
    registry = er.async_get(hass)
    entities = er.async_entries_for_config_entry(registry, entry.entry_id)

    counters = [e for e in entities if "/health/" in e.unique_id]
    assert len(counters) == 9  # three cameras, three counters each
    for entity in counters:
        assert entity.disabled_by is er.RegistryEntryDisabler.INTEGRATION, entity.entity_id
        assert entity.entity_category == "diagnostic"
        assert hass.states.get(entity.entity_id) is None
    enabled = [e for e in entities if not e.disabled]
    assert "sensor.front_door_caption" in {e.entity_id for e in enabled}
    assert "binary_sensor.image_to_text_bridge_connectivity" in {e.entity_id for e in enabled}


async def test_a_meter_keeps_its_device_class_icon(hass: HomeAssistant, setup_bridge: Any) -> None:
    await setup_bridge()

    state = hass.states.get("sensor.gas_meter_meter")
    assert state.attributes["device_class"] == "gas"
    assert "icon" not in state.attributes
    entity = er.async_get(hass).async_get("sensor.gas_meter_meter")
    assert entity.original_icon is None


def test_every_platform_says_it_is_push_only() -> None:
    for platform in (binary_sensor, event, image, sensor, switch):
        assert platform.PARALLEL_UPDATES == 0, platform.__name__

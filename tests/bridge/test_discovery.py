"""HA MQTT discovery: sensors for users without the custom integration."""

from __future__ import annotations

from bridge.config import parse_config
from bridge.discovery import discovery_messages


def test_each_camera_and_task_gets_a_sensor_available_with_the_bridge() -> None:
    config = parse_config(
        {
            "mqtt": {"base_topic": "itt"},
            "cameras": {
                "door": {"topic": "a", "tasks": ["caption", "ocr"]},
                "gas": {
                    "topic": "b",
                    "tasks": ["meter"],
                    "meter": {
                        "roi": [1, 2, 3, 4],
                        "digits": 6,
                        "decimals": 2,
                        "unit": "m³",
                        "device_class": "gas",
                    },
                },
            },
        }
    )
    messages = dict(discovery_messages(config))
    assert set(messages) == {
        "homeassistant/sensor/itt/door_caption/config",
        "homeassistant/sensor/itt/door_ocr/config",
        "homeassistant/sensor/itt/gas_meter/config",
    }
    caption = messages["homeassistant/sensor/itt/door_caption/config"]
    assert caption["state_topic"] == "itt/door/caption"
    assert caption["availability_topic"] == "itt/bridge/state"
    assert caption["unique_id"] == "itt_door_caption"
    assert "[:255]" in caption["value_template"]
    meter = messages["homeassistant/sensor/itt/gas_meter/config"]
    assert (meter["state_class"], meter["device_class"], meter["unit_of_measurement"]) == (
        "total_increasing",
        "gas",
        "m³",
    )
    assert meter["value_template"] == "{{ value_json.value }}"


def test_a_camera_named_freely_gets_ids_home_assistant_accepts() -> None:
    config = parse_config(
        {"mqtt": {"base_topic": "itt"}, "cameras": {"Porche-Été": {"topic": "a"}}}
    )
    ((topic, payload),) = discovery_messages(config)
    assert topic == "homeassistant/sensor/itt/porche_ete_caption/config"
    assert payload["unique_id"] == "itt_porche_ete_caption"
    assert payload["object_id"] == "porche_ete_caption"
    assert payload["state_topic"] == "itt/Porche-Été/caption"  # topics keep the name as it is

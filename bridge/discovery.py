"""Home Assistant MQTT discovery: sensors for users who do not install the integration.

The custom integration makes richer entities of its own; its users turn ``mqtt.discovery`` off so
each camera is not shown twice (docs/home-assistant.md says so).  Messages are retained and
re-sent whenever Home Assistant announces ``online`` on its status topic.
"""

from __future__ import annotations

from typing import Any

from bridge import __version__
from bridge.config import BridgeConfig
from bridge.protocol import STATE_OFFLINE, STATE_ONLINE, Topics, slug

TASK_ICONS = {"caption": "mdi:image-text", "ocr": "mdi:text-recognition", "meter": "mdi:counter"}
TASK_NAMES = {"caption": "Caption", "ocr": "Text", "meter": "Meter reading"}


def discovery_messages(config: BridgeConfig) -> list[tuple[str, dict[str, Any]]]:
    """One sensor config per camera and task, as (topic, payload) pairs."""
    topics = Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix)
    messages = []
    for camera in config.cameras.values():
        for task in camera.tasks:
            unique_id = f"{config.site_id}_{slug(camera.name)}_{task}"
            payload: dict[str, Any] = {
                "name": TASK_NAMES[task],
                "unique_id": unique_id,
                "object_id": f"{slug(camera.name)}_{task}",
                "state_topic": topics.result(camera.name, task),
                "json_attributes_topic": topics.result(camera.name, task),
                "json_attributes_template": (
                    "{{ {'camera': value_json.camera, 'model': value_json.model, "
                    "'latency_ms': value_json.latency_ms, 'frame_id': value_json.frame_id, "
                    "'captured_at': value_json.captured_at, 'text': value_json.text} | tojson }}"
                ),
                "icon": TASK_ICONS[task],
                "device": {
                    "identifiers": [f"{config.site_id}_{slug(camera.name)}"],
                    "name": camera.name.replace("_", " ").title(),
                    "manufacturer": "image-to-text",
                    "model": "Camera analysed by the image-to-text bridge",
                    "sw_version": __version__,
                },
                "origin": {"name": "image-to-text bridge", "sw_version": __version__},
            }
            if config.mqtt.share is None:  # a group has no single state to follow
                payload.update(
                    availability_topic=topics.state,
                    payload_available=STATE_ONLINE,
                    payload_not_available=STATE_OFFLINE,
                )
            if task == "meter" and camera.meter is not None:
                payload["value_template"] = "{{ value_json.value }}"
                payload["state_class"] = "total_increasing"
                if camera.meter.unit:
                    payload["unit_of_measurement"] = camera.meter.unit
                if camera.meter.device_class:
                    payload["device_class"] = camera.meter.device_class
            else:
                payload["value_template"] = "{{ value_json.text[:255] }}"
            messages.append((topics.discovery(config.site_id, camera.name, task), payload))
    return messages

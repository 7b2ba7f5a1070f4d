"""A group of two bridges on a real Mosquitto, seen by a real Home Assistant process.

The two bridges are stand-ins that speak the protocol's group topics as a bridge does: each holds
its own MQTT connection with its last will on ``<base>/bridges/<bridge_id>/state`` and publishes
its retained state and info there (and nothing on the single bridge's ``<base>/bridge/...``).
"Dying" drops the connection without a goodbye, so it is the broker that publishes the will. Home
Assistant is read over its REST API only, as a user's script would.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import load_protocol_fixture
from e2e_support import MOSQUITTO, HomeAssistant, Mosquitto, collect_logs, mqtt_publish, wait_until

BASE = "e2e_group"
HA_START_S = 60
CHANGE_S = 30

FRONT_DOOR = f"{BASE}/front_door/caption/text"
GAS_METER = f"{BASE}/gas_meter/meter/text"
SITE = f"{BASE}/bridge/connectivity"
NUC = f"{BASE}/bridges/nuc/connectivity"
PI = f"{BASE}/bridges/pi/connectivity"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


class StandInMember:
    """One bridge of the group as the broker sees it: a session with a will, retained topics."""

    def __init__(self, port: int, bridge_id: str, info: dict[str, Any]) -> None:
        import paho.mqtt.client as mqtt

        self.state_topic = f"{BASE}/bridges/{bridge_id}/state"
        self.client = mqtt.Client(client_id=f"e2e-{bridge_id}-{uuid.uuid4().hex[:6]}")
        self.client.will_set(self.state_topic, "offline", qos=1, retain=True)
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        for topic, payload in (
            (self.state_topic, "online"),
            (f"{BASE}/bridges/{bridge_id}/info", json.dumps(info)),
        ):
            self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)

    def die(self) -> None:
        """The process is killed: the TCP connection drops without DISCONNECT."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()


def _info(bridge_id: str, cameras: list[str]) -> dict[str, Any]:
    info = {**load_protocol_fixture("bridges_info"), "bridge_id": bridge_id, "site_id": BASE}
    info["base_topic"] = BASE
    info["cameras"] = {name: info["cameras"][name] for name in cameras}
    return info


@contextlib.contextmanager
def _site(workdir: Path) -> Iterator[tuple[Mosquitto, HomeAssistant]]:
    broker = Mosquitto(workdir)
    hass = HomeAssistant(workdir / "ha-config", broker.port, BASE)
    try:
        broker.start()
        hass.prepare()
        hass.start()
        yield broker, hass
    finally:
        print(collect_logs(hass, broker))
        hass.stop()
        broker.stop()


def _entity_ids(hass: HomeAssistant, unique_ids: set[str]) -> dict[str, str] | None:
    found = {
        entry["unique_id"]: entry["entity_id"]
        for entry in hass.entity_registry()
        if entry.get("platform") == "image_to_text" and entry["unique_id"] in unique_ids
    }
    return found if set(found) == unique_ids else None


def _state(hass: HomeAssistant, entity_id: str) -> str | None:
    state = hass.state(entity_id)
    return None if state is None else str(state["state"])


def test_a_camera_stays_available_until_the_last_bridge_serving_it_dies(
    tmp_path: Path, socket_enabled: None
) -> None:
    if not Path(MOSQUITTO).exists():
        pytest.skip(f"Mosquitto is not installed ({MOSQUITTO}); `apt-get install mosquitto`")
    with _site(tmp_path) as (broker, hass):
        nuc = StandInMember(broker.port, "nuc", _info("nuc", ["front_door", "gas_meter"]))
        pi = StandInMember(broker.port, "pi", _info("pi", ["front_door"]))
        hass.wait_ready(HA_START_S)
        ids = wait_until(
            lambda: _entity_ids(hass, {FRONT_DOOR, GAS_METER, SITE, NUC, PI}),
            HA_START_S,
            "the group's entities: both bridges' devices and the cameras of both",
        )
        assert ids[FRONT_DOOR] == "sensor.front_door_caption"
        assert ids[PI] == "binary_sensor.image_to_text_bridge_pi_connectivity"
        wait_until(lambda: _state(hass, ids[PI]) == "on", CHANGE_S, "pi online")
        result = {**load_protocol_fixture("caption_result"), "bridge_id": "pi"}
        mqtt_publish(broker.port, f"{BASE}/front_door/caption", json.dumps(result).encode())
        wait_until(
            lambda: _state(hass, ids[FRONT_DOOR]) == result["text"],
            CHANGE_S,
            "the caption pi published",
        )

        pi.die()
        wait_until(lambda: _state(hass, ids[PI]) == "off", CHANGE_S, "pi's last will")
        assert _state(hass, ids[FRONT_DOOR]) == result["text"]  # nuc serves it too
        assert _state(hass, ids[GAS_METER]) != "unavailable"
        assert _state(hass, ids[SITE]) == "on"

        nuc.die()
        wait_until(
            lambda: _state(hass, ids[FRONT_DOOR]) == "unavailable",
            CHANGE_S,
            "the front door unavailable once no bridge serves it",
        )
        assert _state(hass, ids[GAS_METER]) == "unavailable"
        assert _state(hass, ids[SITE]) == "off"

"""Helpers for the automation-side tests: a loaded bridge, protocol payloads, a stand-in bridge.

Everything goes through Home Assistant's real MQTT integration (with the test harness's mocked
paho client): a test publishes the bridge's payloads from ``tests/fixtures/protocol/`` on the
bridge's topics and watches what Home Assistant does with them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
)

REPO = Path(__file__).resolve().parents[2]
PROTOCOL_FIXTURES = REPO / "tests" / "fixtures" / "protocol"
BLUEPRINTS = REPO / "config" / "blueprints" / "automation" / "image_to_text"
DOMAIN = "image_to_text"
BASE = "image_to_text"


def protocol_fixture(name: str) -> dict[str, Any]:
    """One of the shared example payloads, e.g. ``protocol_fixture("caption_result")``."""
    data: dict[str, Any] = json.loads((PROTOCOL_FIXTURES / f"{name}.json").read_text())
    return data


async def async_setup_bridge(
    hass: HomeAssistant,
    options: dict[str, Any] | None = None,
    *,
    online: bool = True,
    info: dict[str, Any] | None = None,
) -> MockConfigEntry:
    """A loaded image_to_text entry; with ``online`` the bridge has sent its state and ``info``
    (by default the shared ``info.json``)."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        data={"base_topic": BASE},
        unique_id=BASE,
        title=f"Image to text ({BASE})",
        options=options or {},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    if online:
        async_fire_mqtt_message(hass, f"{BASE}/bridge/state", "online", retain=True)
        payload = info if info is not None else protocol_fixture("info")
        async_fire_mqtt_message(hass, f"{BASE}/bridge/info", json.dumps(payload), retain=True)
        await hass.async_block_till_done()
    return entry


async def async_configure_while_bridge_answers(
    hass: HomeAssistant, flow_id: str, user_input: dict[str, Any], base: str = BASE
) -> Any:
    """Submit a config flow step while a running bridge keeps its info retained on ``base``.

    The harness's broker does not replay retained messages to a new subscriber, so the info is
    published again until the step returns (each copy before the flow subscribes is dropped).
    """
    step = asyncio.ensure_future(hass.config_entries.flow.async_configure(flow_id, user_input))
    info = json.dumps({**protocol_fixture("info"), "base_topic": base})
    async with asyncio.timeout(10):
        while not step.done():
            async_fire_mqtt_message(hass, f"{base}/bridge/info", info, retain=True)
            await asyncio.sleep(0.02)
    return step.result()


async def async_publish_caption(hass: HomeAssistant, camera: str, text: str) -> None:
    """The bridge publishes a new caption of ``camera`` (built from caption_result.json)."""
    result = {**protocol_fixture("caption_result"), "camera": camera, "text": text}
    async_fire_mqtt_message(hass, f"{BASE}/{camera}/caption", json.dumps(result))
    await hass.async_block_till_done()


def camera_device(hass: HomeAssistant, camera: str) -> dr.DeviceEntry:
    """The device registry entry of one of the bridge's cameras."""
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, f"{BASE}/{camera}")})
    assert device is not None, f"no device for camera {camera}"
    return device


class StandInBridge:
    """Answers requests on ``<base>/request`` the way the bridge does, or stays silent.

    ``reply`` is a result or error payload; the stand-in adds the request's ``id`` and publishes
    it on the request's ``reply_to`` (with ``answer_as`` instead of the id, if given). Every
    request received is kept in ``requests``.
    """

    def __init__(
        self, hass: HomeAssistant, reply: dict[str, Any] | None, answer_as: str | None = None
    ) -> None:
        self._hass = hass
        self.reply = reply
        self._answer_as = answer_as
        self.requests: list[dict[str, Any]] = []

    async def async_start(self) -> None:
        """Listen for requests."""
        await mqtt.async_subscribe(self._hass, f"{BASE}/request", self._on_request, qos=1)

    @callback
    def _on_request(self, msg: mqtt.ReceiveMessage) -> None:
        request = json.loads(msg.payload)
        self.requests.append(request)
        if self.reply is not None:
            answer = {**self.reply, "id": self._answer_as or request["id"]}
            async_fire_mqtt_message(self._hass, request["reply_to"], json.dumps(answer))

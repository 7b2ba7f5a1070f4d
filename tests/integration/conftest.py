"""Shared fixtures of the Home Assistant suite: a real HA core, MQTT through its real integration.

``pytest-homeassistant-custom-component`` provides ``hass`` and ``mqtt_mock`` (HA's MQTT
integration over a mocked paho client, so ``async_fire_mqtt_message`` delivers as a broker would).
The repository root goes on ``sys.path`` so that ``custom_components.image_to_text`` is the code
under test, and custom integrations are enabled for every test.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# Import it now, while the repository root comes first: Home Assistant later imports
# ``custom_components`` with its test configuration folder in front, and the first import wins.
from ha_support import BASE, PROTOCOL_FIXTURES, async_setup_bridge  # noqa: E402
from ha_support import protocol_fixture as load_protocol_fixture  # noqa: E402

import custom_components  # noqa: E402, F401

__all__ = ["BASE", "PROTOCOL_FIXTURES", "REPO", "load_protocol_fixture"]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(request: pytest.FixtureRequest) -> None:
    """Let the in-process Home Assistant of a test load custom_components/image_to_text.

    Only tests that use ``hass`` get one: pure protocol tests and the end-to-end story (which runs
    Home Assistant as its own process) do not start an in-process core for nothing.
    """
    if "recorder_mock" in request.fixturenames:
        # the recorder's database must exist before ``hass`` starts
        request.getfixturevalue("recorder_mock")
    if "hass" in request.fixturenames:
        request.getfixturevalue("enable_custom_integrations")


@pytest.fixture
def diagnostics_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The diagnostic counters enabled, as a user would in Settings > Entities."""
    from custom_components.image_to_text.sensor import HealthSensor

    monkeypatch.setattr(HealthSensor, "_attr_entity_registry_enabled_default", True)


@pytest.fixture
def protocol_fixture() -> Callable[[str], dict[str, Any]]:
    """Load a shared protocol payload by name."""
    return load_protocol_fixture


@pytest.fixture
def setup_bridge(hass: HomeAssistant, mqtt_mock: Any) -> Callable[..., Awaitable[MockConfigEntry]]:
    """Add and load an image_to_text entry; ``online`` also sends the bridge's state and info."""
    del mqtt_mock  # requested for its side effect: HA's MQTT integration is loaded

    async def _setup(
        options: dict[str, Any] | None = None,
        *,
        online: bool = True,
        info: dict[str, Any] | None = None,
    ) -> MockConfigEntry:
        return await async_setup_bridge(hass, options, online=online, info=info)

    return _setup

"""Config flow: a bridge is added by its base topic, by hand or when its retained info appears.

One entry per site (a bridge, or a group of bridges): the base topic is the unique id. MQTT
discovery (the ``mqtt`` key of the manifest) starts a flow when ``image_to_text/bridge/info`` or a
group member's ``image_to_text/bridges/<id>/info`` is seen; the flow checks the payload is a
bridge's info before offering it. A bridge added by hand is looked for first: without Home
Assistant's MQTT integration the flow stops with the reason, and a base topic on which no bridge
answers within a few seconds (a typo, or a bridge not running yet) is added only when the user
says so.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigFlow
from homeassistant.core import callback

from .const import CONF_BASE_TOPIC, DEFAULT_BASE_TOPIC, DOMAIN, MEMBERS_PART
from .migrate import CURRENT_VERSION
from .options_flow import ImageToTextOptionsFlow
from .protocol import ProtocolError, Topics, parse_info

if TYPE_CHECKING:
    # Annotations only (HA 2024.4+ names it; 2024.3, the test core, never needs it at run time).
    from homeassistant.components.mqtt import ReceiveMessage
    from homeassistant.config_entries import ConfigEntry, ConfigFlowResult
    from homeassistant.helpers.service_info.mqtt import MqttServiceInfo


INFO_SUFFIX = "/bridge/info"
# How long the user step listens for the bridge's retained info before asking whether to go on.
INFO_WAIT_SECONDS = 3.0


def clean_base_topic(value: str) -> str:
    """A base topic without surrounding spaces or slashes; ValueError when it cannot be one."""
    topic = value.strip().strip("/")
    if not topic or any(char in topic for char in "+#\0") or topic.startswith("$"):
        raise ValueError(value)
    return topic


def discovery_base(topic: str) -> str | None:
    """The base topic of ``<base>/bridge/info`` or ``<base>/bridges/<id>/info``; else None."""
    if topic.endswith(INFO_SUFFIX):
        return topic[: -len(INFO_SUFFIX)]
    parts = topic.rsplit("/", 3)
    if len(parts) == 4 and parts[1] == MEMBERS_PART and parts[2] and parts[3] == "info":
        return parts[0]
    return None


def entry_title(base_topic: str) -> str:
    """The entry's title in the integrations page."""
    return f"Image to text ({base_topic})"


class ImageToTextConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a bridge by base topic (user step) or from its retained info (MQTT discovery)."""

    VERSION = CURRENT_VERSION

    def __init__(self) -> None:
        self._base_topic = DEFAULT_BASE_TOPIC

    @staticmethod
    @callback
    def async_get_options_flow(_config_entry: ConfigEntry) -> ImageToTextOptionsFlow:
        """Keywords, announcements and Frigate names are options (see options_flow.py)."""
        return ImageToTextOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the bridge's base topic, then listen for the bridge there."""
        if not await mqtt.async_wait_for_mqtt_client(self.hass):
            return self.async_abort(reason="mqtt_not_configured")
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                base_topic = clean_base_topic(user_input[CONF_BASE_TOPIC])
            except ValueError:
                errors[CONF_BASE_TOPIC] = "invalid_topic"
            else:
                await self.async_set_unique_id(base_topic)
                self._abort_if_unique_id_configured()
                self._base_topic = base_topic
                if await self._bridge_answers(base_topic):
                    return self._create(base_topic)
                return await self.async_step_no_answer()
        schema = vol.Schema({vol.Required(CONF_BASE_TOPIC, default=DEFAULT_BASE_TOPIC): str})
        return self.async_show_form(step_id="user", data_schema=schema, errors=errors)

    async def async_step_mqtt(self, discovery_info: MqttServiceInfo) -> ConfigFlowResult:
        """A bridge's retained info appeared: offer it, once per base topic."""
        topic = discovery_info.topic
        base = discovery_base(topic)
        if base is None or not discovery_info.payload:
            return self.async_abort(reason="invalid_discovery_info")
        try:
            base_topic = clean_base_topic(base)
            parse_info(discovery_info.payload)
        except (ValueError, ProtocolError):
            return self.async_abort(reason="invalid_discovery_info")
        topics = Topics(base_topic)
        if topics.info != topic and topics.member_of(topic) is None:
            return self.async_abort(reason="invalid_discovery_info")
        await self.async_set_unique_id(base_topic)
        self._abort_if_unique_id_configured()
        self._base_topic = base_topic
        self.context["title_placeholders"] = {CONF_BASE_TOPIC: base_topic}
        return await self.async_step_confirm()

    async def async_step_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Let the user confirm the discovered bridge."""
        if user_input is not None:
            return self._create(self._base_topic)
        self._set_confirm_only()
        return self.async_show_form(
            step_id="confirm", description_placeholders={CONF_BASE_TOPIC: self._base_topic}
        )

    async def async_step_no_answer(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """No bridge answered on the base topic: add it anyway only when the user says so."""
        if user_input is not None:
            return self._create(self._base_topic)
        return self.async_show_form(
            step_id="no_answer",
            data_schema=vol.Schema({}),
            description_placeholders={
                CONF_BASE_TOPIC: self._base_topic,
                "seconds": f"{INFO_WAIT_SECONDS:g}",
            },
        )

    async def _bridge_answers(self, base_topic: str) -> bool:
        """Whether the bridge's info (retained) arrives on the base topic within the wait."""
        answered = asyncio.Event()

        @callback
        def _info_received(message: ReceiveMessage) -> None:
            try:
                parse_info(message.payload)
            except ProtocolError:
                return
            answered.set()

        topics = Topics(base_topic)
        # A single bridge's info, or any bridge's own (a group has no single-bridge info).
        unsubscribe = [
            await mqtt.async_subscribe(self.hass, topic, _info_received, qos=1)
            for topic in (topics.info, topics.member_infos)
        ]
        try:
            async with asyncio.timeout(INFO_WAIT_SECONDS):
                await answered.wait()
        except TimeoutError:
            return False
        finally:
            for stop in unsubscribe:
                stop()
        return True

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A new base topic for a configured bridge; its entities, history and devices stay.

        Written against what every core has (2024.3 has no reconfigure helpers): the entry is
        looked up by the flow's ``entry_id``, updated, and reloaded. The ids follow the bridge's
        id, which moves with the base topic only when it is the default (see ``migrate.rekey``).
        """
        entry = self.hass.config_entries.async_get_entry(self.context.get("entry_id", ""))
        if entry is None:
            return self.async_abort(reason="entry_not_found")
        errors: dict[str, str] = {}
        current = str(entry.data[CONF_BASE_TOPIC])
        if user_input is not None:
            try:
                base_topic = clean_base_topic(user_input[CONF_BASE_TOPIC])
            except ValueError:
                errors[CONF_BASE_TOPIC] = "invalid_topic"
            else:
                other = self.hass.config_entries.async_entry_for_domain_unique_id(
                    DOMAIN, base_topic
                )
                if other is not None and other.entry_id != entry.entry_id:
                    return self.async_abort(reason="already_configured")
                self.hass.config_entries.async_update_entry(
                    entry,
                    data={**entry.data, CONF_BASE_TOPIC: base_topic},
                    unique_id=base_topic,
                    title=entry_title(base_topic),
                )
                self.hass.async_create_task(self.hass.config_entries.async_reload(entry.entry_id))
                return self.async_abort(reason="reconfigure_successful")
        schema = vol.Schema({vol.Required(CONF_BASE_TOPIC, default=current): str})
        return self.async_show_form(step_id="reconfigure", data_schema=schema, errors=errors)

    def _create(self, base_topic: str) -> ConfigFlowResult:
        return self.async_create_entry(
            title=entry_title(base_topic), data={CONF_BASE_TOPIC: base_topic}
        )

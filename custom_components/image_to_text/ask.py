"""Asking the bridge something over MQTT: a message with an ``id`` and a ``reply_to``, one reply.

The ``analyze`` action and the face-enrolment actions speak to the bridge the same way; this is
that exchange once, with the same refusals: at once while the bridge is offline (nobody would
answer), and after the timeout when no reply with the message's id arrives.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from homeassistant.components import mqtt
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from .const import DOMAIN

if TYPE_CHECKING:
    from .hub import ImageToTextHub

_LOGGER = logging.getLogger(__name__)


def ensure_online(hub: ImageToTextHub, base: str) -> None:
    """Refuse at once while the bridge is offline, rather than after the whole timeout."""
    if not hub.online:
        raise HomeAssistantError(
            f"Image to text bridge {base} is offline: {hub.offline_reason()}",
            translation_domain=DOMAIN,
            translation_key="bridge_offline",
            translation_placeholders={"base_topic": base, "reason": hub.offline_reason()},
        )


async def async_ask_bridge(
    hass: HomeAssistant,
    base: str,
    topic: str,
    message: dict[str, Any],
    *,
    wait_seconds: float,
    unanswered_hint: str,
) -> bytes | bytearray | str:
    """Publish ``message`` on ``topic``; the payload of the first reply that carries its id."""
    message_id = message["id"]
    reply: asyncio.Future[bytes | bytearray | str] = hass.loop.create_future()

    @callback
    def _on_reply(msg: mqtt.ReceiveMessage) -> None:
        if reply.done():
            return
        try:
            data = json.loads(msg.payload)
        except ValueError:
            _LOGGER.warning("Ignoring a reply on %s that is not JSON", msg.topic)
            return
        if isinstance(data, dict) and data.get("id") == message_id:
            reply.set_result(msg.payload)

    unsubscribe = await mqtt.async_subscribe(hass, message["reply_to"], _on_reply, qos=1)
    try:
        await mqtt.async_publish(hass, topic, json.dumps(message), qos=1, retain=False)
        async with asyncio.timeout(wait_seconds):
            return await reply
    except TimeoutError as err:
        raise HomeAssistantError(
            f"The bridge on {base} did not answer within {wait_seconds:g} seconds; "
            f"{unanswered_hint}",
            translation_domain=DOMAIN,
            translation_key="no_reply",
            translation_placeholders={"base_topic": base, "timeout": f"{wait_seconds:g}"},
        ) from err
    finally:
        unsubscribe()

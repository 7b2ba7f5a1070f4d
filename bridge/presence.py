"""The single-bridge state topic's own connection, so that it too says ``offline`` on a crash.

MQTT gives one last will per connection.  The bridge's main connection carries the will of
``<base>/bridges/<bridge_id>/state``; a bridge without ``mqtt.share`` also keeps the older
``<base>/bridge/state`` truthful for existing users, and that needs a second will: this tiny
connection (client id ``<client_id>-presence``, no session, no subscriptions) carries it.
After a SIGKILL the broker sees both connections drop and publishes both wills.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bridge.config import MqttConfig
from bridge.protocol import STATE_OFFLINE, STATE_ONLINE
from bridge.transport import secure

_LOGGER = logging.getLogger(__name__)


class Presence:
    """Holds ``topic`` at ``online`` while the bridge serves, with ``offline`` as its will."""

    def __init__(self, config: MqttConfig, topic: str, protocol: int = 5) -> None:
        self.config = config
        self.topic = topic
        #: Set once the bridge serves: every (re)connect then says ``online`` again.
        self.serving = False
        v5 = protocol == 5
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"{config.client_id}-presence",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
        )
        self.client.will_set(topic, STATE_OFFLINE, qos=1, retain=True)
        secure(self.client, config)
        self.client.reconnect_delay_set(1, max(1, round(config.reconnect_max_delay)))
        self.client.on_connect = self._on_connect

    def start(self) -> None:
        """Connect in paho's thread; retried forever like the main connection."""
        self.client.connect_async(self.config.host, self.config.port, self.config.keepalive)
        self.client.loop_start()

    def online(self) -> None:
        """The bridge serves (its main connection is up): say so now and on every reconnect."""
        self.serving = True
        if self.client.is_connected():
            self.client.publish(self.topic, STATE_ONLINE, qos=1, retain=True)

    async def stop(self) -> None:
        """Say ``offline`` (the bridge is stopping on purpose), then disconnect."""
        if self.client.is_connected():
            info = self.client.publish(self.topic, STATE_OFFLINE, qos=1, retain=True)
            try:
                await asyncio.to_thread(info.wait_for_publish, 3)
            except (RuntimeError, ValueError) as err:
                _LOGGER.warning("could not say offline before disconnecting: %s", err)
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            _LOGGER.warning("presence connection refused: %s", reason)
        elif self.serving:
            client.publish(self.topic, STATE_ONLINE, qos=1, retain=True)

"""The embedded broker (``mqtt.host: embedded`` and ``image-to-text demo``).

For trying the bridge with nothing else installed.  amqtt speaks MQTT 3.1.1 only, so the bridge
connects to it with 3.1.1 (persistent session via ``clean_session=False``).  A real installation
uses Mosquitto or Home Assistant's broker add-on.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from bridge.errors import TransportError


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _LateAcknowledgement(logging.Filter):
    """Drop amqtt's report of a PUBACK that took longer than its fixed 5 seconds.

    The bridge acknowledges a frame only once its result is published (so a crash loses
    nothing), and a model still loading can take longer than that.  amqtt then logs a task
    failure with a traceback although nothing failed: the message was delivered, and the late
    acknowledgement is simply not waited for.  Every other amqtt error still gets through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += str(record.exc_info[1])
        return "Timeout waiting for PUBACK" not in text


class EmbeddedBroker:
    """An in-process amqtt broker bound to loopback."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._broker: Any = None

    async def start(self) -> None:
        """Bind and start serving; ``TransportError`` if the port is taken."""
        try:
            from amqtt.broker import Broker
        except ImportError as err:
            raise TransportError(f"the embedded broker needs amqtt ({err})") from err
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        logging.getLogger("amqtt.broker").addFilter(_LateAcknowledgement())
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._broker = Broker(config)
        try:
            await self._broker.start()
        except Exception as err:
            raise TransportError(
                f"the embedded broker could not start on port {self.port}: {err}"
            ) from err

    async def stop(self) -> None:
        """Shut the broker down, dropping its clients."""
        if self._broker is not None:
            await self._broker.shutdown()

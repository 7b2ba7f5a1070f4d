"""The bridge's exception tree.

Every failure that can reach a user is one of these, so that exactly one boundary (the
service's frame pipeline) turns them into error events with a stable ``code``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""

    code = "bridge_error"


class ConfigError(BridgeError):
    """The configuration file is missing, unreadable or invalid.

    The message always names the file and the key path, e.g.
    ``config/bridge.yaml: cameras.gas_meter.meter.roi: expected 4 integers, got 3``.
    """

    code = "config_error"

    def __init__(self, source: str, path: str, problem: str) -> None:
        self.source = source
        self.path = path
        self.problem = problem
        where = f"{source}: {path}: " if path else f"{source}: "
        super().__init__(where + problem)


class TransportError(BridgeError):
    """The MQTT broker cannot be reached or refused us."""

    code = "transport_error"


class FrameError(BridgeError):
    """A frame could not be turned into an image; ``code`` says why, the message says how."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


class ModelError(BridgeError):
    """A model could not be loaded or failed while running."""

    def __init__(self, code: str, detail: str, model: str = "") -> None:
        self.code = code
        self.detail = detail
        self.model = model
        #: Task-specific fields the error event carries (a meter's raw reading, say).
        self.extra: dict[str, Any] = {}
        #: Draws the picture to publish with the error event (a meter's reading held back).
        self.preview: Callable[[], bytes] | None = None
        super().__init__(f"{code}: {detail}")

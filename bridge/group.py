"""What the bridges of a group know of each other, learnt from retained messages only.

Bridges sharing the work (``mqtt.share``) coordinate through the broker, never a side channel:
each subscribes (plainly, not shared) to its cameras' retained result topics and learns from
them, whoever published them:

* **order**: the newest ``captured_at`` published retained per camera and task; a result older
  than that goes out non-retained with ``"newest": false`` (``docs/protocol.md``), so the
  retained value and Home Assistant never step back;
* **scenes**: a result of another bridge becomes this bridge's last analysed scene of the
  camera (its ``frame_id``, and its scene signature when it carries one), so a frame of the
  same scene costs no model time here either;
* **meters**: another bridge's published reading becomes the meter's previous value, so the
  plausibility rules judge the next reading against it.

A restarted bridge may be handed a backlog (the frames its session kept while it was away).
The broker gives no capture time, so a backlog frame is stamped when it arrives; it is
``late`` until the bridge's own ``online`` comes back through the broker (Mosquitto keeps one
queue per client, so that message follows the backlog).  A late frame's result is not newest
when another bridge published the camera's retained result: that bridge answered it since.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import numpy as np

from bridge.config import BridgeConfig
from bridge.dedup import SIGNATURE_WIDTH, Signature
from bridge.protocol import STATE_ONLINE, Topics

_LOGGER = logging.getLogger(__name__)
#: How long a late frame's result waits for the group's retained state before publishing.
CATCH_UP_WAIT = 10.0


def encode_signature(signature: Signature) -> str:
    """A scene signature as it travels in a result: ``<height>:<base64 of bytes 0..255>``."""
    quantised = np.clip(np.rint(signature * 255), 0, 255).astype(np.uint8)
    return f"{signature.shape[0]}:{base64.b64encode(quantised.tobytes()).decode()}"


def decode_signature(text: object) -> Signature | None:
    """The signature a result carries, or ``None`` when it carries none (or a broken one)."""
    if not isinstance(text, str) or ":" not in text:
        return None
    height, data = text.split(":", 1)
    try:
        raw = np.frombuffer(base64.b64decode(data, validate=True), dtype=np.uint8)
        shaped = raw.reshape(int(height), SIGNATURE_WIDTH, 3)
    except ValueError:
        return None
    return shaped.astype(np.float32) / 255.0


def _instant(stamp: object) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None


class GroupView:
    """The group's retained state as this bridge has seen it, and the order rule."""

    def __init__(self, config: BridgeConfig, topics: Topics) -> None:
        self.bridge_id = config.bridge_id
        self.shared = config.mqtt.share is not None
        self.own_state = topics.bridge_state(self.bridge_id)
        self._topics = topics
        self._results: dict[str, tuple[str, str]] = {}
        #: Per camera and task: the newest ``captured_at`` published retained, and by whom.
        self.newest: dict[tuple[str, str], tuple[datetime, str]] = {}
        self.follow(config)
        #: Set while no backlog can be arriving (see the module's docstring).
        self.caught_up = asyncio.Event()
        self.caught_up.set()
        #: Told of another bridge's newest result: (camera, task, payload).
        self.on_remote: Callable[[str, str, dict[str, Any]], None] = lambda *_: None

    def follow(self, config: BridgeConfig) -> None:
        """Read the results of ``config``'s cameras (at start, and after a SIGHUP reload).

        What was learnt of a camera and task it still has is kept; of the others, dropped.
        """
        self._results = {
            self._topics.result(cam.name, task): (cam.name, task)
            for cam in config.cameras.values()
            for task in cam.tasks
        }
        kept = set(self._results.values())
        self.newest = {key: seen for key, seen in self.newest.items() if key in kept}

    @property
    def subscriptions(self) -> Iterable[str]:
        """Retained topics to read on every connect: the cameras' results, this bridge's state."""
        return [*self._results, self.own_state] if self.shared else list(self._results)

    def connected(self, resumed: bool) -> None:
        """A connection is up; a resumed group session may first hand over a backlog."""
        if self.shared and resumed:
            self.caught_up.clear()
        else:
            self.caught_up.set()

    def take(self, topic: str, payload: bytes, retained: bool) -> bool:
        """Learn from a group message; False when ``topic`` is not one of the group's."""
        if topic == self.own_state:
            if payload == STATE_ONLINE.encode() and not retained:
                self.caught_up.set()  # the backlog, if any, came before this
            return True
        key = self._results.get(topic)
        if key is None:
            return False
        try:
            result = json.loads(payload)
        except (UnicodeDecodeError, ValueError):
            return True
        if not isinstance(result, dict) or result.get("newest") is False:
            return True
        at = _instant(result.get("captured_at"))
        source = str(result.get("bridge_id", ""))
        if at is None or not self._record(key, at, source):
            return True
        if source != self.bridge_id:
            self.on_remote(key[0], key[1], result)
        return True

    def _record(self, key: tuple[str, str], at: datetime, source: str) -> bool:
        seen = self.newest.get(key)
        if seen is not None and at < seen[0]:
            return False
        self.newest[key] = (at, source)
        return True

    async def claim(self, camera: str, task: str, captured_at: str, late: bool) -> bool:
        """Whether a result of this frame is the newest of the camera's task (then recorded)."""
        if late:
            try:
                await asyncio.wait_for(self.caught_up.wait(), CATCH_UP_WAIT)
            except TimeoutError:
                _LOGGER.warning("no catch-up marker from the broker; ordering late frames anyway")
            seen = self.newest.get((camera, task))
            if seen is not None and seen[1] != self.bridge_id:
                return False  # another bridge answered this camera while this one was away
        at = _instant(captured_at)
        if at is None:
            return True
        return self._record((camera, task), at, self.bridge_id)

"""What arrives on MQTT topics, waited for with a deadline.

The MQTT client itself lives with each suite (paho in the bridge's, Home Assistant's own in the
integration's); each hands what it receives to an ``Inbox``, and tests wait on the inbox.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable
from typing import Any

from tests.support.waiting import DeadlineMissedError


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT subscription matching: ``+`` is one level, a final ``#`` the rest."""
    want, have = pattern.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or (level not in ("+", have[i])):
            return False
    return len(want) == len(have)


class Inbox:
    """Messages in arrival order; ``wait_for`` takes the first that matches, keeping the rest."""

    def __init__(self) -> None:
        self._arrivals: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.seen: list[tuple[str, bytes]] = []

    def put(self, topic: str, payload: bytes) -> None:
        """Called by the client's receive callback (any thread)."""
        self._arrivals.put((topic, payload))

    def wait_for(
        self,
        topic: str,
        predicate: Callable[[bytes], bool] = lambda _: True,
        timeout: float = 60,
    ) -> bytes:
        """The payload of the first message on ``topic`` that satisfies ``predicate``."""
        for message in self.seen:
            if topic_matches(topic, message[0]) and predicate(message[1]):
                self.seen.remove(message)
                return message[1]
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self._arrivals.get(timeout=min(left, 0.1))
            except queue.Empty:
                continue
            if topic_matches(topic, message[0]) and predicate(message[1]):
                return message[1]
            self.seen.append(message)
        raise DeadlineMissedError(
            f"nothing on {topic} within {timeout:g} s; saw {[t for t, _ in self.seen]}"
        )

    def latest(self, topic: str) -> bytes | None:
        """The last payload seen on ``topic`` so far (kept: later calls see it too), if any."""
        while True:
            try:
                self.seen.append(self._arrivals.get_nowait())
            except queue.Empty:
                break
        for seen_topic, payload in reversed(self.seen):
            if seen_topic == topic:
                return payload
        return None

    def wait_json(self, topic: str, timeout: float = 60, **match: Any) -> dict[str, Any]:
        """The first JSON object on ``topic`` whose fields equal ``match``."""

        def ok(payload: bytes) -> bool:
            try:
                data = json.loads(payload)
            except ValueError:
                return False
            return isinstance(data, dict) and all(data.get(k) == v for k, v in match.items())

        result: dict[str, Any] = json.loads(self.wait_for(topic, ok, timeout))
        return result

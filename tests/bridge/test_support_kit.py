"""The shared test kit keeps its promises: waits fail loudly at their deadline, topics match."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.support.inbox import Inbox, topic_matches
from tests.support.mosquitto import Mosquitto
from tests.support.net import port_open
from tests.support.waiting import DeadlineMissedError, eventually, wait_until


def test_a_wait_that_never_comes_true_fails_naming_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(DeadlineMissedError, match=r"the door opening did not happen within 0\.3 s"):
        wait_until(lambda: False, 0.3, "the door opening")
    assert time.monotonic() - started < 5


def test_an_async_wait_fails_loudly_too() -> None:
    with pytest.raises(DeadlineMissedError, match="a batch did not happen"):
        asyncio.run(eventually(lambda: False, 0.1, "a batch"))


def test_an_inbox_wait_names_the_topic_and_what_arrived_instead() -> None:
    inbox = Inbox()
    inbox.put("itt/door/error", b"{}")
    with pytest.raises(DeadlineMissedError, match=r"nothing on itt/door/caption.*itt/door/error"):
        inbox.wait_for("itt/door/caption", timeout=0.2)
    assert inbox.latest("itt/door/error") == b"{}"


@pytest.mark.parametrize(
    ("pattern", "topic", "matches"),
    [
        ("itt/+/caption", "itt/door/caption", True),
        ("itt/#", "itt/door/caption/image", True),
        ("itt/+/caption", "itt/door/caption/image", False),
        ("itt/door", "itt/door/caption", False),
    ],
)
def test_topics_match_as_mqtt_subscriptions_do(pattern: str, topic: str, matches: bool) -> None:
    assert topic_matches(pattern, topic) is matches


def test_the_broker_starts_on_its_own_port_and_stops(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    try:
        assert port_open(broker.port)
    finally:
        broker.stop()
    assert not port_open(broker.port)

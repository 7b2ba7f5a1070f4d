"""Waiting on events with a deadline that fails loudly.

A test never sleeps a fixed time hoping something happened: it names what it waits for, polls
for it, and fails with that sentence when the deadline passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: Errors that mean "not there yet" while polling (a port not open, a file half-written).
NOT_YET: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError)


class DeadlineMissedError(AssertionError):
    """What a test waited for did not happen in time."""


def _message(what: str, timeout: float, last_error: BaseException | None) -> str:
    detail = f" (last error: {last_error!r})" if last_error is not None else ""
    return f"{what} did not happen within {timeout:g} s{detail}"


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy, and return that; else fail naming it."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = check()
        except NOT_YET as err:
            last_error = err
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            raise DeadlineMissedError(_message(what, timeout, last_error))
        time.sleep(interval)


async def eventually(
    check: Callable[[], Any], within: float, what: str, interval: float = 0.002
) -> Any:
    """``wait_until`` for a test running on an event loop: the loop keeps running meanwhile."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise DeadlineMissedError(_message(what, within, None))
        await asyncio.sleep(interval)

"""A camera's burst waits for decoding in one place: a few frames are held, never the whole burst.

QoS 0 frames come as fast as the broker sends them; the bridge decodes at most two of a camera's
frames at once and lets only the newest one wait (``bridge/intake.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from bridge.config import parse_config
from bridge.errors import FrameError
from bridge.intake import MAX_DECODING, Intake
from bridge.work import CameraState

CONFIG = parse_config({"cameras": {"yard": {"topic": "cam/yard"}}})


def run(story: Callable[[], Coroutine[Any, Any, Burst]]) -> Burst:
    """A story's frames, given ten seconds: a slot never handed on shows as a timeout."""
    return asyncio.run(asyncio.wait_for(story(), 10))


class Burst:
    """Frames of one camera asking for a decode slot; a granted frame decodes until told."""

    def __init__(self) -> None:
        self.state = CameraState(CONFIG.cameras["yard"])
        self.intake = Intake(CONFIG.frames, {})
        self.decoded = asyncio.Event()
        self.answers: list[tuple[int, bool]] = []

    async def frame(self, seq: int, *, broken: bool = False) -> None:
        async with self.intake.decode_slot(self.state, seq) as granted:
            self.answers.append((seq, granted))
            if granted:
                await self.decoded.wait()
                if broken:
                    raise FrameError("decode_failed", "the image is truncated")

    async def arrive(self, *seqs: int) -> list[asyncio.Task[None]]:
        tasks = [asyncio.create_task(self.frame(seq)) for seq in seqs]
        for _ in range(3):
            await asyncio.sleep(0)
        return tasks


def test_a_burst_is_decoded_two_frames_at_a_time_and_only_the_newest_waits() -> None:
    async def story() -> Burst:
        burst = Burst()
        tasks = await burst.arrive(*range(1, 8))
        assert burst.state.decoding == MAX_DECODING == 2
        assert [seq for seq, granted in burst.answers if not granted] == [3, 4, 5, 6]
        burst.decoded.set()  # the two decodes end: the newest frame, 7, takes a slot
        await asyncio.gather(*tasks)
        return burst

    burst = run(story)
    granted = [seq for seq, yes in burst.answers if yes]
    assert granted == [1, 2, 7]  # 3 to 6 were dropped undecoded, each for a newer frame
    assert burst.state.decoding == 0
    assert burst.state.waiting is None


def test_an_older_frame_whose_fetch_ended_late_does_not_take_the_wait_from_a_newer_one() -> None:
    async def story() -> Burst:
        burst = Burst()
        tasks = await burst.arrive(1, 2, 9)  # 9 waits for a slot
        tasks += await burst.arrive(8)  # its URL took longer to fetch than 9's
        burst.decoded.set()
        await asyncio.gather(*tasks)
        return burst

    assert run(story).answers == [(1, True), (2, True), (8, False), (9, True)]


def test_a_frame_that_fails_to_decode_hands_its_slot_on() -> None:
    async def story() -> Burst:
        burst = Burst()
        broken = [asyncio.create_task(burst.frame(seq, broken=True)) for seq in (1, 2)]
        tasks = await burst.arrive(3)
        burst.decoded.set()
        for task in broken:
            with pytest.raises(FrameError):
                await task
        await asyncio.gather(*tasks)
        return burst

    burst = run(story)
    assert (3, True) in burst.answers
    assert burst.state.decoding == 0

"""A camera's burst waits for decoding in one place: a few frames are held, never the whole burst.

QoS 0 frames come as fast as the broker sends them; the bridge decodes at most two of a camera's
frames at once and lets only the newest one wait (``bridge/intake.py``).  A frame that arrives
while nothing else is on its way is decoded on the event loop; otherwise in a worker thread.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from PIL import Image

from bridge import intake
from bridge.config import ModelConfig, parse_config
from bridge.engines.base import JobOptions
from bridge.errors import FrameError
from bridge.intake import INLINE_MAX_BYTES, MAX_DECODING, Intake
from bridge.scheduler import Job, ModelWorker, Outcome
from bridge.work import CameraState
from tests.bridge.conftest import jpeg, png
from tests.bridge.fault_engines import FaultyEngine

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


def decoded_where(
    monkeypatch: pytest.MonkeyPatch, data: bytes, *, frame_waiting: bool = False
) -> str:
    """Decode ``data`` as a camera's frame; the name of the thread that decoded it."""
    threads: list[str] = []
    decode = intake._decoded_and_signed

    def watched(*args: Any) -> Any:
        threads.append(threading.current_thread().name)
        return decode(*args)

    monkeypatch.setattr(intake, "_decoded_and_signed", watched)

    async def story() -> None:
        worker = ModelWorker("caption", FaultyEngine(ModelConfig(engine="faulty")))
        if frame_waiting:  # another camera's frame waits for the model (not started here)

            async def ignore(job: Job, outcome: Outcome) -> None:
                pass

            worker.submit(Job("door", "caption", Image.new("RGB", (8, 8)), JobOptions(), ignore))
        image, signed = await Intake(CONFIG.frames, {"caption": worker}).decode_signed(
            data, ("caption",), sign=True
        )
        assert image.mode == "RGB"
        assert signed is not None

    asyncio.run(story())
    assert len(threads) == 1
    return threads[0]


def street(size: tuple[int, int] = (1280, 720)) -> Image.Image:
    return Image.linear_gradient("L").resize(size).convert("RGB")


def test_a_camera_jpeg_arriving_while_all_is_quiet_is_decoded_on_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert decoded_where(monkeypatch, jpeg(street())) == threading.main_thread().name


def test_a_frame_arriving_while_another_waits_for_the_model_is_decoded_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    where = decoded_where(monkeypatch, jpeg(street()), frame_waiting=True)
    assert where != threading.main_thread().name


def test_anything_but_a_camera_sized_sequential_jpeg_is_decoded_in_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    progressive = io.BytesIO()
    street().save(progressive, format="JPEG", progressive=True)
    noisy = jpeg(Image.effect_noise((1280, 720), 120).convert("RGB"), quality=95)
    plain_4k = jpeg(Image.new("RGB", (3840, 2160), (90, 90, 100)))
    assert len(noisy) > INLINE_MAX_BYTES
    assert len(plain_4k) < INLINE_MAX_BYTES  # few bytes, but four times a 1080p's pixels
    for frame in (png(street()), progressive.getvalue(), noisy, plain_4k):
        assert decoded_where(monkeypatch, frame) != threading.main_thread().name

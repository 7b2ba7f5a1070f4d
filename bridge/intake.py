"""Intake: a message's payload becomes a frame's bytes and then its image, within the limits.

Raw image bytes, JSON with base64, or a URL fetched from an allowed host (``fetch.py``); decoded
near the size the models want (``frames.py``), in a worker thread unless the bridge is quiet,
with the scene signature that dedup compares (``dedup.py``) made in the same trip.  Problems
raise ``FrameError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import ParamSpec, TypeVar

import aiohttp
from PIL import Image

from bridge.config import FramesConfig
from bridge.dedup import Signature, Signed, signed
from bridge.fetch import fetch_url
from bridge.frames import decode_image, sequential_jpeg_size, unpack_payload
from bridge.protocol import now_iso
from bridge.scheduler import ModelWorker
from bridge.work import AckTicket, CameraState, FrameWork

P = ParamSpec("P")
R = TypeVar("R")
#: Frames of one camera decoded at once; one more, the newest, waits for a slot.
MAX_DECODING = 2
#: Largest sequential JPEG decoded on the event loop itself when nothing else is on its way:
#: bytes and pixels bound its decode (~3 ms at most here; a 720p snapshot takes ~1.5).
INLINE_MAX_BYTES = 128 * 1024
INLINE_MAX_PIXELS = 1920 * 1080


class Intake:
    """Turns payloads into frames; ``http`` is opened with the service."""

    def __init__(self, frames: FramesConfig, workers: dict[str, ModelWorker]) -> None:
        self.frames = frames
        self.workers = workers
        self.http: aiohttp.ClientSession | None = None
        #: Frames and requests' images being decoded in worker threads right now.
        self._in_threads = 0

    def open(self, state: CameraState, ticket: AckTicket, seq: int) -> FrameWork:
        """The record of a frame just received (counted as received).

        Its id comes later, from its image's bytes: hashing a frame that a burst drops would
        cost the event loop ~8 ms per 6 MB frame while the frames behind it wait in memory.
        """
        state.counters.received += 1
        work = FrameWork(state.config, "", time.monotonic(), now_iso(), ticket, seq=seq)
        work.open_tasks = 1  # the frame itself, until its tasks are submitted
        return work

    async def image_bytes(self, payload: bytes) -> bytes:
        """The image's bytes: the payload's own, or fetched from its URL."""
        unpacked = unpack_payload(payload, self.frames.max_bytes)
        if unpacked.kind == "bytes":
            return unpacked.data
        return await self.fetch(unpacked.url)

    async def fetch(self, url: str) -> bytes:
        """A frame given by URL, from an allowed host only."""
        assert self.http is not None, "fetching before the service started"
        frames = self.frames
        return await fetch_url(
            self.http, url, frames.url_allowed_hosts, frames.max_bytes, frames.url_timeout
        )

    @contextlib.asynccontextmanager
    async def decode_slot(self, state: CameraState, seq: int) -> AsyncIterator[bool]:
        """One of the camera's decode slots for frame ``seq``; False: superseded, drop it.

        At most ``MAX_DECODING`` frames of a camera are hashed and decoded at once and one more
        waits; a newer frame takes the wait from an older one, which is then dropped undecoded.
        A QoS 0 burst gets no flow control from the broker, so this is what keeps the frames
        the bridge holds to a few per camera, whether the event loop keeps up or falls behind.
        """
        granted = await self._turn(state, seq)
        try:
            yield granted
        finally:
            if granted:
                self._pass_on(state)

    @staticmethod
    async def _turn(state: CameraState, seq: int) -> bool:
        if state.decoding < MAX_DECODING:
            state.decoding += 1
            return True
        if state.waiting is not None:
            waiting_seq, waiting = state.waiting
            if waiting_seq > seq:
                return False  # a newer frame already waits (an older one's fetch ended late)
            if not waiting.done():
                waiting.set_result(False)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        state.waiting = (seq, future)
        return await future

    @staticmethod
    def _pass_on(state: CameraState) -> None:
        """A slot is free: the waiting frame takes it, else it is given back."""
        waiting, state.waiting = state.waiting, None
        if waiting is not None and not waiting[1].done():
            waiting[1].set_result(True)
        else:
            state.decoding -= 1

    def _target_size(self, tasks: tuple[str, ...]) -> int | None:
        sizes = []
        for task in tasks:
            worker = self.workers.get(task)
            size = worker.engine.input_size if worker else None
            if size is None:
                return None
            sizes.append(size)
        return max(sizes) if sizes else None

    async def decode(self, data: bytes, tasks: tuple[str, ...]) -> Image.Image:
        """The image, decoded in a thread near the largest size the tasks' models use."""
        return await self._in_thread(
            decode_image, data, self.frames.max_pixels, self._target_size(tasks)
        )

    async def decode_signed(
        self, data: bytes, tasks: tuple[str, ...], sign: bool, scene: Signature | None = None
    ) -> tuple[Image.Image, Signed | None]:
        """The image and, when ``sign``, its signature scored against ``scene``, in one trip.

        A camera's frame waits for all three before the model gets it; each trip to a worker
        thread and back costs two thread wake-ups, and a busy 2-core host makes those wait
        their turn (see ``_quiet`` for when there is no trip).
        """
        args = (data, self.frames.max_pixels, self._target_size(tasks), sign, scene)
        if self._quiet(data):
            return _decoded_and_signed(*args)
        return await self._in_thread(_decoded_and_signed, *args)

    async def _in_thread(self, decode: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """``decode(*args)`` in a worker thread, counted while it runs (see ``_quiet``)."""
        self._in_threads += 1
        try:
            return await asyncio.to_thread(decode, *args, **kwargs)
        finally:
            self._in_threads -= 1

    def _quiet(self, data: bytes) -> bool:
        """Whether to decode ``data`` right here, on the event loop.

        Only a camera-sized one-scan sequential JPEG (other JPEGs of a few KB can take
        seconds: ``frames.sequential_jpeg_size``), and only while no model runs or has a frame
        waiting and no other frame is being decoded: then nothing else needs the loop for the
        ~1.5 ms a 720p decode takes, and the two thread wake-ups of the trip (~0.12 ms) are
        saved.  Anything else goes to a worker thread, so a busy bridge keeps its loop free.
        """
        if len(data) > INLINE_MAX_BYTES or self._in_threads:
            return False
        if any(worker.busy or worker.waiting for worker in self.workers.values()):
            return False
        size = sequential_jpeg_size(data)
        return size is not None and size[0] * size[1] <= INLINE_MAX_PIXELS


def _decoded_and_signed(
    data: bytes, max_pixels: int, target_size: int | None, sign: bool, scene: Signature | None
) -> tuple[Image.Image, Signed | None]:
    image = decode_image(data, max_pixels, target_size)
    return image, signed(image, scene) if sign else None

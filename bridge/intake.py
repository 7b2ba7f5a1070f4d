"""Intake: a message's payload becomes a frame's bytes and then its image, within the limits.

Raw image bytes, JSON with base64, or a URL fetched from an allowed host (``fetch.py``); decoded
in a thread near the size the models want (``frames.py``).  Problems raise ``FrameError``.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
from PIL import Image

from bridge.config import FramesConfig
from bridge.fetch import fetch_url
from bridge.frames import decode_image, frame_id_of, unpack_payload
from bridge.protocol import now_iso
from bridge.scheduler import ModelWorker
from bridge.work import AckTicket, CameraState, FrameWork

#: Frames of one camera that may wait for decoding before older ones are dropped undecoded.
MAX_UNDECODED = 2


class Intake:
    """Turns payloads into frames; ``http`` is opened with the service."""

    def __init__(self, frames: FramesConfig, workers: dict[str, ModelWorker]) -> None:
        self.frames = frames
        self.workers = workers
        self.http: aiohttp.ClientSession | None = None

    def open(self, state: CameraState, payload: bytes, ticket: AckTicket, seq: int) -> FrameWork:
        """The record of a frame just received (counted as received)."""
        state.counters.received += 1
        work = FrameWork(
            state.config, frame_id_of(payload), time.monotonic(), now_iso(), ticket, seq=seq
        )
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

    @staticmethod
    def burst(state: CameraState, seq: int) -> bool:
        """Whether to drop the frame undecoded, so memory stays bounded.

        Yes when more frames of the camera wait for decoding than the model could use and a
        newer one has arrived.
        """
        return state.undecoded > MAX_UNDECODED and seq < state.arrived

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
        return await asyncio.to_thread(
            decode_image, data, self.frames.max_pixels, self._target_size(tasks)
        )

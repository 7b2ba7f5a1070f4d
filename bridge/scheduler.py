"""Getting frames to models: newest frame per camera, batches across cameras, off the loop.

Each model has one ``ModelWorker``.  It holds at most one waiting job per slot (a camera, or one
on-demand request): a newer frame of the same camera replaces the waiting one, which ends as
``SUPERSEDED``, so a burst from a busy camera costs one model run, not a queue that grows
without bound.  When the model is free, every waiting job (up to the model's batch size) goes
through it as one batch, so four cameras cost about one batched call.  Model calls run in a
dedicated worker thread; the event loop keeps MQTT flowing meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import queue
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from bridge.engines.base import Engine, EngineOutput, JobOptions
from bridge.errors import ModelError
from bridge.metrics import BATCH_BUCKETS, LATENCY_BUCKETS, Histogram

_LOGGER = logging.getLogger(__name__)
#: Model threads are named ``model-<task>``; ``cli`` looks for live ones when the bridge exits.
MODEL_THREAD_PREFIX = "model-"
#: Longest a batch waits for frames still being decoded (a 720p decode takes 3-15 ms here,
#: a caption model call 0.3-2 s: waiting briefly to run four frames together pays).
GATHER_SECONDS = 0.06


class Status(enum.StrEnum):
    """A model's load state, as published in the bridge info."""

    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class Ended(enum.Enum):
    """Ways a job ends without a model output."""

    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"


Outcome = EngineOutput | ModelError | Ended


@dataclass(eq=False)
class Job:
    """One image waiting for one model; ``on_done`` is told how it ended, exactly once."""

    slot: str
    task: str
    image: Image.Image
    options: JobOptions
    on_done: Callable[[Job, Outcome], Coroutine[Any, Any, None]]
    context: object = None
    model_ms: float = field(default=0.0)


class ModelThread:
    """The one thread a model runs in.

    A daemon thread rather than a ``ThreadPoolExecutor``: the executor's threads are joined when
    the interpreter exits, so a model call that outlasts SIGTERM's grace period would keep the
    process alive.  With a daemon thread the bridge exits on time; the frames of the abandoned
    call were never acknowledged, so the broker delivers them again after the restart.
    """

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` in the model thread; the future resolves on the calling loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._calls.put(_Call(loop, future, fn, args))
        return future

    def shutdown(self) -> None:
        """Let the thread end after the call it is running, if any."""
        self._calls.put(None)

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the thread to end; whether it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            try:
                result = call.fn(*call.args)
            except BaseException as err:  # noqa: BLE001 - handed to the awaiting coroutine
                call.settle(None, err)
            else:
                call.settle(result, None)


@dataclass
class _Call:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]

    def settle(self, result: Any, error: BaseException | None) -> None:
        def apply() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            self.loop.call_soon_threadsafe(apply)


class ModelWorker:
    """Owns one engine: loads it in the background, then serves its slots in batches."""

    def __init__(self, task: str, engine: Engine) -> None:
        self.task = task
        self.engine = engine
        self.status = Status.LOADING
        self.error: ModelError | None = None
        self._slots: dict[str, Job] = {}
        self._wake = asyncio.Event()
        self._thread: ModelThread | None = None
        self._runner: asyncio.Task[None] | None = None
        self._callbacks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self.loaded = asyncio.Event()
        #: Frames per slot on their way here (being fetched or decoded), see ``expect``.
        self._coming: dict[str, int] = {}
        #: Cameras the last batch answered while others waited: their next frames may be near.
        self._recent: set[str] = set()
        self._arrived = asyncio.Event()
        #: For ``/metrics``: how long the load took, frames per call, seconds per call.
        self.load_seconds: float | None = None
        self.batch_sizes = Histogram(BATCH_BUCKETS)
        self.call_seconds = Histogram(LATENCY_BUCKETS)

    @property
    def label(self) -> str:
        """The model's name, for events and logs."""
        return self.engine.label

    def start(self) -> None:
        """Begin loading the model and serving jobs; returns at once."""
        self._thread = ModelThread(f"{MODEL_THREAD_PREFIX}{self.task}")
        self._runner = asyncio.create_task(self._run(), name=f"worker-{self.task}")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._thread is not None
        load_started = loop.time()
        try:
            await self._thread.call(self.engine.load)
        except ModelError as err:
            self._fail(err)
            return
        except Exception as err:  # noqa: BLE001 - whatever breaks a load makes the task unavailable
            self._fail(
                ModelError("model_unavailable", f"cannot load {self.label}: {err}", self.label)
            )
            return
        finally:
            self.loaded.set()
        self.status = Status.READY
        self.load_seconds = round(loop.time() - load_started, 3)
        _LOGGER.info("model for %s ready: %s (%.1f s)", self.task, self.label, self.load_seconds)
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._slots:
                await self._run_batch(loop)

    def _fail(self, err: ModelError) -> None:
        self.status = Status.FAILED  # set before ``loaded`` fires, so watchers see the failure
        self.error = err
        _LOGGER.error("model for %s unavailable: %s", self.task, err.detail)
        for job in self._take(len(self._slots)):
            self._finish(job, err)

    def _take(self, count: int) -> list[Job]:
        keys = list(self._slots)[:count]
        return [self._slots.pop(key) for key in keys]

    def expect(self, slot: str) -> None:
        """A frame for ``slot`` is being decoded: a batch about to start may wait for it."""
        self._coming[slot] = self._coming.get(slot, 0) + 1

    def forget(self, slot: str) -> None:
        """That frame was submitted or dropped (error, duplicate, stale): stop waiting for it."""
        left = self._coming.get(slot, 0) - 1
        if left > 0:
            self._coming[slot] = left
        else:
            self._coming.pop(slot, None)
        self._arrived.set()

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give frames on their way ``GATHER_SECONDS`` to join a batch that is not full.

        On their way: frames being decoded (cameras that answer the same event publish within
        milliseconds of each other, but each frame is decoded in a thread first), and the next
        frames of the cameras the last batch answered while other cameras' frames waited.
        Without the first the model would start on the first frame alone; without the second,
        cameras that send their next frame when their result arrives split into groups that
        take turns (batches of 2-3 of 4 cameras, bench/RESULTS.md), each paying the model's
        fixed cost per call.  Nothing waits when no frame is on its way or the batch is full.
        """
        deadline = loop.time() + GATHER_SECONDS
        recent, self._recent = self._recent, set()

        def on_their_way() -> set[str]:
            return (set(self._coming) | recent) - set(self._slots)

        while len(self._slots) < self.engine.max_batch and on_their_way():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    async def _run_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.engine.max_batch > 1:
            await self._gather(loop)
        jobs = self._take(self.engine.max_batch)
        images = [job.image for job in jobs]
        options = [job.options for job in jobs]
        self._idle.clear()
        started = loop.time()
        assert self._thread is not None
        try:
            outputs = await self._thread.call(self.engine.run_batch, images, options)
        except Exception as err:
            _LOGGER.exception("model %s failed on a batch of %d", self.label, len(jobs))
            outputs = [ModelError("model_failed", f"{self.label} failed: {err}", self.label)] * len(
                jobs
            )
        finally:
            self._idle.set()
        elapsed_ms = (loop.time() - started) * 1000
        self.batch_sizes.observe(len(jobs))
        self.call_seconds.observe(elapsed_ms / 1000)
        if self._slots:  # others waited meanwhile: the next batch may wait for these cameras
            self._recent = {job.slot for job in jobs if not job.slot.startswith("request:")}
        for job, output in zip(jobs, outputs, strict=True):
            job.model_ms = elapsed_ms
            self._finish(job, output)

    def submit(self, job: Job) -> None:
        """Queue a job in its slot; a job already waiting there is superseded."""
        if self.status is Status.FAILED:
            assert self.error is not None
            self._finish(job, self.error)
            return
        previous = self._slots.pop(job.slot, None)
        self._slots[job.slot] = job
        if previous is not None:
            self._finish(previous, Ended.SUPERSEDED)
        self._wake.set()
        self._arrived.set()

    def _finish(self, job: Job, outcome: Outcome) -> None:
        task = asyncio.create_task(job.on_done(job, outcome))
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    @property
    def busy(self) -> bool:
        """A batch is in the model right now."""
        return not self._idle.is_set()

    @property
    def waiting(self) -> int:
        """Jobs queued and not yet running."""
        return len(self._slots)

    async def stop(self, grace: float = 4.0) -> None:
        """Stop taking jobs: waiting ones end ``CANCELLED``; a running batch may finish.

        Everything here shares one ``grace`` budget, so stopping is bounded however busy the
        model is (the bridge promises to exit within 10 s of SIGTERM).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace

        def left() -> float:
            return max(0.0, deadline - loop.time())

        for job in self._take(len(self._slots)):
            self._finish(job, Ended.CANCELLED)
        if self._runner is not None:
            # Let a running batch finish so its frames are published and acknowledged.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), left())
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        if self._callbacks:
            await asyncio.wait(set(self._callbacks), timeout=max(left(), 0.5))
        if self._thread is not None:
            # A load still running gets the rest of the budget to end.
            self._thread.shutdown()
            await asyncio.to_thread(self._thread.join, left())

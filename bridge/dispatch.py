"""Scheduling, seen from a frame: each task's model gets the frame, each outcome is published.

``scheduler.py`` does the per-model work (newest frame per camera, batches, the model thread);
this stage creates the workers from the configuration, submits frames and requests to them and
turns every outcome into a publication and an ending the counters see.
"""

from __future__ import annotations

import asyncio
import logging

from PIL import Image

from bridge.config import BridgeConfig, ModelConfig
from bridge.engines.base import Engine, EngineOutput, JobOptions, create_engine
from bridge.errors import BridgeError, ModelError
from bridge.meter.state import state_path_for
from bridge.publishing import Publisher
from bridge.scheduler import Ended, Job, ModelWorker, Outcome
from bridge.work import CANCELLED, Accounts, Ending, FrameWork, SceneKind, SceneOutcome

_LOGGER = logging.getLogger(__name__)


class Dispatch:
    """The models' workers, and what happens with what they make."""

    def __init__(
        self,
        config: BridgeConfig,
        accounts: Accounts,
        publisher: Publisher,
        workers: dict[str, ModelWorker],
        *,
        engines: dict[str, Engine] | None = None,
        keep_meter_state: bool = True,
    ) -> None:
        self.config = config
        self.accounts = accounts
        self.publisher = publisher
        self.workers = workers
        self._engines = engines or {}
        #: Meters' previous values go to a file next to the configuration (the demo: memory).
        self.keep_meter_state = keep_meter_state

    def start(self) -> list[ModelWorker]:
        """Create every task's engine and start loading it; returns the workers."""
        for task, model_config in self.config.models.items():
            engine = self._engines.get(task) or _create(model_config)
            if engine.capabilities.keeps_state:
                path = state_path_for(self.config.source) if self.keep_meter_state else None
                engine.attach_state(path)
            worker = ModelWorker(task, engine)
            self.workers[task] = worker
            worker.start()
        return list(self.workers.values())

    async def stop(self) -> None:
        """Stop every worker (waiting jobs end cancelled; running batches may finish)."""
        await asyncio.gather(*(worker.stop() for worker in self.workers.values()))

    def expect(self, camera: str, tasks: tuple[str, ...], coming: bool) -> None:
        """A frame of ``camera`` is on its way to these tasks (``coming``), or no longer is."""
        for task in tasks:
            worker = self.workers.get(task)
            if worker is not None:
                (worker.expect if coming else worker.forget)(camera)

    def submit(self, work: FrameWork) -> None:
        """Hand a decoded frame to each of its tasks' models."""
        cam = work.camera
        assert work.image is not None
        options = JobOptions(prompt=cam.prompt, meter=cam.meter, camera=cam.name)
        work.open_tasks = len(cam.tasks)
        for task in cam.tasks:
            work.ticket.hold()
            self.workers[task].submit(Job(cam.name, task, work.image, options, self.job_done, work))
        work.ticket.release()

    def submit_request(self, work: FrameWork, task: str, options: JobOptions) -> None:
        """Hand a request's image to its task's model, in a slot of its own."""
        assert work.image is not None
        assert work.request is not None
        work.ticket.hold()
        self.workers[task].submit(
            Job(f"request:{work.request.id}", task, work.image, options, self.job_done, work)
        )
        work.ticket.release()

    def set_meter(self, camera: str, value: float) -> bool:
        """Set a meter camera's value by hand; False when there is no meter model for it."""
        worker = self.workers.get("meter")
        if worker is None or not worker.engine.capabilities.settable_value:
            return False
        worker.engine.set_value(camera, value)
        return True

    async def job_done(self, job: Job, outcome: Outcome) -> None:
        """Publish what a model made of a frame; the frame's scene and counters learn of it."""
        work, task = job.context, job.task
        assert isinstance(work, FrameWork)
        # The job's image is not kept while the result waits for the broker's acknowledgement:
        # seconds, while a burst of incoming frames queues ahead of it on the socket.
        del job
        scene, ending = CANCELLED, Ending.SUPERSEDED
        try:
            scene, ending = await self._publish(work, task, outcome)
        except BridgeError as err:
            # Not published: leave the frame unacknowledged so the broker hands it over again.
            _LOGGER.error("could not publish for %s: %s", work.camera.name, err)  # noqa: TRY400
            work.ticket.cancelled = True
            scene, ending = CANCELLED, Ending.SUPERSEDED
        finally:
            future = work.outcomes.get(task)
            if future is not None and not future.done():
                future.set_result(scene)
            self.accounts.end(work, ending)  # requests are not counted (see Accounts.end)
            work.ticket.release()

    async def _publish(
        self, work: FrameWork, task: str, outcome: Outcome
    ) -> tuple[SceneOutcome, Ending]:
        if outcome is Ended.CANCELLED:
            work.ticket.cancelled = True
            return CANCELLED, Ending.SUPERSEDED
        if outcome is Ended.SUPERSEDED:
            return SceneOutcome(SceneKind.SUPERSEDED), Ending.SUPERSEDED
        if isinstance(outcome, ModelError):
            payload = await self.publisher.error(
                work,
                outcome.code,
                outcome.detail,
                task=task,
                model=outcome.model or None,
                extra=outcome.extra or None,
                preview=outcome.preview,
            )
            return SceneOutcome(SceneKind.ERROR, payload), Ending.ERROR
        payload = await self.publisher.result(work, task, outcome)
        return SceneOutcome(SceneKind.RESULT, payload), Ending.RESULT


def _create(config: ModelConfig) -> Engine:
    try:
        return create_engine(config)
    except ModelError as err:
        return _BrokenEngine(config, err)


class _BrokenEngine(Engine):
    """Stands in for an engine that could not even be created, so its task reports why."""

    def __init__(self, config: ModelConfig, error: ModelError) -> None:
        super().__init__(config)
        self.error = error

    def load(self) -> None:
        raise self.error

    def run_batch(
        self, images: list[Image.Image], options: list[JobOptions]
    ) -> list[EngineOutput | ModelError]:
        return [self.error for _ in images]

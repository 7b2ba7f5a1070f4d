"""Scheduling: the newest frame per camera, batches across cameras, a model that will not load."""

from __future__ import annotations

import asyncio
import threading

import pytest
from PIL import Image

from bridge import scheduler
from bridge.config import ModelConfig
from bridge.engines.base import Engine, EngineOutput, JobOptions
from bridge.errors import ModelError
from bridge.scheduler import GATHER_SECONDS, Ended, Job, ModelWorker, Outcome, Status
from tests.support.waiting import eventually

#: Every wait here is on an event with this deadline; a stuck worker fails the test loudly.
DEADLINE = 10.0


class RecordingEngine(Engine):
    """A model stand-in that names the image it saw and records each batch; it can be held."""

    def __init__(self, fail_load: bool = False, batch: int = 4) -> None:
        super().__init__(ModelConfig(engine="recording", batch_size=batch))
        self.batches: list[list[str]] = []
        #: Batches that reached the model (counted before the gate, so a held batch counts).
        self.calls = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail_load = fail_load

    def load(self) -> None:
        if self.fail_load:
            raise ModelError("model_unavailable", "cannot load 'org/missing'", "org/missing")

    def run_batch(
        self, images: list[Image.Image], options: list[JobOptions]
    ) -> list[EngineOutput | ModelError]:
        self.calls += 1
        self.gate.wait(DEADLINE)
        self.batches.append([o.camera for o in options])
        return [
            ModelError("model_failed", "boom")
            if o.camera == "broken"
            else EngineOutput(text=f"seen {o.camera}")
            for o in options
        ]


def make_job(camera: str, outcomes: dict[str, list[Outcome]], tag: str = "") -> Job:
    async def done(job: Job, outcome: Outcome) -> None:
        outcomes.setdefault(camera + tag, []).append(outcome)

    return Job(camera, "caption", Image.new("RGB", (4, 4)), JobOptions(camera=camera), done)


async def ready(worker: ModelWorker) -> None:
    """Start the worker and return once its model has loaded."""
    worker.start()
    await eventually(worker.loaded.is_set, DEADLINE, "the model loading")


async def in_model(engine: RecordingEngine, calls: int = 1) -> None:
    """Return once ``calls`` batches have reached the model."""
    await eventually(lambda: engine.calls >= calls, DEADLINE, f"batch {calls} reaching the model")


async def answered(outcomes: dict[str, list[Outcome]], *keys: str) -> None:
    """Return once every one of ``keys`` has been told how its job ended."""
    await eventually(lambda: all(key in outcomes for key in keys), DEADLINE, f"outcomes for {keys}")


def test_frames_of_several_cameras_go_through_the_model_as_one_batch() -> None:
    async def scenario() -> None:
        engine = RecordingEngine()
        worker = ModelWorker("caption", engine)
        await ready(worker)
        engine.gate.clear()  # the model is busy with the first camera
        outcomes: dict[str, list[Outcome]] = {}
        worker.submit(make_job("first", outcomes))
        await in_model(engine)
        for camera in ("a", "b", "c"):
            worker.submit(make_job(camera, outcomes))
        engine.gate.set()
        await answered(outcomes, "first", "a", "b", "c")
        assert engine.batches == [["first"], ["a", "b", "c"]]
        assert outcomes["b"] == [EngineOutput(text="seen b")]
        await worker.stop()

    asyncio.run(scenario())


def test_cameras_that_publish_together_share_a_batch_while_their_frames_decode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A loaded CI host can stretch the scenario's 5 ms steps past the real 60 ms: the wait is
    # made long here, and its end is the frames arriving, not the clock.
    monkeypatch.setattr(scheduler, "GATHER_SECONDS", DEADLINE / 2)

    async def scenario() -> None:
        engine = RecordingEngine()
        worker = ModelWorker("caption", engine)
        await ready(worker)
        outcomes: dict[str, list[Outcome]] = {}
        for camera in ("a", "b", "c", "d"):  # four snapshots arrive; each is decoded first
            worker.expect(camera)
        worker.submit(make_job("a", outcomes))
        worker.forget("a")
        for camera in ("b", "c"):  # decoded a few milliseconds later (the scenario's own time)
            await asyncio.sleep(0.005)
            worker.submit(make_job(camera, outcomes))
            worker.forget(camera)
        await asyncio.sleep(0.005)
        worker.forget("d")  # its frame turned out to be a duplicate: nothing more to wait for
        await answered(outcomes, "a", "b", "c")
        assert engine.batches == [["a", "b", "c"]]
        await worker.stop()

    asyncio.run(scenario())


def test_a_frame_that_never_comes_delays_a_batch_only_briefly() -> None:
    async def scenario() -> None:
        engine = RecordingEngine()
        worker = ModelWorker("caption", engine)
        await ready(worker)
        outcomes: dict[str, list[Outcome]] = {}
        worker.expect("slow")  # e.g. a URL frame still downloading
        started = asyncio.get_running_loop().time()
        worker.submit(make_job("a", outcomes))
        await answered(outcomes, "a")
        waited = asyncio.get_running_loop().time() - started
        assert GATHER_SECONDS <= waited < DEADLINE, waited
        assert engine.batches == [["a"]]
        assert outcomes["a"] == [EngineOutput(text="seen a")]
        await worker.stop()

    asyncio.run(scenario())


def test_a_newer_frame_supersedes_the_waiting_one_of_the_same_camera() -> None:
    async def scenario() -> None:
        engine = RecordingEngine()
        worker = ModelWorker("caption", engine)
        await ready(worker)
        engine.gate.clear()
        outcomes: dict[str, list[Outcome]] = {}
        worker.submit(make_job("busy", outcomes))
        await in_model(engine)
        worker.submit(make_job("door", outcomes, "#1"))
        worker.submit(make_job("door", outcomes, "#2"))
        worker.submit(make_job("door", outcomes, "#3"))
        engine.gate.set()
        await answered(outcomes, "busy", "door#1", "door#2", "door#3")
        assert outcomes["door#1"] == [Ended.SUPERSEDED]
        assert outcomes["door#2"] == [Ended.SUPERSEDED]
        assert outcomes["door#3"] == [EngineOutput(text="seen door")]
        assert engine.batches == [["busy"], ["door"]]
        await worker.stop()

    asyncio.run(scenario())


def test_one_failing_frame_gives_an_error_and_the_worker_goes_on() -> None:
    async def scenario() -> None:
        engine = RecordingEngine()
        worker = ModelWorker("caption", engine)
        worker.start()
        outcomes: dict[str, list[Outcome]] = {}
        worker.submit(make_job("broken", outcomes))
        await answered(outcomes, "broken")
        worker.submit(make_job("fine", outcomes))
        await answered(outcomes, "fine")
        assert isinstance(outcomes["broken"][0], ModelError)
        assert outcomes["fine"] == [EngineOutput(text="seen fine")]
        await worker.stop()

    asyncio.run(scenario())


def test_a_model_that_cannot_load_answers_every_job_with_its_error() -> None:
    async def scenario() -> None:
        worker = ModelWorker("caption", RecordingEngine(fail_load=True))
        outcomes: dict[str, list[Outcome]] = {}
        worker.submit(make_job("early", outcomes))  # waiting while the model loads
        worker.start()
        await eventually(worker.loaded.is_set, DEADLINE, "the load failing")
        worker.submit(make_job("late", outcomes))
        await answered(outcomes, "early", "late")
        assert worker.status is Status.FAILED
        for camera in ("early", "late"):
            (outcome,) = outcomes[camera]
            assert isinstance(outcome, ModelError)
            assert outcome.code == "model_unavailable"
            assert "org/missing" in outcome.detail
        await worker.stop()

    asyncio.run(scenario())


def test_stopping_hands_waiting_jobs_back_unanswered() -> None:
    async def scenario() -> None:
        engine = RecordingEngine()
        worker = ModelWorker("caption", engine)
        await ready(worker)
        engine.gate.clear()
        outcomes: dict[str, list[Outcome]] = {}
        worker.submit(make_job("running", outcomes))
        await in_model(engine)
        worker.submit(make_job("waiting", outcomes))
        stopping = asyncio.create_task(worker.stop())
        await answered(outcomes, "waiting")  # cancelled while the model still holds "running"
        engine.gate.set()
        await stopping
        assert outcomes["waiting"] == [Ended.CANCELLED]
        assert outcomes["running"] == [EngineOutput(text="seen running")]

    asyncio.run(scenario())

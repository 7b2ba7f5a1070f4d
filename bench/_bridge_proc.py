"""``image-to-text run`` with timestamps: the bridge as users run it, plus a per-frame trace.

The benchmark needs the bridge's own overhead (frame received -> result published, minus the
model's time), which no MQTT client can see from outside.  This launcher wraps a few methods
with timestamping shims (the frame's stages: to the decode thread, decoding, back on the event
loop, submitted, in the model, published) and writes one JSON line per result to
``$BENCH_TRACE``; the bridge's code itself is unchanged.  Times are ``time.monotonic()``
seconds inside the bridge process.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge import cli, dispatch, intake, scheduler, transport
from bridge.work import FrameWork

TRACE = Path(os.environ["BENCH_TRACE"])
_records: dict[str, dict[str, Any]] = {}
#: The frame whose task is running (a worker thread sees its caller's context).
_current: contextvars.ContextVar[FrameWork | None] = contextvars.ContextVar("work", default=None)


def _install() -> None:
    submit = scheduler.ModelWorker.submit
    take = scheduler.ModelWorker._take
    job_done = dispatch.Dispatch.job_done
    publish = transport.MqttTransport.publish
    out = TRACE.open("a", buffering=1)
    open_work = intake.Intake.open
    decode_signed = intake.Intake.decode_signed
    decoded_and_signed = intake._decoded_and_signed

    def timed_open(self: intake.Intake, *args: Any) -> FrameWork:
        work = open_work(self, *args)
        _current.set(work)
        return work

    async def timed_decode_signed(self: intake.Intake, *args: Any) -> Any:
        result = await decode_signed(self, *args)
        work = _current.get()
        if work is not None:
            work.extra["t_decoded"] = time.monotonic()
        return result

    def timed_decoded_and_signed(*args: Any) -> Any:
        work = _current.get()
        start = time.monotonic()
        result = decoded_and_signed(*args)
        if work is not None:
            work.extra["t_decode_start"] = start
            work.extra["t_decode_end"] = time.monotonic()
        return result

    def timed_submit(self: scheduler.ModelWorker, job: scheduler.Job) -> None:
        if isinstance(job.context, FrameWork):
            job.context.extra["t_submitted"] = time.monotonic()
        submit(self, job)

    def timed_take(self: scheduler.ModelWorker, count: int) -> list[scheduler.Job]:
        jobs = take(self, count)
        now = time.monotonic()
        for job in jobs:
            if isinstance(job.context, FrameWork):
                job.context.extra["t_model_start"] = now
                job.context.extra["batch"] = len(jobs)
        return jobs

    async def timed_job_done(
        self: dispatch.Dispatch, job: scheduler.Job, outcome: scheduler.Outcome
    ) -> None:
        work = job.context
        if not isinstance(work, FrameWork):
            await job_done(self, job, outcome)
            return
        record = {
            "camera": work.camera.name,
            "frame_id": work.frame_id,
            "received": work.received,
            "decode_start": work.extra.get("t_decode_start"),
            "decode_end": work.extra.get("t_decode_end"),
            "decoded": work.extra.get("t_decoded"),
            "submitted": work.extra.get("t_submitted"),
            "model_start": work.extra.get("t_model_start"),
            "model_ms": job.model_ms,
            "batch": work.extra.get("batch"),
            "done": time.monotonic(),
            "outcome": type(outcome).__name__,
        }
        _records[work.frame_id] = record
        try:
            await job_done(self, job, outcome)
        finally:
            _records.pop(work.frame_id, None)
            out.write(json.dumps(record) + "\n")

    def timed_publish(
        self: transport.MqttTransport,
        topic: str,
        payload: bytes | str,
        *,
        retain: bool = False,
        qos: int = 1,
    ) -> Any:
        now = time.monotonic()
        if topic.endswith("/caption") and _records:
            frame_id = json.loads(payload).get("frame_id", "")
            record = _records.get(frame_id)
            if record is not None:
                record["published"] = now
        elif topic.endswith("/caption/image"):
            for record in _records.values():
                record.setdefault("image_published", now)
        return publish(self, topic, payload, retain=retain, qos=qos)

    gather_ms = float(os.environ.get("BENCH_GATHER_MS", "0"))
    if gather_ms > 0:
        # Experiment (--gather-ms): let frames still being decoded join the batch.
        run_batch = scheduler.ModelWorker._run_batch

        async def gathering_run_batch(self: scheduler.ModelWorker, loop: Any) -> None:
            if len(self._slots) < self.engine.max_batch:
                await asyncio.sleep(gather_ms / 1000)
            await run_batch(self, loop)

        scheduler.ModelWorker._run_batch = gathering_run_batch  # type: ignore[method-assign]

    intake.Intake.open = timed_open  # type: ignore[method-assign]
    intake.Intake.decode_signed = timed_decode_signed  # type: ignore[method-assign]
    intake._decoded_and_signed = timed_decoded_and_signed
    scheduler.ModelWorker.submit = timed_submit  # type: ignore[method-assign]
    scheduler.ModelWorker._take = timed_take  # type: ignore[method-assign]
    dispatch.Dispatch.job_done = timed_job_done  # type: ignore[method-assign]
    transport.MqttTransport.publish = timed_publish  # type: ignore[method-assign]


if __name__ == "__main__":
    _install()
    sys.exit(cli.main())

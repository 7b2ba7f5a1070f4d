"""Scenes: a frame showing the scene a camera's last analysis saw costs no model time.

It is answered with that analysis instead: the result again under the new frame's id, marked
``"unchanged": true`` (an error again as an error; superseded if that analysis was).  Identical
bytes are always the same scene; caption cameras also compare scene signatures (``dedup.py``).
"""

from __future__ import annotations

import asyncio
import logging

from bridge.config import CameraConfig
from bridge.dedup import SceneMemory, Signature, Signed, threshold_for
from bridge.engines.base import EngineOutput
from bridge.errors import BridgeError
from bridge.group import decode_signature
from bridge.protocol import RESULT_FRAME_FIELDS
from bridge.publishing import Publisher
from bridge.work import (
    CANCELLED,
    Accounts,
    CameraState,
    Ending,
    FrameWork,
    SceneKind,
    SceneOutcome,
)

_LOGGER = logging.getLogger(__name__)


class Scenes:
    """Each camera's last analysed scene, and answering frames that show it again."""

    def __init__(self, accounts: Accounts, publisher: Publisher) -> None:
        self.accounts = accounts
        self.publisher = publisher
        self._memory = SceneMemory()
        #: Other bridges' newest results per camera, gathered until every task of one frame is in.
        self._remote: dict[str, dict[str, dict[str, object]]] = {}

    @staticmethod
    def same_bytes(state: CameraState, frame_id: str) -> bool:
        """The frame is byte for byte the one last analysed."""
        return state.config.dedup and state.scene_frame == frame_id

    @staticmethod
    def _threshold(camera: CameraConfig) -> float | None:
        """The camera's scene-change threshold; ``None`` where its frames are not compared."""
        return threshold_for(camera.tasks, camera.dedup_threshold) if camera.dedup else None

    @staticmethod
    def compares_signatures(camera: CameraConfig) -> bool:
        """Whether the camera's frames are compared by scene signature (made with the decode)."""
        return Scenes._threshold(camera) is not None

    def last_signature(self, camera: CameraConfig) -> Signature | None:
        """The signature of the camera's last analysed scene, to score a new frame against."""
        return self._memory.last(camera.name)

    def same_scene(self, camera: CameraConfig, signed: Signed | None) -> bool:
        """Whether a frame signed so shows the camera's last analysed scene."""
        threshold = self._threshold(camera)
        if signed is None or threshold is None:
            return False
        return not self._memory.is_new(camera.name, signed, threshold)

    def begin(self, state: CameraState, work: FrameWork, signed: Signed | None) -> None:
        """The frame becomes the camera's scene; its tasks' outcomes will be kept for repeats."""
        loop = asyncio.get_running_loop()
        work.outcomes = {task: loop.create_future() for task in work.camera.tasks}
        state.scene_frame = work.frame_id
        state.scene_outcomes = work.outcomes
        if signed is not None:
            self._memory.remember(state.name, signed.signature)
            work.signature = signed.signature

    def adopt(self, camera: str, task: str, payload: dict[str, object]) -> None:
        """Another bridge of the group published the camera's newest result: its scene is ours.

        Once every task of the camera has a result for that frame, a frame showing the same
        scene (same bytes, or a signature within the threshold) is answered from those results
        here too, at no model time.
        """
        state = self.accounts.cameras.get(camera)
        if state is None or not state.config.dedup:
            return
        gathered = self._remote.setdefault(camera, {})
        if any(p.get("frame_id") != payload.get("frame_id") for p in gathered.values()):
            gathered.clear()
        gathered[task] = payload
        if set(gathered) != set(state.config.tasks):
            return
        loop = asyncio.get_running_loop()
        outcomes: dict[str, asyncio.Future[SceneOutcome]] = {}
        for name, result in gathered.items():
            outcomes[name] = loop.create_future()
            outcomes[name].set_result(SceneOutcome(SceneKind.RESULT, result))
        state.scene_frame = str(payload.get("frame_id"))
        state.scene_outcomes = outcomes
        signature = decode_signature(payload.get("scene"))
        if signature is None:
            self._memory.forget(camera)
        else:
            self._memory.remember(camera, signature)

    def forget(self, camera: str) -> None:
        """Compare the camera's next frame with nothing: it is analysed whatever it shows."""
        self._memory.forget(camera)
        state = self.accounts.cameras.get(camera)
        if state is not None:
            state.scene_frame = None
            state.scene_outcomes = {}

    async def answer_unchanged(self, work: FrameWork) -> None:
        """Answer a frame of the scene last analysed with that analysis, at no model time.

        Waits for the analysis when it is still running.
        """
        state = self.accounts.state(work.camera.name)
        outcomes = state.scene_outcomes
        work.open_tasks = len(work.camera.tasks)
        try:
            for task in work.camera.tasks:
                future = outcomes.get(task)
                outcome = await future if future is not None else CANCELLED
                await self._repeat(work, task, outcome.kind, outcome.payload or {})
        except BridgeError as err:
            _LOGGER.error("could not publish for %s: %s", state.name, err)  # noqa: TRY400
            work.ticket.cancelled = True
        finally:
            work.ticket.release()

    async def _repeat(
        self, work: FrameWork, task: str, kind: SceneKind, payload: dict[str, object]
    ) -> None:
        if kind is SceneKind.RESULT and payload:
            output = EngineOutput(
                text=str(payload.get("text", "")),
                extra={k: v for k, v in payload.items() if k not in RESULT_FRAME_FIELDS},
            )
            await self.publisher.result(
                work, task, output, unchanged_from=str(payload.get("frame_id", ""))
            )
            self.accounts.state(work.camera.name).counters.duplicates += 1
            self.accounts.end(work, Ending.RESULT)
        elif kind is SceneKind.ERROR and payload:
            model = payload.get("model")
            await self.publisher.error(
                work,
                str(payload.get("error", "model_failed")),
                str(payload.get("detail", "")),
                task=task,
                model=str(model) if model is not None else None,
            )
            self.accounts.end(work, Ending.ERROR)
        elif kind is SceneKind.SUPERSEDED:
            self.accounts.end(work, Ending.SUPERSEDED)
        else:  # the analysis was handed back (stopping, or not published): so is this frame
            work.ticket.cancelled = True
            self.accounts.end(work, Ending.SUPERSEDED)

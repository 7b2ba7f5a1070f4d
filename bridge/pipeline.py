"""A camera frame's path, stage by stage: intake -> scenes -> scheduling -> engines -> publishing.

``FramePath.handle`` reads as that path.  Every frame ends as exactly one of: a result per task,
an error event, or a counted ``superseded`` (``work.Accounts``); only then is the message
acknowledged (``work.AckTicket``).
"""

from __future__ import annotations

from bridge.dispatch import Dispatch
from bridge.errors import FrameError
from bridge.frames import frame_id_of
from bridge.intake import Intake
from bridge.publishing import Publisher
from bridge.scenes import Scenes
from bridge.work import Accounts, AckTicket, CameraState, Ending, FrameWork


class FramePath:
    """The stages a camera's frame goes through, in order."""

    def __init__(
        self,
        accounts: Accounts,
        intake: Intake,
        scenes: Scenes,
        dispatch: Dispatch,
        publisher: Publisher,
    ) -> None:
        self.accounts = accounts
        self.intake = intake
        self.scenes = scenes
        self.dispatch = dispatch
        self.publisher = publisher

    def arrived(self, camera: str) -> int:
        """Number a frame of ``camera`` on arrival: a later frame supersedes it at once."""
        state = self.accounts.state(camera)
        state.arrived += 1
        return state.arrived

    async def handle(
        self, camera: str, payload: bytes, ticket: AckTicket, seq: int, *, late: bool = False
    ) -> None:
        """Take one frame all the way: analysed, answered from its scene, or superseded.

        ``late``: delivered from a resumed session's backlog (``group.py``).
        """
        state = self.accounts.state(camera)
        tasks = state.config.tasks
        self.dispatch.expect(camera, tasks, coming=True)  # a starting batch may wait for it
        state.undecoded += 1
        try:
            unchanged = await self._through(state, payload, ticket, seq, late)
        finally:
            state.undecoded -= 1
            self.dispatch.expect(camera, tasks, coming=False)
        if unchanged is not None:  # waits for the scene's analysis: no batch waits for it
            await self.scenes.answer_unchanged(unchanged)

    async def _through(
        self, state: CameraState, payload: bytes, ticket: AckTicket, seq: int, late: bool
    ) -> FrameWork | None:
        """Intake, then scenes, then the models; returns the frame if it shows the last scene."""
        work = self.intake.open(state, ticket, seq)
        work.extra["late"] = late
        sign = self.scenes.compares_signatures(work.camera)
        try:
            data = await self.intake.image_bytes(payload)
            async with self.intake.decode_slot(state, seq) as granted:
                if not granted:  # superseded before it was even hashed
                    self._superseded(work)
                    return None
                work.frame_id = frame_id_of(data)
                if self.scenes.same_bytes(state, work.frame_id):
                    return work
                work.data = data
                work.image, signed = await self.intake.decode_signed(
                    data, state.config.tasks, sign, self.scenes.last_signature(work.camera)
                )
        except FrameError as err:
            work.frame_id = work.frame_id or frame_id_of(payload)
            await self.publisher.error(work, err.code, err.detail)
            self.accounts.end(work, Ending.ERROR)
            ticket.release()
            return None
        if self.scenes.same_scene(work.camera, signed):
            return work
        if seq < state.submitted:  # a newer frame of this camera was decoded first
            self._superseded(work)
            return None
        state.submitted = seq
        self.scenes.begin(state, work, signed)
        self.dispatch.submit(work)
        return None

    def _superseded(self, work: FrameWork) -> None:
        self.accounts.end(work, Ending.SUPERSEDED)
        work.ticket.release()

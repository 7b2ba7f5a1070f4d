"""On-demand requests (``<base>/request``): one image, one task, answered on ``reply_to``.

Beside the frames' path: a request takes intake (image or URL, limits, decoding) and a model
slot of its own, and its answer goes to the requester only, uncounted.
"""

from __future__ import annotations

import logging
import time

from bridge.config import BridgeConfig, CameraConfig
from bridge.dispatch import Dispatch
from bridge.engines.base import JobOptions
from bridge.errors import FrameError
from bridge.frames import frame_id_of
from bridge.intake import Intake
from bridge.protocol import Request, now_iso, parse_request
from bridge.publishing import Publisher
from bridge.work import AckTicket, FrameWork

_LOGGER = logging.getLogger(__name__)


class Requests:
    """Answers analysis requests."""

    def __init__(
        self, config: BridgeConfig, intake: Intake, dispatch: Dispatch, publisher: Publisher
    ) -> None:
        self.config = config
        self.intake = intake
        self.dispatch = dispatch
        self.publisher = publisher

    async def handle(self, topic: str, payload: bytes, ticket: AckTicket) -> None:
        """Parse, fetch and decode the request's image, then hand it to its task's model."""
        try:
            request = parse_request(payload)
        except FrameError as err:
            _LOGGER.warning("ignored a request on %s: %s", topic, err.detail)
            ticket.release()
            return
        cam = self._camera(request)
        work = FrameWork(cam, "", time.monotonic(), now_iso(), ticket, request=request)
        if request.task not in self.dispatch.workers:
            detail = (
                f"this bridge has no model for {request.task!r} "
                f"(configured: {', '.join(self.dispatch.workers) or 'none'})"
            )
            await self.publisher.error(work, "unknown_task", detail, task=request.task)
            ticket.release()
            return
        try:
            data = (
                request.image
                if request.image is not None
                else await self.intake.fetch(request.url or "")
            )
            work.frame_id = frame_id_of(data)
            work.data = data
            work.image = await self.intake.decode(data, (request.task,))
        except FrameError as err:
            await self.publisher.error(work, err.code, err.detail, task=request.task)
            ticket.release()
            return
        options = JobOptions(prompt=request.prompt or cam.prompt, meter=cam.meter, camera=cam.name)
        self.dispatch.submit_request(work, request.task, options)

    def _camera(self, request: Request) -> CameraConfig:
        """The configured camera the request names, or settings of the request's own.

        Unchecked: a meter request for no meter camera is answered by the engine's error.
        """
        configured = self.config.cameras.get(request.camera)
        if configured is not None:
            return configured
        return CameraConfig.model_construct(name=request.camera, topic="", tasks=(request.task,))

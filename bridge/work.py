"""A frame's record on its way through the stages, and each camera's state between frames.

Every frame the bridge accepts ends as exactly one of: a result per task, an error event, or a
counted ``superseded``; only then is the message acknowledged to the broker (``AckTicket``).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from bridge.config import CameraConfig
from bridge.dedup import Signature
from bridge.metrics import Telemetry
from bridge.protocol import Request


class Ending(enum.IntEnum):
    """How a frame ended, for the counters; the worst of its tasks' endings counts."""

    RESULT = 0
    SUPERSEDED = 1
    ERROR = 2


class SceneKind(enum.Enum):
    """What a task made of a scene, for later frames of the same scene that repeat it."""

    RESULT = "result"
    ERROR = "error"
    SUPERSEDED = "superseded"
    #: Handed back unpublished (stopping, or publishing failed): so is every repeat of it.
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class SceneOutcome:
    """One task's outcome for a scene: the payload published for it, if any."""

    kind: SceneKind
    payload: dict[str, Any] | None = None


CANCELLED = SceneOutcome(SceneKind.CANCELLED)


@dataclass
class Counters:
    """Per-camera accounting of frames, published in the bridge info (health sensors read it).

    Each frame received is counted once when it has ended, whatever its number of tasks:
    ``received == results + errors + superseded`` once nothing is in flight.  A frame ends as
    an error if any of its tasks did, else as superseded if any was, else as a result.
    ``duplicates`` counts the results among them answered from the last analysis (dedup).
    """

    received: int = 0
    results: int = 0
    errors: int = 0
    superseded: int = 0
    duplicates: int = 0
    latency_ms: float | None = None

    def count(self, ending: Ending) -> None:
        """One frame ended this way."""
        if ending is Ending.RESULT:
            self.results += 1
        elif ending is Ending.SUPERSEDED:
            self.superseded += 1
        else:
            self.errors += 1

    def as_dict(self) -> dict[str, Any]:
        """The counters as published in ``info.counters.<camera>``."""
        return {
            "received": self.received,
            "results": self.results,
            "errors": self.errors,
            "superseded": self.superseded,
            "duplicates": self.duplicates,
            "latency_ms": self.latency_ms,
        }


class AckTicket:
    """Acknowledges one MQTT message once every piece of work it started has ended."""

    def __init__(self, ack: Callable[[], None]) -> None:
        self._ack = ack
        self._open = 1  # the message's own handling; released by ``release``
        self.cancelled = False

    def hold(self, count: int = 1) -> None:
        """One more piece of work must end before the message is acknowledged."""
        self._open += count

    def release(self) -> None:
        """One piece of work ended; acknowledge when none is left (unless handed back)."""
        self._open -= 1
        if self._open == 0 and not self.cancelled:
            self._ack()


@dataclass(eq=False)
class FrameWork:
    """One frame of one camera (or one request) on its way through the tasks."""

    camera: CameraConfig
    frame_id: str
    received: float
    captured_at: str
    ticket: AckTicket
    image: Image.Image | None = None
    #: The image bytes as the camera sent them (the preview reuses them when it can).
    data: bytes = b""
    preview: asyncio.Future[bytes] | None = None
    request: Request | None = None
    #: The frame's scene signature, once it is the camera's scene (other bridges dedup by it).
    signature: Signature | None = None
    #: Free-form notes (the benchmark's timestamps).
    extra: dict[str, Any] = field(default_factory=dict)
    #: The camera's frame number, given on arrival (a higher one supersedes this frame).
    seq: int = 0
    #: Tasks still running, and the worst ending so far.
    open_tasks: int = 0
    ending: Ending = Ending.RESULT
    #: Each task's outcome, for later frames of the same scene that wait to repeat it.
    outcomes: dict[str, asyncio.Future[SceneOutcome]] = field(default_factory=dict)


@dataclass
class CameraState:
    """Everything the bridge keeps about one camera between its frames."""

    config: CameraConfig
    counters: Counters = field(default_factory=Counters)
    #: Number of the latest frame to arrive, and of the latest frame submitted to the models.
    arrived: int = 0
    submitted: int = 0
    #: Frames being fetched, waiting for a decode slot or decoded right now.
    undecoded: int = 0
    #: Frames being decoded right now (``intake.MAX_DECODING`` at most), and the one frame
    #: waiting for a slot: its number and the future that says whether it gets one.
    decoding: int = 0
    waiting: tuple[int, asyncio.Future[bool]] | None = None
    #: The frame id of the scene last analysed, and its tasks' outcomes (only the outcomes:
    #: the analysed frame's image and bytes are not kept alive for this).
    scene_frame: str | None = None
    scene_outcomes: dict[str, asyncio.Future[SceneOutcome]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The camera's name."""
        return self.config.name


class Accounts:
    """The cameras' states, and the one place that decides when a frame has ended."""

    def __init__(self, cameras: dict[str, CameraConfig]) -> None:
        self.cameras = {name: CameraState(cam) for name, cam in cameras.items()}
        #: Cameras a reload removed, kept until their frames in flight have ended.
        self.retired: dict[str, CameraState] = {}
        #: Set when counters changed; the publisher sends the info a little later.
        self.changed = asyncio.Event()
        #: Latencies, errors by code and last frames (``/metrics``, the status page).
        self.telemetry = Telemetry()

    def state(self, camera: str) -> CameraState:
        """A camera's state, also after a reload removed it (its frames in flight still end)."""
        return self.cameras.get(camera) or self.retired[camera]

    def reconfigure(self, cameras: dict[str, CameraConfig]) -> None:
        """A reload's cameras: new ones start, changed ones keep their counters, removed retire."""
        for name in set(self.cameras) - set(cameras):
            self.retired[name] = self.cameras.pop(name)
        for name, config in cameras.items():
            state = self.cameras.get(name) or self.retired.pop(name, None)
            if state is None:
                state = CameraState(config)
            state.config = config
            self.cameras[name] = state

    def end(self, work: FrameWork, ending: Ending) -> None:
        """One of the frame's tasks (or the frame as a whole) ended; count the frame once.

        Requests are not counted: they belong to no camera's stream of frames.
        """
        work.ending = max(work.ending, ending)
        work.open_tasks -= 1
        if work.open_tasks > 0 or work.request is not None:
            return
        self.state(work.camera.name).counters.count(work.ending)
        self.changed.set()

    def counters(self) -> dict[str, dict[str, Any]]:
        """Every camera's counters, as published."""
        return {name: state.counters.as_dict() for name, state in self.cameras.items()}

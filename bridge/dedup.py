"""Frame deduplication: a static camera that keeps sending the same scene costs no model time.

Cameras resend the same view all the time (Frigate snapshots, doorbells on a timer), and no two
of those frames have the same bytes: sensor noise and JPEG re-encoding change every pixel a
little.  So identical bytes are only the cheap first check; the real one compares a small,
blurred *scene signature* of the frame with the signature of the last frame of that camera that
went to the models.

The signature is the frame shrunk to a 64-pixel-wide RGB thumbnail by area averaging (each
thumbnail pixel averages hundreds of frame pixels, which cancels sensor noise and JPEG block
artefacts).  The thumbnail is cut into cells of 4x4 thumbnail pixels (1/144 of a 16:9 frame
each), and the score is the *largest* per-cell mean absolute difference, as a fraction of full
brightness.  Taking the largest cell rather than the whole-frame mean is what keeps small real
changes: a parcel covering 5% of the frame changes a few cells completely, which a whole-frame
mean would dilute twenty-fold into the noise.

Comparing against the last *analysed* frame, not the last received one, means a slow drift
(dusk falling) is still captioned once it adds up, instead of hiding behind many small steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from PIL import Image

#: Width of the thumbnail the signature is made of; its height follows the frame's shape.
SIGNATURE_WIDTH = 64
#: Side of one comparison cell, in thumbnail pixels.
CELL = 4
#: Default score (largest cell's mean absolute difference, 0..1) above which a frame is new.
#: Sensor noise and re-encoding stay below 0.01; a real object covering a cell is 0.1 and up.
DEFAULT_THRESHOLD = 0.03

Signature = NDArray[np.float32]


def scene_signature(image: Image.Image) -> Signature:
    """The frame's scene signature: an area-averaged RGB thumbnail, values 0..1.

    Pure and thread-safe: the bridge computes it in a worker thread, off the event loop.
    """
    width, height = image.size
    thumb_height = max(CELL, round(SIGNATURE_WIDTH * height / max(width, 1) / CELL) * CELL)
    size = (SIGNATURE_WIDTH, thumb_height)
    # reduce() first: an integer box shrink is far cheaper than resampling a big frame.  Where
    # the frame is a whole multiple of the thumbnail (16:9 frames, decoded at a power-of-two
    # scale), that one shrink is the whole thumbnail.
    exact = width // SIGNATURE_WIDTH
    if exact > 1 and (width, height) == (SIGNATURE_WIDTH * exact, thumb_height * exact):
        thumb = image.reduce(exact).convert("RGB")
    else:
        factor = max(1, min(width // (SIGNATURE_WIDTH * 2), height // (thumb_height * 2)))
        small = image.reduce(factor) if factor > 1 else image
        thumb = small.convert("RGB").resize(size, Image.Resampling.BOX)
    return np.asarray(thumb, dtype=np.float32) / 255.0


@dataclass(frozen=True)
class Signed:
    """A frame's signature, scored against the camera's remembered scene of the moment.

    The decode thread scores it right after making it, while the arrays are still in its
    caches; the event loop takes that score when the camera's scene is still the one it was
    scored against, and scores again otherwise.
    """

    signature: Signature
    scored_against: Signature | None = None
    score: float = 1.0


def signed(image: Image.Image, previous: Signature | None) -> Signed:
    """The frame's signature, scored against ``previous`` (the camera's scene, if any)."""
    signature = scene_signature(image)
    if previous is None:
        return Signed(signature)
    return Signed(signature, previous, change_score(previous, signature))


def change_score(previous: Signature, current: Signature) -> float:
    """How much the scene changed: the largest cell's mean absolute difference (0..1).

    Signatures of different shapes (the camera changed resolution or aspect) count as a
    complete change.
    """
    if previous.shape != current.shape:
        return 1.0
    height, width, channels = current.shape
    rows, columns = height // CELL, width // CELL
    if not rows or not columns:
        return 0.0
    diff = np.abs(current - previous)[: rows * CELL, : columns * CELL]
    # One sum per cell and colour channel: the cell's rows first, then its columns, each over
    # a contiguous axis (a mean over two strided axes at once costs three times as much).
    per_row = diff.reshape(rows, CELL, columns, CELL * channels).sum(axis=1)
    per_cell = per_row.reshape(rows, columns, CELL, channels).sum(axis=2)
    return float(per_cell.max()) / (CELL * CELL)


#: Tasks whose results change with small details (a meter's last digit, a line of text): for
#: cameras with one of these, only identical bytes are skipped unless a threshold is configured.
DETAIL_TASKS = frozenset({"ocr", "meter"})


def threshold_for(tasks: tuple[str, ...], configured: float | None) -> float | None:
    """The scene-change threshold a camera uses; ``None``: skip identical bytes only.

    A caption describes the whole scene, so the default threshold suits it.  A meter's changed
    digit can cover a thousandth of the frame, below what any noise-proof threshold sees, so
    OCR and meter cameras get perceptual dedup only when a threshold is set for them.
    """
    if configured is not None:
        return configured
    if DETAIL_TASKS.intersection(tasks):
        return None
    return DEFAULT_THRESHOLD


@dataclass
class SceneMemory:
    """The signature of the last analysed frame of each camera, and the decision it drives."""

    default_threshold: float = DEFAULT_THRESHOLD
    _last: dict[str, Signature] = field(default_factory=dict)

    def is_new_scene(
        self, camera: str, signature: Signature, threshold: float | None = None
    ) -> bool:
        """Whether this frame differs enough from the last analysed one to be analysed.

        The first frame of a camera is always new.  This does not remember the frame: call
        ``remember`` once it really goes to the models.
        """
        return self.is_new(camera, Signed(signature), threshold)

    def is_new(self, camera: str, frame: Signed, threshold: float | None = None) -> bool:
        """``is_new_scene`` for a signature scored in the decode thread (see ``Signed``)."""
        previous = self._last.get(camera)
        if previous is None:
            return True
        if frame.scored_against is previous:
            score = frame.score
        else:
            score = change_score(previous, frame.signature)
        limit = self.default_threshold if threshold is None else threshold
        return score > limit

    def last(self, camera: str) -> Signature | None:
        """The signature of the camera's last analysed frame, if it has one."""
        return self._last.get(camera)

    def remember(self, camera: str, signature: Signature) -> None:
        """Record a frame that went to the models: later frames are compared with it."""
        self._last[camera] = signature

    def forget(self, camera: str) -> None:
        """Compare the camera's next frame with nothing (it will be analysed)."""
        self._last.pop(camera, None)


__all__ = [
    "DEFAULT_THRESHOLD",
    "SceneMemory",
    "Signature",
    "Signed",
    "change_score",
    "scene_signature",
    "signed",
    "threshold_for",
]

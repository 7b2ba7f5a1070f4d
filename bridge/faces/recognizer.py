"""Name the faces of a picture from the enrolled people, and check photos offered for enrolment.

A face is named when its nearest enrolled descriptor is within the person's threshold (their own,
else the default); otherwise it is ``unknown``.  Faces smaller than ``min_face`` pixels are left
out rather than guessed at.  Both the CLI and the ``faces`` engine use this one class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from bridge.config import FacesConfig
from bridge.faces.db import UNKNOWN, FaceDb, FaceDbError
from bridge.faces.describer import FaceDescriber, FoundFace

#: Default matching threshold (Euclidean distance between descriptors), chosen in bench/RESULTS.md.
DEFAULT_THRESHOLD: float = FacesConfig.model_fields["threshold"].default
#: Faces below this many pixels (box side) are ignored in frames.
DEFAULT_MIN_FACE: int = FacesConfig.model_fields["min_face"].default
#: Enrolment photos need a larger face: one poor descriptor would name strangers later.
ENROL_MIN_FACE = 80
#: Enrolment describes each photo's face this many extra times, jittered, and averages
#: (10 changed nothing in bench/RESULTS.md, so none).
ENROL_JITTERS = 0
#: Camera originals (4000x3000) are scaled to this long side before detection: their faces stay
#: large, and detecting at full size with upsampling would take tens of seconds.
ENROL_MAX_SIDE = 1600


@dataclass(frozen=True)
class NamedFace:
    """One face of a result: who (or ``unknown``), how close, and where."""

    name: str
    distance: float | None
    box: tuple[int, int, int, int]

    def as_dict(self) -> dict[str, Any]:
        """The result's ``faces`` entry (protocol: docs/protocol.md)."""
        distance = None if self.distance is None else round(self.distance, 3)
        return {"name": self.name, "distance": distance, "box": list(self.box)}


def describe_people(faces: list[NamedFace]) -> str:
    """The result's text: 'Anna and someone', 'Anna, Ben and 2 people I don't know', 'nobody'."""
    names = list(dict.fromkeys(f.name for f in faces if f.name != UNKNOWN))
    strangers = sum(1 for f in faces if f.name == UNKNOWN)
    if strangers == 1:
        names.append("someone")
    elif strangers > 1:
        names.append(f"{strangers} people I don't know")
    if not names:
        return "nobody"
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


class Recognizer:
    """The describer plus the database, with the thresholds that decide a name."""

    def __init__(
        self,
        describer: FaceDescriber,
        db: FaceDb,
        threshold: float = DEFAULT_THRESHOLD,
        min_face: int = DEFAULT_MIN_FACE,
        max_side: int | None = None,
    ) -> None:
        self.describer = describer
        self.db = db
        self.threshold = threshold
        self.min_face = min_face
        self.max_side = max_side

    def recognise(self, image: Image.Image) -> tuple[list[NamedFace], int]:
        """The named faces (left to right) and how many faces were too small to judge."""
        found = self.describer.find(image, self.max_side)
        usable = [f for f in found if f.size >= self.min_face]
        return [self._name(face) for face in usable], len(found) - len(usable)

    def _name(self, face: FoundFace) -> NamedFace:
        owners, matrix = self.db.matrix()
        if not owners:
            return NamedFace(UNKNOWN, None, face.box)
        distances = np.linalg.norm(matrix - face.descriptor, axis=1)
        best = int(np.argmin(distances))
        name, distance = owners[best], float(distances[best])
        person = self.db.people[name]
        limit = person.threshold if person.threshold is not None else self.threshold
        return NamedFace(name if distance <= limit else UNKNOWN, distance, face.box)

    def enrolment_descriptor(self, image: Image.Image) -> np.ndarray[Any, Any]:
        """The descriptor of a photo's one face, or a ``FaceDbError`` saying why it is refused."""
        found = self.describer.find(image, ENROL_MAX_SIDE, jitters=ENROL_JITTERS)
        if not found:
            raise FaceDbError("no_face", "no face found; use a photo facing the camera")
        large = [f for f in found if f.size >= ENROL_MIN_FACE]
        if len(large) > 1:
            raise FaceDbError(
                "several_faces", f"{len(large)} faces found; use a photo of this person alone"
            )
        if not large:
            biggest = max(f.size for f in found)
            raise FaceDbError(
                "face_too_small",
                f"the face is {biggest} px; at least {ENROL_MIN_FACE} px is needed "
                "(use a closer or larger photo)",
            )
        return large[0].descriptor

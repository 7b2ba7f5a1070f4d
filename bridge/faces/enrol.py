"""Enrolment, shared by ``faces add`` on the command line and ``<base>/faces/add`` over MQTT.

Each photo is judged on its own: one face of at least ``ENROL_MIN_FACE`` pixels is accepted, and
only its descriptor is kept; a photo with no face, several faces or a face too small is refused
with the reason.  The photos themselves are never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bridge.errors import FrameError
from bridge.faces.db import FaceDbError, check_name
from bridge.faces.recognizer import Recognizer
from bridge.frames import decode_image

#: Enrolment photos may be large camera originals; bigger ones are refused, not decoded.
MAX_PIXELS = 40_000_000
#: A descriptor this close to someone else's is worth a warning (a look-alike, or a wrong name).
LOOKALIKE = 0.45


@dataclass
class EnrolReport:
    """What an enrolment did: how many photos were added, and why the others were refused."""

    name: str
    added: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    photos_total: int = 0

    @property
    def ok(self) -> bool:
        """At least one photo was added."""
        return self.added > 0

    def as_dict(self) -> dict[str, Any]:
        """The reply's payload (MQTT) and the CLI's JSON."""
        return {
            "name": self.name,
            "ok": self.ok,
            "added": self.added,
            "photos_total": self.photos_total,
            "refused": self.refused,
            "warnings": self.warnings,
        }


def enrol_photos(
    recognizer: Recognizer,
    name: str,
    photos: list[tuple[str, bytes]] | list[bytes],
    threshold: float | None = None,
) -> EnrolReport:
    """Add every acceptable photo's descriptor to ``name``; list the refused ones with reasons."""
    clean = check_name(name)
    report = EnrolReport(clean)
    accepted = []
    for index, item in enumerate(photos):
        label, data = item if isinstance(item, tuple) else (f"photo {index + 1}", item)
        try:
            image = decode_image(data, MAX_PIXELS)
            descriptor = recognizer.enrolment_descriptor(image)
        except FrameError as err:
            report.refused.append({"photo": label, "code": err.code, "reason": err.detail})
            continue
        except FaceDbError as err:
            report.refused.append({"photo": label, "code": err.code, "reason": err.detail})
            continue
        owners, matrix = recognizer.db.matrix()
        if owners:
            distances = np.linalg.norm(matrix - descriptor, axis=1)
            best = int(np.argmin(distances))
            if owners[best].casefold() != clean.casefold() and distances[best] < LOOKALIKE:
                report.warnings.append(
                    f"{label}: very close to {owners[best]} ({distances[best]:.2f}); "
                    "check that it is the right person"
                )
        accepted.append(descriptor)
    if accepted:
        person = recognizer.db.add(clean, accepted, threshold)
        report.added = len(accepted)
        report.photos_total = len(person.descriptors)
    return report

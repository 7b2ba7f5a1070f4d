"""The enrolled people: names and face descriptors (128 numbers a photo), never the photos.

One JSON file, by default ``faces.json`` next to the configuration, written atomically and readable
only by its owner (descriptors are biometric data: docs/faces.md).  Strangers are never written
here; only ``faces add`` (CLI, MQTT, Home Assistant) adds to it.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bridge.errors import BridgeError

FORMAT = "image-to-text faces"
VERSION = 1
DESCRIPTOR_SIZE = 128
MAX_NAME = 64
#: What results call a face nobody enrolled; no person may be enrolled under it.
UNKNOWN = "unknown"


class FaceDbError(BridgeError):
    """A refused enrolment or an unreadable face database; ``code`` says which, for replies."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass
class Person:
    """One enrolled person: a descriptor per accepted photo, and an optional own threshold."""

    name: str
    descriptors: list[list[float]] = field(default_factory=list)
    threshold: float | None = None


def check_name(name: str) -> str:
    """The name as stored (trimmed), or ``FaceDbError('bad_name')`` saying what is wrong."""
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME:
        raise FaceDbError("bad_name", f"a name is 1 to {MAX_NAME} characters, got {name!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in clean):
        raise FaceDbError("bad_name", f"a name has no control characters, got {name!r}")
    if clean.lower() == UNKNOWN:
        raise FaceDbError("bad_name", f"{UNKNOWN!r} is what strangers are called; pick a name")
    return clean


def check_threshold(value: float) -> float:
    """A distance threshold must lie strictly between 0 and 1 to mean anything for dlib."""
    if not 0 < value < 1:
        raise FaceDbError("bad_threshold", f"a threshold is between 0 and 1, got {value}")
    return value


class FaceDb:
    """The face database file, loaded into memory; every change is saved at once."""

    def __init__(self, path: Path | None) -> None:
        """``path=None`` keeps the database in memory only (tests, the demo)."""
        self.path = path
        self._lock = threading.Lock()
        self.people: dict[str, Person] = {}
        self._mtime: float | None = None
        self.reload()

    def reload(self) -> None:
        """Read the file again (a ``faces add`` from the command line while the bridge runs)."""
        if self.path is None or not self.path.exists():
            self.people = {} if self.path is not None else self.people
            self._mtime = None
            return
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise FaceDbError("bad_database", f"{self.path}: cannot read ({err})") from err
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise FaceDbError("bad_database", f"{self.path}: not an image-to-text face database")
        people: dict[str, Person] = {}
        for name, entry in dict(raw.get("people", {})).items():
            vectors = entry.get("descriptors", [])
            if not all(isinstance(v, list) and len(v) == DESCRIPTOR_SIZE for v in vectors):
                raise FaceDbError("bad_database", f"{self.path}: {name}: bad descriptors")
            people[name] = Person(name, vectors, entry.get("threshold"))
        self.people = people
        self._mtime = self.path.stat().st_mtime

    def reload_if_changed(self) -> None:
        """Pick up changes made by another process, cheaply (one ``stat``)."""
        if self.path is None:
            return
        mtime = self.path.stat().st_mtime if self.path.exists() else None
        if mtime != self._mtime:
            self.reload()

    def save(self) -> None:
        """Write atomically (temporary file, then rename), owner-only permissions."""
        if self.path is None:
            return
        data: dict[str, Any] = {
            "format": FORMAT,
            "v": VERSION,
            "note": "face descriptors (biometric data); delete this file to forget everyone",
            "people": {
                p.name: {"threshold": p.threshold, "descriptors": p.descriptors}
                for p in self.people.values()
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".faces-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
            Path(tmp).chmod(0o600)
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._mtime = self.path.stat().st_mtime

    def add(
        self, name: str, descriptors: list[np.ndarray[Any, Any]], threshold: float | None = None
    ) -> Person:
        """Add photos' descriptors to a person (created if new)."""
        clean = check_name(name)
        with self._lock:
            person = self._find(clean) or Person(clean)
            person.descriptors.extend([round(float(x), 6) for x in d] for d in descriptors)
            if threshold is not None:
                person.threshold = check_threshold(threshold)
            self.people[person.name] = person
            self.save()
            return person

    def remove(self, name: str) -> None:
        """Forget a person and every descriptor of theirs."""
        with self._lock:
            person = self._require(name)
            del self.people[person.name]
            self.save()

    def rename(self, old: str, new: str) -> None:
        """Give an enrolled person another name (the descriptors stay)."""
        clean = check_name(new)
        with self._lock:
            person = self._require(old)
            other = self._find(clean)
            if other is not None and other is not person:
                raise FaceDbError("name_taken", f"{other.name!r} is already enrolled")
            del self.people[person.name]
            person.name = clean
            self.people[clean] = person
            self.save()

    def set_threshold(self, name: str, threshold: float | None) -> Person:
        """Give a person their own threshold, or ``None``: the default again."""
        with self._lock:
            person = self._require(name)
            person.threshold = None if threshold is None else check_threshold(threshold)
            self.save()
            return person

    def _find(self, name: str) -> Person | None:
        """Names are matched ignoring case, so ``anna`` and ``Anna`` are one person."""
        key = name.strip().casefold()
        return next((p for p in self.people.values() if p.name.casefold() == key), None)

    def _require(self, name: str) -> Person:
        person = self._find(name)
        if person is None:
            known = ", ".join(sorted(self.people)) or "nobody is enrolled"
            raise FaceDbError("unknown_person", f"{name!r} is not enrolled ({known})")
        return person

    def matrix(self) -> tuple[list[str], np.ndarray[Any, np.dtype[np.float64]]]:
        """Every descriptor as one array, with the owner's name per row (for matching).

        Taken under the lock: an MQTT ``faces/remove`` may change the people meanwhile.
        """
        with self._lock:
            owners = [p.name for p in self.people.values() for _ in p.descriptors]
            rows = [d for p in self.people.values() for d in p.descriptors]
        array = np.asarray(rows, dtype=np.float64).reshape(len(rows), DESCRIPTOR_SIZE)
        return owners, array

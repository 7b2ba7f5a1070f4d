"""The integration's side of MQTT protocol v1 (docs/protocol.md): topics and payload checks.

This is the one module that knows the shape of the bridge's payloads. Each ``parse_*`` function
takes the raw MQTT payload and returns the decoded JSON object, or raises :class:`ProtocolError`
saying what is wrong, so that the hub can log one line and ignore the message. Unknown fields are
kept (new fields are not a new version). What a message cannot do without is required (a result's
``camera``, ``task`` and ``text``; a meter result's numeric ``value``); the other known fields
are optional, but one that is present with the wrong type is an error. A payload without ``"v"``
is read as version 1 (the brief's own examples leave it out); another version is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

PROTOCOL_VERSION: Final = 1

STATE_ONLINE: Final = "online"
STATE_OFFLINE: Final = "offline"

#: The one camera-name rule (tests/fixtures/protocol/camera_names.json, checked by the tests):
#: one MQTT topic level of 1 to 64 characters, without separators, wildcards, whitespace or
#: control characters.
CAMERA_NAME_PATTERN: Final = "^[^/+#\\s\\u0000-\\u001f\\u007f]{1,64}$"
#: The bridge's own topics under the base topic: never a camera, whatever else matches.
RESERVED_CAMERA_NAMES: Final = frozenset({"bridge", "bridges", "request", "faces"})
_CAMERA_NAME = re.compile(CAMERA_NAME_PATTERN)

_RESULT_STRINGS: Final = ("camera", "task", "text")
_RESULT_OPTIONAL_STRINGS: Final = (
    "frame_id",
    "model",
    "captured_at",
    "published_at",
    "bridge_id",
)
_ERROR_STRINGS: Final = ("camera", "error")
_ERROR_OPTIONAL_STRINGS: Final = ("detail", "task", "model", "bridge_id")
_INFO_OPTIONAL_STRINGS: Final = ("bridge_id", "site_id", "share", "version", "base_topic")


def is_camera_name(name: object) -> bool:
    """Whether ``name`` can be a camera of the bridge (the protocol's one rule)."""
    return (
        isinstance(name, str)
        and name not in RESERVED_CAMERA_NAMES
        and _CAMERA_NAME.fullmatch(name) is not None
    )


class ProtocolError(ValueError):
    """A payload that does not follow protocol v1; the message says why."""


@dataclass(frozen=True, slots=True)
class Topics:
    """The bridge's topics under one base topic."""

    base: str

    @property
    def state(self) -> str:
        """Retained ``online``/``offline``; ``offline`` is the bridge's last will."""
        return f"{self.base}/bridge/state"

    @property
    def info(self) -> str:
        """Retained info JSON: cameras, models, counters."""
        return f"{self.base}/bridge/info"

    @property
    def member_states(self) -> str:
        """Subscription to every bridge's own retained state: ``<base>/bridges/<id>/state``."""
        return f"{self.base}/bridges/+/state"

    @property
    def member_infos(self) -> str:
        """Subscription to every bridge's own retained info: ``<base>/bridges/<id>/info``."""
        return f"{self.base}/bridges/+/info"

    def member_of(self, topic: str) -> str | None:
        """The ``bridge_id`` of a ``<base>/bridges/<id>/...`` topic; None for any other topic."""
        levels = self.split(topic)
        if levels is None or len(levels) != 3 or levels[0] != "bridges" or not levels[1]:
            return None
        return levels[1]

    def result(self, camera: str, task: str) -> str:
        """Retained result JSON of one camera and task."""
        return f"{self.base}/{camera}/{task}"

    def image(self, camera: str, task: str) -> str:
        """Retained JPEG of the frame a result was made from."""
        return f"{self.base}/{camera}/{task}/image"

    def error(self, camera: str) -> str:
        """Error events of one camera (not retained)."""
        return f"{self.base}/{camera}/error"

    def split(self, topic: str) -> list[str] | None:
        """The topic's levels below the base topic, or None when it is not under it."""
        prefix = f"{self.base}/"
        if not topic.startswith(prefix):
            return None
        return topic[len(prefix) :].split("/")


def _decode_object(payload: bytes | bytearray | str) -> dict[str, Any]:
    """Decode a JSON object of protocol version 1."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise ProtocolError(f"not JSON ({err})") from err
    if not isinstance(data, dict):
        raise ProtocolError("not a JSON object")
    version = data.get("v", PROTOCOL_VERSION)
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise ProtocolError(f"unsupported protocol version {version!r} (expected 1)")
    return data


def _require_strings(data: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if not isinstance(data.get(key), str):
            raise ProtocolError(f"field {key!r} missing or not a string")


def _optional_strings(data: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ProtocolError(f"field {key!r} is not a string")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_state(payload: bytes | bytearray | str) -> bool:
    """``online`` → True, ``offline`` → False; anything else is an error."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes | bytearray) else payload
    text = text.strip()
    if text == STATE_ONLINE:
        return True
    if text == STATE_OFFLINE:
        return False
    raise ProtocolError(f"bridge state {text[:40]!r} is neither 'online' nor 'offline'")


def parse_result(
    payload: bytes | bytearray | str, *, camera: str | None = None, task: str | None = None
) -> dict[str, Any]:
    """A result: caption, OCR (with ``lines``), meter (a numeric ``value``) or faces (``faces``).

    With ``camera`` and ``task`` (from the topic it came on) the payload must name the same ones.
    """
    data = _decode_object(payload)
    _require_strings(data, _RESULT_STRINGS)
    _optional_strings(data, _RESULT_OPTIONAL_STRINGS)
    if camera is not None and task is not None and (data["camera"], data["task"]) != (camera, task):
        raise ProtocolError(f"payload is for {data['camera']}/{data['task']}, not {camera}/{task}")
    if data.get("latency_ms") is not None and not _is_number(data["latency_ms"]):
        raise ProtocolError("field 'latency_ms' is not a number")
    if "newest" in data and not isinstance(data["newest"], bool):
        raise ProtocolError("field 'newest' is not true or false")
    if data["task"] == "meter" and not _is_number(data.get("value")):
        raise ProtocolError("meter result without a numeric 'value'")
    if "lines" in data and not isinstance(data["lines"], list):
        raise ProtocolError("field 'lines' is not a list")
    if data["task"] == "faces":
        _check_faces(data)
    return data


def _check_faces(data: Mapping[str, Any]) -> None:
    """A faces result: ``names`` a list of strings, ``faces`` a list of {name, distance, box}."""
    names = data.get("names", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ProtocolError("field 'names' is not a list of strings")
    faces = data.get("faces", [])
    if not isinstance(faces, list):
        raise ProtocolError("field 'faces' is not a list")
    for face in faces:
        if not isinstance(face, dict) or not isinstance(face.get("name"), str):
            raise ProtocolError("a face without a 'name'")
        distance = face.get("distance")
        if distance is not None and not _is_number(distance):
            raise ProtocolError("a face's 'distance' is not a number")
        box = face.get("box")
        if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
            raise ProtocolError("a face's 'box' is not [x, y, w, h]")


def parse_error(payload: bytes | bytearray | str) -> dict[str, Any]:
    """An error event: a stable ``error`` code, a ``detail`` sentence, the frame's id or null."""
    data = _decode_object(payload)
    _require_strings(data, _ERROR_STRINGS)
    _optional_strings(data, _ERROR_OPTIONAL_STRINGS)
    frame_id = data.get("frame_id")
    if frame_id is not None and not isinstance(frame_id, str):
        raise ProtocolError("field 'frame_id' is neither a string nor null")
    return data


def parse_info(payload: bytes | bytearray | str) -> dict[str, Any]:
    """The bridge's info: every camera with its tasks (and meter settings), and counters.

    ``bridge_id``, ``site_id`` (what unique ids derive from) and ``share`` (the bridge's group,
    or null) are strings when present.
    """
    data = _decode_object(payload)
    _optional_strings(data, _INFO_OPTIONAL_STRINGS)
    cameras = data.get("cameras")
    if not isinstance(cameras, dict):
        raise ProtocolError("field 'cameras' missing or not an object")
    for name, camera in cameras.items():
        if not is_camera_name(name):
            raise ProtocolError(f"{name!r} is not a camera name (one topic level, not reserved)")
        if not isinstance(camera, dict):
            raise ProtocolError(f"camera {name!r} is not an object")
        tasks = camera.get("tasks")
        if not isinstance(tasks, list) or not all(isinstance(task, str) for task in tasks):
            raise ProtocolError(f"camera {name!r} has no list of task names")
        meter = camera.get("meter")
        if meter is not None and not isinstance(meter, dict):
            raise ProtocolError(f"camera {name!r}: 'meter' is not an object")
    counters = data.get("counters", {})
    if not isinstance(counters, dict) or not all(isinstance(c, dict) for c in counters.values()):
        raise ProtocolError("field 'counters' is not an object of objects")
    return data

"""The MQTT protocol between the bridge and everyone else (``docs/protocol.md``, version 1).

This module is the only place in the bridge that knows topic layouts and payload shapes.
The Home Assistant integration has its own mirror of it, and both are tested against the
same example payloads in ``tests/fixtures/protocol/``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.errors import FrameError

PROTOCOL_VERSION = 1
STATE_ONLINE = "online"
STATE_OFFLINE = "offline"

#: The one camera-name rule.  ``tests/fixtures/protocol/camera_names.json`` states it with
#: examples; the bridge's configuration and the integration are both tested against that file.
CAMERA_NAME_RULE = (
    "a camera name is one MQTT topic level: 1 to 64 characters, none of them '/', '+', '#', "
    "whitespace or a control character, and not one of the reserved names ({reserved})"
)
CAMERA_NAME = re.compile("^[^/+#\\s\\u0000-\\u001f\\u007f]{1,64}$")
#: Topic levels under ``<base>`` that belong to the bridge itself.
RESERVED_CAMERA_NAMES = ("bridge", "bridges", "request", "faces")


def camera_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a camera, or ``None`` when it can."""
    if name in RESERVED_CAMERA_NAMES:
        return f"{name!r} is reserved for the bridge's own topics"
    if not CAMERA_NAME.fullmatch(name):
        return CAMERA_NAME_RULE.format(reserved=", ".join(RESERVED_CAMERA_NAMES))
    return None


def slug(name: str) -> str:
    """An id made of a camera name: lower-case ASCII letters, digits and ``_``.

    Topics carry the name as it is; ids that Home Assistant restricts (discovery object ids,
    unique ids) use this.  ``Front-Door`` and ``front_door`` share a slug, so the configuration
    refuses two cameras whose slugs are equal.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_") or "camera"


def now_iso() -> str:
    """UTC timestamp in ISO 8601 with milliseconds, as every payload carries them."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Topics:
    """Every topic the bridge publishes or listens to, derived from the base topic."""

    base: str
    discovery_prefix: str = "homeassistant"

    @property
    def state(self) -> str:
        """Retained online/offline, and the last will."""
        return f"{self.base}/bridge/state"

    @property
    def info(self) -> str:
        """Retained description of the bridge, its cameras and counters."""
        return f"{self.base}/bridge/info"

    def bridge_state(self, bridge_id: str) -> str:
        """Retained online/offline of one bridge of a group, and its last will."""
        return f"{self.base}/bridges/{bridge_id}/state"

    def bridge_info(self, bridge_id: str) -> str:
        """Retained description of one bridge of a group."""
        return f"{self.base}/bridges/{bridge_id}/info"

    @property
    def request(self) -> str:
        """Where on-demand analysis requests arrive."""
        return f"{self.base}/request"

    @property
    def ha_status(self) -> str:
        """Home Assistant's birth/will topic; ``online`` triggers re-announcing."""
        return f"{self.discovery_prefix}/status"

    def result(self, camera: str, task: str) -> str:
        """Retained latest result of one camera's task."""
        return f"{self.base}/{camera}/{task}"

    def image(self, camera: str, task: str) -> str:
        """Retained JPEG of the frame the latest result was made from."""
        return f"{self.base}/{camera}/{task}/image"

    def error(self, camera: str) -> str:
        """Error events of one camera."""
        return f"{self.base}/{camera}/error"

    def meter_set(self, camera: str) -> str:
        """Setting a meter's value by hand."""
        return f"{self.base}/{camera}/meter/set"

    def faces(self, action: str) -> str:
        """Enrolment commands (``add``, ``list``, ``remove``, ``rename``; ``+`` for all)."""
        return f"{self.base}/faces/{action}"

    def camera_of(self, topic: str) -> str | None:
        """The camera level of a topic under the base (``<base>/<camera>/...``), if it is one."""
        prefix = f"{self.base}/"
        if not topic.startswith(prefix):
            return None
        return topic[len(prefix) :].split("/", maxsplit=1)[0]

    def discovery(self, bridge_id: str, camera: str, task: str) -> str:
        """HA MQTT discovery config of one camera's task sensor."""
        return f"{self.discovery_prefix}/sensor/{bridge_id}/{slug(camera)}_{task}/config"


def encode(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the wire form of every JSON payload."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


#: The fields of a result that describe the frame and the run it came from, not what was read:
#: a result repeated for a frame of the same scene gets them anew (``"unchanged": true``).
RESULT_FRAME_FIELDS = frozenset(
    {
        "v",
        "camera",
        "task",
        "text",
        "frame_id",
        "model",
        "latency_ms",
        "captured_at",
        "published_at",
        "id",
        "unchanged",
        "unchanged_since",
        "bridge_id",
        "newest",
    }
)


def build_result(
    *,
    camera: str,
    task: str,
    text: str,
    frame_id: str,
    model: str,
    latency_ms: float,
    captured_at: str,
    extra: dict[str, Any] | None = None,
    request_id: str | None = None,
    bridge_id: str | None = None,
) -> dict[str, Any]:
    """A result event (docs/protocol.md); ``extra`` has task-specific fields (lines, value)."""
    payload: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "camera": camera,
        "task": task,
        "text": text,
        "frame_id": frame_id,
        "model": model,
        "latency_ms": round(latency_ms, 1),
        "captured_at": captured_at,
        "published_at": now_iso(),
    }
    if extra:
        payload.update(extra)
    if request_id is not None:
        payload["id"] = request_id
    if bridge_id is not None:
        payload["bridge_id"] = bridge_id
    return payload


def build_error(
    *,
    camera: str,
    frame_id: str | None,
    code: str,
    detail: str,
    task: str | None = None,
    model: str | None = None,
    extra: dict[str, Any] | None = None,
    request_id: str | None = None,
    bridge_id: str | None = None,
) -> dict[str, Any]:
    """An error event: a stable ``error`` code for automations, ``detail`` for people."""
    payload: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "camera": camera,
        "frame_id": frame_id,
        "error": code,
        "detail": detail,
        "published_at": now_iso(),
    }
    if task is not None:
        payload["task"] = task
    if model is not None:
        payload["model"] = model
    if extra:
        payload.update(extra)
    if request_id is not None:
        payload["id"] = request_id
    if bridge_id is not None:
        payload["bridge_id"] = bridge_id
    return payload


@dataclass(frozen=True)
class Request:
    """An on-demand analysis asked for on ``<base>/request``."""

    id: str
    reply_to: str
    task: str
    image: bytes | None
    url: str | None
    camera: str
    prompt: str | None


def parse_request(payload: bytes) -> Request:
    """Validate a request; ``FrameError('bad_request', ...)`` says what is wrong with it."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FrameError("bad_request", f"request is not JSON ({err})") from err
    if not isinstance(data, dict):
        raise FrameError("bad_request", "request must be a JSON object")
    for key in ("id", "reply_to", "task"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise FrameError("bad_request", f"request needs a non-empty string {key!r}")
    reply_to = data["reply_to"]
    if any(c in reply_to for c in "#+"):
        raise FrameError("bad_request", "reply_to must be a topic without wildcards")
    image: bytes | None = None
    url = data.get("url")
    if isinstance(data.get("image"), str):
        image = decode_base64(data["image"])
    elif not isinstance(url, str):
        raise FrameError("bad_request", "request needs 'image' (base64) or 'url'")
    camera = data.get("camera") or "request"
    prompt = data.get("prompt")
    return Request(
        id=data["id"],
        reply_to=reply_to,
        task=data["task"],
        image=image,
        url=url if image is None else None,
        camera=str(camera),
        prompt=prompt if isinstance(prompt, str) and prompt else None,
    )


def decode_base64(text: str) -> bytes:
    """Decode base64 (a ``data:`` URL prefix is allowed); ``FrameError('bad_base64')`` if not."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise FrameError("bad_base64", f"the image is not valid base64 ({err})") from err


def build_info(
    *,
    version: str,
    bridge_id: str,
    base_topic: str,
    cameras: dict[str, dict[str, Any]],
    models: dict[str, dict[str, Any]],
    counters: dict[str, dict[str, Any]],
    started_at: str,
    site_id: str | None = None,
    share: str | None = None,
) -> dict[str, Any]:
    """The retained bridge description Home Assistant builds its entities from.

    ``site_id`` and ``share`` are the group fields of ``<base>/bridges/<bridge_id>/info``; the
    single-bridge ``<base>/bridge/info`` stays as it was (without them).
    """
    group: dict[str, Any] = {} if site_id is None else {"site_id": site_id, "share": share}
    return {
        "v": PROTOCOL_VERSION,
        "version": version,
        "bridge_id": bridge_id,
        **group,
        "base_topic": base_topic,
        "cameras": cameras,
        "models": models,
        "counters": counters,
        "started_at": started_at,
        "published_at": now_iso(),
    }

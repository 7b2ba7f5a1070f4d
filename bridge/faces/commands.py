"""Enrolment over MQTT: ``<base>/faces/add`` (and ``list``, ``remove``, ``rename``).

A command is JSON ``{"id", "reply_to", ...}``; the answer goes to ``reply_to`` only, never to a
retained or shared topic, and never carries photos or crops: ``add`` answers with counts and the
reasons photos were refused.  Commands are only listened to when a camera runs the ``faces``
task (docs/faces.md, docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from bridge.errors import BridgeError, FrameError
from bridge.faces.db import FaceDb, FaceDbError
from bridge.faces.enrol import EnrolReport
from bridge.protocol import PROTOCOL_VERSION, Topics, decode_base64
from bridge.scheduler import ModelWorker

_LOGGER = logging.getLogger(__name__)
ACTIONS = ("add", "list", "remove", "rename")
#: At most this many photos in one ``add`` (2-5 are recommended).
MAX_PHOTOS = 10


class Enroller(Protocol):
    """What a command needs of the faces engine (``Capabilities.enrols_faces``)."""

    def enrol(self, name: str, photos: list[bytes], threshold: float | None = None) -> EnrolReport:
        """Enrol from photo bytes."""

    def database(self) -> FaceDb:
        """The loaded face database."""


Publish = Callable[[str, bytes], Awaitable[Any]]


class Enrolment:
    """The bridge's handler of ``<base>/faces/<action>`` (``routing.Route.FACES``)."""

    def __init__(
        self, workers: Mapping[str, ModelWorker], max_bytes: int, bridge_id: str | None = None
    ) -> None:
        self.workers = workers
        self.max_bytes = max_bytes
        #: Every bridge of a share group replies to a command: each reply says whose it is.
        self.bridge_id = bridge_id

    def enroller(self) -> Enroller | None:
        """The loaded engine that enrols people, if there is one."""
        worker = self.workers.get("faces")
        if worker is None or not worker.loaded.is_set() or worker.error is not None:
            return None
        return worker.engine if worker.engine.capabilities.enrols_faces else None

    async def handle(self, action: str, payload: bytes, publish: Publish) -> None:
        """Answer one command on its ``reply_to``; a reply that cannot be sent is logged."""
        try:
            await answer(
                self.enroller(), action, payload, self.max_bytes, publish, bridge_id=self.bridge_id
            )
        except BridgeError as err:
            _LOGGER.warning("could not answer a faces/%s command: %s", action, err)


def topic_action(base: str, topic: str) -> str | None:
    """``<base>/faces/add`` -> ``add``; ``None`` for any other topic."""
    prefix = Topics(base).faces("")
    if not topic.startswith(prefix):
        return None
    return topic[len(prefix) :]


def parse_command(payload: bytes) -> dict[str, Any]:
    """The command's JSON with a usable ``id`` and ``reply_to``; else ``FrameError``."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FrameError("bad_request", f"the command is not JSON ({err})") from err
    if not isinstance(data, dict):
        raise FrameError("bad_request", "the command must be a JSON object")
    for key in ("id", "reply_to"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise FrameError("bad_request", f"the command needs a non-empty string {key!r}")
    if any(c in data["reply_to"] for c in "#+"):
        raise FrameError("bad_request", "reply_to must be a topic without wildcards")
    return data


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FaceDbError("bad_request", f"{key!r} must be a non-empty string")
    return value


def run_command(
    engine: Enroller, action: str, data: dict[str, Any], max_bytes: int
) -> dict[str, Any]:
    """Carry out one command (blocking: call it from a worker thread); the reply's payload."""
    reply: dict[str, Any] = {"v": PROTOCOL_VERSION, "id": data["id"], "action": action}
    try:
        reply.update(_dispatch(engine, action, data, max_bytes))
    except (FaceDbError, FrameError) as err:
        reply.update(ok=False, error=err.code, detail=err.detail)
    return reply


def _dispatch(
    engine: Enroller, action: str, data: dict[str, Any], max_bytes: int
) -> dict[str, Any]:
    if action == "add":
        report = _add(engine, data, max_bytes).as_dict()
        if not report["ok"]:
            report.update(error="no_photo_added", detail="no photo could be used")
        return report
    if action not in ACTIONS:
        raise FaceDbError("unknown_action", f"expected one of {', '.join(ACTIONS)}")
    db = engine.database()
    db.reload_if_changed()
    if action == "list":
        people = sorted(db.people.values(), key=lambda p: p.name.casefold())
        listed = [
            {"name": p.name, "photos": len(p.descriptors), "threshold": p.threshold} for p in people
        ]
        return {"ok": True, "people": listed}
    if action == "remove":
        db.remove(_text(data, "name"))
        return {"ok": True, "name": data["name"]}
    db.rename(_text(data, "name"), _text(data, "new_name"))
    return {"ok": True, "name": data["new_name"].strip()}


def _add(engine: Enroller, data: dict[str, Any], max_bytes: int) -> EnrolReport:
    images = data.get("images")
    if not isinstance(images, list) or not images or not all(isinstance(i, str) for i in images):
        raise FaceDbError("bad_request", "'images' must be a list of base64 photos")
    if len(images) > MAX_PHOTOS:
        raise FaceDbError("bad_request", f"at most {MAX_PHOTOS} photos at a time")
    photos = [decode_base64(i) for i in images]
    if any(len(p) > max_bytes for p in photos):
        raise FaceDbError("too_large", f"a photo is over the {max_bytes} byte limit")
    threshold = data.get("threshold")
    if threshold is not None and (not isinstance(threshold, int | float) or threshold is True):
        raise FaceDbError("bad_threshold", "'threshold' must be a number")
    return engine.enrol(_text(data, "name"), photos, threshold)


async def answer(
    engine: Enroller | None,
    action: str,
    payload: bytes,
    max_bytes: int,
    publish: Publish,
    *,
    bridge_id: str | None = None,
) -> None:
    """Parse, run (in a thread: dlib is slow) and answer one command on its ``reply_to``."""
    try:
        data = parse_command(payload)
    except FrameError as err:
        _LOGGER.warning("ignored a faces/%s command: %s", action, err.detail)
        return
    if engine is None:
        reply = {
            "v": PROTOCOL_VERSION,
            "id": data["id"],
            "action": action,
            "ok": False,
            "error": "model_unavailable",
            "detail": "the faces engine is not loaded (see bridge/info)",
        }
    else:
        reply = await asyncio.to_thread(run_command, engine, action, data, max_bytes)
    _LOGGER.info("faces/%s %s: %s", action, data["id"], "ok" if reply["ok"] else reply["error"])
    if bridge_id is not None:
        reply["bridge_id"] = bridge_id
    await publish(data["reply_to"], json.dumps(reply, ensure_ascii=False).encode())

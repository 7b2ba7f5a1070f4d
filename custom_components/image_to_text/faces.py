"""Who is at the door, from the bridge's ``faces`` results (docs/faces.md).

- ``LastPersonSensor``: per camera, the last people the camera saw ("Anna and someone"); names,
  faces and the best distance in its attributes. A frame with nobody does not clear it.
- ``image_to_text_person``: one bus event per face of a new result, ``known`` true with the name,
  or false for a stranger (``name: unknown``); device triggers listen to it.
- ``Visits``: when a name may be *spoken*. Snapshots of one camera less than ``VISIT_SECONDS``
  apart are one visit; a name is offered when two snapshots of the visit agree on it, or one
  alone is clearly below the threshold (``CLEAR_DISTANCE``); otherwise the announcement says
  "someone".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.sensor import SensorEntity
from homeassistant.const import CONF_DEVICE_ID, CONF_DOMAIN, CONF_NAME, CONF_PLATFORM, CONF_TYPE
from homeassistant.core import CALLBACK_TYPE, Event, HassJob, HomeAssistant, callback
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN, MAX_STATE_LENGTH, TASK_FACES, camera_display_name
from .limits import MAX_ATTRIBUTES_BYTES, fit
from .sensor import ResultSensor

if TYPE_CHECKING:
    from .hub import ImageToTextHub

UNKNOWN: Final = "unknown"
EVENT_PERSON: Final = f"{DOMAIN}_person"
TRIGGER_KNOWN_PERSON: Final = "known_person"
TRIGGER_UNKNOWN_PERSON: Final = "unknown_person"
PERSON_TRIGGERS: Final = (TRIGGER_KNOWN_PERSON, TRIGGER_UNKNOWN_PERSON)
#: Snapshots of one camera closer together than this belong to one visit.
VISIT_SECONDS: Final = 60
#: One snapshot alone names a person when its distance is at most this: 0.1 under the bridge's
#: default threshold (0.55), where bench/RESULTS.md saw no stranger.
CLEAR_DISTANCE: Final = 0.45


def known_faces(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The result's faces that carry an enrolled name and a numeric distance."""
    faces = result.get("faces")
    if not isinstance(faces, list):
        return []
    return [
        face
        for face in faces
        if isinstance(face, dict)
        and isinstance(face.get("name"), str)
        and face["name"] != UNKNOWN
        and isinstance(face.get("distance"), int | float)
        and not isinstance(face.get("distance"), bool)
    ]


def stranger_count(result: dict[str, Any]) -> int:
    """How many faces of the result nobody enrolled."""
    faces = result.get("faces")
    if not isinstance(faces, list):
        return 0
    return sum(1 for face in faces if isinstance(face, dict) and face.get("name") == UNKNOWN)


@callback
def async_fire_person_events(
    hass: HomeAssistant, result: dict[str, Any], extra: dict[str, Any]
) -> None:
    """One ``image_to_text_person`` event per face of a new faces result."""
    if result.get("task") != TASK_FACES:
        return
    base = {
        "camera": result.get("camera"),
        "frame_id": result.get("frame_id"),
        "captured_at": result.get("captured_at"),
        **extra,
    }
    for face in known_faces(result):
        hass.bus.async_fire(
            EVENT_PERSON,
            {**base, "name": face["name"], "known": True, "distance": face["distance"]},
        )
    for _ in range(stranger_count(result)):
        hass.bus.async_fire(EVENT_PERSON, {**base, "name": UNKNOWN, "known": False})


@callback
def async_attach_person_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """``known_person`` (optionally one ``name``, any case) or ``unknown_person`` of a device."""
    device_id: str = config[CONF_DEVICE_ID]
    trigger_type: str = config[CONF_TYPE]
    wanted = str(config.get(CONF_NAME) or "").strip().casefold()
    known = trigger_type == TRIGGER_KNOWN_PERSON
    job = HassJob(action, f"image_to_text device trigger {trigger_type}")

    @callback
    def _on_person(event: Event) -> None:
        data = event.data
        if data.get("device_id") != device_id or bool(data.get("known")) != known:
            return
        name = str(data.get("name") or "")
        if wanted and name.casefold() != wanted:
            return
        camera = str(data.get("camera") or "")
        hass.async_run_hass_job(
            job,
            {
                "trigger": {
                    **trigger_info["trigger_data"],
                    CONF_PLATFORM: "device",
                    CONF_DOMAIN: DOMAIN,
                    CONF_DEVICE_ID: device_id,
                    CONF_TYPE: trigger_type,
                    "name": name,
                    "distance": data.get("distance"),
                    "camera": camera,
                    "camera_name": camera_display_name(camera),
                    "event": event,
                    "description": f"{name} at {camera_display_name(camera)}",
                }
            },
            event.context,
        )

    return hass.bus.async_listen(EVENT_PERSON, _on_person)


@dataclass(slots=True)
class _Sighting:
    at: datetime
    frame_id: str
    name: str
    distance: float


@dataclass(slots=True)
class Visits:
    """The recent known faces per camera, and the rule that lets a name be announced."""

    window: timedelta = field(default_factory=lambda: timedelta(seconds=VISIT_SECONDS))
    _seen: dict[str, list[_Sighting]] = field(default_factory=dict)

    def add(self, result: dict[str, Any], now: datetime) -> None:
        """Remember a faces result's known faces (a result with none keeps the visit going)."""
        camera = result.get("camera")
        if result.get("task") != TASK_FACES or not isinstance(camera, str):
            return
        sightings = self._recent(camera, now)
        frame_id = str(result.get("frame_id") or now.isoformat())
        for face in known_faces(result):
            sightings.append(_Sighting(now, frame_id, face["name"], float(face["distance"])))
        self._seen[camera] = sightings

    def name_for(self, camera: str, now: datetime) -> str | None:
        """The name to announce for this camera's visit, or None ("someone")."""
        sightings = self._recent(camera, now)
        frames: dict[str, set[str]] = {}
        best: dict[str, float] = {}
        for sighting in sightings:
            frames.setdefault(sighting.name, set()).add(sighting.frame_id)
            best[sighting.name] = min(best.get(sighting.name, 1.0), sighting.distance)
        sure = [name for name in frames if len(frames[name]) >= 2 or best[name] <= CLEAR_DISTANCE]
        return min(sure, key=lambda name: best[name]) if sure else None

    def _recent(self, camera: str, now: datetime) -> list[_Sighting]:
        return [s for s in self._seen.get(camera, []) if now - s.at < self.window]


class LastPersonSensor(ResultSensor, SensorEntity):
    """The last people a camera saw; a frame with nobody leaves it as it was.

    Its unique id is the task sensor's (``<bridge_id>/<camera>/faces/text``); like the other
    result sensors it does not record the per-frame attributes and fits the rest under the
    recorder's limit (a crowd's ``faces`` are cut to those that fit).
    """

    def __init__(self, hub: ImageToTextHub, camera: str, task: str) -> None:
        super().__init__(hub, camera, task)
        self._attr_translation_key = "last_person"  # "Front door last person"
        self._last: dict[str, Any] | None = None
        self._remember(self.hub.last_result.get((camera, task)))

    def _remember(self, result: dict[str, Any] | None) -> None:
        if result is not None and result.get("faces"):
            self._last = result

    @callback
    def _on_result(self, camera: str, task: str) -> None:
        if (camera, task) == (self.camera, self.task):
            self._remember(self.hub.last_result.get((camera, task)))
            self.async_write_ha_state()

    @property
    def native_value(self) -> str | None:
        """Who was last seen: "Anna", "Anna and someone", "someone"."""
        return None if self._last is None else str(self._last.get("text", ""))[:MAX_STATE_LENGTH]

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Names, faces (name, distance, box), the best known distance, frame and time."""
        result = self._last
        if result is None:
            return None
        known = known_faces(result)
        attributes = {
            "names": result.get("names", []),
            "faces": result.get("faces", []),
            "distance": min((f["distance"] for f in known), default=None),
            "camera": result.get("camera"),
            "frame_id": result.get("frame_id"),
            "captured_at": result.get("captured_at"),
            "model": result.get("model"),
        }
        return fit(attributes, MAX_ATTRIBUTES_BYTES)

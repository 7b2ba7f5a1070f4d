"""Who Frigate recognised: names from ``frigate/tracked_object_update`` for spoken announcements.

Frigate 0.16+ publishes on ``<prefix>/tracked_object_update`` a JSON object per update of a tracked
object, with a ``type``:

- ``"face"``: ``{"type", "id", "camera", "name", "score", "timestamp"}``; ``name`` is the
  recognised person (``null`` when the face is unknown);
- ``"lpr"``: ``{"type", "id", "camera", "name", "plate", "score", "timestamp"}``; ``name`` is the
  known plate's name, ``plate`` the characters read (a final update with ``name`` and ``plate``
  both ``null`` says the camera has no car any more);
- ``"description"`` and others: no name; ignored.

Older add-ons set ``sub_label`` (a string, or ``[name, score]``) instead; it is read as a name too.

The module keeps nothing in ``hass.data``: it turns each recognised name into a dispatcher signal
for its config entry, and ``RecentNames`` (owned by the announcements) keeps the last name per
Frigate camera with the time it arrived, offered as ``name`` while younger than ``name_window``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util

from .const import DOMAIN

_LOGGER = logging.getLogger(__name__)

OPT_FRIGATE_NAMES = "frigate_names"
OPT_NAME_WINDOW = "name_window"
DEFAULT_NAME_WINDOW = 30
OPT_FRIGATE_PREFIX = "frigate_prefix"
#: Frigate's ``mqtt.topic_prefix`` (default ``frigate``); its names come on ``<prefix>/...``.
DEFAULT_FRIGATE_PREFIX = "frigate"
FRIGATE_TOPIC = f"{DEFAULT_FRIGATE_PREFIX}/tracked_object_update"


def frigate_topic(prefix: str | None) -> str:
    """The topic Frigate publishes recognised names on, under its topic prefix."""
    return f"{(prefix or DEFAULT_FRIGATE_PREFIX).strip().strip('/')}/tracked_object_update"


def signal_frigate_name(entry_id: str) -> str:
    """Dispatcher signal with args (frigate_camera: str, name: str) for one config entry."""
    return f"{DOMAIN}_{entry_id}_frigate_name"


@dataclass(frozen=True, slots=True)
class RecognisedName:
    """A name Frigate recognised on one of its cameras, and when it arrived."""

    camera: str
    name: str
    kind: str


def parse_tracked_object_update(payload: str | bytes | bytearray) -> RecognisedName | None:
    """The name in one ``tracked_object_update`` payload, or None when it carries none."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    camera = data.get("camera")
    if not isinstance(camera, str) or not camera:
        return None
    kind = str(data.get("type") or "")
    name = _first_name(data.get("name"), data.get("sub_label"))
    if name is None and kind == "lpr":
        plate = data.get("plate")
        name = plate.strip() if isinstance(plate, str) and plate.strip() else None
    if name is None:
        return None
    return RecognisedName(camera=camera, name=name, kind=kind or "sub_label")


def _first_name(*candidates: Any) -> str | None:
    """The first usable name among a ``name`` string and a ``sub_label`` (string or pair)."""
    for candidate in candidates:
        value = candidate[0] if isinstance(candidate, list | tuple) and candidate else candidate
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


class RecentNames:
    """The last name recognised per Frigate camera, offered while it is recent enough."""

    def __init__(self, window_seconds: float) -> None:
        self._window = timedelta(seconds=window_seconds)
        self._names: dict[str, tuple[str, datetime]] = {}

    def remember(self, camera: str, name: str, when: datetime | None = None) -> None:
        """Keep ``name`` as the latest one seen on ``camera``."""
        self._names[camera] = (name, when or dt_util.utcnow())

    def name_for(self, camera: str, now: datetime | None = None) -> str | None:
        """The name last seen on ``camera`` if it arrived within the window, else None."""
        known = self._names.get(camera)
        if known is None:
            return None
        name, seen_at = known
        if (now or dt_util.utcnow()) - seen_at > self._window:
            return None
        return name


async def async_setup_frigate_names(hass: HomeAssistant, entry: ConfigEntry) -> CALLBACK_TYPE:
    """Listen to Frigate's recognised names when the entry's options ask for it.

    Returns the unsubscribe callable (a no-op when the option is off); the caller hands it to
    ``entry.async_on_unload``.
    """
    if not entry.options.get(OPT_FRIGATE_NAMES, False):
        return _nothing

    signal = signal_frigate_name(entry.entry_id)

    @callback
    def _on_update(msg: mqtt.ReceiveMessage) -> None:
        recognised = parse_tracked_object_update(msg.payload)
        if recognised is None:
            return
        _LOGGER.debug("Frigate recognised %s on %s", recognised.name, recognised.camera)
        async_dispatcher_send(hass, signal, recognised.camera, recognised.name)

    topic = frigate_topic(entry.options.get(OPT_FRIGATE_PREFIX))
    return await mqtt.async_subscribe(hass, topic, _on_update, qos=0)


@callback
def _nothing() -> None:
    """Unsubscribe callable for when nothing was subscribed."""

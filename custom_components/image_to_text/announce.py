"""Spoken announcements: a camera's new caption read aloud through ``tts.speak``.

Per camera, ``entry.options["announcements"][camera]`` names a TTS entity, the media players and
a message template. The caption reaches the template only as a *variable*: a caption that looks
like a template (``{{ 7*6 }}``) is spoken literally, never rendered, because captions come from a
model looking at whatever is in front of a camera.

Three filters keep a speaker from chattering: ``only_keywords`` (speak only captions that match
one of ``entry.options["keywords"]``), ``only_changed`` (never repeat the caption last spoken for
that camera, ignoring case and spacing) and ``cooldown`` (seconds of silence after each
announcement of a camera).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, TemplateError
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.template import Template
from homeassistant.util import dt as dt_util

from .binary_sensor import keyword_pattern
from .const import CONF_KEYWORDS, TASK_FACES, camera_display_name, signal_result
from .faces import Visits
from .frigate_names import (
    DEFAULT_NAME_WINDOW,
    OPT_NAME_WINDOW,
    RecentNames,
    signal_frigate_name,
)

_LOGGER = logging.getLogger(__name__)

OPT_ANNOUNCEMENTS = "announcements"
OPT_KEYWORDS = CONF_KEYWORDS
CONF_TTS_ENTITY = "tts_entity"
CONF_MEDIA_PLAYERS = "media_players"
CONF_MESSAGE = "message"
CONF_COOLDOWN = "cooldown"
CONF_ONLY_KEYWORDS = "only_keywords"
CONF_ONLY_CHANGED = "only_changed"
CONF_FRIGATE_CAMERA = "frigate_camera"

DEFAULT_MESSAGE = (
    "{{ name ~ ' is at ' if name else 'Someone at ' }}{{ camera_name }}: {{ caption }}"
)
DEFAULT_COOLDOWN = 60
FALLBACK_MESSAGE = "{{ camera_name }}: {{ caption }}"


def keyword_alternatives(keyword: str) -> list[str]:
    """The alternatives of one keyword option: ``"parcel|package"`` → ``["parcel", "package"]``."""
    return [part.strip() for part in keyword.split("|") if part.strip()]


def matching_keyword(keywords: Iterable[str], text: str) -> str | None:
    """The first keyword alternative that ``text`` names, as written there, or None.

    Matching is the keyword binary sensors' (binary_sensor.keyword_pattern): whole words,
    case-insensitive, so announcements, triggers and sensors always agree.
    """
    for keyword in keywords:
        pattern = keyword_pattern(keyword)
        if pattern is not None and (found := pattern.search(text)):
            return found.group(0)
    return None


def _normalised(text: str) -> str:
    """A caption compared for ``only_changed``: case and runs of whitespace do not count."""
    return " ".join(text.casefold().split())


@dataclass(slots=True)
class _Spoken:
    """What was last announced for one camera."""

    at: datetime
    caption: str


class Announcer:
    """Decides, per caption result of one config entry, whether and what to speak."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        self._hass = hass
        self._entry = entry
        options = entry.options
        self._configs: dict[str, dict[str, Any]] = dict(options.get(OPT_ANNOUNCEMENTS, {}))
        self._keywords: list[str] = list(options.get(OPT_KEYWORDS, []))
        self.names = RecentNames(float(options.get(OPT_NAME_WINDOW, DEFAULT_NAME_WINDOW)))
        #: Names from the bridge's own faces task, announced only when a visit confirms them.
        self.visits = Visits()
        self._spoken: dict[str, _Spoken] = {}

    @property
    def cameras(self) -> set[str]:
        """The cameras that have an announcement configured."""
        return set(self._configs)

    @callback
    def async_on_name(self, frigate_camera: str, name: str) -> None:
        """Remember a name Frigate recognised on one of its cameras."""
        self.names.remember(frigate_camera, name)

    @callback
    def async_on_result(self, result: dict[str, Any]) -> None:
        """Handle one result of the bridge: speak a caption that passes the filters."""
        if result.get("task") == TASK_FACES:
            self.visits.add(result, dt_util.utcnow())
            return
        if result.get("task") != "caption":
            return
        camera = result.get("camera")
        caption = result.get("text")
        if not isinstance(camera, str) or not isinstance(caption, str) or not caption.strip():
            return
        config = self._configs.get(camera)
        if config is None:
            return
        message = self.message_for(camera, caption, config)
        if not message:
            return
        self._spoken[camera] = _Spoken(at=dt_util.utcnow(), caption=_normalised(caption))
        self._entry.async_create_task(
            self._hass, self._async_speak(config, message), f"{camera} announcement"
        )

    def message_for(self, camera: str, caption: str, config: dict[str, Any]) -> str | None:
        """The text to speak for this caption, or None when a filter holds it back."""
        keyword = matching_keyword(self._keywords, caption)
        if config.get(CONF_ONLY_KEYWORDS) and keyword is None:
            return None
        last = self._spoken.get(camera)
        if last is not None:
            if config.get(CONF_ONLY_CHANGED, True) and last.caption == _normalised(caption):
                return None
            cooldown = timedelta(seconds=float(config.get(CONF_COOLDOWN, DEFAULT_COOLDOWN)))
            if dt_util.utcnow() - last.at < cooldown:
                return None
        frigate_camera = str(config.get(CONF_FRIGATE_CAMERA) or camera)
        variables = {
            "caption": caption,
            "text": caption,
            "camera": camera,
            "camera_name": camera_display_name(camera),
            "name": self.names.name_for(frigate_camera)
            or self.visits.name_for(camera, dt_util.utcnow()),
            "task": "caption",
            "keyword": keyword,
        }
        return self._render(str(config.get(CONF_MESSAGE) or DEFAULT_MESSAGE), variables)

    def _render(self, message: str, variables: dict[str, Any]) -> str:
        """Render the user's template with the caption as a plain variable."""
        try:
            rendered = Template(message, self._hass).async_render(variables, parse_result=False)
        except TemplateError as err:
            _LOGGER.warning("Announcement template %r failed (%s); using the default", message, err)
            rendered = Template(FALLBACK_MESSAGE, self._hass).async_render(
                variables, parse_result=False
            )
        return str(rendered).strip()

    async def _async_speak(self, config: dict[str, Any], message: str) -> None:
        """Call ``tts.speak``; a failure is logged, never raised into the MQTT callback."""
        try:
            await self._hass.services.async_call(
                "tts",
                "speak",
                {
                    "media_player_entity_id": list(config.get(CONF_MEDIA_PLAYERS, [])),
                    "message": message,
                },
                blocking=True,
                target={"entity_id": config[CONF_TTS_ENTITY]},
            )
        except (HomeAssistantError, vol.Invalid, KeyError) as err:
            _LOGGER.warning("Could not speak the announcement %r: %s", message, err)


@callback
def async_setup_announcements(hass: HomeAssistant, entry: ConfigEntry) -> CALLBACK_TYPE:
    """Start announcing the entry's captions as configured; returns the unsubscribe callable."""
    announcer = Announcer(hass, entry)
    if not announcer.cameras:
        return _nothing
    unsubscribers = [
        async_dispatcher_connect(hass, signal_result(entry.entry_id), announcer.async_on_result),
        async_dispatcher_connect(
            hass, signal_frigate_name(entry.entry_id), announcer.async_on_name
        ),
    ]

    @callback
    def _unsubscribe() -> None:
        for unsubscribe in unsubscribers:
            unsubscribe()

    return _unsubscribe


@callback
def _nothing() -> None:
    """Unsubscribe callable for when nothing was subscribed."""

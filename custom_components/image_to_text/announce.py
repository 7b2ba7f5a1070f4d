"""Spoken announcements: a camera's new caption read aloud through ``tts.speak``.

Per camera, ``entry.options["announcements"][camera]`` names a TTS entity, the media players and
a message template. The caption reaches the template only as a *variable*: a caption that looks
like a template (``{{ 7*6 }}``) is spoken literally, never rendered, because captions come from a
model looking at whatever is in front of a camera. ``name`` is the person Frigate recognised on
the camera, else one the bridge's faces task confirmed for the current visit (faces.py, ``Visits``).

Filters keep a speaker from chattering: ``only_keywords`` (speak only captions that match one of
``entry.options["keywords"]``), ``only_changed`` (not the same words for the same camera within
``changed_window`` seconds, ignoring case and spacing; a different recognised name is always
news), ``cooldown`` (seconds of silence after each announcement of a camera), quiet hours
(``quiet_start``..``quiet_end``, local time, may wrap midnight) and the mute switches (one per
bridge, one per announced camera; see switch.py).

Announcements of one bridge are queued: each waits for the previous one to be spoken (and for
its speakers to stop playing, up to a bound), so none is cut off. ``volume`` (0-100) is set on the
media players first; ``satellites`` are announced on with ``assist_satellite.announce`` where the
core has it (2024.12+). Changing any of this in the options applies at once, without a reload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, TemplateError
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.event import async_track_state_change_event
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
CONF_CHANGED_WINDOW = "changed_window"
CONF_QUIET_START = "quiet_start"
CONF_QUIET_END = "quiet_end"
CONF_VOLUME = "volume"
CONF_SATELLITES = "satellites"

DEFAULT_MESSAGE = (
    "{{ name ~ ' is at ' if name else 'Someone at ' }}{{ camera_name }}: {{ caption }}"
)
DEFAULT_COOLDOWN = 60
DEFAULT_CHANGED_WINDOW = 600
#: How long the queue waits for speakers to stop playing before the next announcement.
PLAYING_WAIT_S = 120.0
#: How long a speaker may take to start playing an announcement.
START_WAIT_S = 5.0
ANNOUNCE_OPTIONS = frozenset({OPT_ANNOUNCEMENTS})
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
    name: str | None


def satellites_supported(hass: HomeAssistant) -> bool:
    """Whether this core can announce on voice satellites (``assist_satellite.announce``)."""
    return hass.services.has_service("assist_satellite", "announce")


def _parse_time(value: Any) -> time | None:
    if not isinstance(value, str) or not value:
        return None
    return dt_util.parse_time(value)


def in_quiet_hours(config: dict[str, Any], now: datetime) -> bool:
    """Whether ``now`` (local) falls in the camera's quiet hours; a window may wrap midnight."""
    start, end = _parse_time(config.get(CONF_QUIET_START)), _parse_time(config.get(CONF_QUIET_END))
    if start is None or end is None or start == end:
        return False
    moment = now.time()
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


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
        self._lock = asyncio.Lock()
        #: The mute switches: announcements of the bridge, and of each camera (default on).
        self.enabled = True
        self.camera_enabled: dict[str, bool] = {}

    @property
    def cameras(self) -> set[str]:
        """The cameras that have an announcement configured."""
        return set(self._configs)

    @callback
    def async_update_options(self, options: dict[str, Any]) -> None:
        """New announcement settings from the options flow, taken at once (no reload)."""
        self._configs = dict(options.get(OPT_ANNOUNCEMENTS, {}))
        self._keywords = list(options.get(OPT_KEYWORDS, []))

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
        if config is None or not self.enabled or not self.camera_enabled.get(camera, True):
            return
        if in_quiet_hours(config, dt_util.now()):
            return
        message = self.message_for(camera, caption, config)
        if not message:
            return
        self._spoken[camera] = _Spoken(
            at=dt_util.utcnow(), caption=_normalised(caption), name=self._name(camera, config)
        )
        self._entry.async_create_task(
            self._hass, self._async_speak(config, message), f"{camera} announcement"
        )

    def _name(self, camera: str, config: dict[str, Any]) -> str | None:
        """Who is at the camera: a name Frigate recognised, else one the bridge's faces confirm."""
        frigate = self.names.name_for(str(config.get(CONF_FRIGATE_CAMERA) or camera))
        return frigate or self.visits.name_for(camera, dt_util.utcnow())

    def message_for(self, camera: str, caption: str, config: dict[str, Any]) -> str | None:
        """The text to speak for this caption, or None when a filter holds it back."""
        keyword = matching_keyword(self._keywords, caption)
        if config.get(CONF_ONLY_KEYWORDS) and keyword is None:
            return None
        name = self._name(camera, config)
        last = self._spoken.get(camera)
        if last is not None:
            since = dt_util.utcnow() - last.at
            window = timedelta(
                seconds=float(config.get(CONF_CHANGED_WINDOW, DEFAULT_CHANGED_WINDOW))
            )
            same = last.caption == _normalised(caption) and last.name == name
            if config.get(CONF_ONLY_CHANGED, True) and same and since < window:
                return None
            cooldown = timedelta(seconds=float(config.get(CONF_COOLDOWN, DEFAULT_COOLDOWN)))
            if since < cooldown and (name is None or name == last.name):
                return None
        variables = {
            "caption": caption,
            "text": caption,
            "camera": camera,
            "camera_name": camera_display_name(camera),
            "name": name,
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
        """Speak one announcement after the ones before it; failures are logged, never raised."""
        async with self._lock:
            players = list(config.get(CONF_MEDIA_PLAYERS, []))
            try:
                await self._async_wait_quiet(players)
                volume = config.get(CONF_VOLUME)
                if players and isinstance(volume, int | float):
                    await self._call(
                        "media_player",
                        "volume_set",
                        {"volume_level": max(0.0, min(1.0, float(volume) / 100))},
                        players,
                    )
                if players and config.get(CONF_TTS_ENTITY):
                    await self._call(
                        "tts",
                        "speak",
                        {"media_player_entity_id": players, "message": message},
                        config[CONF_TTS_ENTITY],
                    )
                satellites = list(config.get(CONF_SATELLITES, []))
                if satellites and satellites_supported(self._hass):
                    await self._call(
                        "assist_satellite", "announce", {"message": message}, satellites
                    )
                await self._async_wait_played(players)
            except (HomeAssistantError, vol.Invalid, KeyError) as err:
                _LOGGER.warning("Could not speak the announcement %r: %s", message, err)

    async def _call(
        self, domain: str, service: str, data: dict[str, Any], entity_ids: str | list[str]
    ) -> None:
        await self._hass.services.async_call(
            domain, service, data, blocking=True, target={"entity_id": entity_ids}
        )

    def _playing(self, players: list[str]) -> bool:
        return any(
            (state := self._hass.states.get(player)) is not None and state.state == "playing"
            for player in players
        )

    async def _async_wait_quiet(self, players: list[str]) -> None:
        """Wait (bounded) until none of the speakers is playing."""
        await self._async_wait_for(players, lambda: not self._playing(players), PLAYING_WAIT_S)

    async def _async_wait_played(self, players: list[str]) -> None:
        """After speaking: wait for the speakers to start, then to finish, so none is cut off."""
        known = [player for player in players if self._hass.states.get(player) is not None]
        if known:
            await self._async_wait_for(known, lambda: self._playing(known), START_WAIT_S)
            await self._async_wait_quiet(known)

    async def _async_wait_for(
        self, players: list[str], done: Callable[[], bool], seconds: float
    ) -> None:
        if done():
            return
        reached = asyncio.Event()

        @callback
        def _changed(_event: Event[Any]) -> None:
            if done():
                reached.set()

        unsubscribe = async_track_state_change_event(self._hass, players, _changed)
        try:
            async with asyncio.timeout(seconds):
                await reached.wait()
        except TimeoutError:
            _LOGGER.debug("Speakers %s: still waiting after %s s; going on", players, seconds)
        finally:
            unsubscribe()


@callback
def async_setup_announcements(
    hass: HomeAssistant, entry: ConfigEntry, announcer: Announcer
) -> CALLBACK_TYPE:
    """Start announcing the entry's captions as configured; returns the unsubscribe callable."""
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

"""Options of a bridge entry: keywords, spoken announcements per camera, Frigate names.

A menu leads to one page per concern; each page saves at once (the entry then reloads), so a user
who changes one thing never has to walk through the others. ``entry.options`` follows the schema
in HA-CONTRACT.md::

    {"keywords": [...], "keyword_hold": 60, "frigate_names": False, "name_window": 30,
     "announcements": {"<camera>": {"tts_entity", "media_players", "message", "cooldown",
                                    "only_keywords", "only_changed", "frigate_camera"?}}}

The flow never assigns ``self.config_entry`` (deprecated since HA 2024.11, absent before): it
looks its entry up by ``self.handler`` (the entry id) and falls back to the entry it was given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntry, OptionsFlow
from homeassistant.helpers import selector

from .announce import (
    CONF_CHANGED_WINDOW,
    CONF_COOLDOWN,
    CONF_FRIGATE_CAMERA,
    CONF_MEDIA_PLAYERS,
    CONF_MESSAGE,
    CONF_ONLY_CHANGED,
    CONF_ONLY_KEYWORDS,
    CONF_QUIET_END,
    CONF_QUIET_START,
    CONF_SATELLITES,
    CONF_TTS_ENTITY,
    CONF_VOLUME,
    DEFAULT_CHANGED_WINDOW,
    DEFAULT_COOLDOWN,
    DEFAULT_MESSAGE,
    OPT_ANNOUNCEMENTS,
    OPT_KEYWORDS,
    satellites_supported,
)
from .const import CONF_KEYWORD_HOLD, DEFAULT_KEYWORD_HOLD, TASK_CAPTION
from .frigate_names import (
    DEFAULT_FRIGATE_PREFIX,
    DEFAULT_NAME_WINDOW,
    OPT_FRIGATE_NAMES,
    OPT_FRIGATE_PREFIX,
    OPT_NAME_WINDOW,
)

if TYPE_CHECKING:
    # Annotations only (HA 2024.4+ names it; 2024.3, the test core, never needs it at run time).
    from homeassistant.config_entries import ConfigFlowResult

OPT_KEYWORD_HOLD = CONF_KEYWORD_HOLD
CONF_CAMERA = "camera"
CONF_ENABLED = "enabled"

_SECONDS = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=0, max=3600, step=1, unit_of_measurement="s", mode=selector.NumberSelectorMode.BOX
    )
)


def normalise_keywords(raw: list[str]) -> list[str]:
    """Keywords as stored: alternatives trimmed and joined by ``|``, blanks and repeats dropped.

    Raises ValueError for a keyword with an empty alternative (``"parcel||box"``), which would
    otherwise match every caption.
    """
    keywords: list[str] = []
    for item in raw:
        if not item.strip():
            continue
        parts = [part.strip() for part in item.split("|")]
        if any(not part for part in parts):
            raise ValueError(item)
        keyword = "|".join(parts)
        if keyword.casefold() not in (known.casefold() for known in keywords):
            keywords.append(keyword)
    return keywords


class ImageToTextOptionsFlow(OptionsFlow):
    """Menu-driven options of one Image to text bridge."""

    def __init__(self, config_entry: ConfigEntry | None = None) -> None:
        # Kept under a private name: assigning ``self.config_entry`` is deprecated in HA 2024.11+.
        self._given_entry = config_entry
        self._camera: str | None = None

    @property
    def _entry(self) -> ConfigEntry:
        """The entry these options belong to."""
        entry = self.hass.config_entries.async_get_entry(self.handler)
        if entry is None and self._given_entry is not None:
            return self._given_entry
        if entry is None:
            raise RuntimeError(f"config entry {self.handler} is gone")
        return entry

    def _save(self, changes: dict[str, Any]) -> ConfigFlowResult:
        """Finish the flow with the entry's options updated by ``changes``."""
        return self.async_create_entry(title="", data={**self._entry.options, **changes})

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The menu: which options to change."""
        return self.async_show_menu(menu_options=["keywords", "announce", "names"])

    async def async_step_keywords(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Keywords: one binary sensor per keyword; ``|`` separates alternatives."""
        errors: dict[str, str] = {}
        options: dict[str, Any] = dict(self._entry.options)
        if user_input is not None:
            options.update(user_input)  # a refused form comes back as the user typed it
            try:
                keywords = normalise_keywords(list(user_input.get(OPT_KEYWORDS, [])))
            except ValueError:
                errors[OPT_KEYWORDS] = "invalid_keyword"
            else:
                return self._save(
                    {
                        OPT_KEYWORDS: keywords,
                        OPT_KEYWORD_HOLD: int(user_input[OPT_KEYWORD_HOLD]),
                    }
                )
        schema = vol.Schema(
            {
                vol.Optional(OPT_KEYWORDS, default=list(options.get(OPT_KEYWORDS, []))): (
                    selector.TextSelector(selector.TextSelectorConfig(multiple=True))
                ),
                vol.Required(
                    OPT_KEYWORD_HOLD, default=options.get(OPT_KEYWORD_HOLD, DEFAULT_KEYWORD_HOLD)
                ): _SECONDS,
            }
        )
        return self.async_show_form(step_id="keywords", data_schema=schema, errors=errors)

    def _cameras(self) -> list[str]:
        """Cameras to choose from: the bridge's that caption, plus any with an announcement."""
        runtime = getattr(self._entry, "runtime_data", None)
        hub = getattr(runtime, "hub", None)
        known: dict[str, dict[str, Any]] = getattr(hub, "cameras", None) or {}
        cameras = {name for name, info in known.items() if TASK_CAPTION in info.get("tasks", [])}
        cameras.update(self._entry.options.get(OPT_ANNOUNCEMENTS, {}))
        return sorted(cameras)

    async def async_step_announce(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Announcements, first page: which camera."""
        cameras = self._cameras()
        if not cameras:
            return self.async_abort(reason="no_cameras")
        if user_input is not None:
            self._camera = str(user_input[CONF_CAMERA])
            return await self.async_step_announce_camera()
        schema = vol.Schema(
            {
                vol.Required(CONF_CAMERA, default=cameras[0]): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=cameras, mode=selector.SelectSelectorMode.DROPDOWN
                    )
                )
            }
        )
        return self.async_show_form(step_id="announce", data_schema=schema)

    async def async_step_announce_camera(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Announcements, second page: how one camera's captions are spoken (or switched off)."""
        camera = self._camera
        if camera is None:
            return await self.async_step_announce()
        announcements: dict[str, Any] = dict(self._entry.options.get(OPT_ANNOUNCEMENTS, {}))
        current: dict[str, Any] = dict(announcements.get(camera, {}))
        errors: dict[str, str] = {}
        if user_input is not None:
            if not user_input.get(CONF_ENABLED, True):
                announcements.pop(camera, None)
                return self._save({OPT_ANNOUNCEMENTS: announcements})
            config, errors = self._announcement(camera, user_input)
            if not errors:
                announcements[camera] = config
                return self._save({OPT_ANNOUNCEMENTS: announcements})
            current = {**current, **user_input}
        return self.async_show_form(
            step_id="announce_camera",
            data_schema=self._announcement_schema(camera, current),
            errors=errors,
            description_placeholders={"camera": camera},
        )

    def _announcement(
        self, camera: str, user_input: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """One camera's stored announcement from the form, and the form's errors."""
        errors: dict[str, str] = {}
        satellites = list(user_input.get(CONF_SATELLITES, []))
        speakers = user_input.get(CONF_TTS_ENTITY) or user_input.get(CONF_MEDIA_PLAYERS)
        if not satellites or speakers:  # voice satellites alone need no TTS entity or speakers
            if not user_input.get(CONF_TTS_ENTITY):
                errors[CONF_TTS_ENTITY] = "tts_required"
            if not user_input.get(CONF_MEDIA_PLAYERS):
                errors[CONF_MEDIA_PLAYERS] = "media_player_required"
        # The template selector has already refused a message that is not a valid template.
        message = str(user_input.get(CONF_MESSAGE) or DEFAULT_MESSAGE)
        config: dict[str, Any] = {
            CONF_TTS_ENTITY: user_input.get(CONF_TTS_ENTITY),
            CONF_MEDIA_PLAYERS: list(user_input.get(CONF_MEDIA_PLAYERS, [])),
            CONF_MESSAGE: message,
            CONF_COOLDOWN: int(user_input.get(CONF_COOLDOWN, DEFAULT_COOLDOWN)),
            CONF_ONLY_KEYWORDS: bool(user_input.get(CONF_ONLY_KEYWORDS, False)),
            CONF_ONLY_CHANGED: bool(user_input.get(CONF_ONLY_CHANGED, True)),
            CONF_CHANGED_WINDOW: int(user_input.get(CONF_CHANGED_WINDOW, DEFAULT_CHANGED_WINDOW)),
        }
        for key in (CONF_QUIET_START, CONF_QUIET_END):
            if user_input.get(key):
                config[key] = str(user_input[key])
        if user_input.get(CONF_VOLUME) is not None:
            config[CONF_VOLUME] = int(user_input[CONF_VOLUME])
        if satellites:
            config[CONF_SATELLITES] = satellites
        frigate_camera = str(user_input.get(CONF_FRIGATE_CAMERA) or "").strip()
        if frigate_camera and frigate_camera != camera:
            config[CONF_FRIGATE_CAMERA] = frigate_camera
        return config, errors

    def _announcement_schema(self, camera: str, current: dict[str, Any]) -> vol.Schema:
        """The form of one camera's announcement, filled with what is stored (or was typed)."""

        def suggested(key: str, default: Any) -> dict[str, Any]:
            return {"suggested_value": current.get(key, default)}

        satellites: dict[Any, Any] = {}
        if satellites_supported(self.hass):  # voice satellites announce since HA 2024.12
            satellites[
                vol.Optional(CONF_SATELLITES, description=suggested(CONF_SATELLITES, []))
            ] = selector.EntitySelector(
                selector.EntitySelectorConfig(domain="assist_satellite", multiple=True)
            )

        return vol.Schema(
            {
                vol.Required(CONF_ENABLED, default=True): selector.BooleanSelector(),
                vol.Optional(
                    CONF_TTS_ENTITY, description=suggested(CONF_TTS_ENTITY, None)
                ): selector.EntitySelector(selector.EntitySelectorConfig(domain="tts")),
                vol.Optional(
                    CONF_MEDIA_PLAYERS, description=suggested(CONF_MEDIA_PLAYERS, [])
                ): selector.EntitySelector(
                    selector.EntitySelectorConfig(domain="media_player", multiple=True)
                ),
                vol.Required(
                    CONF_MESSAGE, default=current.get(CONF_MESSAGE, DEFAULT_MESSAGE)
                ): selector.TemplateSelector(),
                vol.Required(
                    CONF_COOLDOWN, default=current.get(CONF_COOLDOWN, DEFAULT_COOLDOWN)
                ): _SECONDS,
                vol.Required(
                    CONF_ONLY_KEYWORDS, default=current.get(CONF_ONLY_KEYWORDS, False)
                ): selector.BooleanSelector(),
                vol.Required(
                    CONF_ONLY_CHANGED, default=current.get(CONF_ONLY_CHANGED, True)
                ): selector.BooleanSelector(),
                vol.Required(
                    CONF_CHANGED_WINDOW,
                    default=current.get(CONF_CHANGED_WINDOW, DEFAULT_CHANGED_WINDOW),
                ): _SECONDS,
                vol.Optional(
                    CONF_QUIET_START, description=suggested(CONF_QUIET_START, None)
                ): selector.TimeSelector(),
                vol.Optional(
                    CONF_QUIET_END, description=suggested(CONF_QUIET_END, None)
                ): selector.TimeSelector(),
                vol.Optional(
                    CONF_VOLUME, description=suggested(CONF_VOLUME, None)
                ): selector.NumberSelector(
                    selector.NumberSelectorConfig(min=0, max=100, step=5, unit_of_measurement="%")
                ),
                **satellites,
                vol.Optional(
                    CONF_FRIGATE_CAMERA, description=suggested(CONF_FRIGATE_CAMERA, camera)
                ): selector.TextSelector(),
            }
        )

    async def async_step_names(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Frigate names: say who Frigate recognised when a caption is announced."""
        options = self._entry.options
        if user_input is not None:
            return self._save(
                {
                    OPT_FRIGATE_NAMES: bool(user_input[OPT_FRIGATE_NAMES]),
                    OPT_NAME_WINDOW: int(user_input[OPT_NAME_WINDOW]),
                    OPT_FRIGATE_PREFIX: str(
                        user_input.get(OPT_FRIGATE_PREFIX) or DEFAULT_FRIGATE_PREFIX
                    ).strip("/ "),
                }
            )
        schema = vol.Schema(
            {
                vol.Required(
                    OPT_FRIGATE_NAMES, default=options.get(OPT_FRIGATE_NAMES, False)
                ): selector.BooleanSelector(),
                vol.Required(
                    OPT_NAME_WINDOW, default=options.get(OPT_NAME_WINDOW, DEFAULT_NAME_WINDOW)
                ): _SECONDS,
                vol.Required(
                    OPT_FRIGATE_PREFIX,
                    default=options.get(OPT_FRIGATE_PREFIX, DEFAULT_FRIGATE_PREFIX),
                ): selector.TextSelector(),
            }
        )
        return self.async_show_form(step_id="names", data_schema=schema)

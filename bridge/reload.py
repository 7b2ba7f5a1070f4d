"""Reloading the configuration on SIGHUP: what can change in a running bridge, and what cannot.

Cameras can (added, removed, other topics, tasks whose model is running, dedup thresholds,
meter settings): frames already on their way finish with the settings they arrived under, the
next ones get the new.  Everything else (the broker connection, models, frame limits, the
status server, the bridge's id) is read once at start: a change there is reported as needing a
restart, and the running value stays.  A file that does not validate changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.config import BridgeConfig
from bridge.errors import ConfigError


@dataclass(frozen=True)
class Reload:
    """A validated reload: the configuration to run from now on, and what changed."""

    config: BridgeConfig
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    #: Top-level sections that differ from the running ones and wait for a restart.
    restart: tuple[str, ...]

    def summary(self) -> str:
        """One line for the log."""
        parts = [
            f"{what}: {', '.join(names)}"
            for what, names in (
                ("cameras added", self.added),
                ("removed", self.removed),
                ("changed", self.changed),
            )
            if names
        ]
        return "; ".join(parts) or "no camera changed"


def plan_reload(running: BridgeConfig, new: BridgeConfig) -> Reload:
    """What applying ``new`` to the bridge running ``running`` does; ``ConfigError`` if it can't.

    A camera needing a task whose model is not running is refused (models load at start), and
    with it the whole file: a reload applies all of its cameras or none.
    """
    for name, camera in new.cameras.items():
        for task in camera.tasks:
            if task not in running.models:
                raise ConfigError(
                    new.source,
                    f"cameras.{name}.tasks",
                    f"no {task} model is running (models load at start): restart the bridge "
                    "to add it",
                )
    old, cams = running.cameras, new.cameras
    restart = tuple(
        section
        for section in type(running).model_fields
        if section != "cameras" and getattr(running, section) != getattr(new, section)
    )
    return Reload(
        config=running.model_copy(update={"cameras": dict(cams)}),
        added=tuple(name for name in cams if name not in old),
        removed=tuple(name for name in old if name not in cams),
        changed=tuple(name for name in cams if name in old and cams[name] != old[name]),
        restart=restart,
    )

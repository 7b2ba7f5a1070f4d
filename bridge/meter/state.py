"""The meters' previous values on disk, so that plausibility survives a restart.

One small JSON file next to the configuration (``<config stem>.meter-state.json``), written
atomically (a temporary file renamed over the old one), so a crash mid-write leaves the old
state intact rather than a truncated file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path

from bridge.meter.plausibility import MeterState

_LOGGER = logging.getLogger(__name__)
VERSION = 1


def state_path_for(config_source: str) -> Path | None:
    """Where the state of the configuration file ``config_source`` lives (None: in memory)."""
    if not config_source or config_source.startswith("<"):
        return None
    config = Path(config_source)
    return config.with_name(f"{config.stem}.meter-state.json")


class StateStore:
    """Every meter camera's ``MeterState``, kept in memory and saved on each change."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.meters: dict[str, MeterState] = {}
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as err:
            _LOGGER.warning("ignoring the unreadable meter state %s: %s", path, err)
            return
        meters = data.get("meters") if isinstance(data, dict) else None
        if isinstance(meters, dict):
            self.meters = {str(k): MeterState.from_json(v) for k, v in meters.items()}

    def get(self, camera: str) -> MeterState:
        """The camera's state (a fresh empty one the first time)."""
        with self._lock:
            return self.meters.setdefault(camera, MeterState())

    def save(self) -> None:
        """Write every meter's state atomically; a failure is logged, never raised."""
        if self.path is None:
            return
        with self._lock:
            payload = {
                "version": VERSION,
                "meters": {name: s.to_json() for name, s in sorted(self.meters.items())},
            }
            text = json.dumps(payload, indent=1)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(self.path)
        except OSError as err:
            _LOGGER.warning("could not save the meter state to %s: %s", self.path, err)

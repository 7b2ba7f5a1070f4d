"""The bridges of one site: which are online, which cameras each serves, what their infos say.

A site is one base topic. A single bridge speaks on ``<base>/bridge/state`` and ``.../info`` (the
"legacy" topics, all an older bridge has) and also on its own ``<base>/bridges/<bridge_id>/...``;
bridges of a group (``mqtt.share``) speak only on their own. The legacy slot is one more bridge
until its info names a bridge that has its own topics: then that bridge's own state rules (a new
bridge's last will is on its own topic, so a legacy ``online`` can outlive it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

# Counters that add up over the bridges of a group; ``latency_ms`` is averaged by results.
_LATENCY = "latency_ms"
_RESULTS = "results"


@dataclass(slots=True)
class BridgeStatus:
    """What one bridge said last: its state (None before any) and its info."""

    bridge_id: str | None  # None: the legacy topics, until their info names the bridge
    state: bool | None = None
    info: dict[str, Any] | None = None

    @property
    def online(self) -> bool:
        """It has published its info and not its last will."""
        return self.state is not False and self.info is not None

    @property
    def name(self) -> str:
        """The bridge's id, from its topic or its info."""
        if self.bridge_id is not None:
            return self.bridge_id
        named = (self.info or {}).get("bridge_id")
        return named if isinstance(named, str) and named else "bridge"

    @property
    def shared(self) -> bool:
        """A member of a bridge group (``share`` in its info): a device of its own."""
        share = (self.info or {}).get("share")
        return self.bridge_id is not None and isinstance(share, str) and bool(share)

    @property
    def site_id(self) -> str | None:
        """The id unique ids derive from: ``site_id``, or ``bridge_id`` from an older bridge."""
        for key in ("site_id", "bridge_id"):
            value = (self.info or {}).get(key)
            if isinstance(value, str) and value:
                return value
        return None

    def cameras(self) -> dict[str, dict[str, Any]]:
        """The cameras its info lists (empty before its info)."""
        cameras = (self.info or {}).get("cameras", {})
        return cameras if isinstance(cameras, dict) else {}

    def tasks(self, camera: str) -> list[str]:
        """The tasks it runs for one camera."""
        return list(self.cameras().get(camera, {}).get("tasks", []))

    def models(self) -> dict[str, dict[str, Any]]:
        """Its models by task: engine, model, status and error."""
        models = (self.info or {}).get("models")
        if not isinstance(models, dict):
            return {}
        return {task: model for task, model in models.items() if isinstance(model, dict)}


class BridgeSet:
    """Every bridge heard on one base topic, and what they say together."""

    def __init__(self) -> None:
        self.legacy = BridgeStatus(None)
        self.members: dict[str, BridgeStatus] = {}

    def get(self, bridge_id: str | None) -> BridgeStatus:
        """The record of one bridge (``None``: the legacy topics), created when first heard."""
        if bridge_id is None:
            return self.legacy
        return self.members.setdefault(bridge_id, BridgeStatus(bridge_id))

    def peek(self, bridge_id: str) -> BridgeStatus:
        """The record of one group member, or a blank one (never heard) without keeping it."""
        return self.members.get(bridge_id) or BridgeStatus(bridge_id)

    def all(self) -> list[BridgeStatus]:
        """The bridges that count: each member, and the legacy slot unless it is one of them."""
        found = list(self.members.values())
        legacy = self.legacy
        heard = legacy.state is not None or legacy.info is not None
        if heard and (legacy.info or {}).get("bridge_id") not in self.members:
            found.append(legacy)
        return found

    @property
    def online(self) -> bool:
        """Any bridge is online."""
        return any(bridge.online for bridge in self.all())

    @property
    def heard(self) -> bool:
        """Some bridge has published its info."""
        return any(bridge.info is not None for bridge in self.all())

    @property
    def complete(self) -> bool:
        """Every bridge heard of has published its info: their cameras are all the cameras."""
        bridges = self.all()
        return bool(bridges) and all(bridge.info is not None for bridge in bridges)

    def newest_info(self) -> dict[str, Any] | None:
        """One info to show: an online bridge's first, else any."""
        ranked = sorted(self.all(), key=lambda bridge: not bridge.online)
        return next((bridge.info for bridge in ranked if bridge.info is not None), None)

    def site_ids(self) -> set[str]:
        """The site ids the bridges' infos name (one, unless they are misconfigured)."""
        return {site for bridge in self.all() if (site := bridge.site_id) is not None}

    def cameras(self) -> dict[str, dict[str, Any]]:
        """The union of the bridges' cameras; an online bridge's settings of a camera win."""
        merged: dict[str, dict[str, Any]] = {}
        for bridge in sorted(self.all(), key=lambda bridge: bridge.online):
            for name, camera in bridge.cameras().items():
                tasks = list(merged.get(name, {}).get("tasks", []))
                tasks += [task for task in camera.get("tasks", []) if task not in tasks]
                merged[name] = {**camera, "tasks": tasks}
        return merged

    def serves(self, camera: str, task: str | None = None) -> bool:
        """An online bridge lists this camera (and task): its entities are available."""
        return any(
            bridge.online
            and camera in bridge.cameras()
            and (task is None or task in bridge.tasks(camera))
            for bridge in self.all()
        )

    def site_models(self) -> dict[str, dict[str, Any]]:
        """Models of the bridges without a device of their own (a single bridge's, as ever)."""
        models: dict[str, dict[str, Any]] = {}
        for bridge in self.all():
            if not bridge.shared:
                models.update(bridge.models())
        return models

    def counters(self, camera: str) -> dict[str, Any]:
        """One camera's counters summed over the bridges; latency averaged by their results."""
        found = [
            counters
            for bridge in self.all()
            if isinstance(counters := (bridge.info or {}).get("counters", {}).get(camera), dict)
        ]
        if len(found) == 1:
            return dict(found[0])  # one bridge: its counters as they are
        total: dict[str, Any] = {}
        weighted = 0.0
        weights = 0.0
        for counters in found:
            for key, value in counters.items():
                if not _is_number(value):
                    continue
                if key == _LATENCY:
                    results = counters.get(_RESULTS)
                    weight = float(results) if _is_number(results) and results > 0 else 1.0
                    weighted += value * weight
                    weights += weight
                else:
                    total[key] = total.get(key, 0) + value
        if weights:
            total[_LATENCY] = round(weighted / weights, 1)
        return total


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)

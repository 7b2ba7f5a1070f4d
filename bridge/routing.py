"""Where an incoming message goes: one table from subscribed topic filters to routes.

The table is built on ``protocol.Topics`` (the bridge's own topics) and the cameras' topics; the
bridge subscribes to exactly its filters.  The bridge's own topics win over cameras' filters.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from paho.mqtt.client import topic_matches_sub

from bridge.config import CameraConfig
from bridge.protocol import Topics


class Route(enum.Enum):
    """What the bridge does with a message."""

    #: Home Assistant's birth message: announce discovery again.
    HA_STATUS = "ha_status"
    #: An on-demand analysis request.
    REQUEST = "request"
    #: A meter's value set by hand (``<base>/<camera>/meter/set``).
    METER_SET = "meter_set"
    #: An enrolment command (``<base>/faces/<action>``); only when the faces task is on.
    FACES = "faces"
    #: A camera's frame.
    FRAME = "frame"


@dataclass(frozen=True)
class Routed:
    """One route a message takes, and the camera it concerns (if any)."""

    route: Route
    camera: str | None = None
    #: The command's last topic level (``add``, ``list``...) for ``Route.FACES``.
    action: str | None = None


class Router:
    """The routing table: (topic filter, route, camera) in order of precedence."""

    def __init__(
        self, topics: Topics, cameras: Mapping[str, CameraConfig], *, faces: bool = False
    ) -> None:
        self.topics = topics
        #: Enrolment is only listened to when the faces task is on (``faces``).
        enrolment = [(topics.faces("+"), Route.FACES, None)] if faces else []
        self.table: list[tuple[str, Route, str | None]] = [
            (topics.ha_status, Route.HA_STATUS, None),
            (topics.request, Route.REQUEST, None),
            *enrolment,
            (topics.meter_set("+"), Route.METER_SET, None),
            *((cam.topic, Route.FRAME, cam.name) for cam in cameras.values()),
        ]

    @property
    def subscriptions(self) -> set[str]:
        """Every topic filter the bridge subscribes to."""
        return {topic_filter for topic_filter, _, _ in self.table}

    def subscriptions_for(self, share: str | None) -> set[str]:
        """The filters to subscribe to: with ``share``, frames and requests as ``$share/...``.

        The broker then hands each frame and request to one bridge of the group; everything
        else (a meter set by hand, enrolment, Home Assistant's status) reaches every bridge.
        """
        if share is None:
            return self.subscriptions
        shared = (Route.FRAME, Route.REQUEST)
        return {
            f"$share/{share}/{topic_filter}" if route in shared else topic_filter
            for topic_filter, route, _ in self.table
        }

    def route(self, topic: str) -> list[Routed]:
        """The routes of a message: one of the bridge's own, or every camera whose filter fits."""
        routes: list[Routed] = []
        for topic_filter, route, camera in self.table:
            if not topic_matches_sub(topic_filter, topic):
                continue
            if route is Route.FRAME:
                routes.append(Routed(route, camera))
            elif route is Route.METER_SET:
                return [Routed(route, self.topics.camera_of(topic))]
            elif route is Route.FACES:
                return [Routed(route, action=topic.rsplit("/", maxsplit=1)[-1])]
            else:
                return [Routed(route)]
        return routes

"""One routing table: each incoming topic goes to frames, requests, meter settings, enrolment
commands or HA status."""

from __future__ import annotations

from bridge.config import parse_config
from bridge.protocol import Topics
from bridge.routing import Route, Routed, Router

CONFIG = parse_config(
    {
        "mqtt": {"base_topic": "itt"},
        "cameras": {
            "door": {"topic": "frigate/door/+/snapshot"},
            "everything": {"topic": "frigate/#"},
            "gas": {
                "topic": "cam/gas",
                "tasks": ["meter"],
                "meter": {"roi": [1, 2, 3, 4], "digits": 6},
            },
        },
    }
)
ROUTER = Router(Topics("itt"), CONFIG.cameras)


def test_a_snapshot_goes_to_every_camera_whose_filter_fits_it() -> None:
    assert ROUTER.route("frigate/door/person/snapshot") == [
        Routed(Route.FRAME, "door"),
        Routed(Route.FRAME, "everything"),
    ]
    assert ROUTER.route("cam/gas") == [Routed(Route.FRAME, "gas")]


def test_the_bridges_own_topics_are_routed_to_its_own_handlers() -> None:
    assert ROUTER.route("itt/request") == [Routed(Route.REQUEST)]
    assert ROUTER.route("homeassistant/status") == [Routed(Route.HA_STATUS)]
    assert ROUTER.route("itt/gas/meter/set") == [Routed(Route.METER_SET, "gas")]


def test_the_bridge_subscribes_to_exactly_the_tables_filters() -> None:
    assert ROUTER.subscriptions == {
        "itt/request",
        "homeassistant/status",
        "itt/+/meter/set",
        "frigate/door/+/snapshot",
        "frigate/#",
        "cam/gas",
    }


def test_a_topic_nobody_listens_to_goes_nowhere() -> None:
    assert ROUTER.route("itt/door/caption") == []


def test_enrolment_commands_are_routed_only_when_the_faces_task_is_on() -> None:
    with_faces = Router(Topics("itt"), CONFIG.cameras, faces=True)
    assert with_faces.route("itt/faces/add") == [Routed(Route.FACES, action="add")]
    assert with_faces.route("itt/faces/rename") == [Routed(Route.FACES, action="rename")]
    assert with_faces.subscriptions == ROUTER.subscriptions | {"itt/faces/+"}
    assert ROUTER.route("itt/faces/add") == []

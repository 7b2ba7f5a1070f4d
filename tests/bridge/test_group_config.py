"""Several bridges, one site: the identities a user gets from ``bridge`` and ``mqtt.share``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from PIL import Image

import tests.bridge.fault_engines  # noqa: F401 - registers ``engine: faulty``
from bridge.config import host_id, parse_config
from bridge.dedup import change_score, scene_signature
from bridge.discovery import discovery_messages
from bridge.errors import ConfigError
from bridge.group import GroupView, decode_signature, encode_signature
from bridge.protocol import Topics
from bridge.routing import Router
from bridge.service import BridgeService
from tests.bridge.conftest import FIXTURES
from tests.bridge.test_protocol import same_shape

CAMERAS = {"porch": {"topic": "cam/porch", "tasks": ["caption"]}}


def config(mqtt: dict[str, Any] | None = None, bridge: dict[str, Any] | None = None) -> Any:
    data: dict[str, Any] = {"cameras": CAMERAS, "mqtt": {"base_topic": "home/itt", **(mqtt or {})}}
    if bridge is not None:
        data["bridge"] = bridge
    return parse_config(data, "bridge.yaml")


def test_a_bridge_is_named_after_its_host_and_serves_the_site_of_its_base_topic() -> None:
    plain = config()
    assert plain.bridge_id == host_id()
    assert plain.site_id == "home_itt"
    assert plain.mqtt.client_id == "image-to-text-home-itt"  # as before: the session is kept


def test_a_single_bridge_that_named_itself_keeps_that_name_in_home_assistant() -> None:
    named = config(bridge={"id": "garage"})
    assert (named.bridge_id, named.site_id) == ("garage", "garage")
    unique_ids = {payload["unique_id"] for _, payload in discovery_messages(named)}
    assert unique_ids == {"garage_porch_caption"}


def test_members_of_a_group_share_the_site_but_not_the_client_id() -> None:
    one = config({"share": "house"}, {"id": "nuc"})
    two = config({"share": "house"}, {"id": "gpu_box"})
    assert one.site_id == two.site_id == "home_itt"
    assert one.mqtt.client_id == "image-to-text-home-itt-nuc"
    assert two.mqtt.client_id == "image-to-text-home-itt-gpu_box"
    assert discovery_messages(one) == discovery_messages(two)  # one set of sensors, not two


def test_a_group_takes_frames_and_requests_shared_and_the_rest_plainly() -> None:
    group = config({"share": "house"}, {"id": "nuc"})
    router = Router(Topics("home/itt"), group.cameras, faces=True)
    assert router.subscriptions_for("house") == {
        "$share/house/cam/porch",
        "$share/house/home/itt/request",
        "home/itt/+/meter/set",
        "home/itt/faces/+",
        "homeassistant/status",
    }


def test_sharing_needs_mqtt5_so_the_embedded_broker_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.share: shared subscriptions need MQTT 5"):
        config({"share": "house", "host": "embedded"})


@pytest.mark.parametrize("group", ["a/b", "x+", "#", ""])
def test_a_group_name_that_is_not_one_topic_level_is_refused(group: str) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.share"):
        config({"share": group})


def test_the_bridges_info_has_the_shape_of_the_group_example() -> None:
    example = json.loads((FIXTURES / "protocol" / "bridges_info.json").read_text("utf-8"))
    cfg = parse_config(
        {
            "mqtt": {"base_topic": "image_to_text", "share": "home"},
            "bridge": {"id": "nuc"},
            "cameras": example["cameras"]
            | {
                "gas_meter": {
                    "topic": "cameras/gas_meter/snapshot",
                    "tasks": ["meter"],
                    "meter": {
                        "roi": [0, 0, 80, 20],
                        "digits": 4,
                        "decimals": 3,
                        "unit": "m³",
                        "device_class": "gas",
                    },
                }
            },
            "models": {"caption": {"engine": "faulty"}},
        }
    )

    async def info() -> dict[str, Any]:
        service = BridgeService(cfg)
        service.dispatch.start()
        for state in service.accounts.cameras.values():
            state.counters.latency_ms = 50.0  # as after each camera's first frame
        try:
            return service.info_payload()
        finally:
            await service.dispatch.stop()

    ours = asyncio.run(info())
    same_shape(ours, example)
    assert (ours["bridge_id"], ours["site_id"], ours["share"]) == ("nuc", "image_to_text", "home")


def test_the_per_bridge_topics_are_under_bridges_and_documented() -> None:
    topics = Topics("image_to_text")
    assert topics.bridge_state("nuc") == "image_to_text/bridges/nuc/state"
    assert topics.bridge_info("nuc") == "image_to_text/bridges/nuc/info"
    doc = (FIXTURES.parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")
    for topic in ("<base>/bridges/<bridge_id>/state", "<base>/bridges/<bridge_id>/info"):
        assert topic in doc


def _result(bridge_id: str, captured_at: str) -> bytes:
    return json.dumps(
        {"camera": "porch", "task": "caption", "bridge_id": bridge_id, "captured_at": captured_at}
    ).encode()


def test_a_result_older_than_the_groups_newest_is_not_the_newest() -> None:
    async def story() -> list[bool]:
        group = GroupView(config({"share": "house"}, {"id": "nuc"}), Topics("home/itt"))
        seen: list[str] = []
        group.on_remote = lambda camera, task, result: seen.append(result["bridge_id"])
        assert group.take(
            "home/itt/porch/caption", _result("gpu", "2026-12-03T10:00:05+00:00"), True
        )
        assert seen == ["gpu"]  # another bridge's newest result: scenes and meters learn it
        return [
            await group.claim("porch", "caption", "2026-12-03T10:00:04+00:00", late=False),
            await group.claim("porch", "caption", "2026-12-03T10:00:06+00:00", late=False),
        ]

    assert asyncio.run(story()) == [False, True]


def test_a_backlog_frame_is_not_newest_once_another_bridge_answered_the_camera() -> None:
    async def story() -> list[bool]:
        group = GroupView(config({"share": "house"}, {"id": "nuc"}), Topics("home/itt"))
        group.connected(resumed=True)  # the broker may hand over what it kept meanwhile
        group.take("home/itt/porch/caption", _result("gpu", "2026-12-03T10:00:05+00:00"), True)
        group.take("home/itt/bridges/nuc/state", b"online", False)  # the backlog is over
        late = await group.claim("porch", "caption", "2026-12-03T11:00:00+00:00", late=True)
        fresh = await group.claim("porch", "caption", "2026-12-03T11:00:01+00:00", late=False)
        return [late, fresh]

    assert asyncio.run(story()) == [False, True]


def test_a_scene_signature_survives_its_trip_through_a_result() -> None:
    image = Image.effect_noise((320, 180), 60).convert("RGB")
    signature = scene_signature(image)
    decoded = decode_signature(encode_signature(signature))
    assert decoded is not None
    assert change_score(signature, decoded) < 0.003  # quantised to 1/255: far below any threshold
    assert decode_signature("36:not base64!") is None

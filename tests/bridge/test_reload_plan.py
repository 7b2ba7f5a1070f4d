"""What a SIGHUP can change in a running bridge, decided before anything is touched."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.config import parse_config
from bridge.errors import ConfigError
from bridge.reload import plan_reload


def config(cameras: dict[str, Any], **sections: Any) -> Any:
    return parse_config({"cameras": cameras, **sections}, "bridge.yaml")


def meter(topic: str, digits: int = 6) -> dict[str, Any]:
    return {"topic": topic, "tasks": ["meter"], "meter": {"roi": [0, 0, 60, 20], "digits": digits}}


def test_cameras_added_removed_and_changed_are_told_apart() -> None:
    running = config({"porch": {"topic": "cam/porch"}, "gas": meter("cam/gas"), "old": meter("x")})
    new = config(
        {
            "porch": {"topic": "cam/porch"},
            "gas": meter("cam/gas", digits=8),
            "water": meter("cam/water"),
        },
        models={"caption": {}, "meter": {}},
    )
    plan = plan_reload(running, new)
    assert (plan.added, plan.removed, plan.changed) == (("water",), ("old",), ("gas",))
    assert plan.restart == ()
    assert plan.config.cameras["gas"].meter is not None
    assert plan.config.cameras["gas"].meter.digits == 8
    assert plan.summary() == "cameras added: water; removed: old; changed: gas"


def test_broker_and_model_changes_wait_for_a_restart_and_keep_running_as_they_are() -> None:
    running = config({"porch": {"topic": "cam/porch"}})
    new = config(
        {"porch": {"topic": "cam/porch", "dedup": {"threshold": 0.1}}},
        mqtt={"host": "broker.lan"},
        models={"caption": {"max_new_tokens": 12}},
    )
    plan = plan_reload(running, new)
    assert set(plan.restart) == {"mqtt", "models"}
    assert plan.changed == ("porch",)
    assert plan.config.mqtt.host == "localhost"
    assert plan.config.models["caption"].max_new_tokens == 30
    assert plan.config.cameras["porch"].dedup_threshold == 0.1
    assert plan.config.source == "bridge.yaml"


def test_a_camera_needing_a_model_that_is_not_running_refuses_the_whole_file() -> None:
    running = config({"porch": {"topic": "cam/porch"}})
    new = config({"porch": {"topic": "cam/porch"}, "gate": {"topic": "cam/gate", "tasks": ["ocr"]}})
    with pytest.raises(ConfigError) as refused:
        plan_reload(running, new)
    assert str(refused.value).startswith("bridge.yaml: cameras.gate.tasks: no ocr model is running")

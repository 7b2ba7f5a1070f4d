"""Over a real Mosquitto: enrol a person with ``<base>/faces/add``; a door frame names them.

The bridge runs as users run it (``image-to-text run``); photos are real (tests/fixtures/faces).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.bridge.conftest import FIXTURES, REPO, BridgeProcess, Watcher

pytestmark = pytest.mark.e2e
FACES = FIXTURES / "faces"


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


@pytest.fixture
def door(
    bridge_config: Callable[..., Path], run_bridge: Callable[[Path], BridgeProcess]
) -> BridgeProcess:
    config = bridge_config(
        cameras={"front_door": {"topic": "doorbell/snapshot", "tasks": ["faces"], "dedup": False}},
        models={"faces": {"min_face": 40}},
    )
    return run_bridge(config)


def test_a_person_enrolled_over_mqtt_is_named_at_the_door(
    door: BridgeProcess, watcher: Watcher
) -> None:
    watcher.wait_for("itt/bridge/state", lambda p: p == b"online", 60)
    watcher.wait_for("itt/bridge/info", lambda p: b'"ready"' in p, 60)
    photos = [b64(FACES / "anna_1.jpg"), b64(FACES / "anna_2.jpg"), b64(FACES / "group.jpg")]
    command = {"id": "e1", "reply_to": "me/faces", "name": "Anna", "images": photos}
    watcher.publish("itt/faces/add", json.dumps(command))
    reply = watcher.wait_json("me/faces", id="e1")
    assert reply["ok"] is True
    assert reply["added"] == 2
    assert reply["refused"] == [
        {
            "photo": "photo 3",
            "code": "several_faces",
            "reason": "3 faces found; use a photo of this person alone",
        }
    ]
    assert "images" not in reply  # photos never come back over MQTT

    # the database is a file next to the configuration, with descriptors only
    stored = json.loads((door.config_path.parent / "faces.json").read_text())
    assert [len(d) for d in stored["people"]["Anna"]["descriptors"]] == [128, 128]

    watcher.publish("doorbell/snapshot", (FACES / "couple.jpg").read_bytes())
    result = watcher.wait_json("itt/front_door/faces")
    assert result["names"] == ["Anna", "unknown"]
    assert result["text"] == "Anna and someone"
    assert [face["name"] for face in result["faces"]] == ["Anna", "unknown"]
    assert all(len(face["box"]) == 4 for face in result["faces"])

    watcher.publish("itt/faces/list", json.dumps({"id": "l1", "reply_to": "me/faces"}))
    listed = watcher.wait_json("me/faces", id="l1")
    assert listed["people"] == [{"name": "Anna", "photos": 2, "threshold": None}]


def test_bad_enrolment_commands_are_answered_with_the_reason(
    door: BridgeProcess, watcher: Watcher
) -> None:
    watcher.wait_for("itt/bridge/info", lambda p: b'"ready"' in p, 60)
    no_face = {
        "id": "n1",
        "reply_to": "me/faces",
        "name": "Anna",
        "images": [b64(REPO / "config" / "samples" / "coffee_cup.jpg")],
    }
    watcher.publish("itt/faces/add", json.dumps(no_face))
    reply = watcher.wait_json("me/faces", id="n1")
    assert reply["ok"] is False
    assert reply["error"] == "no_photo_added"
    assert reply["refused"][0]["code"] == "no_face"

    bad = {"id": "n2", "reply_to": "me/faces", "name": "Anna", "images": ["not base64!"]}
    watcher.publish("itt/faces/add", json.dumps(bad))
    assert watcher.wait_json("me/faces", id="n2")["error"] == "bad_base64"

    unknown = {"id": "n3", "reply_to": "me/faces", "name": "Nobody"}
    watcher.publish("itt/faces/remove", json.dumps(unknown))
    assert watcher.wait_json("me/faces", id="n3")["error"] == "unknown_person"

    # the bridge keeps serving frames after all that
    watcher.publish("doorbell/snapshot", (FACES / "stranger_1.jpg").read_bytes())
    assert watcher.wait_json("itt/front_door/faces")["names"] == ["unknown"]


def test_the_demo_names_the_sample_visitor_from_its_sample_enrolment() -> None:
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "bridge", "demo"],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=REPO,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "enrolled Anna from 2 photos" in done.stdout
    assert "doorbell faces       'Anna and someone [Anna 0." in done.stdout
    assert not (REPO / "config" / "faces.json").exists()  # the sample enrolment stays in memory

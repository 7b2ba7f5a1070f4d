"""Several bridges, one job: a share group against a real Mosquitto, end to end.

Two (or one) real bridge processes, each with its own ``bridge.id``, in the ``mqtt.share`` group
``home``; cameras publish as cameras do, and every answer is read back from the broker
(``group_kit.py``).  ``docs/reliability.md`` states the guarantees these tests hold.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.bridge.conftest import Mosquitto, Watcher, jpeg, png
from tests.bridge.fault_engines import MODEL_CALL_STARTED
from tests.bridge.group_kit import (
    Answer,
    Answers,
    Stream,
    meter_cameras,
    meter_frame,
    start_bridge,
    stop_bridges,
    write_config,
)
from tests.support.waiting import wait_until

METER_MODEL = {"meter": {"engine": "meter", "threads": 1}}
PORCH = {"porch": {"topic": "cam/porch", "tasks": ["caption"]}}


@pytest.fixture(autouse=True)
def _no_bridge_outlives_its_test() -> Iterator[None]:
    yield
    stop_bridges()


def two_bridges(
    tmp_path: Path, port: int, cameras: dict[str, Any], models: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Bridges ``nuc`` and ``gpu`` of group ``home``; ``models`` gives each its models."""
    return {
        bridge_id: start_bridge(
            write_config(tmp_path / bridge_id, port, bridge_id, cameras, models[bridge_id]),
            tmp_path / f"{bridge_id}.log",
        )
        for bridge_id in ("nuc", "gpu")
    }


def wait_answered(answers: Answers, stream: Stream, timeout: float = 120) -> None:
    """Until every frame sent is answered, or (a newer one having come) counted superseded."""

    def done() -> bool:
        missing = sum(1 for frame, _ in stream.sent if not answers.answered(frame))
        return missing <= answers.superseded()

    wait_until(done, timeout, "every frame answered or superseded")


def test_two_bridges_split_four_meter_cameras_and_answer_every_frame_once(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    answers = Answers(mosquitto.port)
    two_bridges(tmp_path, mosquitto.port, meter_cameras(), {"nuc": METER_MODEL, "gpu": METER_MODEL})
    answers.wait_online("nuc", "gpu")
    stream = Stream(mosquitto.port)
    for _ in range(10):
        stream.publish_round(pause=0.1)
    wait_answered(answers, stream)
    time.sleep(6)  # the bridges' final counters (published at most every 5 s)

    per_frame = [answers.answered(frame) for frame, _ in stream.sent]
    assert all(len(found) <= 1 for found in per_frame), "a frame was answered twice"
    lost = sum(1 for found in per_frame if not found)
    assert lost == answers.superseded()  # each unanswered frame was superseded by a newer one
    received = sum(
        c["received"] for info in answers.infos.values() for c in info["counters"].values()
    )
    assert received == len(stream.sent) == 40  # the broker gave each frame to exactly one
    split = Counter(found[0].bridge_id for found in per_frame if found)
    assert set(split) == {"nuc", "gpu"}, f"both bridges do some of the work: {split}"
    assert_order_kept(answers)
    # A group has no single state: the single-bridge topics are left to single bridges.
    late = Watcher(mosquitto.port, ["itt/bridge/#"])
    time.sleep(1)
    assert late.inbox.latest("itt/bridge/state") is None
    late.close()


def serving(answers: Answers, bridge_id: str) -> set[str]:
    """The cameras a bridge's latest info lists."""
    with answers.lock:
        return set(answers.infos.get(bridge_id, {}).get("cameras", {}))


#: Two bridges publishing one camera's results closer together than this may both publish them
#: as newest: neither has read the other's retained result yet (``docs/protocol.md``, "Order").
CROSSING = 0.5


def assert_order_kept(answers: Answers) -> None:
    """Per camera, results published as newest never step back in ``captured_at``.

    Except where two bridges' results crossed on their way through the broker, which the
    protocol allows; an older result published once the newer one could be known may not.
    """
    newest: dict[str, Answer] = {}
    for answer in answers.order:
        if answer.kind != "result" or not answer.newest:
            continue
        before = newest.get(answer.camera)
        if before is not None and answer.captured_at < before.captured_at:
            crossed = (
                before.bridge_id != answer.bridge_id and answer.arrived - before.arrived < CROSSING
            )
            assert crossed, f"{answer} stepped back behind {before}"
            continue
        newest[answer.camera] = answer


def test_a_bridge_killed_mid_stream_loses_no_frame_that_reached_the_broker(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    answers = Answers(mosquitto.port)
    bridges = two_bridges(
        tmp_path, mosquitto.port, meter_cameras(), {"nuc": METER_MODEL, "gpu": METER_MODEL}
    )
    answers.wait_online("nuc", "gpu")
    stream = Stream(mosquitto.port)
    for _ in range(4):
        stream.publish_round(pause=0.05)
    bridges["gpu"].kill()  # SIGKILL, mid-stream: frames may be in its hands
    wait_until(lambda: answers.states.get("gpu") == b"offline", 30, "gpu's last will")
    killed_at = len(stream.sent)
    answered_before = {f for f, _ in stream.sent if answers.answered(f)}
    for _ in range(4):
        stream.publish_round(pause=0.05)  # published while gpu is dead
    bridges["gpu"] = start_bridge(bridges["gpu"].config_path, tmp_path / "gpu-again.log")
    answers.wait_online("nuc", "gpu")
    for _ in range(2):
        stream.publish_round(pause=0.05)
    wait_answered(answers, stream)

    sent = [frame for frame, _ in stream.sent]
    unanswered = [frame for frame in sent if not answers.answered(frame)]
    assert len(unanswered) <= answers.superseded(), "frames were lost"
    # Answered twice only if gpu published it but died before acknowledging it.
    for frame in sent:
        found = answers.answered(frame)
        if len(found) > 1:
            assert frame in answered_before, found
            assert found[0].bridge_id == "gpu", found
    while_dead = {a.bridge_id for f in sent[killed_at:-8] for a in answers.answered(f)}
    # Mosquitto 2.0 keeps handing the dead member's session its share: the restart answers it.
    assert while_dead == {"nuc", "gpu"}, while_dead
    assert_order_kept(answers)


def test_an_older_result_never_replaces_the_newer_one_another_bridge_published(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    answers = Answers(mosquitto.port)
    slow = {"caption": {"engine": "faulty", "model": "delay=4"}}
    quick = {"caption": {"engine": "faulty", "model": "delay=0"}}
    bridges = two_bridges(tmp_path, mosquitto.port, PORCH, {"nuc": slow, "gpu": quick})
    answers.wait_online("nuc", "gpu")
    watcher = Watcher(mosquitto.port, ["itt/porch/caption"])
    frames = [png(Image.new("RGB", (320, 240), colour)) for colour in _colours()]
    watcher.publish("cam/porch", frames[0])
    # Wait until we know who has the first frame; then the slow bridge gets the older one.
    wait_until(
        lambda: (
            MODEL_CALL_STARTED in bridges["nuc"].log or watcher.inbox.latest("itt/porch/caption")
        ),
        30,
        "the first frame taken",
    )
    if MODEL_CALL_STARTED in bridges["nuc"].log:
        older, newer = frames[0], frames[1]
        watcher.publish("cam/porch", newer)  # to gpu, answered at once
    else:
        older, newer = frames[1], frames[2]
        watcher.publish("cam/porch", older)  # to nuc: four seconds in its model
        wait_until(lambda: MODEL_CALL_STARTED in bridges["nuc"].log, 30, "nuc on the frame")
        watcher.publish("cam/porch", newer)  # to gpu, answered at once
    stale = watcher.wait_json("itt/porch/caption", frame_id=_sha(older), timeout=30)
    assert stale["newest"] is False
    assert stale["bridge_id"] == "nuc"
    watcher.close()
    late = Watcher(mosquitto.port, ["itt/porch/caption"])
    retained = late.wait_json("itt/porch/caption", timeout=10)
    late.close()
    assert retained["frame_id"] == _sha(newer), "the retained result is the newest frame's"
    assert "newest" not in retained


def test_a_scene_analysed_by_one_bridge_is_not_analysed_again_by_the_other(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    answers = Answers(mosquitto.port)
    quick = {"caption": {"engine": "faulty", "model": "delay=0"}}
    bridges = two_bridges(tmp_path, mosquitto.port, PORCH, {"nuc": quick, "gpu": quick})
    answers.wait_online("nuc", "gpu")
    watcher = Watcher(mosquitto.port, ["itt/porch/caption"])
    scene = Image.new("RGB", (320, 240), (90, 140, 90))
    first, again = png(scene), jpeg(scene)  # the same scene, other bytes
    watcher.publish("cam/porch", first)
    analysed = watcher.wait_json("itt/porch/caption", frame_id=_sha(first))
    assert "scene" in analysed  # the scene's signature travels with the retained result
    time.sleep(1)  # the other bridge reads the retained result
    watcher.publish("cam/porch", again)  # the broker hands it to the other bridge
    repeat = watcher.wait_json("itt/porch/caption", frame_id=_sha(again))
    watcher.close()
    assert repeat["bridge_id"] != analysed["bridge_id"]
    assert repeat["unchanged"] is True
    assert repeat["unchanged_since"] == _sha(first)
    assert repeat["text"] == analysed["text"]
    assert MODEL_CALL_STARTED not in bridges[repeat["bridge_id"]].log, "no model time spent"


def test_a_meter_reading_one_bridge_published_is_the_other_ones_previous_value(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    answers = Answers(mosquitto.port)
    # meter_1's frames are read surely; the shipped weights hold meter_0's thin `1` back
    cameras = {"meter_1": meter_cameras()["meter_1"]}
    two_bridges(tmp_path, mosquitto.port, cameras, {"nuc": METER_MODEL, "gpu": METER_MODEL})
    answers.wait_online("nuc", "gpu")
    watcher = Watcher(mosquitto.port, ["itt/meter_1/#"])
    higher, _ = meter_frame("meter_1", 9)  # 00001.063
    lower, _ = meter_frame("meter_1", 2)  # 00001.014
    watcher.publish("cam/meter_1", higher)
    read = watcher.wait_json("itt/meter_1/meter", frame_id=_sha(higher))
    assert read["value"] == 1.063
    time.sleep(1)
    watcher.publish("cam/meter_1", lower)  # to the other bridge, which never saw 1.063 itself
    error = watcher.wait_json("itt/meter_1/error", frame_id=_sha(lower))
    watcher.close()
    assert error["bridge_id"] != read["bridge_id"]
    assert error["error"] == "meter_decreased"


def test_a_camera_moved_to_another_bridge_by_sighup_starts_from_the_group_reading(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    answers = Answers(mosquitto.port)
    meters = meter_cameras()
    gas, water = {"meter_0": meters["meter_0"]}, {"meter_1": meters["meter_1"]}
    bridges = {
        "nuc": start_bridge(
            write_config(tmp_path / "nuc", mosquitto.port, "nuc", gas, METER_MODEL),
            tmp_path / "nuc.log",
        ),
        "gpu": start_bridge(
            write_config(tmp_path / "gpu", mosquitto.port, "gpu", water, METER_MODEL),
            tmp_path / "gpu.log",
        ),
    }
    answers.wait_online("nuc", "gpu")
    watcher = Watcher(mosquitto.port, ["itt/meter_1/#"])
    higher, _ = meter_frame("meter_1", 9)  # 00001.063
    watcher.publish("cam/meter_1", higher)  # only gpu serves meter_1 so far
    read = watcher.wait_json("itt/meter_1/meter", frame_id=_sha(higher))
    assert (read["bridge_id"], read["value"]) == ("gpu", 1.063)

    # meter_1 moves from gpu to nuc: gpu lets it go first, then nuc takes it, both by SIGHUP.
    for bridge_id, cameras in (("gpu", gas), ("nuc", {**gas, **water})):
        write_config(tmp_path / bridge_id, mosquitto.port, bridge_id, cameras, METER_MODEL)
        bridges[bridge_id].hangup()
        wait_until(lambda b=bridge_id, c=set(cameras): serving(answers, b) == c, 30, "reloaded")
    lower, _ = meter_frame("meter_1", 2)  # 00001.014: lower than what gpu published
    watcher.publish("cam/meter_1", lower)
    error = watcher.wait_json("itt/meter_1/error", frame_id=_sha(lower), timeout=30)
    watcher.close()
    assert (error["bridge_id"], error["error"]) == ("nuc", "meter_decreased")
    late = Watcher(mosquitto.port, ["itt/meter_1/meter"])
    assert late.wait_json("itt/meter_1/meter", timeout=10)["value"] == 1.063, "no step back"
    late.close()


def test_a_single_bridge_keeps_its_old_topics_and_both_states_say_offline_after_sigkill(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = write_config(
        tmp_path / "solo", mosquitto.port, "solo", PORCH, {"caption": {"engine": "faulty"}}, None
    )
    bridge = start_bridge(config, tmp_path / "solo.log")
    watcher = Watcher(mosquitto.port, ["itt/#"])
    for topic in ("itt/bridge/state", "itt/bridges/solo/state"):
        watcher.wait_for(topic, lambda p: p == b"online", timeout=90)
    legacy = watcher.wait_json("itt/bridge/info")
    own = watcher.wait_json("itt/bridges/solo/info")
    assert "site_id" not in legacy  # exactly as before
    assert legacy["bridge_id"] == "solo"
    assert (own["bridge_id"], own["site_id"], own["share"]) == ("solo", "solo", None)
    frame = png(Image.new("RGB", (320, 240), (200, 200, 40)))
    watcher.publish("cam/porch", frame)
    result = watcher.wait_json("itt/porch/caption", frame_id=_sha(frame))
    assert result["bridge_id"] == "solo"
    bridge.kill()
    for topic in ("itt/bridge/state", "itt/bridges/solo/state"):
        watcher.wait_for(topic, lambda p: p == b"offline", timeout=30)
    watcher.close()
    late = Watcher(mosquitto.port, ["itt/bridge/state", "itt/bridges/solo/state"])
    time.sleep(1)
    assert late.inbox.latest("itt/bridge/state") == b"offline"
    assert late.inbox.latest("itt/bridges/solo/state") == b"offline"
    late.close()


def _colours() -> list[tuple[int, int, int]]:
    return [(90, 140, 90), (200, 200, 40), (40, 160, 200)]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

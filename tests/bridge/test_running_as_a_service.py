"""``image-to-text run`` as systemd runs it: log formats, SIGHUP reloads, readiness messages.

A real bridge process against a real Mosquitto, a real meter model, and for ``Type=notify`` a
real datagram socket standing in for systemd's ``$NOTIFY_SOCKET``.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.bridge import meter_kit
from tests.bridge.conftest import BridgeProcess, Watcher, jpeg
from tests.bridge.meter_kit import METER
from tests.support.waiting import wait_until

MODELS = {"meter": {"engine": "meter", "threads": 1}}
#: A camera showing ``METER``: every frame read (no dedup), ``max_rate`` 1000 unless given.
meter_camera = partial(meter_kit.meter_camera, dedup=False, max_rate=1000)


def frame_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def frame(quality: int = 90) -> bytes:
    """The meter's snapshot; another JPEG quality gives other bytes (another frame id)."""
    return jpeg(METER.image, quality=quality)


def online(watcher: Watcher) -> None:
    """The bridge has subscribed: frames published from now on reach it."""
    watcher.wait_for("itt/bridge/state", lambda p: p == b"online")


def log_has(bridge: BridgeProcess, pattern: str, timeout: float = 30) -> re.Match[str]:
    return wait_until(
        lambda: re.search(pattern, bridge.log, re.MULTILINE), timeout, f"log line {pattern!r}"
    )


def test_plain_log_lines_by_default(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    watcher: Watcher,
) -> None:
    bridge = run_bridge(bridge_config(cameras={"gas": meter_camera("cam/gas")}, models=MODELS))
    online(watcher)
    watcher.publish("cam/gas", frame())
    watcher.wait_json("itt/gas/meter")
    line = log_has(bridge, r"(?m)^.*bridge\.publishing: gas meter: 01234\.567.*$").group(0)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO bridge\.publishing: ", line)
    assert not line.startswith("{")


def test_json_log_lines_carry_time_level_logger_and_the_frames_camera(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    watcher: Watcher,
) -> None:
    config = bridge_config(cameras={"gas": meter_camera("cam/gas")}, models=MODELS)
    bridge = run_bridge(config, options=("--log-format", "json"))
    online(watcher)
    watcher.publish("cam/gas", frame())
    result = watcher.wait_json("itt/gas/meter")
    watcher.publish("cam/gas", b"\xff\xd8\xff broken")
    error = watcher.wait_json("itt/gas/error")
    # The answer's line is written once its publish is acknowledged, which can be after the
    # broken frame's refusal: wait for both.
    log_has(bridge, "decode_failed")
    log_has(bridge, r"gas meter: 01234\.567")

    lines = [json.loads(line) for line in bridge.log.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", x["time"]) for x in lines)
    (answered,) = [x for x in lines if x["logger"] == "bridge.publishing" and x["level"] == "info"]
    assert (answered["camera"], answered["frame_id"]) == ("gas", result["frame_id"])
    assert answered["message"].startswith("gas meter: 01234.567")
    (refused,) = [x for x in lines if x["level"] == "warning" and "decode_failed" in x["message"]]
    assert (refused["camera"], refused["frame_id"]) == ("gas", error["frame_id"])
    connected = [x for x in lines if x["logger"] == "bridge.transport"]
    assert "camera" not in connected[0]


def test_sighup_adds_a_camera_whose_frames_are_then_answered(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    watcher: Watcher,
) -> None:
    config = bridge_config(cameras={"gas": meter_camera("cam/gas")}, models=MODELS)
    bridge = run_bridge(config)
    online(watcher)
    watcher.publish("cam/gas", frame())
    watcher.wait_json("itt/gas/meter")
    watcher.publish("cam/water", frame(80))  # nobody listens to it yet

    bridge_config(
        cameras={"gas": meter_camera("cam/gas"), "water": meter_camera("cam/water")},
        models=MODELS,
    )
    bridge.hangup()
    log_has(bridge, r"reloaded .*bridge\.yaml: cameras added: water")
    info = watcher.wait_for("itt/bridge/info", lambda p: "water" in json.loads(p)["cameras"])
    assert "gas" in json.loads(info)["cameras"]
    watcher.publish("cam/water", frame(85))
    water = watcher.wait_json("itt/water/meter", frame_id=frame_id(frame(85)))
    assert water["value"] == 1234.567
    watcher.publish("cam/gas", frame(70))
    watcher.wait_json("itt/gas/meter", frame_id=frame_id(frame(70)))
    assert bridge.terminate() == 0


def test_a_broken_file_is_refused_naming_file_and_key_and_the_old_cameras_go_on(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    watcher: Watcher,
) -> None:
    config = bridge_config(cameras={"gas": meter_camera("cam/gas")}, models=MODELS)
    bridge = run_bridge(config)
    online(watcher)
    watcher.publish("cam/gas", frame())
    watcher.wait_json("itt/gas/meter")

    broken = meter_camera("cam/gas2")
    broken["meter"]["digits"] = -1
    bridge_config(cameras={"gas": meter_camera("cam/gas"), "gas2": broken}, models=MODELS)
    bridge.hangup()
    refused = log_has(bridge, r"reload refused.*$").group(0)
    assert f"{config}: cameras.gas2.meter.digits: expected a positive number" in refused

    watcher.publish("cam/gas", frame(80))
    second = watcher.wait_json("itt/gas/meter", timeout=30)
    assert second["value"] == 1234.567
    assert bridge.process is not None
    assert bridge.process.poll() is None

    # A change the running bridge cannot make is named, and the rest is applied.
    bridge_config(cameras={"gas": meter_camera("cam/gas")}, models=MODELS, mqtt={"keepalive": 45})
    bridge.hangup()
    log_has(bridge, r"bridge\.yaml: mqtt changed: takes effect at the next restart")
    assert bridge.terminate() == 0


def test_frames_in_flight_during_a_reload_are_all_accounted_for(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    watcher: Watcher,
) -> None:
    config = bridge_config(cameras={"gas": meter_camera("cam/gas")}, models=MODELS)
    bridge = run_bridge(config)
    online(watcher)
    watcher.publish("cam/gas", frame())
    watcher.wait_json("itt/gas/meter")
    for quality in range(60, 80):
        watcher.publish("cam/gas", frame(quality))
        if quality == 70:  # the same camera, with another meter setting, mid-stream
            bridge_config(cameras={"gas": meter_camera("cam/gas", max_rate=2000)}, models=MODELS)
            bridge.hangup()

    def all_ended(payload: bytes) -> bool:
        counters = json.loads(payload)["counters"]["gas"]
        ended = counters["results"] + counters["errors"] + counters["superseded"]
        return counters["received"] == ended == 21

    info = json.loads(watcher.wait_for("itt/bridge/info", all_ended, timeout=60))
    assert info["counters"]["gas"]["errors"] == 0
    log_has(bridge, r"reloaded .*: changed: gas")
    assert bridge.terminate() == 0


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """What systemd listens on for a ``Type=notify`` service: a Unix datagram socket."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(60)
    yield sock
    sock.close()


def test_systemd_hears_ready_then_reloading_and_ready_on_sighup_then_stopping(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    notify_socket: socket.socket,
    tmp_path: Path,
) -> None:
    config = bridge_config(cameras={"gas": meter_camera("cam/gas")}, models=MODELS)
    bridge = run_bridge(config, environ={"NOTIFY_SOCKET": str(tmp_path / "notify")})

    def heard() -> list[str]:
        return notify_socket.recv(4096).decode().split("\n")

    assert heard() == ["READY=1"]
    bridge.hangup()
    reloading = heard()
    assert reloading[0] == "RELOADING=1"
    assert re.fullmatch(r"MONOTONIC_USEC=\d+", reloading[1])
    assert heard() == ["READY=1"]
    assert bridge.terminate() == 0
    assert heard() == ["STOPPING=1"]

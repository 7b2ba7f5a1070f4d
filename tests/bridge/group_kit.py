"""Bridges sharing one broker as a group: start them, stream meter frames, count the answers.

Used by ``test_share.py`` and ``bench/bridges.py``: real bridge processes (with the test-only
``faulty`` engine registered) against a real Mosquitto, frames published as cameras would, and
every answer seen on the broker recorded by frame id.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from tests.bridge.conftest import BridgeProcess, jpeg
from tests.bridge.meter_kit import lcd_meter, meter_camera
from tests.support.waiting import wait_until

BASE = "itt"
GROUP = "home"
#: Four meter cameras; each shows its own display (seed) with a reading that only rises.
METERS = {f"meter_{i}": 10 + i for i in range(4)}


@cache
def meter_frame(camera: str, step: int) -> tuple[bytes, tuple[int, int, int, int]]:
    """The camera's ``step``-th frame (a JPEG) and the region its digits are in."""
    sample = lcd_meter(METERS[camera], f"{1000 + 7 * step:08d}", strength=0.3)
    return jpeg(sample.image), sample.roi


def meter_cameras() -> dict[str, Any]:
    """The four meter cameras' configuration."""
    return {name: meter_camera(f"cam/{name}", meter_frame(name, 0)[1]) for name in METERS}


def write_config(
    folder: Path,
    port: int,
    bridge_id: str,
    cameras: dict[str, Any],
    models: dict[str, Any],
    share: str | None = GROUP,
) -> Path:
    """A bridge's own configuration file, in a folder of its own (its meter state lives there)."""
    folder.mkdir(parents=True, exist_ok=True)
    mqtt_section: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "base_topic": BASE,
        "reconnect_max_delay": 2,
        "discovery": False,
    }
    if share is not None:
        mqtt_section["share"] = share
    data = {"mqtt": mqtt_section, "bridge": {"id": bridge_id}, "models": models, "cameras": cameras}
    path = folder / "bridge.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


#: Every bridge ``start_bridge`` started, for ``stop_bridges``.
STARTED: list[BridgeProcess] = []


def start_bridge(config: Path, log: Path) -> BridgeProcess:
    """``image-to-text run`` with the test-only engines, as its own process."""
    proc = BridgeProcess(config, log, launcher=(str(Path(__file__).with_name("fault_bridge.py")),))
    proc.start()
    STARTED.append(proc)
    return proc


def stop_bridges() -> None:
    """Kill the bridges still running: left alone, they would retry their broker forever."""
    while STARTED:
        proc = STARTED.pop()
        if proc.process is not None and proc.process.poll() is None:
            proc.kill()


@dataclass
class Answer:
    """One result or error event seen on the broker."""

    frame_id: str
    camera: str
    bridge_id: str
    kind: str
    newest: bool
    captured_at: str
    #: When it reached the test's client (``time.monotonic``).
    arrived: float


@dataclass
class Answers:
    """Everything the bridges of a group publish, recorded as it arrives."""

    port: int
    by_frame: dict[str, list[Answer]] = field(default_factory=lambda: defaultdict(list))
    order: list[Answer] = field(default_factory=list)
    states: dict[str, bytes] = field(default_factory=dict)
    infos: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"answers-{time.time_ns()}"
        )
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", self.port)
        self.client.subscribe(f"{BASE}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        with self.lock:
            if parts[1] == "bridges" and parts[3] == "state":
                self.states[parts[2]] = bytes(msg.payload)
            elif parts[1] == "bridges" and parts[3] == "info":
                self.infos[parts[2]] = json.loads(msg.payload)
            elif len(parts) == 3 and parts[2] in ("meter", "caption", "error"):
                data = json.loads(msg.payload)
                answer = Answer(
                    data.get("frame_id", ""),
                    data["camera"],
                    data.get("bridge_id", ""),
                    "error" if parts[2] == "error" else "result",
                    data.get("newest", True),
                    data.get("captured_at", ""),
                    time.monotonic(),
                )
                self.by_frame[answer.frame_id].append(answer)
                self.order.append(answer)

    def wait_online(self, *bridge_ids: str, timeout: float = 90) -> None:
        """Until each bridge says ``online`` and reports its models ready."""

        def ready() -> bool:
            with self.lock:
                return all(
                    self.states.get(b) == b"online"
                    and b in self.infos
                    and all(m["status"] == "ready" for m in self.infos[b]["models"].values())
                    for b in bridge_ids
                )

        wait_until(ready, timeout, f"bridges {bridge_ids} online and ready")

    def answered(self, frame_id: str) -> list[Answer]:
        """The answers to one frame so far."""
        with self.lock:
            return list(self.by_frame.get(frame_id, []))

    def superseded(self) -> int:
        """Frames the bridges counted as superseded, by their latest info."""
        with self.lock:
            return sum(
                c["superseded"] for info in self.infos.values() for c in info["counters"].values()
            )

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Stream:
    """Frames published round the cameras, remembering each one's id and camera."""

    port: int
    cameras: tuple[str, ...] = tuple(METERS)
    sent: list[tuple[str, str]] = field(default_factory=list)  # (frame id, camera)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"cams-{time.time_ns()}")
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        self.steps: dict[str, int] = dict.fromkeys(self.cameras, 0)

    def publish_round(self, pause: float) -> None:
        """One frame of each camera (QoS 1, acknowledged by the broker), ``pause`` apart."""
        for camera in self.cameras:
            frame, _ = meter_frame(camera, self.steps[camera])
            self.steps[camera] += 1
            self.client.publish(f"cam/{camera}", frame, qos=1).wait_for_publish(10)
            self.sent.append((hashlib.sha256(frame).hexdigest(), camera))
            time.sleep(pause)

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()

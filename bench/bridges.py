"""Several bridges in one share group: who answers, how often, and what a SIGKILL costs.

Two parts, both against a real Mosquitto started here on a free port:

1. **The broker** (``--broker``): plain MQTT 5 clients in a ``$share`` group, one of them never
   acknowledging and then SIGKILLed, with a persistent session and without.  It shows what the
   broker does with a dead member's unacknowledged frames and with frames published while it is
   dead: the facts ``docs/reliability.md`` builds the bridge's session settings on.
2. **The bridges**: 1, 2 and 3 real bridge processes (the meter engine: the point is the
   protocol, not the model) sharing four meter cameras; frames answered, answered twice, lost,
   superseded and the split between bridges; then the fault run: one of the bridges SIGKILLed
   mid-stream and started again.

    .venv/bin/python bench/bridges.py              # both parts (about three minutes)
    .venv/bin/python bench/bridges.py --broker     # the broker part only
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _support
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.bridge.group_kit import Answers, Stream, meter_cameras, start_bridge, write_config
from tests.support.mosquitto import Mosquitto
from tests.support.waiting import wait_until

METER_MODEL = {"meter": {"engine": "meter", "threads": 1}}
IDS = ("nuc", "gpu", "pi")


# --- part 1: the broker alone ---


def member(port: int, client_id: str, expiry: int, acks: bool) -> None:
    """A shared-subscription member that prints what it gets (``--member``)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=True
    )

    def on_connect(c: mqtt.Client, u: Any, flags: Any, rc: Any, p: Any) -> None:
        print(f"session_present={int(flags.session_present)}", flush=True)
        c.subscribe("$share/g/frames/#", qos=1)

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        print(msg.payload.decode(), flush=True)
        if acks:
            c.ack(msg.mid, msg.qos)

    client.on_connect = on_connect
    client.on_message = on_message
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = expiry
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_forever()


def broker_run(workdir: Path, expiry: int) -> dict[str, list[str]]:
    """A (never acks, SIGKILLed, restarted) and B (acks) share frames; what each one got."""
    broker = Mosquitto(workdir / f"expiry-{expiry}")
    broker.start()
    logs: dict[str, Path] = {}

    def start(name: str, client_id: str, acks: bool) -> subprocess.Popen[bytes]:
        logs[name] = workdir / f"{name}-{expiry}.log"
        args = ["--member", str(broker.port), client_id, str(expiry), "ack" if acks else "noack"]
        with logs[name].open("wb") as out:
            return subprocess.Popen([sys.executable, __file__, *args], stdout=out)

    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="cams", protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    a, b = start("A", "A", acks=False), start("B", "B", acks=True)
    wait_until(lambda: all(p.stat().st_size for p in logs.values()), 20, "both members up")
    for i in range(10):
        pub.publish("frames/x", f"before-{i}", qos=1).wait_for_publish(5)
    time.sleep(1)
    a.send_signal(signal.SIGKILL)
    a.wait()
    time.sleep(0.5)
    for i in range(10):
        pub.publish("frames/x", f"dead-{i}", qos=1).wait_for_publish(5)
    time.sleep(2)
    again = start("A again", "A", acks=True)
    time.sleep(3)
    for proc in (again, b):
        proc.kill()
        proc.wait()
    pub.disconnect()
    broker.stop()
    return {name: path.read_text().split() for name, path in logs.items()}


def broker_part(workdir: Path) -> None:
    """Print what Mosquitto does with a dead member's frames, per session setting."""
    version = subprocess.run(
        ["mosquitto", "-h"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[0]
    print(f"## {version}: a shared-subscription member SIGKILLed (load {_support.load_average()})")
    for expiry in (86400, 0):
        got = broker_run(workdir, expiry)
        print(f"session expiry {expiry}:")
        for name, lines in got.items():
            print(f"  {name:8s} {' '.join(lines)}")


# --- part 2: the bridges ---


def run_group(workdir: Path, size: int, rounds: int, kill: bool) -> dict[str, Any]:
    """``size`` bridges, four meter cameras, ``rounds`` frames per camera; optionally a kill."""
    broker = Mosquitto(workdir / f"group-{size}-{int(kill)}")
    broker.start()
    answers = Answers(broker.port)
    ids = IDS[:size]
    bridges = {
        b: start_bridge(
            write_config(
                workdir / f"{size}-{int(kill)}-{b}", broker.port, b, meter_cameras(), METER_MODEL
            ),
            workdir / f"{size}-{int(kill)}-{b}.log",
        )
        for b in ids
    }
    answers.wait_online(*ids, timeout=180)
    stream = Stream(broker.port)
    started = time.monotonic()
    killed = ids[-1]
    for i in range(rounds):
        if kill and i == rounds // 3:
            bridges[killed].kill()
            wait_until(lambda: answers.states.get(killed) == b"offline", 30, "the last will")
        if kill and i == 2 * rounds // 3:
            config = bridges[killed].config_path
            bridges[killed] = start_bridge(config, workdir / f"{killed}-again.log")
        stream.publish_round(pause=0.05)
    wait_until(
        lambda: sum(1 for f, _ in stream.sent if not answers.answered(f)) <= answers.superseded(),
        240,
        "every frame answered or superseded",
    )
    elapsed = time.monotonic() - started
    time.sleep(6)  # the final counters
    found = [answers.answered(f) for f, _ in stream.sent]
    unanswered = sum(1 for f in found if not f)
    for proc in bridges.values():
        if proc.process is not None:
            proc.terminate()
    answers.close()
    stream.close()
    broker.stop()
    return {
        "bridges": size,
        "frames": len(stream.sent),
        "answered": sum(1 for f in found if f),
        "twice": sum(1 for f in found if len(f) > 1),
        "superseded": answers.superseded(),
        "lost": max(0, unanswered - answers.superseded()),
        "split": dict(Counter(f[0].bridge_id for f in found if f)),
        "not_newest": sum(1 for a in answers.order if not a.newest),
        "seconds": round(elapsed, 1),
        "load": _support.load_average(),
    }


def bridges_part(workdir: Path, rounds: int) -> None:
    """Print one line per group size, then the fault runs."""
    print(f"## bridges sharing 4 meter cameras, {rounds} frames each")
    for size in (1, 2, 3):
        print(run_group(workdir, size, rounds, kill=False), flush=True)
    print("## fault run: the last bridge SIGKILLed a third of the way, restarted at two thirds")
    for size in (2, 3):
        print(run_group(workdir, size, rounds, kill=True), flush=True)


def main() -> None:
    """Parse the arguments and run the parts asked for."""
    if len(sys.argv) > 1 and sys.argv[1] == "--member":
        port, client_id, expiry, acks = sys.argv[2:6]
        member(int(port), client_id, int(expiry), acks == "ack")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", action="store_true", help="the broker part only")
    parser.add_argument("--rounds", type=int, default=15, help="frames per camera")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bridges-") as tmp:
        broker_part(Path(tmp))
        if not args.broker:
            bridges_part(Path(tmp), args.rounds)


if __name__ == "__main__":
    main()

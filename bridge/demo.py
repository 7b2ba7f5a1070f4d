"""``image-to-text demo``: the whole product in one process, with nothing installed beside it.

It starts the embedded broker and the bridge on ``config/demo.yaml``, publishes the sample
frames as camera snapshots exactly as a camera would, and prints every result or error event
that comes back over MQTT.  Where the caption model is not on this machine it says which one and
how to supply it, and still shows the OCR results.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bridge.broker import EmbeddedBroker, free_port
from bridge.config import BridgeConfig, load_config
from bridge.errors import ConfigError
from bridge.protocol import Topics
from bridge.service import BridgeService

DEMO_TIMEOUT = 300.0


def _say(text: str) -> None:
    print(text, flush=True)


class _Listener:
    """A plain MQTT client that watches the bridge's topics, as any consumer would."""

    def __init__(self, port: int, base: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reply_topic = f"{base}/demo/faces_reply"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="image-to-text-demo")
        self.client.on_message = self._on_message
        self.base = base
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(Topics(base).result("+", "+"), qos=1)
        self.client.subscribe(self.reply_topic, qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            return
        if msg.topic == self.reply_topic and isinstance(payload, dict):
            self.loop.call_soon_threadsafe(self.replies.put_nowait, payload)
        elif isinstance(payload, dict) and "camera" in payload:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (msg.topic, payload))

    def publish(self, topic: str, data: bytes) -> None:
        self.client.publish(topic, data, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def _enrol(
    config: BridgeConfig,
    service: BridgeService,
    listener: _Listener,
    samples: Path,
    entry: dict[str, Any],
) -> None:
    """A sample enrolment over ``<base>/faces/add``, as Home Assistant or a script would do it."""
    worker = service.workers.get("faces")
    if worker is None:
        return
    await worker.loaded.wait()
    photos = [base64.b64encode((samples / f).read_bytes()).decode() for f in entry["files"]]
    command = {
        "id": "demo",
        "reply_to": listener.reply_topic,
        "name": entry["enrol"],
        "images": photos,
    }
    listener.publish(Topics(config.mqtt.base_topic).faces("add"), json.dumps(command).encode())
    reply = await asyncio.wait_for(listener.replies.get(), DEMO_TIMEOUT)
    if reply.get("ok"):
        _say(f"enrolled {reply['name']} from {reply['added']} photos ({', '.join(entry['files'])})")
    else:
        _say(f"could not enrol {entry['enrol']}: {reply.get('detail')}")


def _describe(topic: str, event: dict[str, Any]) -> str:
    camera = event["camera"]
    if topic.endswith("/error"):
        where = f"{camera} {event.get('task', 'frame')}"
        return f"  {where:<20} ERROR {event['error']}: {event['detail']}"
    text = event["text"].replace("\n", " | ")
    if event.get("faces"):
        text += " [" + ", ".join(f"{f['name']} {f['distance']:.2f}" for f in event["faces"]) + "]"
    if event.get("value") is not None:
        text = f"{text} = {event['value']} {event.get('unit') or ''}".rstrip()
    return (
        f"  {camera + ' ' + event['task']:<20} {text!r}  "
        f"({event['latency_ms']:.0f} ms, {event['model']})"
    )


async def run_demo(config_path: Path, samples: Path, caption_model: str | None) -> int:
    """Run the demo; 0 when every sample frame got its answer (result or error)."""
    config = load_config(config_path)
    if caption_model and "caption" in config.models:
        models = dict(config.models)
        models["caption"] = models["caption"].model_copy(update={"model": caption_model})
        config = config.model_copy(update={"models": models})
    try:
        plan = json.loads((samples / "samples.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ConfigError(str(samples / "samples.json"), "", f"cannot read ({err})") from err
    if "faces" in config.models:  # the sample enrolment lives in memory, never in config/
        models = dict(config.models)
        faces = models["faces"].faces
        in_memory = faces.model_copy(update={"db": None}) if faces else None
        models["faces"] = models["faces"].model_copy(update={"faces": in_memory})
        config = config.model_copy(update={"models": models})
    port = free_port()
    mqtt = config.mqtt.model_copy(update={"host": "127.0.0.1", "port": port})
    config = config.model_copy(update={"mqtt": mqtt})
    broker = EmbeddedBroker(port)
    await broker.start()
    _say(f"embedded broker on 127.0.0.1:{port}; bridge starting with {config_path}")
    service = BridgeService(config, protocol=4, keep_meter_state=False)
    listener: _Listener | None = None
    try:
        await service.start(connect_wait=10)
        listener = _Listener(port, config.mqtt.base_topic)
        return await _publish_and_watch(config, service, listener, samples, plan)
    finally:
        if listener is not None:
            listener.close()
        await service.stop()
        await broker.stop()


async def _publish_and_watch(
    config: BridgeConfig,
    service: BridgeService,
    listener: _Listener,
    samples: Path,
    plan: list[dict[str, Any]],
) -> int:
    expected = 0
    await asyncio.sleep(0.3)
    for entry in plan:
        if "enrol" in entry:
            await _enrol(config, service, listener, samples, entry)
            continue
        camera = config.cameras.get(entry["camera"])
        if camera is None:
            _say(f"  skipping {entry['file']}: no camera {entry['camera']!r} in the configuration")
            continue
        data = (samples / entry["file"]).read_bytes()
        _say(f"published {entry['file']} ({len(data)} bytes) on {camera.topic}")
        listener.publish(camera.topic, data)
        expected += len(camera.tasks)
    _say("results:")
    missing: set[str] = set()
    deadline = asyncio.get_running_loop().time() + DEMO_TIMEOUT
    while expected > 0:
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            topic, event = await asyncio.wait_for(listener.events.get(), max(remaining, 0.1))
        except TimeoutError:
            _say(f"timed out waiting for {expected} more answers")
            return 1
        _say(_describe(topic, event))
        if event.get("error") == "model_unavailable":
            missing.add(event.get("model") or event.get("task", "?"))
        expected -= 1
    for model in sorted(missing):
        _say(
            f"\nThe model {model!r} is not on this machine and cannot be downloaded here.\n"
            "Supply it in one of these ways, then run the demo again:\n"
            f"  - where the internet is reachable: `hf download {model}` (fills the HF cache), or\n"
            "  - save it to a folder with save_pretrained() and run\n"
            "    `image-to-text demo --caption-model /path/to/folder`."
        )
    counters = service.info_payload()["counters"]
    _say("counters: " + json.dumps(counters))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(asyncio.run(run_demo(Path(sys.argv[1]), Path(sys.argv[2]), None)))

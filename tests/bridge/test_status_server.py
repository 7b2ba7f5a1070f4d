"""The status server as an operator meets it: a real bridge process, a real Mosquitto, HTTP.

``/healthz`` is what Docker and systemd watchdogs poll, ``/metrics`` what Prometheus scrapes
(checked with Prometheus' own parser), ``/api/status`` what the status page draws.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.bridge import meter_kit
from tests.bridge.conftest import REPO, BridgeProcess, Watcher, jpeg, png, render_sign
from tests.bridge.meter_kit import METER
from tests.support.http import Reply, get
from tests.support.mosquitto import Mosquitto
from tests.support.net import free_port, port_open
from tests.support.waiting import wait_until

#: The gas meter as these tests configure it: every frame read (no dedup), in m³.
meter_camera = partial(meter_kit.meter_camera, "cameras/gas/snapshot", dedup=False, unit="m³")


def healthz(port: int, accept: str = "application/json") -> Reply:
    return get(f"http://127.0.0.1:{port}/healthz", accept=accept)


def wait_health(port: int, status: int, timeout: float = 60) -> Reply:
    def reached() -> Reply | None:
        if not port_open(port):
            return None
        reply = healthz(port)
        return reply if reply.status == status else None

    return wait_until(reached, timeout, f"/healthz answering {status}")


def test_healthz_names_a_dead_broker_and_recovers_when_it_returns(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    mosquitto: Mosquitto,
    watcher: Watcher,
) -> None:
    port = free_port()
    config = bridge_config(
        cameras={"gas": meter_camera()},
        models={"meter": {"engine": "meter", "threads": 1}},
        http={"port": port},
    )
    run_bridge(config)
    ok = wait_health(port, 200)
    assert json.loads(ok.body) == {"status": "ok", "problems": [], "detail": "ok"}
    assert healthz(port, accept="*/*").text == "ok\n"

    watcher.close()
    mosquitto.kill()
    down = wait_health(port, 503)
    broker = f"broker 127.0.0.1:{mosquitto.port} not connected"
    assert json.loads(down.body)["problems"] == [broker]
    plain = healthz(port, accept="text/plain")
    assert (plain.status, plain.text, plain.content_type) == (
        503,
        broker + "\n",
        "text/plain; charset=utf-8",
    )

    mosquitto.start()
    assert json.loads(wait_health(port, 200).body)["status"] == "ok"


def test_healthz_names_a_model_that_failed_to_load(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    watcher: Watcher,
) -> None:
    port = free_port()
    config = bridge_config(
        cameras={
            "porch": {"topic": "cam/porch", "tasks": ["caption"]},
            "gas": meter_camera(),
        },
        models={
            "caption": {"model": "example-org/no-such-captioner"},
            "meter": {"engine": "meter", "threads": 1},
        },
        http={"port": port},
    )
    run_bridge(config)
    watcher.wait_for("itt/bridge/state", lambda p: p == b"online")

    def failed() -> Reply | None:
        reply = healthz(port) if port_open(port) else None
        return reply if reply is not None and "failed" in reply.text else None

    reply = wait_until(failed, 60, "/healthz reporting the failed model")
    assert reply.status == 503
    (problem,) = json.loads(reply.body)["problems"]
    assert problem.startswith("model for caption (example-org/no-such-captioner) failed to load")


def test_metrics_are_prometheus_text_fed_by_the_frames_counters(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    watcher: Watcher,
) -> None:
    port = free_port()
    config = bridge_config(
        cameras={
            "gas": meter_camera(),
            "gate": {"topic": "cam/gate", "tasks": ["ocr"], "dedup": False},
        },
        models={"meter": {"engine": "meter", "threads": 1}, "ocr": {"engine": "rapidocr"}},
        http={"port": port},
    )
    run_bridge(config)
    wait_health(port, 200)
    watcher.publish("cameras/gas/snapshot", jpeg(METER.image))
    watcher.wait_json("itt/gas/meter")
    watcher.publish("cam/gate", png(render_sign(["OPEN"])))
    watcher.wait_json("itt/gate/ocr")
    watcher.publish("cam/gate", b"not an image")
    watcher.wait_json("itt/gate/error")

    def scrape() -> dict[str, list[Any]]:
        reply = get(f"http://127.0.0.1:{port}/metrics")
        assert reply.status == 200
        assert reply.content_type.startswith("text/plain; version=0.0.4")
        families = text_string_to_metric_families(reply.text)  # Prometheus' own parser
        return {family.name: family.samples for family in families}

    def settled() -> dict[str, list[Any]] | None:
        metrics = scrape()
        counted = {
            (s.labels["camera"], s.labels["outcome"]): s.value
            for s in metrics["image_to_text_frames"]
        }
        return metrics if counted.get(("gate", "error")) == 1 else None

    metrics = wait_until(settled, 30, "the bad frame counted")

    def value(name: str, **labels: str) -> float:
        (sample,) = [
            s
            for s in metrics[name]
            if s.name in (name, f"{name}_total")
            and all(s.labels.get(key) == want for key, want in labels.items())
        ]
        return float(sample.value)

    assert value("image_to_text_frames_received", camera="gas") == 1
    assert value("image_to_text_frames_received", camera="gate") == 2
    assert value("image_to_text_frames", camera="gas", outcome="result") == 1
    assert value("image_to_text_frames", camera="gate", outcome="result") == 1
    assert value("image_to_text_frames", camera="gate", outcome="superseded") == 0
    (bad,) = [s for s in metrics["image_to_text_errors"] if s.labels["camera"] == "gate"]
    assert bad.labels["code"] == "decode_failed"
    assert bad.value == 1
    latency = {
        (s.labels["task"], s.labels.get("le")): s.value
        for s in metrics["image_to_text_latency_seconds"]
        if s.name.endswith("_count") or s.name.endswith("_bucket")
    }
    assert latency[("meter", "+Inf")] == 1
    assert latency[("ocr", "+Inf")] == 1
    assert [s.value for s in metrics["image_to_text_broker_connected"]] == [1]
    loads = {s.labels["task"]: s.value for s in metrics["image_to_text_model_load_seconds"]}
    assert set(loads) == {"meter", "ocr"}
    assert all(seconds > 0 for seconds in loads.values())
    batches = {
        s.labels["task"]: s.value
        for s in metrics["image_to_text_batch_size"]
        if s.name.endswith("_count")
    }
    assert batches == {"meter": 1, "ocr": 1}
    assert {s.labels["task"] for s in metrics["image_to_text_queue_depth"]} == {"meter", "ocr"}

    # The page's data: the same counters, and each camera's last frame with its JPEG.
    status = json.loads(get(f"http://127.0.0.1:{port}/api/status").body)
    assert status["cameras"]["gas"]["counters"]["results"] == 1
    gate = status["cameras"]["gate"]["last"]
    assert gate["results"]["ocr"]["text"] == "OPEN"
    assert gate["results"]["ocr"]["lines"][0]["box"]
    image = get(f"http://127.0.0.1:{port}{gate['image']}")
    assert (image.status, image.content_type, image.body[:3]) == (
        200,
        "image/jpeg",
        b"\xff\xd8\xff",
    )


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/style.css"])
def test_the_page_and_its_assets_are_served_from_the_package(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    path: str,
) -> None:
    port = free_port()
    config = bridge_config(
        cameras={"gas": meter_camera()},
        models={"meter": {"engine": "meter", "threads": 1}},
        http={"port": port},
    )
    run_bridge(config)
    wait_until(lambda: port_open(port), 60, "the status server listening")
    reply = get(f"http://127.0.0.1:{port}{path}")
    assert reply.status == 200
    shipped = REPO / "bridge" / "web" / (Path(path).name or "index.html")
    assert reply.body == shipped.read_bytes()
    # Nothing the page needs comes from anywhere but the bridge (the SVG namespace is a name).
    assert "//" not in reply.text.replace("http://www.w3.org/2000/svg", "").replace("// ", "")
    assert get(f"http://127.0.0.1:{port}/static/index.htm").status == 404

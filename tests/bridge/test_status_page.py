"""The status page in a real headless Chromium: a person opening ``http://bridge:port/``.

The test publishes frames of three cameras (a caption, a sign to OCR, a gas meter), waits for
their results on MQTT as Home Assistant would, then opens the page and checks that each
camera shows its frame, the text the bridge published, the boxes or cells drawn on it, and
that the browser logged no error at all.  ``ITT_SCREENSHOT=file.png`` keeps a screenshot.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.bridge.chromium import CHROMIUM, browser
from tests.bridge.conftest import BridgeProcess, Watcher, jpeg, photo, png, render_sign
from tests.bridge.meter_kit import METER, meter_camera
from tests.support.net import free_port, port_open
from tests.support.waiting import wait_until

CARD = 'document.querySelector(`article[data-camera="{camera}"]`)'
SHOWN = """(() => {{
  const card = {card};
  if (!card) return null;
  const img = card.querySelector("img");
  const text = card.querySelector('[data-task="{task}"] .text');
  if (!img || !img.complete || !img.naturalWidth) return null;
  if (!text || text.textContent === "\\u2013") return null;
  return {{
    text: text.textContent,
    width: img.naturalWidth,
    boxes: card.querySelectorAll("polygon.ocr").length,
    cells: card.querySelectorAll("polygon.cell").length,
  }};
}})()"""


def shown(camera: str, task: str) -> str:
    return SHOWN.format(card=CARD.format(camera=camera), task=task)


def test_the_page_shows_each_cameras_last_frame_text_and_boxes_without_errors(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    watcher: Watcher,
    tiny_blip: Path,
    tmp_path: Path,
) -> None:
    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), "run `make system-deps` (chromium)"
    port = free_port()
    config = bridge_config(
        cameras={
            "porch": {"topic": "cam/porch", "tasks": ["caption"]},
            "gate": {"topic": "cam/gate", "tasks": ["ocr"]},
            "gas": meter_camera("cam/gas", unit="m³"),
        },
        models={
            "caption": {"engine": "transformers", "model": str(tiny_blip), "precision": "fp32"},
            "ocr": {"engine": "rapidocr"},
            "meter": {"engine": "meter", "threads": 1},
        },
        http={"port": port},
    )
    run_bridge(config)
    watcher.wait_for("itt/bridge/state", lambda p: p == b"online")
    watcher.publish("cam/porch", jpeg(photo(3)))
    watcher.publish("cam/gate", png(render_sign(["OPEN", "9 TO 5"])))
    watcher.publish("cam/gas", jpeg(METER.image))
    published: dict[str, Any] = {
        "porch": watcher.wait_json("itt/porch/caption"),
        "gate": watcher.wait_json("itt/gate/ocr"),
        "gas": watcher.wait_json("itt/gas/meter"),
    }
    wait_until(lambda: port_open(port), 30, "the status server listening")

    async def look() -> dict[str, Any]:
        async with browser(tmp_path / "chromium", f"http://127.0.0.1:{port}/") as page:
            seen = {
                "porch": await page.wait_for(shown("porch", "caption")),
                "gate": await page.wait_for(shown("gate", "ocr")),
                "gas": await page.wait_for(shown("gas", "meter")),
                "chart": await page.wait_for('document.querySelectorAll("#chart polyline").length'),
                "health": await page.evaluate('document.getElementById("health").textContent'),
            }
            await asyncio.sleep(2.5)  # one more poll: redrawing must not raise either
            seen["screenshot"] = await page.screenshot()
            seen["errors"] = page.errors
            return seen

    seen = asyncio.run(look())
    if os.environ.get("ITT_SCREENSHOT"):
        Path(os.environ["ITT_SCREENSHOT"]).write_bytes(seen["screenshot"])
    assert seen["screenshot"].startswith(b"\x89PNG")
    assert seen["errors"] == []
    assert seen["porch"]["text"] == published["porch"]["text"]
    assert seen["gate"]["text"] == published["gate"]["text"]
    assert seen["gate"]["boxes"] == len(published["gate"]["lines"]) > 0
    assert seen["gas"]["text"] == f"{published['gas']['text']} m³"
    assert seen["gas"]["cells"] == 8
    assert all(seen[camera]["width"] > 0 for camera in ("porch", "gate", "gas"))
    assert seen["chart"] == 3  # one latency line per camera and task
    assert seen["health"] == "healthy", json.dumps(seen)

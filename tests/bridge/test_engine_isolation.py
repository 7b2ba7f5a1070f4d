"""A meter camera is not delayed by a caption batch: each model runs in a thread of its own.

The caption model here is the test-only ``faulty`` engine taking eight seconds a batch (it
sleeps, as a model busy on its own threads would hold them); the meter engine is the real one,
reading a rendered display.  If the two models shared a worker thread, or the meter waited for
the caption model's threads, the meter's result would come after the caption's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.bridge.conftest import BridgeProcess, Watcher, jpeg, png
from tests.bridge.fault_engines import MODEL_CALL_FINISHED, MODEL_CALL_STARTED
from tests.bridge.meter_kit import METER, meter_camera
from tests.support.waiting import wait_until


@pytest.mark.e2e
def test_a_meter_frame_is_answered_while_a_slow_caption_batch_runs(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    watcher: Watcher,
) -> None:
    config = bridge_config(
        cameras={
            "porch": {"topic": "cam/porch", "tasks": ["caption"]},
            "gas_meter": meter_camera("cam/gas"),
        },
        models={
            "caption": {"engine": "faulty", "model": "delay=8"},
            "meter": {"engine": "meter", "threads": 1},
        },
    )
    bridge = run_bridge(config, faulty=True)
    watcher.wait_ready(timeout=120)  # both models loaded before the caption batch starts
    watcher.publish("cam/porch", png(Image.new("RGB", (320, 240), (90, 140, 90))))
    wait_until(lambda: MODEL_CALL_STARTED in bridge.log, 30, "the caption batch starting")

    watcher.publish("cam/gas", jpeg(METER.image))
    reading = watcher.wait_json("itt/gas_meter/meter", timeout=20)
    assert MODEL_CALL_FINISHED not in bridge.log  # the caption batch is still running
    assert reading["raw"] == "01234567"
    caption = watcher.wait_json("itt/porch/caption", timeout=30)
    assert caption["text"].startswith("seen 320x240")
    assert bridge.terminate() == 0

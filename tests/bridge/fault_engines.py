"""Engines that misbehave on purpose, for the reliability tests.

They are registered like any engine (``engine: faulty`` in a test's configuration) and run inside
the real bridge process, started through ``fault_bridge.py``. What they do is driven by the
frame itself, so a test says what should happen by what it publishes:

- a mostly red frame raises ``RuntimeError`` inside the model;
- a mostly blue frame raises ``MemoryError`` (what an out-of-memory model run looks like);
- anything else is "captioned" as ``seen <width>x<height> <r>,<g>,<b>`` (its mean colour).

``model: "delay=SECONDS"`` makes every batch take that long, so a test can stop the broker or the
bridge while a frame is inside the model.  Each batch writes ``faulty: model call started`` and
``faulty: model call finished`` to the bridge's log, so a test waits for those moments instead of
sleeping.
"""

from __future__ import annotations

import sys
import time

from PIL import Image, ImageStat

from bridge.config import ModelConfig
from bridge.engines.base import Engine, EngineOutput, JobOptions, register
from bridge.errors import ModelError

#: Log lines that mark a model call, for tests to wait on.
MODEL_CALL_STARTED = "faulty: model call started"
MODEL_CALL_FINISHED = "faulty: model call finished"


@register("faulty")
class FaultyEngine(Engine):
    """A model whose behaviour each test picks by the colour of the frame it sends."""

    input_size = 256

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        settings = dict(
            part.split("=", 1) for part in (config.model or "").split(",") if "=" in part
        )
        self.delay = float(settings.get("delay", "0"))

    def load(self) -> None:
        """Nothing to load."""

    def run_batch(
        self, images: list[Image.Image], options: list[JobOptions]
    ) -> list[EngineOutput | ModelError]:
        """Fail or describe each frame, after the configured delay."""
        print(MODEL_CALL_STARTED, file=sys.stderr, flush=True)
        time.sleep(self.delay)
        print(MODEL_CALL_FINISHED, file=sys.stderr, flush=True)
        outputs: list[EngineOutput | ModelError] = []
        for image in images:
            red, green, blue = (round(v) for v in ImageStat.Stat(image.convert("RGB")).mean)
            if red > 200 and green < 60 and blue < 60:
                raise RuntimeError("the model fell over on a red frame")
            if blue > 200 and red < 60 and green < 60:
                raise MemoryError("out of memory while running the model")
            outputs.append(
                EngineOutput(text=f"seen {image.width}x{image.height} {red},{green},{blue}")
            )
        return outputs

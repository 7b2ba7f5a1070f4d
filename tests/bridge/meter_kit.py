"""Meter photos whose reading the tests know, and the camera configuration that reads them.

One place for the LCD display the bridge tests (and ``bench/side_engines.py``) photograph, so a
test says which meter it shows, not how ``tools/meter_synth.py`` draws one.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import meter_synth

from bridge.config import ModelConfig
from bridge.engines.meter_engine import MeterEngine


def lcd_meter(seed: int, reading: str, strength: float = 0.5) -> meter_synth.Sample:
    """A photo of an LCD meter (seven-segment digits) showing ``reading``, three decimals.

    ``seed`` picks the meter's look, ``strength`` how much photo damage it gets.
    """
    return meter_synth.render(
        random.Random(seed),
        styles=("lcd",),
        families=("dseg7classic",),
        strength=strength,
        margin=(0.0, 0.03),
        reading=reading,
        decimals=3,
    )


#: The known meter photo: it reads 01234.567.
METER = lcd_meter(1, "01234567")


def meter_camera(
    topic: str, roi: Sequence[int] = METER.roi, *, dedup: bool = True, **meter: Any
) -> dict[str, Any]:
    """A camera reading an 8-digit, 3-decimal meter in ``roi`` (``METER``'s by default).

    ``meter`` adds meter settings (``unit``, ``max_rate``); ``dedup=False`` reads every frame,
    even one showing the same display as the last.
    """
    camera: dict[str, Any] = {
        "topic": topic,
        "tasks": ["meter"],
        "meter": {"roi": list(roi), "digits": 8, "decimals": 3, **meter},
    }
    if not dedup:
        camera["dedup"] = False
    return camera


def loaded_meter_engine() -> MeterEngine:
    """The meter engine with the shipped weights, loaded on one torch thread, as tests read."""
    import torch

    torch.set_num_threads(1)
    meter = MeterEngine(ModelConfig(engine="meter"))
    meter.load()
    return meter

"""The meter engine around the recogniser: regions, readings, errors, state across restarts.

The digit recogniser is replaced by a stand-in that "reads" what the test says, so these
tests pin the engine's own behaviour; ``test_meter_reader.py`` tests the trained network.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bridge.config import MeterConfig, ModelConfig
from bridge.engines.base import EngineOutput, JobOptions, create_engine
from bridge.engines.meter_engine import MeterEngine, MeterError, format_reading
from bridge.errors import ModelError
from bridge.meter.carry import BINS, BLANK_INDEX
from bridge.meter.geometry import CELL_W, CONTEXT, INPUT_SHAPE, digit_cells, region_quad
from bridge.meter.state import state_path_for

GAS = MeterConfig(digits=8, decimals=3, roi=(10, 10, 160, 40), max_rate=6.0, unit="m³")
FRAME = Image.new("RGB", (200, 80), (200, 200, 200))


class ScriptedReader:
    """Reads whatever digits the test put in ``shows``."""

    confirm_confidence = None  # no second reader

    def __init__(self) -> None:
        self.shows = "01234567"
        self.confidence = 0.99

    def read_by_member(self, cells: np.ndarray, views: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Each shown digit (a blank for a space) at ``confidence``, the rest spread thin."""
        assert cells.shape[1:] == INPUT_SHAPE
        digits = [10 if c == " " else int(c) for c in self.shows]
        assert len(digits) * views == len(cells)
        whole = [digit * 10 for digit in range(10)]
        probs = np.zeros((len(digits), BINS + 1))
        for cell, digit in enumerate(digits):
            probs[cell, whole] = (1 - self.confidence) / (10 if digit == 10 else 9)
            probs[cell, BLANK_INDEX if digit == 10 else digit * 10] = self.confidence
        return probs, probs[None]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def meter_engine(state: Path | None, *, attach: bool = True) -> tuple[MeterEngine, ScriptedReader]:
    engine = create_engine(ModelConfig(engine="meter"))
    assert isinstance(engine, MeterEngine)
    reader = ScriptedReader()
    engine.reader = reader
    engine.clock = Clock()
    if attach:
        engine.attach_state(state)
    return engine, reader


def read(engine: MeterEngine, camera: str = "gas_meter") -> EngineOutput | ModelError:
    return engine.run_batch([FRAME], [JobOptions(meter=GAS, camera=camera)])[0]


def test_a_reading_is_a_number_with_the_decimals_placed() -> None:
    assert format_reading([0, 1, 2, 3, 4, 5, 6, 7], 3) == ("01234567", "01234.567", 1234.567)
    assert format_reading([0, 0, 4, 2], 0) == ("0042", "0042", 42.0)
    assert format_reading([10, 10, 4, 2], 1) == ("0042", "004.2", 4.2)  # blanks read as 0


def test_the_result_carries_value_text_raw_and_per_digit_confidence(tmp_path: Path) -> None:
    engine, _ = meter_engine(tmp_path / "s.json")
    out = read(engine)
    assert isinstance(out, EngineOutput)
    assert out.text == "01234.567"
    assert out.extra["value"] == 1234.567
    assert out.extra["raw"] == "01234567"
    assert out.extra["digit_confidence"] == [0.99] * 8


def test_a_lower_reading_becomes_an_error_event_carrying_what_was_read(tmp_path: Path) -> None:
    engine, reader = meter_engine(tmp_path / "s.json")
    read(engine)
    reader.shows = "01230001"
    out = read(engine)
    assert isinstance(out, MeterError)
    assert out.code == "meter_decreased"
    assert out.extra == {"raw": "01230001", "value": 1230.001}


def test_the_previous_value_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "bridge.meter-state.json"
    first, _ = meter_engine(state)
    read(first)
    saved = json.loads(state.read_text())
    assert saved["meters"]["gas_meter"]["value"] == 1234.567

    second, reader = meter_engine(state)  # a new process reading the same file
    reader.shows = "01230001"
    out = read(second)
    assert isinstance(out, ModelError)
    assert out.code == "meter_decreased"


def test_meters_are_judged_each_against_their_own_previous_value(tmp_path: Path) -> None:
    engine, reader = meter_engine(tmp_path / "s.json")
    read(engine, "gas_meter")
    reader.shows = "00000100"
    assert isinstance(read(engine, "water_meter"), EngineOutput)


def test_a_value_set_by_hand_is_saved_and_unblocks_the_meter(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    engine, reader = meter_engine(state)
    read(engine)
    reader.shows = "00000100"  # the meter was replaced
    assert isinstance(read(engine), ModelError)
    engine.set_value("gas_meter", 0.1)

    restarted, reader = meter_engine(state)
    reader.shows = "00000100"
    out = read(restarted)
    assert isinstance(out, EngineOutput)
    assert out.extra["value"] == 0.1


def test_a_low_confidence_reading_is_not_published(tmp_path: Path) -> None:
    engine, reader = meter_engine(tmp_path / "s.json")
    reader.confidence = 0.4  # read, but below the threshold (0.3 and under: no display at all)
    out = read(engine)
    assert isinstance(out, MeterError)
    assert out.code == "meter_low_confidence"
    assert out.extra["raw"] == "01234567"


def test_analyze_only_reads_with_no_plausibility() -> None:
    engine, reader = meter_engine(None, attach=False)
    read(engine)
    reader.shows = "00000001"
    out = read(engine)
    assert isinstance(out, EngineOutput)
    assert out.extra["value"] == 0.001


def test_a_region_outside_the_frame_is_unreadable_not_a_crash() -> None:
    engine, _ = meter_engine(None, attach=False)
    far = MeterConfig(digits=8, decimals=3, roi=(5000, 5000, 100, 30))
    out = engine.run_batch([FRAME], [JobOptions(meter=far)])[0]
    assert isinstance(out, ModelError)
    assert out.code == "meter_unreadable"


def test_a_region_with_no_digits_at_all_is_unreadable() -> None:
    engine, reader = meter_engine(None, attach=False)
    reader.shows = "        "
    out = read(engine)
    assert isinstance(out, ModelError)
    assert out.code == "meter_unreadable"


def test_a_damaged_state_file_starts_afresh(tmp_path: Path) -> None:
    state = tmp_path / "s.json"
    state.write_text("{not json")
    engine, reader = meter_engine(state)
    reader.shows = "00000001"
    assert isinstance(read(engine), EngineOutput)
    assert json.loads(state.read_text())["meters"]["gas_meter"]["value"] == 0.001


def test_the_state_file_lives_next_to_the_configuration() -> None:
    assert state_path_for("/etc/itt/bridge.yaml") == Path("/etc/itt/bridge.meter-state.json")
    assert state_path_for("<memory>") is None


# geometry


def test_a_tilted_roi_turns_about_its_centre() -> None:
    meter = MeterConfig(digits=4, roi=(100, 100, 200, 50), rotation=90)
    tl, tr, br, bl = region_quad(meter)
    assert tl == pytest.approx((175, 225))  # the top-left corner went to the bottom-left
    assert br == pytest.approx((225, 25))
    assert (tr[0], bl[0]) == pytest.approx((175, 225))


def test_four_corners_are_used_as_given() -> None:
    corners = ((10, 12), (110, 8), (112, 40), (9, 44))
    meter = MeterConfig(digits=4, corners=corners)
    assert region_quad(meter) == tuple((float(x), float(y)) for x, y in corners)


@pytest.mark.parametrize("scale", [1, 6])
def test_each_cell_holds_its_own_digit_position(scale: int) -> None:
    # Four digit positions, the 2nd and 4th dark; a large frame is reduced before warping.
    image = Image.new("RGB", (120 * scale, 60 * scale), "white")
    draw = ImageDraw.Draw(image)
    for i in (1, 3):
        draw.rectangle(
            (scale * (10 + 25 * i), scale * 15, scale * (10 + 25 * i + 24), scale * 45),
            fill="black",
        )
    cells = digit_cells(
        image, MeterConfig(digits=4, roi=(10 * scale, 15 * scale, 100 * scale, 30 * scale))
    )
    assert cells.shape == (4, *INPUT_SHAPE)
    centre = cells[:, :, CONTEXT + 4 : CONTEXT + CELL_W - 4].mean(axis=(1, 2))
    assert centre[1] < centre[0] - 0.5
    assert centre[3] < centre[2] - 0.5


def test_a_display_seen_at_an_angle_is_straightened_by_its_corners() -> None:
    image = Image.new("RGB", (200, 120), "white")
    corners = ((20, 30), (180, 10), (185, 90), (15, 100))
    quad = [tuple(map(float, p)) for p in corners]
    draw = ImageDraw.Draw(image)
    # dark right half of the quadrilateral
    top_mid = ((quad[0][0] + quad[1][0]) / 2, (quad[0][1] + quad[1][1]) / 2)
    bot_mid = ((quad[2][0] + quad[3][0]) / 2, (quad[2][1] + quad[3][1]) / 2)
    draw.polygon([top_mid, quad[1], quad[2], bot_mid], fill="black")
    cells = digit_cells(image, MeterConfig(digits=2, corners=corners))
    centre = cells[:, 4:-4, CONTEXT + 3 : CONTEXT + CELL_W - 3].mean(axis=(1, 2))
    assert centre[1] < centre[0] - 0.5

"""The shipped recogniser on real camera crops: drums mid-roll and an LCD with a blank cell.

The crops (``tests/fixtures/meter_crops``, Apache-2.0, ``SOURCE.md`` says where each comes from)
are real ESP32-CAM pictures from meters the recogniser was trained on; each meter's crops are
put side by side as one display and read through the engine, as ``bench/meter_accuracy.py
--set real`` does with the meters it was never trained on.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bridge.config import MeterConfig
from bridge.engines.base import EngineOutput, JobOptions
from bridge.engines.meter_engine import MeterEngine
from bridge.frames import decode_image
from bridge.meter.carry import BINS, BLANK, digits_from_positions, point_position
from bridge.meter.geometry import digit_cells
from tests.bridge.meter_kit import loaded_meter_engine

CROPS = Path(__file__).resolve().parents[1] / "fixtures" / "meter_crops"
METERS = ("powermeter_unknown_iotson_emeter1", "watermeter_Wasser_Geraete_GmbH", "lcd_lcd_pb")


def labelled(meter: str) -> list[tuple[Path, float | None]]:
    """The meter's crops in display order, with the position in each one's original name."""
    files = sorted(CROPS.glob(f"{meter}-*.jpg"), key=lambda p: int(p.name.split("-")[1]))
    out: list[tuple[Path, float | None]] = []
    for path in files:
        label = path.name.split("-", 2)[2].split("_", 1)[0]
        out.append((path, None if label == "10" else float(label)))
    return out


def display(meter: str) -> tuple[bytes, MeterConfig, str]:
    """The crops side by side as one JPEG, the region around them and what it reads."""
    crops = labelled(meter)
    pictures = [Image.open(path).convert("RGB") for path, _ in crops]
    width, height = pictures[0].size
    row = np.concatenate(
        [np.asarray(p.resize((width, height), Image.Resampling.BILINEAR)) for p in pictures], 1
    )
    framed = np.pad(row, ((height // 4, height // 4), (width // 2, width // 2), (0, 0)), "edge")
    buf = io.BytesIO()
    Image.fromarray(framed).save(buf, "JPEG", quality=95)
    meter_config = MeterConfig(
        digits=len(crops), roi=(width // 2, height // 4, width * len(crops), height)
    )
    digits = digits_from_positions([position for _, position in crops])
    return buf.getvalue(), meter_config, "".join("0" if d == BLANK else str(d) for d in digits)


@pytest.fixture(scope="module")
def engine() -> MeterEngine:
    return loaded_meter_engine()


def test_the_fixtures_name_their_source_and_licence() -> None:
    source = (CROPS / "SOURCE.md").read_text(encoding="utf-8")
    assert "Apache License 2.0" in source
    assert "Apache License" in (CROPS / "LICENSE").read_text(encoding="utf-8")
    for path in CROPS.glob("*.jpg"):
        assert f"`{path.name}`" in source, path.name


def read(engine: MeterEngine, meter: str) -> tuple[EngineOutput, str]:
    data, meter_config, expected = display(meter)
    out = engine.run_batch([decode_image(data, 10_000_000, None)], [JobOptions(meter=meter_config)])
    result = out[0]
    assert isinstance(result, EngineOutput), result
    return result, expected


@pytest.mark.parametrize("meter", ["watermeter_Wasser_Geraete_GmbH", "lcd_lcd_pb"])
def test_a_display_of_real_crops_reads_exactly(engine: MeterEngine, meter: str) -> None:
    result, expected = read(engine, meter)
    assert result.extra["raw"] == expected, result.extra


@pytest.mark.parametrize("meter", METERS)
def test_a_display_of_real_crops_is_published_only_when_read_right(
    engine: MeterEngine, meter: str
) -> None:
    result, expected = read(engine, meter)
    if min(result.extra["digit_confidence"]) >= engine.min_confidence:
        assert result.extra["raw"] == expected, result.extra
    else:  # held back: the digits it is unsure of are where it went wrong, if it did
        unsure = [c < engine.min_confidence for c in result.extra["digit_confidence"]]
        wrong = [a != b for a, b in zip(result.extra["raw"], expected, strict=True)]
        assert all(u for u, w in zip(unsure, wrong, strict=True) if w), result.extra


@pytest.mark.parametrize("meter", METERS[:2])
def test_each_drum_is_placed_within_a_tenth_or_two_of_its_label(
    engine: MeterEngine, meter: str
) -> None:
    data, meter_config, _ = display(meter)
    cells = digit_cells(decode_image(data, 10_000_000, None), meter_config)
    probs = engine.reader.probabilities(cells)
    for (path, label), cell in zip(labelled(meter), probs, strict=True):
        assert label is not None
        read = point_position(cell[:BINS])
        off = min(abs(read - label), 10 - abs(read - label))
        assert off <= 0.25, (path.name, read)


def test_the_blank_lcd_cell_reads_blank_not_a_guessed_digit(engine: MeterEngine) -> None:
    data, meter_config, _ = display("lcd_lcd_pb")
    cells = digit_cells(decode_image(data, 10_000_000, None), meter_config)
    digits, confidence = engine.reader.read(cells)
    assert digits[0] == BLANK
    assert confidence[0] > 0.5

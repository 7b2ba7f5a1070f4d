"""A second reader, PP-OCR's recogniser, lets through readings the digit networks are unsure of.

Real RapidOCR (its weights ship in the wheel) on meter photos drawn by ``tools/meter_synth.py``;
the shipped digit networks with their thresholds rewritten, so the test decides which readings
count as unsure.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.config import MeterConfig, ModelConfig
from bridge.engines.base import EngineOutput, JobOptions
from bridge.engines.meter_engine import MeterEngine, RegionReading
from bridge.errors import ModelError
from bridge.meter.carry import BINS, BLANK, BLANK_INDEX
from bridge.meter.geometry import region_quad
from bridge.meter.recognizer import WEIGHTS
from bridge.meter.second_reader import agrees, confirmable
from tests.bridge.conftest import REPO

sys.path.insert(0, str(REPO / "tools"))

import meter_synth

READING = "5550123"
#: A min_confidence no digit reaches (confidences are rounded to 1.0 at most).
ABOVE_ANY = 1.01


def lcd_photo(reading: str = READING) -> tuple[meter_synth.Sample, MeterConfig]:
    """An LCD in drawn segments, which both readers read; an LCD digit is always whole."""
    sample = meter_synth.render(
        random.Random(2),
        styles=("lcd",),
        families=("segments",),
        strength=0.5,
        margin=(0.0, 0.03),
        reading=reading,
        decimals=2,
    )
    return sample, MeterConfig(digits=len(reading), decimals=2, roi=sample.roi)


def engine_with(path: Path, min_confidence: float, confirm: float | None) -> MeterEngine:
    """The shipped networks, their thresholds as the test says."""
    saved = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    saved["min_confidence"] = torch.tensor(min_confidence)
    saved.pop("confirm_confidence", None)
    if confirm is not None:
        saved["confirm_confidence"] = torch.tensor(confirm)
    torch.save(saved, path)
    engine = MeterEngine(ModelConfig(engine="meter", model=str(path), threads=1))
    engine.load()
    return engine


@pytest.fixture(scope="module")
def unsure_engine(tmp_path_factory: pytest.TempPathFactory) -> MeterEngine:
    """No digit is sure enough alone; any reading the second reader confirms is published."""
    return engine_with(tmp_path_factory.mktemp("weights") / "unsure.pt", ABOVE_ANY, 0.0)


def whole(labels: list[int], confidence: float) -> RegionReading:
    """A networks' reading of ``labels``, each cell standing on its digit."""
    probs = np.zeros((len(labels), BINS + 1))
    for cell, label in enumerate(labels):
        probs[cell, BLANK_INDEX if label == BLANK else label * 10] = 1.0
    quad = ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0))
    return RegionReading(quad, labels, [confidence] * len(labels), probs, np.stack([probs] * 3))


def test_an_unsure_reading_is_published_when_ocr_reads_the_same_digits(
    unsure_engine: MeterEngine,
) -> None:
    unsure_engine.attach_state(None)
    sample, meter = lcd_photo()
    out = unsure_engine.run_batch([sample.image], [JobOptions(meter=meter, camera="gas")])[0]
    assert isinstance(out, EngineOutput), out
    assert out.extra["raw"] == READING
    assert out.extra["confirmed_by"] == "ocr"
    assert out.extra["value"] == pytest.approx(55501.23)


def test_the_second_reader_confirms_only_the_digits_the_photo_shows(
    unsure_engine: MeterEngine,
) -> None:
    sample, meter = lcd_photo()
    quad = region_quad(meter, sample.image.size)
    right = [int(c) for c in READING]
    misread = [*right[:-1], 8]
    assert unsure_engine.confirmed(sample.image, whole(right, 0.8)._replace(quad=quad))
    assert not unsure_engine.confirmed(sample.image, whole(misread, 0.8)._replace(quad=quad))


def test_a_reading_far_from_sure_is_not_asked_about(tmp_path: Path) -> None:
    engine = engine_with(tmp_path / "floor.pt", ABOVE_ANY, 0.9)
    sample, meter = lcd_photo()
    quad = region_quad(meter, sample.image.size)
    right = [int(c) for c in READING]
    assert engine.confirmed(sample.image, whole(right, 0.95)._replace(quad=quad))
    assert not engine.confirmed(sample.image, whole(right, 0.85)._replace(quad=quad))


def test_without_confirm_confidence_an_unsure_reading_stays_held_back(tmp_path: Path) -> None:
    engine = engine_with(tmp_path / "alone.pt", ABOVE_ANY, None)
    assert engine.second is None
    engine.attach_state(None)
    sample, meter = lcd_photo()
    out = engine.run_batch([sample.image], [JobOptions(meter=meter, camera="gas")])[0]
    assert isinstance(out, ModelError)
    assert out.code == "meter_low_confidence"


def test_a_drum_between_two_digits_is_not_vouched_for_by_ocr() -> None:
    labels, sure = [1, 2, 3], [0.99, 0.99, 0.8]
    alike = [labels] * 3
    assert confirmable(labels, sure, [1.0, 2.0, 2.9], alike, 0.9)  # a tenth off a whole digit
    assert not confirmable(labels, sure, [1.0, 2.0, 2.8], alike, 0.9)  # 2.7 would read 2
    assert not confirmable(labels, sure, [1.0, 2.0, 3.5], alike, 0.9)  # mid-roll
    assert confirmable(labels, [0.8, 0.99, 0.99], [1.0, 2.0, 3.5], alike, 0.9)  # sure of that


def test_a_digit_the_networks_read_differently_is_not_vouched_for_by_ocr() -> None:
    labels, sure, positions = [1, 2, 3], [0.99, 0.99, 0.8], [1.0, 2.0, 3.0]
    assert not confirmable(labels, sure, positions, [[1, 2, 3], [1, 2, 8], [1, 2, 3]], 0.9)
    assert confirmable(labels, sure, positions, [[1, 2, 3], [1, 7, 3], [1, 2, 3]], 0.9)


def test_an_unsure_blank_cell_is_not_vouched_for_by_ocr() -> None:
    """OCR reading nothing there may be a faint leading 1 it missed."""
    labels, positions = [BLANK, 2, 3], [0.0, 2.0, 3.0]
    assert not confirmable(labels, [0.8, 0.99, 0.99], positions, [labels] * 3, 0.9)
    assert confirmable(labels, [0.95, 0.8, 0.99], positions, [labels] * 3, 0.9)


def test_ocr_agrees_only_with_exactly_the_digits_shown() -> None:
    assert agrees("123", [BLANK, 1, 2, 3])
    assert not agrees("0123", [BLANK, 1, 2, 3])
    assert not agrees("1234", [1, 2, 3])
    assert not agrees("", [BLANK, BLANK])


def test_without_rapidocr_the_networks_read_on_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # as if it were not installed
    engine = engine_with(tmp_path / "no-ocr.pt", ABOVE_ANY, 0.0)
    assert engine.second is None
    assert "no second reader" in caplog.text
    engine.attach_state(None)
    sample, meter = lcd_photo()
    out = engine.run_batch([sample.image], [JobOptions(meter=meter, camera="gas")])[0]
    assert isinstance(out, ModelError)
    assert out.code == "meter_low_confidence"

"""Water meters with pointer dials: each pointer read, dials and drums combined, carries decided.

The dials are drawn by ``tools/dial_synth.py`` (a face with numerals and ticks, a tapered red or
black pointer with a tail and a hub, blur, noise and JPEG) at known positions; the drums by
``tools/meter_synth.py``.  The reader, the engine and the recogniser's weights are the real ones.
"""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from pydantic import ValidationError

from bridge.config import DialConfig, MeterConfig
from bridge.engines.base import EngineOutput, JobOptions
from bridge.engines.meter_engine import MeterEngine, MeterError
from bridge.meter.dials import DialError, DialReading, agreeing_digit, combine, read_dial
from tests.bridge.conftest import REPO
from tests.bridge.meter_kit import loaded_meter_engine

sys.path.insert(0, str(REPO / "tools"))

import dial_synth
import meter_synth

#: A dial's reading may be off by this much (a fifth of one of its ten steps).
TOLERANCE = 0.2


def off_by(read: float, true: float) -> float:
    """Distance around the dial (0 and 10 are the same place)."""
    return abs((read - true + 5) % 10 - 5)


@pytest.mark.parametrize("pointer", ["red", "black"])
@pytest.mark.parametrize("value", [0.0, 0.6, 1.3, 2.5, 3.95, 4.8, 6.1, 7.25, 8.5, 9.9])
def test_a_drawn_dial_is_read_within_a_fifth_of_a_step(pointer: str, value: float) -> None:
    rng = random.Random(int(value * 100))
    photo = dial_synth.dial_row([value], rng.randint(20, 70), rng, pointer=pointer)
    ((box, _),) = photo.dials
    reading = read_dial(photo.image, DialConfig(roi=box, factor=0.1))
    assert off_by(reading.value, value) <= TOLERANCE, reading
    assert reading.confidence >= 0.5


def test_two_hundred_random_dials_are_all_read_within_a_fifth_of_a_step() -> None:
    rng = random.Random(2026)
    misses = []
    for _ in range(200):
        value = rng.uniform(0, 10)
        clockwise = rng.random() < 0.7
        pointer = rng.choice(["red", "black"])
        photo = dial_synth.dial_row(
            [value], rng.randint(18, 80), rng, pointer=pointer, clockwise=clockwise
        )
        ((box, _),) = photo.dials
        read = read_dial(photo.image, DialConfig(roi=box, factor=0.1, clockwise=clockwise))
        if off_by(read.value, value) > TOLERANCE:
            misses.append((value, read.value, pointer, clockwise))
    assert misses == []


def test_a_dial_given_by_centre_and_radius_reads_like_one_given_by_its_box() -> None:
    rng = random.Random(4)
    photo = dial_synth.dial_row([6.4], 40, rng)
    (x, y, w, h), _ = photo.dials[0]
    by_box = read_dial(photo.image, DialConfig(roi=(x, y, w, h), factor=0.1))
    by_centre = read_dial(
        photo.image, DialConfig(centre=(x + w // 2, y + h // 2), radius=w // 2, factor=0.1)
    )
    assert off_by(by_box.value, 6.4) <= TOLERANCE
    assert off_by(by_centre.value, 6.4) <= TOLERANCE


@pytest.mark.parametrize("seed", range(8))
def test_a_dial_with_no_pointer_is_not_guessed(seed: int) -> None:
    rng = random.Random(seed)
    photo = dial_synth.dial_row([0.0], rng.randint(20, 70), rng, pointer="none")
    with pytest.raises(DialError, match="no pointer found"):
        read_dial(photo.image, DialConfig(roi=photo.dials[0][0], factor=0.1))


def test_the_configuration_says_what_a_dial_needs() -> None:
    with pytest.raises(ValidationError, match="centre and radius"):
        DialConfig(factor=0.1)
    with pytest.raises(ValidationError, match=r"0\.1, 0\.01"):
        DialConfig(roi=(0, 0, 10, 10), factor=0.2)
    with pytest.raises(ValidationError, match=r"expected 0\.01"):
        MeterConfig(
            roi=(0, 0, 50, 10),
            digits=5,
            decimals=1,
            dials=(DialConfig(roi=(0, 20, 10, 10), factor=0.1),),
        )


def dial(value: float) -> DialReading:
    return DialReading(value=value, angle=value * 36, confidence=0.9, centre=(0, 0), radius=1)


def test_each_pointer_is_the_digit_that_agrees_with_the_next_finer_one() -> None:
    assert agreeing_digit(3.95, 9.8) == 3  # nearly at 4, but the finer one has not passed 0
    assert agreeing_digit(3.97, 0.2) == 4  # the finer one passed 0: the coarse one is at 4
    assert agreeing_digit(4.02, 9.6) == 3  # a little ahead of itself: still 3
    assert agreeing_digit(9.96, 0.3) == 0  # across the top of the dial
    assert agreeing_digit(5.5, 5.0) == 5


def test_drums_and_dials_make_one_value() -> None:
    combined = combine([0, 0, 4, 1, 7], 0, [dial(3.86), dial(8.55), dial(5.24), dial(2.4)])
    assert (combined.raw, combined.text, combined.value) == ("004173852", "00417.3852", 417.3852)
    assert combined.dial_digits == [3, 8, 5, 2]


def test_a_drum_caught_at_x9_has_rolled_over_when_the_first_dial_passed_0() -> None:
    # The last drum stands at 9.9 (nearly rolled), but the 0.1 dial has passed 0: it rolled.
    combined = combine([0, 1, 2, 9, 9], 0, [dial(0.5), dial(4.9)], last_position=9.9)
    assert combined.value == 1300.04
    # Read as a whole digit, a 9 with the dial just past 0 is a drum that just reached 9.
    assert combine([0, 1, 2, 9, 9], 0, [dial(0.5), dial(4.9)]).value == 1299.04
    # And the reverse: the drum already shows 0 while the dial has not reached 0 yet.
    combined = combine([0, 1, 3, 0, 0], 0, [dial(9.8), dial(5.0)], roll_start=9.2)
    assert combined.value == 1299.95
    # A drum that stands still most of the dial's turn shows 9 with the dial at 7.1: it is 9.
    assert combine([0, 1, 2, 9, 9], 0, [dial(7.1), dial(0.5)], roll_start=9.2).value == 1299.70
    # A drum that turns all the time is mostly at the next digit when the dial is past 5.
    assert combine([0, 1, 3, 0, 0], 0, [dial(7.1), dial(0.5)], roll_start=0).value == 1299.70
    # Nowhere near a roll, the drum stands as read.
    assert combine([0, 1, 3, 0, 4], 0, [dial(2.0), dial(0.3)]).value == 1304.20


def test_the_carry_follows_the_decimals_already_on_the_drums() -> None:
    combined = combine([1, 2, 3, 4, 5, 9], 2, [dial(0.2)], last_position=9.95, roll_start=9.2)
    assert (combined.text, combined.value) == ("1234.600", 1234.6)


# --- the engine: a water meter photo with drums and dials, read by the real recogniser ---


def water_meter(
    values: list[float], reading: str = "00417", seed: int = 3
) -> tuple[Image.Image, MeterConfig]:
    """Five drums (``tools/meter_synth.py``) with four dials drawn below them."""
    rng = random.Random(seed)
    drums = meter_synth.render(
        rng,
        styles=("drum_light",),
        families=("dejavu_sans",),
        strength=0.3,
        margin=(0.0, 0.03),
        reading=reading,
        decimals=0,
    )
    row = dial_synth.dial_row(values, 40, rng)
    width = max(drums.image.width, row.image.width)
    photo = Image.new("RGB", (width, drums.image.height + row.image.height), (150, 150, 155))
    photo.paste(drums.image, (0, 0))
    photo.paste(row.image, (0, drums.image.height))
    dials = tuple(
        DialConfig(roi=(x, y + drums.image.height, w, h), factor=10.0 ** -(i + 1))
        for i, ((x, y, w, h), _) in enumerate(row.dials)
    )
    meter = MeterConfig(roi=drums.roi, digits=5, decimals=0, dials=dials)
    return photo, meter


@pytest.fixture(scope="module")
def engine() -> MeterEngine:
    return loaded_meter_engine()


def test_a_water_meter_with_dials_publishes_the_combined_value(engine: MeterEngine) -> None:
    photo, meter = water_meter([3.86, 8.55, 5.24, 2.4])
    out = engine.run_batch([photo], [JobOptions(meter=meter, camera="water")])[0]
    assert isinstance(out, EngineOutput), out
    assert (out.extra["value"], out.text) == (417.3852, "00417.3852")
    dials = out.extra["dials"]
    assert [d["digit"] for d in dials] == [3, 8, 5, 2]
    assert [d["factor"] for d in dials] == [0.1, 0.01, 0.001, 0.0001]
    assert all(
        off_by(d["reading"], v) <= TOLERANCE
        for d, v in zip(dials, [3.86, 8.55, 5.24, 2.4], strict=True)
    )


def test_a_dial_whose_pointer_cannot_be_found_holds_the_reading_back(engine: MeterEngine) -> None:
    photo, meter = water_meter([3.86, 8.55, 5.24, 2.4])
    assert meter.dials[1].roi is not None
    x, y, w, h = meter.dials[1].roi
    ImageDraw.Draw(photo).ellipse((x, y, x + w, y + h), fill=(235, 232, 225))  # glare on dial 2
    out = engine.run_batch([photo], [JobOptions(meter=meter, camera="water")])[0]
    assert isinstance(out, MeterError)
    assert out.code == "meter_unreadable"
    assert "dial 2 (x0.01): no pointer found" in out.detail
    assert out.extra["dials"][1] == {
        "factor": 0.01,
        "reading": None,
        "digit": None,
        "confidence": 0.0,
    }
    assert out.preview is not None  # the picture still shows what was read, and where
    picture = Image.open(io.BytesIO(out.preview()))
    assert picture.format == "JPEG"


def test_analyze_reads_a_water_meter_with_dials_from_a_manifest(tmp_path: Path) -> None:
    import json
    import subprocess

    photo, meter = water_meter([7.095, 0.95, 9.5, 5.5], reading="01299")
    photo.save(tmp_path / "water.jpg", quality=95)
    entry = json.loads(meter.model_dump_json(include={"roi", "digits", "decimals", "dials"}))
    (tmp_path / "manifest.json").write_text(json.dumps([{"file": "water.jpg", **entry}]))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridge",
            "analyze",
            "--task",
            "meter",
            "--manifest",
            str(tmp_path / "manifest.json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=True,
    )
    line = json.loads(done.stdout)
    # The drum shows 9 with the first dial at 7.1: it has not started to roll (roll_start 9.2);
    # the second dial at 0.95 is just past 0, its finer one at 9.5 still before it.
    assert (line["value"], line["text"]) == (1299.7095, "01299.7095")
    assert [d["digit"] for d in line["dials"]] == [7, 0, 9, 5]


def test_dial_synth_writes_a_labelled_set(tmp_path: Path) -> None:
    import json
    import subprocess

    subprocess.run(
        [sys.executable, str(REPO / "tools" / "dial_synth.py"), str(tmp_path), "--count", "3"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert len(manifest) == 3
    first = manifest[0]
    reading = read_dial(
        Image.open(tmp_path / first["file"]),
        DialConfig(roi=tuple(first["roi"]), factor=0.1, clockwise=first["clockwise"]),
    )
    assert off_by(reading.value, first["value"]) <= TOLERANCE

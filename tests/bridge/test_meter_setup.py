"""Setting up a meter camera from one snapshot: ``image-to-text meter-setup IMAGE``.

The snapshots are the generator's photos (``tools/meter_synth.py``: LCDs, LEDs, drum counters on
a meter body with printed labels, lit unevenly, tilted a little, blurred and compressed), whose
true digit region is known; the command runs as a user runs it, in its own process.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from bridge.meter.locate import NoDigitsError, find_digits
from tests.bridge.conftest import REPO

sys.path.insert(0, str(REPO / "tools"))

import meter_synth

#: Families whose fonts are here (the committed ones and the procedural drawings).
FAMILIES = tuple(f for f in meter_synth.FAMILIES if meter_synth.FAMILIES[f] != [])


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


def snapshot(seed: int, styles: tuple[str, ...] = meter_synth.STYLES) -> meter_synth.Sample:
    return meter_synth.render(
        random.Random(seed), styles=styles, families=FAMILIES, margin=(0.0, 0.02)
    )


def run_setup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", "meter-setup", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        check=False,
    )


def test_the_command_prints_a_meter_block_to_paste_and_writes_the_picture(tmp_path: Path) -> None:
    sample = meter_synth.render(
        random.Random(5),
        styles=("lcd",),
        families=("dseg7classic",),
        strength=0.5,
        reading="01234567",
        decimals=3,
    )
    photo = tmp_path / "gas.jpg"
    sample.image.save(photo, quality=92)
    done = run_setup(str(photo), "--out", str(tmp_path / "check.jpg"))
    assert done.returncode == 0, done.stderr
    block = yaml.safe_load(done.stdout)["meter"]
    assert iou(tuple(block["roi"]), sample.roi) >= 0.6
    assert (block["digits"], block["decimals"]) == (8, 3)
    assert "read 01234.567" in done.stdout
    picture = Image.open(tmp_path / "check.jpg")
    assert picture.format == "JPEG"
    assert max(picture.size) >= 960  # readable on a phone


@pytest.mark.parametrize("style", meter_synth.STYLES)
def test_the_proposed_region_overlaps_the_digits_in_every_display_style(style: str) -> None:
    found = []
    for seed in range(6):
        sample = snapshot(1000 + seed, (style,))
        try:
            proposal = find_digits(sample.image)
        except NoDigitsError:
            found.append(0.0)
            continue
        found.append(iou(proposal.roi, sample.roi))
    assert sum(v >= 0.6 for v in found) >= 4, found


def test_most_of_a_mixed_set_of_snapshots_get_a_region_on_their_digits() -> None:
    overlaps = []
    for seed in range(40):
        sample = snapshot(seed)
        try:
            overlaps.append(iou(find_digits(sample.image).roi, sample.roi))
        except NoDigitsError:
            overlaps.append(0.0)
    assert sum(v >= 0.6 for v in overlaps) >= 32, sorted(overlaps)


@pytest.mark.parametrize(
    "picture",
    [
        Image.new("RGB", (640, 480), (128, 128, 128)),
        Image.fromarray(
            (np.random.default_rng(3).normal(128, 10, (480, 640, 3))).clip(0, 255).astype(np.uint8)
        ),
    ],
    ids=["grey", "noise"],
)
def test_a_picture_without_digits_gets_a_clear_message_and_a_failing_exit(
    tmp_path: Path, picture: Image.Image
) -> None:
    photo = tmp_path / "wall.jpg"
    picture.save(photo)
    done = run_setup(str(photo))
    assert done.returncode == 1
    assert "no row of 3 or more digit-shaped marks" in done.stderr
    assert "meter:" not in done.stdout


def test_a_file_that_is_no_picture_is_a_usage_error(tmp_path: Path) -> None:
    junk = tmp_path / "notes.jpg"
    junk.write_text("not a picture")
    done = run_setup(str(junk))
    assert done.returncode == 2
    assert "cannot read" in done.stderr

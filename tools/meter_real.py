"""Real meter digit crops from ``haverland/Tenth-of-step-of-a-meter-digit`` (Apache-2.0).

ESP32-CAM crops that AI-on-the-edge-device users collected from their own meters, one digit
each, labelled in the file name: ``3.4_<hash>.jpg`` is a drum 40% of the way from 3 to 4,
``3_`` or ``3.0_`` a whole digit, ``10_`` a blank cell.  Get the data (a checkout, or from a
bare mirror, ``DATASET_COMMIT``)::

    git --git-dir=REPO.git archive DATASET_COMMIT images/collected | tar -x -C /tmp/tenth

What may be used (the project's rule, ``bridge/meter/DATA_CARD.md``): ``images/collected/**``
minus ``images/collected/new/`` (many meters mixed) and minus the evaluation meters below,
which are only ever used to measure (``bench/meter_accuracy.py --set real``).  Some crops are
stored twice under different folders: a training crop whose bytes equal an evaluation crop's
is dropped.  Displays are made by putting N crops of one meter side by side, the way the
reader's region splits a display into equal cells.
"""

# ruff: noqa: S311 - seeded RNG for reproducible displays
from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bridge.meter.carry import BLANK, digits_from_positions

#: The commit of the dataset these weights were trained from.
DATASET_COMMIT = "ebf9b2ba33b56a45d97b5463d19e8035d4afbb12"
COLLECTED = "images/collected/"
#: Never trained on, never used to fit a threshold: benchmark only, by meter.
EVALUATION_METERS = (
    "images/collected/lcd/digital italic/",
    "images/collected/lcd2/",
    "images/collected/powermeter/Heliowatt/IKN/",
    "images/collected/powermeter/ISKRA T3F-01S1/",
    "images/collected/powermeter/ISKRA.T3F-01S1_20250630/",
    "images/collected/powermeter/Landis+Gyr - MM2600JH/",
    "images/collected/powermeter/LandisGyrT330_C/",
    "images/collected/powermeter/betar/",
    "images/collected/powermeter/unknown/japander/",
    "images/collected/powermeter/unknown/miboe/",
    "images/collected/watermeter/Metrona/",
    "images/collected/watermeter/Techem/V_DR/",
    "images/collected/watermeter/Unknown/abl/",
    "images/collected/watermeter/pp/",
    "images/collected/watermeter/watermeter_lcd/",
)
#: Many meters mixed in one folder: no meter to split by, so not used at all.
NOT_USED = ("images/collected/new/",)
#: Meters whose digits are LCD segments (for per-style figures); the rest are drums.
LCD_METERS = ("lcd", "lcd_pb", "lcd2", "LandisGyrT330_C", "Metrona", "watermeter_lcd")


@dataclass(frozen=True)
class Crop:
    """One labelled digit crop."""

    path: Path
    meter: str
    #: Position in tenths (0-99), or None for a blank cell.
    tenths: int | None

    @property
    def position(self) -> float | None:
        """Where the digit stands, 0.0-9.9, or None (blank)."""
        return None if self.tenths is None else self.tenths / 10


def label_of(name: str) -> int | str | None:
    """Tenths from a file name (``3.4_x.jpg`` -> 34), None for blank, "" if unlabelled."""
    head = name.split("_", 1)[0]
    if head == "10":
        return None
    try:
        value = float(head)
    except ValueError:
        return ""
    if not 0 <= value < 10:
        return ""
    return round(value * 10) % 100


def meter_of(rel: str) -> str:
    """The meter a crop belongs to: its folder without date and hour sub-folders."""
    for prefix in EVALUATION_METERS:
        if rel.startswith(prefix):
            return prefix[len(COLLECTED) :].rstrip("/")
    parts = rel[len(COLLECTED) :].split("/")[:-1]
    while parts and re.fullmatch(r"[\d_]+(manual)?", parts[-1]):
        parts.pop()
    return "/".join(parts)


def style_of(meter: str) -> str:
    """``lcd`` or ``drum``."""
    return "lcd" if any(part in LCD_METERS for part in meter.split("/")) else "drum"


def scan(dataset: Path) -> tuple[dict[str, list[Crop]], dict[str, list[Crop]], int]:
    """(training meters, evaluation meters, training crops dropped as copies of evaluation ones).

    Sorted, so the same dataset commit gives the same lists on every machine.
    """
    train: dict[str, list[Crop]] = defaultdict(list)
    evaluation: dict[str, list[Crop]] = defaultdict(list)
    eval_hashes: set[str] = set()
    candidates: list[tuple[str, Path, int | None]] = []
    for path in sorted((dataset / COLLECTED).rglob("*.jpg")):
        rel = path.relative_to(dataset).as_posix()
        label = label_of(path.name)
        if label == "" or rel.startswith(NOT_USED):
            continue
        assert not isinstance(label, str)
        if rel.startswith(EVALUATION_METERS):
            eval_hashes.add(hashlib.sha256(path.read_bytes()).hexdigest())
            evaluation[meter_of(rel)].append(Crop(path, meter_of(rel), label))
        else:
            candidates.append((rel, path, label))
    dropped = 0
    for rel, path, label in candidates:
        if hashlib.sha256(path.read_bytes()).hexdigest() in eval_hashes:
            dropped += 1
            continue
        train[meter_of(rel)].append(Crop(path, meter_of(rel), label))
    return dict(train), dict(evaluation), dropped


def load(crop: Crop) -> Image.Image:
    """The crop's picture, RGB."""
    with Image.open(crop.path) as image:
        return image.convert("RGB")


def compose(
    crops: list[Crop],
    rng: random.Random | None = None,
    loader: Callable[[Crop], Image.Image] = load,
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The crops side by side as one display, and the digits' region (x, y, w, h).

    Every crop is scaled to the first one's size.  The display gets a margin of its own edge
    pixels; with ``rng``, the region is drawn a little off (as a person would), else exactly.
    """
    pictures = [loader(c) for c in crops]
    width, height = pictures[0].size
    row = np.concatenate(
        [np.asarray(p.resize((width, height), Image.Resampling.BILINEAR)) for p in pictures],
        axis=1,
    )
    mx, my = max(2, width // 2), max(2, height // 4)
    framed = np.pad(row, ((my, my), (mx, mx), (0, 0)), mode="edge")
    roi = (mx, my, width * len(crops), height)
    if rng is not None:
        dx = round(width * rng.uniform(-0.12, 0.12))
        dw = round(width * rng.uniform(-0.12, 0.12))
        dy = round(height * rng.uniform(-0.06, 0.06))
        dh = round(height * rng.uniform(-0.06, 0.1))
        roi = (mx + dx, my + dy, roi[2] + dw - dx, roi[3] + dh - dy)
    return Image.fromarray(framed), roi


def truth(crops: list[Crop]) -> str:
    """The reading such a display stands for: its labels through the carry rule (blank: 0)."""
    digits = digits_from_positions([c.position for c in crops])
    return "".join("0" if d == BLANK else str(d) for d in digits)


def displays(
    meters: dict[str, list[Crop]],
    per_meter: int,
    seed: int,
    sizes: tuple[int, int] = (5, 8),
    counter: bool = False,
) -> list[list[Crop]]:
    """``per_meter`` displays of ``sizes`` crops each, every one from a single meter.

    A blank crop is only put in front of the display's digits, as an LCD blanks leading zeros.
    Crops are drawn independently, so a drum at 3.5 may stand left of one at 5.0, which no
    counter shows.  With ``counter``, the displays are composed as a counter can stand
    (``counter_digits``): the last drum anywhere, a drum left of it mid-roll only while its
    right neighbour rolls over.
    """
    rng = random.Random(seed)
    out = []
    for meter in sorted(meters):
        digits = [c for c in meters[meter] if c.tenths is not None]
        blanks = [c for c in meters[meter] if c.tenths is None]
        if not digits:
            continue
        for _ in range(per_meter):
            n = rng.randint(*sizes)
            lead = rng.randint(0, 2) if blanks and rng.random() < 0.3 else 0
            chosen = [rng.choice(blanks) for _ in range(lead)]
            if counter:
                chosen += counter_digits(digits, n - lead, rng)
            else:
                chosen += [rng.choice(digits) for _ in range(n - lead)]
            out.append(chosen)
    return out


def counter_digits(digits: list[Crop], n: int, rng: random.Random) -> list[Crop]:
    """``n`` crops of one meter that a counter could show side by side, left to right.

    Right to left: the last drum is any crop; a drum whose right neighbour stands at 9.f
    (rolling over) has moved at most as far, tenths 0-f past its digit; any other drum is at
    rest on a whole digit.  A meter with no crop for a case falls back to any crop.
    """
    by_tenth: dict[int, list[Crop]] = defaultdict(list)
    for crop in digits:
        assert crop.tenths is not None
        by_tenth[crop.tenths % 10].append(crop)
    chosen = [rng.choice(digits)]
    while len(chosen) < n:
        right = chosen[-1].tenths
        assert right is not None
        reach = right % 10 if right > 90 else 0
        pool = [c for t in range(reach + 1) for c in by_tenth.get(t, [])] or digits
        chosen.append(rng.choice(pool))
    return chosen[::-1]

"""A second, independently written generator of meter photos, used only to measure.

``tools/meter_synth.py`` makes the recogniser's training data, and a held-out set drawn by the
same code shares its habits (how a region is drawn around the digits, how cells are spaced,
how glare and blur look) even when its fonts are held out.  This script draws meter displays
the way someone else would: whole strings rendered in a font rather than digit by digit,
the region taken from the ink's bounding box, separate windows for drums, its own lighting.
Nothing here is imported by training, so what it measures is how the reader does on photos
made by a stranger.  It writes JPEGs and a ``manifest.json`` for ``bench/meter_accuracy.py
--manifest`` (or ``image-to-text analyze --task meter --manifest``)::

    python bench/meter_independent_set.py /tmp/indep --count 200
    python bench/meter_accuracy.py --manifest /tmp/indep/manifest.json

Families: the DSEG 7-segment fonts as strings (LCD and LED), and drum counters in typefaces
from Debian's font packages (Liberation, FreeFont, URW, Noto...) that are installed here;
``--families`` lists those found.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_ROOTS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"))

#: 7-segment string fonts (for LCD/LED displays), by file-name pattern.
SEGMENT_FONTS = ("dseg/DSEG7Classic-*.ttf", "dseg/DSEG7Modern-*.ttf")
#: Drum typefaces, by file-name pattern: what a stranger would reach for first.
DRUM_FONTS = (
    "liberation2/LiberationSans-*.ttf",
    "liberation2/LiberationMono-*.ttf",
    "freefont/FreeSans*.ttf",
    "freefont/FreeMono*.ttf",
    "urw-base35/NimbusSans-*.otf",
    "urw-base35/NimbusSansNarrow-*.otf",
    "noto/NotoSans-Regular.ttf",
    "noto/NotoSans-Bold.ttf",
    "noto/NotoSansMono-*.ttf",
    "roboto/unhinted/RobotoTTF/Roboto-*.ttf",
    "croscore/Arimo-*.ttf",
    "croscore/Cousine-*.ttf",
)


def _fonts(patterns: tuple[str, ...]) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        for root in FONT_ROOTS:
            found.extend(sorted(root.glob(pattern)))
    return [p for p in found if "Italic" not in p.name and "Oblique" not in p.name]


def _jpeg_roundtrip(img: Image.Image, quality: int) -> Image.Image:
    import io

    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _reading(rng: random.Random, digits: int) -> str:
    value = rng.randint(0, 10 ** rng.randint(2, digits) - 1)
    return str(value).zfill(digits)


def _segment_display(
    rng: random.Random, reading: str, decimals: int, font_path: Path, led: bool
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A whole string in a DSEG font, the unlit segments drawn as a faint row of eights."""
    size = rng.randint(22, 80)
    font = ImageFont.truetype(str(font_path), size)
    shown = reading if not decimals else f"{reading[:-decimals]}.{reading[-decimals:]}"
    ghost = (
        "8" * len(reading)
        if not decimals
        else f"{'8' * (len(reading) - decimals)}.{'8' * decimals}"
    )
    left, top, right, bottom = font.getbbox(ghost)
    pad_x, pad_y = rng.randint(6, 40), rng.randint(6, 30)
    w, h = right - left + 2 * pad_x, bottom - top + 2 * pad_y
    if led:
        bg = (rng.randint(0, 25),) * 3
        ink = rng.choice([(255, 30, 20), (40, 255, 90), (255, 160, 20), (90, 200, 255)])
        ghost_ink = tuple(min(255, c // 10 + bg[0]) for c in ink)
    else:
        base = rng.randint(150, 215)
        bg = (base, base + rng.randint(0, 15), base - rng.randint(0, 20))
        ink = (rng.randint(5, 60),) * 3
        ghost_ink = tuple(c - rng.randint(8, 25) for c in bg)
    panel = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(panel)
    origin = (pad_x - left, pad_y - top)
    if rng.random() < 0.75:
        draw.text(origin, ghost, font=font, fill=ghost_ink)
    draw.text(origin, shown, font=font, fill=ink)
    if led:
        glow = panel.filter(ImageFilter.GaussianBlur(size * 0.08))
        panel = Image.blend(panel, glow, 0.35)
    # the region: the ink box of the row of eights (what a user sees as "the digits")
    return panel, (pad_x, pad_y, right - left, bottom - top)


def _drum_display(
    rng: random.Random, reading: str, decimals: int, font_path: Path
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """Digits in separate windows of a counter, the decimals on red drums."""
    cell_h = rng.randint(24, 90)
    cell_w = int(cell_h * rng.uniform(0.6, 0.85))
    gap = int(cell_w * rng.uniform(0.1, 0.35))
    font = ImageFont.truetype(str(font_path), int(cell_h * rng.uniform(0.65, 0.85)))
    n = len(reading)
    plate = rng.choice([(20, 20, 20), (210, 210, 205), (140, 140, 140)])
    margin = rng.randint(6, 30)
    w = 2 * margin + n * cell_w + (n - 1) * gap
    h = 2 * margin + cell_h
    panel = Image.new("RGB", (w, h), plate)
    light_drums = rng.random() < 0.4
    for i, ch in enumerate(reading):
        red = i >= n - decimals
        drum = (240, 238, 230) if light_drums else (15, 15, 15)
        ink = (10, 10, 10) if light_drums else (245, 245, 245)
        if red:
            drum, ink = (
                ((200, 20, 20), (250, 250, 250)) if rng.random() < 0.6 else (drum, (210, 20, 20))
            )
        cell = Image.new("RGB", (cell_w, cell_h), drum)
        d = ImageDraw.Draw(cell)
        left, top, right, bottom = d.textbbox((0, 0), ch, font=font)
        origin = ((cell_w - (right - left)) / 2 - left, (cell_h - (bottom - top)) / 2 - top)
        d.text(origin, ch, font=font, fill=ink)
        x = margin + i * (cell_w + gap)
        panel.paste(cell, (x, margin))
    return panel, (margin, margin, n * cell_w + (n - 1) * gap, cell_h)


def photo(
    rng: random.Random, segment_fonts: list[Path], drum_fonts: list[Path]
) -> dict[str, object]:
    """One photo and its truth: the display placed on a meter face and photographed."""
    digits = rng.randint(5, 8)
    decimals = rng.choice([0, 1, 2, 3])
    reading = _reading(rng, digits)
    kind = rng.choice(["lcd", "led", "drum"])
    if kind == "drum":
        font = rng.choice(drum_fonts)
        panel, box = _drum_display(rng, reading, decimals, font)
    else:
        font = rng.choice(segment_fonts)
        panel, box = _segment_display(rng, reading, decimals, font, led=kind == "led")
    face = Image.new(
        "RGB",
        (panel.width + rng.randint(40, 300), panel.height + rng.randint(40, 260)),
        rng.choice([(235, 235, 230), (50, 55, 60), (180, 175, 160)]),
    )
    ox = rng.randint(10, face.width - panel.width - 10)
    oy = rng.randint(10, face.height - panel.height - 10)
    face.paste(panel, (ox, oy))
    bx, by, bw, bh = box
    # lighting: a soft vignette, sometimes a reflection
    arr = np.asarray(face, np.float32)
    yy, xx = np.mgrid[0 : face.height, 0 : face.width].astype(np.float32)
    cx, cy = face.width * rng.uniform(0.3, 0.7), face.height * rng.uniform(0.3, 0.7)
    dist = np.hypot((xx - cx) / face.width, (yy - cy) / face.height)
    arr *= (1 - rng.uniform(0, 0.4) * dist)[..., None]
    if rng.random() < 0.3:
        gx, gy = ox + bx + rng.uniform(0, bw), oy + by + rng.uniform(0, bh)
        spot = np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * (bh * rng.uniform(0.3, 0.8)) ** 2))
        arr += spot[..., None] * rng.uniform(30, 110)
    arr += np.random.default_rng(rng.randrange(2**31)).normal(0, rng.uniform(0, 8), arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    angle = rng.uniform(-3, 3)
    img = img.rotate(
        angle, resample=Image.Resampling.BICUBIC, center=(ox + bx + bw / 2, oy + by + bh / 2)
    )
    if rng.random() < 0.6:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2) * bh / 40))
    scale = rng.uniform(0.6, 1.4)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    img = _jpeg_roundtrip(img, rng.randint(45, 92))
    # region: the digits' box as a user would measure it, a few pixels slack, no rotation given
    slack = rng.uniform(0, 0.05)
    roi = [
        round((ox + bx - slack * bw / 2) * scale),
        round((oy + by - slack * bh) * scale),
        round(bw * (1 + slack) * scale),
        round(bh * (1 + 2 * slack) * scale),
    ]
    return {
        "image": img,
        "roi": roi,
        "digits": digits,
        "decimals": decimals,
        "raw": reading,
        "value": int(reading) / 10**decimals,
        "style": kind,
        "family": Path(font).stem.split("-")[0],
        "rotation_in_photo": round(angle, 2),
    }


def main() -> None:
    """Command line: write the set."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=424242)
    parser.add_argument("--families", action="store_true", help="list the fonts found and stop")
    args = parser.parse_args()
    segment_fonts, drum_fonts = _fonts(SEGMENT_FONTS), _fonts(DRUM_FONTS)
    if args.families or args.folder is None:
        print(f"segment fonts: {[p.name for p in segment_fonts]}")
        print(f"drum fonts: {[p.name for p in drum_fonts]}")
        return
    if not segment_fonts or not drum_fonts:
        raise SystemExit(
            "needs fonts-dseg and at least one of fonts-liberation2, fonts-freefont-ttf"
        )
    rng = random.Random(args.seed)
    args.folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for index in range(args.count):
        entry = photo(rng, segment_fonts, drum_fonts)
        name = f"indep_{index:04d}.jpg"
        entry.pop("image").save(args.folder / name, quality=95)  # type: ignore[attr-defined]
        manifest.append({"file": name, **entry})
    (args.folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    print(f"wrote {len(manifest)} photos and manifest.json to {args.folder}")


if __name__ == "__main__":
    main()

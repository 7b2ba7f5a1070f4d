"""Drawn pointer dials, with the true reading of each, for the dial reader's tests and benchmark.

A dial is a light face with ten numbered divisions and ticks at the rim, a tapered pointer
(red, or black) with a short tail and a hub, seen a little blurred, noisy and JPEG-compressed.
``meter_photo`` puts dials beside a drawn drum counter (``tools/meter_synth.py``) as on a
water meter, and returns where everything is.

    python tools/dial_synth.py /tmp/dials --count 200 --seed 5
"""

# ruff: noqa: S311 - a generator: seeded RNG
from __future__ import annotations

import argparse
import io
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

POINTER_COLOURS = {"red": (200, 30, 30), "black": (25, 25, 25)}


def draw_dial(
    value: float,
    radius: int,
    rng: random.Random,
    *,
    pointer: str = "red",
    clockwise: bool = True,
    face: tuple[int, int, int] = (235, 232, 225),
) -> Image.Image:
    """A square RGB picture of one dial whose pointer shows ``value`` (0 to 10)."""
    size = 2 * radius + 2
    scale = 4  # drawn large, then reduced: smooth edges
    big = size * scale
    c = big / 2
    r = radius * scale
    img = Image.new("RGB", (big, big), (80, 80, 85))
    draw = ImageDraw.Draw(img)
    draw.ellipse((c - r, c - r, c + r, c + r), fill=face, outline=(60, 60, 60), width=scale)
    font = ImageFont.load_default(size=max(8, int(r * 0.22)))
    for tick in range(50):
        a = math.radians(tick * 7.2 if clockwise else -tick * 7.2)
        inner = 0.86 if tick % 5 else 0.8
        x0, y0 = c + math.sin(a) * r * inner, c - math.cos(a) * r * inner
        x1, y1 = c + math.sin(a) * r * 0.95, c - math.cos(a) * r * 0.95
        draw.line((x0, y0, x1, y1), fill=(30, 30, 30), width=scale * (2 if tick % 5 == 0 else 1))
    for digit in range(10):
        a = math.radians(digit * 36 if clockwise else -digit * 36)
        x, y = c + math.sin(a) * r * 0.66, c - math.cos(a) * r * 0.66
        draw.text((x, y), str(digit), fill=(30, 30, 30), font=font, anchor="mm")
    a = math.radians(value * 36 if clockwise else -value * 36)
    ux, uy = math.sin(a), -math.cos(a)
    px, py = -uy, ux  # across the pointer
    width = r * rng.uniform(0.07, 0.12)
    tip = (c + ux * r * 0.85, c + uy * r * 0.85)
    tail = (c - ux * r * 0.22, c - uy * r * 0.22)
    if pointer == "none":  # a dial whose pointer is hidden (glare, a cover, a wrong region)
        return img.resize((size, size), Image.Resampling.LANCZOS)
    colour = POINTER_COLOURS[pointer]
    draw.polygon(
        [tip, (c + px * width, c + py * width), tail, (c - px * width, c - py * width)],
        fill=colour,
    )
    hub = width * 1.3
    draw.ellipse((c - hub, c - hub, c + hub, c + hub), fill=(40, 40, 40))
    return img.resize((size, size), Image.Resampling.LANCZOS)


def photograph(image: Image.Image, rng: random.Random, strength: float = 1.0) -> Image.Image:
    """Blur, light unevenly, add noise and compress like a small camera."""
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.2) * strength))
    arr = np.asarray(image, np.float32) * rng.uniform(0.75, 1.1)
    nprng = np.random.default_rng(rng.randrange(2**32))
    arr = arr + nprng.normal(0, rng.uniform(0, 8) * strength, arr.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(
        buf, "JPEG", quality=int(rng.uniform(60, 92))
    )
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@dataclass
class DialPhoto:
    """A picture with dials in it and what they show."""

    image: Image.Image
    #: Each dial's box [x, y, w, h] and its true value (0-10).
    dials: list[tuple[tuple[int, int, int, int], float]]


def dial_row(values: list[float], radius: int, rng: random.Random, **style: object) -> DialPhoto:
    """Dials side by side on a meter body, left to right as given."""
    gap = radius // 2
    width = len(values) * (2 * radius + 2 + gap) + gap
    canvas = Image.new("RGB", (width, 2 * radius + 2 + 2 * gap), (150, 150, 155))
    boxes = []
    for index, value in enumerate(values):
        x = gap + index * (2 * radius + 2 + gap)
        canvas.paste(draw_dial(value, radius, rng, **style), (x, gap))  # type: ignore[arg-type]
        boxes.append(((x, gap, 2 * radius + 2, 2 * radius + 2), value))
    return DialPhoto(photograph(canvas, rng), boxes)


def main() -> None:
    """Command line: write single-dial pictures and a manifest of their true values."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    manifest = []
    for index in range(args.count):
        value = rng.uniform(0, 10)
        pointer = rng.choice(list(POINTER_COLOURS))
        clockwise = rng.random() < 0.8
        photo = dial_row([value], rng.randint(18, 80), rng, pointer=pointer, clockwise=clockwise)
        name = f"dial_{index:04d}.jpg"
        photo.image.save(args.folder / name, quality=92)
        box = photo.dials[0][0]
        manifest.append(
            {
                "file": name,
                "roi": list(box),
                "value": value,
                "pointer": pointer,
                "clockwise": clockwise,
            }
        )
    (args.folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    print(f"wrote {len(manifest)} dials and manifest.json to {args.folder}")


if __name__ == "__main__":
    main()

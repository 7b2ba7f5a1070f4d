"""The meter picture: the frame with the region, each cell's digit and each dial's pointer drawn.

Published on ``<base>/<camera>/meter/image`` instead of the bare frame, and written by
``image-to-text meter-setup``, so a user sees at a glance whether the region sits on the digits:
the region outlined in green, each cell with the digit read in it above, a cell read with low
confidence outlined in red, each dial circled with the pointer line found and its reading.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from bridge.meter.dials import DialReading
from bridge.meter.geometry import Quad
from bridge.meter.plausibility import MIN_CONFIDENCE

#: The picture's longest side is brought into this range: small frames are enlarged so the
#: labels stay readable on a phone, large ones reduced like every published frame.
LONGEST_MIN, LONGEST_MAX = 960, 1280
REGION = (0, 230, 0)
LOW = (255, 0, 0)
CELL = (0, 200, 255)
POINTER = (255, 0, 255)
LABEL_BG = (0, 0, 0)
LABEL_FG = (255, 255, 255)


@dataclass(frozen=True)
class DialMark:
    """A dial to draw: its circle, and what was read (``None``: no pointer found)."""

    centre: tuple[float, float]
    radius: float
    factor: float
    reading: DialReading | None
    #: Why there is no reading.
    problem: str = ""


def _lerp(a: tuple[float, float], b: tuple[float, float], t: float) -> tuple[float, float]:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def _label(
    draw: ImageDraw.ImageDraw,
    at: tuple[float, float],
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    colour: tuple[int, int, int],
) -> None:
    """Text centred on ``at`` on a dark box, so it reads on any background; kept in the picture."""
    box = draw.textbbox(at, text, font=font, anchor="mm")
    width, height = draw.im.size
    dx = max(0.0, 4 - box[0]) - max(0.0, box[2] + 4 - width)
    dy = max(0.0, 4 - box[1]) - max(0.0, box[3] + 4 - height)
    at = (at[0] + dx, at[1] + dy)
    box = draw.textbbox(at, text, font=font, anchor="mm")
    draw.rectangle((box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3), fill=LABEL_BG)
    draw.text(at, text, fill=colour, font=font, anchor="mm")


def draw_reading(
    image: Image.Image,
    quad: Quad | None,
    labels: Sequence[int],
    confidence: Sequence[float],
    dials: Sequence[DialMark] = (),
    *,
    min_confidence: float = MIN_CONFIDENCE,
) -> Image.Image:
    """A copy of ``image``, resized for viewing, with the reading drawn on it.

    Cells below ``min_confidence`` (the weights' calibrated threshold) are marked.
    """
    longest = max(image.size)
    scale = min(max(1.0, LONGEST_MIN / longest), LONGEST_MAX / longest)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    out = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(out)
    width = max(3, round(max(size) / 320))
    if quad is not None:
        tl, tr, br, bl = (((x * scale), (y * scale)) for x, y in quad)
        height = math.dist(tl, bl)
        font = ImageFont.load_default(size=max(16, round(height * 0.45)))
        count = max(1, len(labels))
        for i in range(count):
            corners = [
                _lerp(tl, tr, i / count),
                _lerp(tl, tr, (i + 1) / count),
                _lerp(bl, br, (i + 1) / count),
                _lerp(bl, br, i / count),
            ]
            low = i < len(confidence) and confidence[i] < min_confidence
            draw.line([*corners, corners[0]], fill=LOW if low else CELL, width=width)
            if i < len(labels):
                digit = " " if labels[i] > 9 else str(labels[i])
                top = _lerp(corners[0], corners[1], 0.5)
                _label(
                    draw,
                    (top[0], top[1] - height * 0.35 - 4),
                    digit,
                    font,
                    LOW if low else LABEL_FG,
                )
        draw.line([tl, tr, br, bl, tl], fill=REGION, width=width + 1)
        for i in range(count):  # the red cells again on top of the region's outline
            if i < len(confidence) and confidence[i] < min_confidence:
                corners = [
                    _lerp(tl, tr, i / count),
                    _lerp(tl, tr, (i + 1) / count),
                    _lerp(bl, br, (i + 1) / count),
                    _lerp(bl, br, i / count),
                ]
                draw.line([*corners, corners[0]], fill=LOW, width=width + 1)
    for mark in dials:
        _draw_dial(draw, mark, scale, width)
    return out


def _draw_dial(draw: ImageDraw.ImageDraw, mark: DialMark, scale: float, width: int) -> None:
    cx, cy, r = mark.centre[0] * scale, mark.centre[1] * scale, mark.radius * scale
    reading = mark.reading
    rim = r + width / 2  # the outline centred on the dial's rim
    draw.ellipse(
        (cx - rim, cy - rim, cx + rim, cy + rim), outline=REGION if reading else LOW, width=width
    )
    font = ImageFont.load_default(size=max(14, round(r * 0.4)))
    if reading is None:
        _label(draw, (cx, cy + r + r * 0.3 + 6), f"? x{mark.factor:g}", font, LOW)
        return
    a = math.radians(reading.angle)
    tip = (cx + math.sin(a) * r * 0.95, cy - math.cos(a) * r * 0.95)
    draw.line([(cx, cy), tip], fill=POINTER, width=width + 1)
    _label(
        draw, (cx, cy + r + r * 0.3 + 6), f"{reading.value:.1f} x{mark.factor:g}", font, LABEL_FG
    )


def encode(picture: Image.Image, quality: int = 85) -> bytes:
    """The picture as JPEG bytes."""
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=quality)
    return out.getvalue()

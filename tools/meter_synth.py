"""Synthetic photos of meter displays, with the true reading of each.

Used by ``tools/train_meter.py`` (training cells) and ``bench/meter_accuracy.py`` (a held-out
set in styles and fonts that training never sees).  Run it on its own to write a folder of
JPEGs and a ``manifest.json`` that ``image-to-text analyze --task meter --manifest`` reads::

    python tools/meter_synth.py /tmp/meters --count 100 --seed 7 --split bench

Display styles
    ``lcd``          dark segments on a grey-green glass, the unlit segments faintly visible
    ``led``          bright segments with a glow on a dark background
    ``drum_dark``    mechanical counter, white digits on black drums, the last ones red
    ``drum_light``   mechanical counter, black digits on white drums, the last ones red
    ``drum_inset``   drums behind separate windows in a metal face plate (bench only)

Layouts: font-drawn LCD/LED displays are drawn digit by digit in cells of their own (glyphs
filling 70-98% of the cell), or, half of the time, typed as one string at the font's own advance,
as a real panel packs them (and as anyone rendering a display with a 7-segment font would).

Rolling drums: a drum caught between two digits is labelled, for training, with the digit that
fills more of its window (drums to its left that roll with it, the carry of a 9, likewise).
The reading a photo stands for (``Sample.raw``) follows the reader's carry rule from the drums'
positions to the nearest tenth instead (``bridge.meter.carry``, as the real crops' labels and
readings do): a last drum 60% of the way from 7 to 8 reads 7, the digit it has not yet left.
"""

# ruff: noqa: PLR0912, PLR0915, PLR0917, S311 - a generator script: many knobs, seeded RNG
from __future__ import annotations

import argparse
import io
import json
import math
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bridge.meter.carry import digits_from_positions


def _fonts(folder: str, pattern: str) -> list[Path]:
    """The font files of a family: the test kit's committed copies, else the system's."""
    for root in (COMMITTED_FONTS, SYSTEM_FONTS):
        found = sorted((root / folder).glob(pattern))
        if found:
            return found
    return []


#: The fonts the tests draw with are committed (with their licences) in the test kit; families
#: only training uses may come from the system (``fonts-dseg``, ``fonts-dejavu``).
COMMITTED_FONTS = Path(__file__).resolve().parents[1] / "tests" / "support" / "fonts"
SYSTEM_FONTS = Path("/usr/share/fonts/truetype")
SYSTEM_OPENTYPE = Path("/usr/share/fonts/opentype")


def _system_faces(root: Path, *patterns: str) -> list[Path]:
    """Font files of a Debian font package (searched below ``root``)."""
    return sorted({p for pattern in patterns for p in root.rglob(pattern)})


#: Font families: a family is either a list of font files or "procedural" (drawn segments).
FAMILIES: dict[str, list[Path] | str] = {
    "dseg7classic": _fonts("dseg", "DSEG7Classic*.ttf") + _fonts("dseg", "DSEG7SEGG*.ttf"),
    "dseg7modern": _fonts("dseg", "DSEG7Modern*.ttf"),
    "dseg14classic": _fonts("dseg", "DSEG14Classic*.ttf"),
    "dseg14modern": _fonts("dseg", "DSEG14Modern*.ttf"),
    "segments": "procedural",
    "dejavu_sans": [
        p
        for p in _fonts("dejavu", "DejaVuSans*.ttf")
        if "Mono" not in p.name and "Condensed" not in p.name
    ],
    "dejavu_condensed": _fonts("dejavu", "DejaVuSansCondensed*.ttf"),
    "dejavu_mono": _fonts("dejavu", "DejaVuSansMono*.ttf"),
    "dejavu_serif": _fonts("dejavu", "DejaVuSerif*.ttf"),
    # OpenCV 5 draws its HERSHEY faces with built-in sans fonts (regular, bold, italic)
    "opencv": "hershey:0 hershey:2 hershey:6",
    "aileron": "aileron",  # Pillow's built-in font
}

#: More typefaces, for training only (``--face-photos`` of ``tools/train_meter.py``): Debian
#: font packages installed on the training machine (fonts-open-sans, fonts-lato,
#: fonts-cantarell, fonts-b612, fonts-urw-base35, fonts-liberation2, fonts-freefont-ttf,
#: fonts-croscore, fonts-noto-core), never committed nor shipped.  Unseen real meters are
#: misread mostly on digit faces the training meters lack (a 6 whose tail stays open, a looped
#: 2: ``bench/RESULTS.md``); these faces draw the same digits many more ways.  Left out on
#: purpose: every typeface the stranger's set draws its drums in
#: (``bench/meter_independent_set.py``: Liberation Sans and Mono, FreeSans, FreeMono, Nimbus
#: Sans, Noto Sans, Roboto, Arimo, Cousine, with their italic, narrow and display cuts), so
#: that set still measures typefaces training never saw; and faces with a slashed or dotted
#: zero, which no meter drum has.  Kept apart from ``FAMILIES``: no set of ``split_options``
#: and no test draws them, so the bench's sets stay as they were.
FACES: dict[str, list[Path]] = {
    "open_sans": _system_faces(SYSTEM_FONTS / "open-sans", "OpenSans-*.ttf"),
    "lato": _system_faces(SYSTEM_FONTS / "lato", "Lato-*.ttf"),
    "cantarell": _system_faces(SYSTEM_OPENTYPE / "cantarell", "Cantarell-*.otf"),
    "b612": _system_faces(SYSTEM_OPENTYPE / "b612", "B612-*.otf"),
    "urw_gothic": _system_faces(SYSTEM_OPENTYPE / "urw-base35", "URWGothic-*.otf"),
    "urw_mono": _system_faces(SYSTEM_OPENTYPE / "urw-base35", "NimbusMonoPS-*.otf"),
    "urw_serif": _system_faces(
        SYSTEM_OPENTYPE / "urw-base35",
        "C059-*.otf",
        "NimbusRoman-*.otf",
        "P052-*.otf",
        "URWBookman-*.otf",
        "Z003-*.otf",
    ),
    "serif": _system_faces(SYSTEM_FONTS / "liberation2", "LiberationSerif-*.ttf")
    + _system_faces(SYSTEM_FONTS / "freefont", "FreeSerif*.ttf")
    + _system_faces(SYSTEM_FONTS / "croscore", "Tinos-*.ttf")
    + _system_faces(SYSTEM_FONTS / "noto", "NotoSerif-*.ttf"),
}


def _fonts_of(family: str) -> list[Path] | str:
    """A family's fonts, from ``FACES`` (training-only typefaces) or ``FAMILIES``."""
    return FACES[family] if family in FACES else FAMILIES[family]


SEGMENT_FAMILIES = ("dseg7classic", "dseg7modern", "dseg14classic", "dseg14modern", "segments")
TEXT_FAMILIES = (
    "dejavu_sans",
    "dejavu_condensed",
    "dejavu_mono",
    "dejavu_serif",
    "opencv",
    "aileron",
)
STYLES = ("lcd", "led", "drum_dark", "drum_light", "drum_inset")

#: What the bench holds out: training never sees these.
#: DSEG14 Modern (a 14-segment font whose digits differ from the trained DSEG fonts in their
#: segment shapes) and OpenCV's sans fonts (a drum typeface unlike DejaVu and Aileron).
HELD_OUT_FAMILIES = ("dseg14modern", "opencv")
HELD_OUT_STYLES = ("drum_inset",)

#: Class index of a blank digit position (an LCD showing no leading zero); read as 0.
BLANK = 10


@dataclass
class Sample:
    """One synthetic photo and what it shows."""

    image: Image.Image
    roi: tuple[int, int, int, int]
    digits: int
    decimals: int
    labels: list[int]  # per digit, 0-9 or BLANK: what training teaches each cell
    style: str
    family: str
    positions: tuple[float, ...] | None = None  # drums: where each stands, to a tenth (3.4)

    @property
    def raw(self) -> str:
        """The reading, as the meter reader's rule reads it (a blank position counts as 0)."""
        digits = digits_from_positions(self.positions) if self.positions else self.labels
        return "".join("0" if d == BLANK else str(d) for d in digits)

    @property
    def value(self) -> float:
        """The reading with the decimal point placed."""
        return int(self.raw) / 10**self.decimals


@cache
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _rgb(base: tuple[int, int, int], rng: random.Random, jitter: int = 20) -> tuple[int, int, int]:
    r, g, b = (min(255, max(0, c + rng.randint(-jitter, jitter))) for c in base)
    return (r, g, b)


# 7-segment shapes drawn as polygons (the "segments" family)

_SEGMENTS = {  # which of a..g are lit; a top, b top-right, c bottom-right, d bottom,
    0: "abcdef",  # e bottom-left, f top-left, g middle
    1: "bc",
    2: "abged",
    3: "abgcd",
    4: "fgbc",
    5: "afgcd",
    6: "afgedc",
    7: "abc",
    8: "abcdefg",
    9: "abcdfg",
}


def _segment_polys(
    w: float, h: float, t: float, gap: float
) -> dict[str, list[tuple[float, float]]]:
    """Hexagonal segments of a digit w wide and h high, stroke t, gap between segments."""

    def horiz(y: float) -> list[tuple[float, float]]:
        x0, x1 = gap + t / 2, w - gap - t / 2
        return [
            (x0, y),
            (x0 + t / 2, y - t / 2),
            (x1 - t / 2, y - t / 2),
            (x1, y),
            (x1 - t / 2, y + t / 2),
            (x0 + t / 2, y + t / 2),
        ]

    def vert(x: float, y0: float, y1: float) -> list[tuple[float, float]]:
        y0, y1 = y0 + gap, y1 - gap
        return [
            (x, y0),
            (x + t / 2, y0 + t / 2),
            (x + t / 2, y1 - t / 2),
            (x, y1),
            (x - t / 2, y1 - t / 2),
            (x - t / 2, y0 + t / 2),
        ]

    top, mid, bot = t / 2, h / 2, h - t / 2
    left, right = t / 2, w - t / 2
    return {
        "a": horiz(top),
        "g": horiz(mid),
        "d": horiz(bot),
        "f": vert(left, top, mid),
        "b": vert(right, top, mid),
        "e": vert(left, mid, bot),
        "c": vert(right, mid, bot),
    }


@dataclass
class _SegmentStyle:
    stroke: float
    gap: float
    slant: float
    seven_with_f: bool
    six_nine_tails: bool


def _draw_segment_digit(
    layer: Image.Image,
    box: tuple[float, float, float, float],
    digit: int,
    style: _SegmentStyle,
    lit: tuple[int, ...],
    unlit: tuple[int, ...] | None,
) -> None:
    x, y, w, h = box
    draw = ImageDraw.Draw(layer)
    polys = _segment_polys(w, h, style.stroke * w, style.gap * w)
    on = set(_SEGMENTS[digit]) if digit != BLANK else set()
    if digit == 7 and style.seven_with_f:
        on.add("f")
    if not style.six_nine_tails:
        if digit == 6:
            on.discard("a")
        if digit == 9:
            on.discard("d")
    for name, poly in polys.items():
        colour = lit if name in on else unlit
        if colour is None:
            continue
        pts = [(x + px + style.slant * (h - py), y + py) for px, py in poly]
        draw.polygon(pts, fill=colour)


# one display


def _digit_sequence(rng: random.Random, digits: int) -> list[int]:
    kind = rng.random()
    if kind < 0.5:
        lead = rng.randint(0, min(4, digits - 1))
        return [0] * lead + [rng.randint(0, 9) for _ in range(digits - lead)]
    return [rng.randint(0, 9) for _ in range(digits)]


def _render_segments(
    rng: random.Random,
    style: str,
    family: str,
    labels: list[int],
    decimals: int,
    cell_w: int,
    cell_h: int,
    gap: int,
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """LCD or LED panel; returns the panel and the digits' box in it."""
    n = len(labels)
    margin_x, margin_y = rng.randint(4, 3 * gap + 8), rng.randint(4, cell_h // 3 + 6)
    width = 2 * margin_x + n * cell_w + (n - 1) * gap
    height = 2 * margin_y + cell_h
    if style == "lcd":
        bg = _rgb(
            rng.choice(
                [
                    (190, 200, 180),
                    (200, 205, 200),
                    (170, 185, 160),
                    (215, 215, 200),
                    (160, 175, 175),
                ]
            ),
            rng,
            25,
        )
        lit_level = rng.randint(10, 70)
        lit = (lit_level, lit_level + rng.randint(0, 15), lit_level)
        faint = rng.randint(6, 35)
        unlit = (bg[0] - faint, bg[1] - faint, bg[2] - faint) if rng.random() < 0.8 else None
        if rng.random() < 0.15:  # a negative, backlit LCD: light segments on dark blue or black
            bg = _rgb(rng.choice([(20, 30, 90), (10, 10, 10), (30, 60, 40)]), rng, 15)
            lit = _rgb(rng.choice([(230, 240, 255), (120, 220, 255), (250, 200, 120)]), rng, 20)
            unlit = (bg[0] + faint, bg[1] + faint, bg[2] + faint) if rng.random() < 0.6 else None
    else:
        bg = _rgb((15, 15, 15), rng, 15)
        lit = rng.choice(
            [
                (255, 40, 30),
                (60, 255, 80),
                (255, 170, 30),
                (80, 180, 255),
                (240, 240, 255),
                (255, 60, 120),
            ]
        )
        lit = _rgb(lit, rng, 30)
        faint = rng.randint(8, 30)
        unlit = (bg[0] + faint, bg[1] + faint // 2, bg[2] + faint // 2)
        if rng.random() < 0.4:
            unlit = None
    panel = Image.new("RGB", (width, height), bg)
    layer = Image.new("RGB", (width, height), bg)
    fonts = _fonts_of(family)
    seg_style = _SegmentStyle(
        stroke=rng.uniform(0.1, 0.22),
        gap=rng.uniform(0.0, 0.05),
        slant=rng.choice([0.0, 0.0, rng.uniform(0.04, 0.14)]),
        seven_with_f=rng.random() < 0.3,
        six_nine_tails=rng.random() < 0.8,
    )
    font_path = str(rng.choice(fonts)) if isinstance(fonts, list) else ""
    if family in FACES:  # a text face: no ghost of unlit segments, no all-off glyph to type
        unlit = None
    elif font_path and rng.random() < 0.5:
        return _render_segment_string(
            rng, style, font_path, labels, decimals, cell_h, bg, lit, unlit
        )
    dw = cell_w * rng.uniform(0.75, 1.0)
    fill = rng.choice([0.86, rng.uniform(0.7, 0.98)])
    draw = ImageDraw.Draw(layer)
    for i, digit in enumerate(labels):
        x0 = margin_x + i * (cell_w + gap)
        if font_path:
            size = _fit_font(font_path, "8", cell_w, cell_h, round(fill, 2))
            font = _font(font_path, size)
            bbox = font.getbbox("8")
            ox = x0 + (cell_w - (bbox[2] - bbox[0])) / 2 - bbox[0]
            oy = margin_y + (cell_h - (bbox[3] - bbox[1])) / 2 - bbox[1]
            if unlit is not None:
                draw.text((ox, oy), "8", font=font, fill=unlit)
            if digit != BLANK:
                draw.text((ox, oy), str(digit), font=font, fill=lit)
        else:
            dh = cell_h * 0.9
            left = x0 + (cell_w - dw) / 2 - seg_style.slant * dh / 2
            box = (left, margin_y + cell_h * 0.05, dw, dh)
            _draw_segment_digit(layer, box, digit, seg_style, lit, unlit)
    if decimals:
        i = n - decimals - 1
        r = max(1.5, cell_w * rng.uniform(0.05, 0.09))
        cx = margin_x + (i + 1) * cell_w + i * gap + gap / 2
        cy = margin_y + cell_h - r * 1.5
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=lit)
    layer = _led_glow(rng, layer, cell_w) if style == "led" else layer
    panel.paste(layer)
    return panel, (margin_x, margin_y, n * cell_w + (n - 1) * gap, cell_h)


def _mark(
    rng: random.Random,
    canvas: Image.Image,
    at: tuple[int, int],
    box: tuple[int, int, int, int],
) -> tuple[int, int, int, int]:
    """Draw what unseen real meters show around their digits; return the digits' new box.

    A bright or dark line crossing every digit (a reflection, a wire, a window's edge), and a
    bar just above or below the digits that the box then takes in, so that the digits sit high
    or low in their cells.  The digits stay readable: the labels do not change.
    """
    bx, by, bw, bh = box
    x0, y0 = at[0] + bx, at[1] + by
    draw = ImageDraw.Draw(canvas)

    def shade() -> tuple[int, int, int]:
        if rng.random() < 0.65:
            return _rgb(rng.choice([(245, 245, 240), (240, 200, 205), (230, 230, 200)]), rng, 15)
        return _rgb((25, 25, 25), rng, 20)

    if rng.random() < 0.45:
        for _ in range(rng.choice([1, 1, 2])):
            y = y0 + bh * rng.uniform(0.15, 0.85)
            half = max(0.5, bh * rng.uniform(0.015, 0.06))
            draw.rectangle((x0 - 4, y - half, x0 + bw + 4, y + half), fill=shade())
    if rng.random() < 0.4:
        bar = max(2, round(bh * rng.uniform(0.08, 0.3)))
        colour = shade()
        if rng.random() < 0.7:  # below: the digits sit high
            draw.rectangle((x0 - 4, y0 + bh, x0 + bw + 4, y0 + bh + bar), fill=colour)
            return bx, by, bw, bh + bar
        draw.rectangle((x0 - 4, y0 - bar, x0 + bw + 4, y0), fill=colour)
        return bx, by - bar, bw, bh + bar
    return box


def _led_glow(rng: random.Random, layer: Image.Image, cell_w: float) -> Image.Image:
    glow = layer.filter(ImageFilter.GaussianBlur(cell_w * rng.uniform(0.08, 0.25)))
    layer = Image.blend(layer, glow, rng.uniform(0.2, 0.5))
    bright = np.asarray(layer, np.float32) * rng.uniform(1.0, 1.3)
    return Image.fromarray(np.clip(bright, 0, 255).astype(np.uint8))


def _render_segment_string(
    rng: random.Random,
    style: str,
    font_path: str,
    labels: list[int],
    decimals: int,
    cell_h: int,
    bg: tuple[int, int, int],
    lit: tuple[int, int, int],
    unlit: tuple[int, ...] | None,
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """The reading typed as one string in a DSEG font, as a display's own glyph spacing has it.

    Drawn digit by digit, cells are as wide as the renderer chose; a real panel (and anyone who
    renders a display with a 7-segment font) packs its digits at the font's own advance, tight,
    each glyph filling its pitch.  DSEG's ``!`` is its all-segments-off glyph (a blank leading
    digit) and its ``.`` takes no width, so the digits stay evenly spaced.
    """
    font = _font(font_path, max(8, round(cell_h * rng.uniform(1.0, 1.25))))
    n = len(labels)

    def typed(chars: list[str]) -> str:
        return (
            "".join(chars[: n - decimals])
            + ("." if decimals else "")
            + "".join(chars[n - decimals :])
        )

    ghost = typed(["8"] * n)
    shown = typed(["!" if d == BLANK else str(d) for d in labels])
    left, top, right, bottom = font.getbbox(ghost)
    margin_x, margin_y = rng.randint(4, cell_h // 2 + 8), rng.randint(4, cell_h // 3 + 6)
    width, height = right - left + 2 * margin_x, bottom - top + 2 * margin_y
    panel = Image.new("RGB", (width, height), bg)
    layer = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(layer)
    origin = (margin_x - left, margin_y - top)
    if unlit is not None:
        draw.text(origin, ghost, font=font, fill=unlit)
    draw.text(origin, shown, font=font, fill=lit)
    layer = _led_glow(rng, layer, cell_h * 0.6) if style == "led" else layer
    panel.paste(layer)
    return panel, (margin_x, margin_y, right - left, bottom - top)


@cache
def _fit_font(path: str, text: str, cell_w: int, cell_h: int, fill: float = 0.86) -> int:
    size = cell_h
    for _ in range(30):
        bbox = _font(path, size).getbbox(text)
        w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
        if h <= cell_h * fill and w <= cell_w * fill:
            return size
        size = max(4, int(size * 0.92))
    return size


@cache
def _glyphs(spec: str, bold: int) -> tuple[Image.Image, ...]:
    """The ten digits of a font as white-on-black masks, all cut to the same height.

    ``spec`` is a font file, ``hershey:<n>`` (OpenCV's stroke fonts) or ``aileron`` (Pillow's
    built-in font); ``bold`` thickens the strokes.  Cutting every digit to the union of their
    boxes keeps their relative size and baseline, as printed on a drum.
    """
    big = 96
    images = []
    for d in range(10):
        canvas = Image.new("L", (3 * big, 2 * big), 0)
        if spec.startswith("hershey:"):
            import cv2

            face = int(spec.split(":")[1])
            arr = np.zeros((2 * big, 3 * big), np.uint8)
            scale = big / 30
            cv2.putText(
                arr,
                str(d),
                (big // 2, int(big * 1.5)),
                face,
                scale,
                255,
                max(1, int(scale * 0.8) + bold * 2),
                cv2.LINE_AA,
            )
            canvas = Image.fromarray(arr)
        else:
            font = ImageFont.load_default(size=big) if spec == "aileron" else _font(spec, big)
            ImageDraw.Draw(canvas).text(
                (big // 2, big // 4),
                str(d),
                font=font,
                fill=255,
                stroke_width=bold * 2,
                stroke_fill=255,
            )
        images.append(canvas)
    boxes = [im.getbbox() or (0, 0, 1, 1) for im in images]
    top = min(b[1] for b in boxes)
    bottom = max(b[3] for b in boxes)
    return tuple(im.crop((b[0], top, b[2], bottom)) for im, b in zip(images, boxes, strict=True))


def _drum_column(
    spec: str,
    digit: int,
    offset: float,
    cell_w: int,
    cell_h: int,
    fg: tuple[int, int, int],
    bg: tuple[int, int, int],
    scale: float,
    spacing: float,
    stretch: float = 1.0,
    bold: int = 0,
) -> Image.Image:
    """One drum window: ``digit`` rolled up by ``offset`` (0..1) of the pitch toward digit+1.

    ``spacing`` is the distance between digits on the drum in glyph heights; ``stretch``
    widens (>1) or narrows (<1) the glyphs.
    """
    masks = _glyphs(spec, bold)
    glyph_h = cell_h * scale * 0.86
    ratio = glyph_h / masks[0].height
    widest = max(m.width for m in masks) * ratio * stretch
    if widest > cell_w * 0.92:
        glyph_h *= cell_w * 0.92 / widest
        ratio = glyph_h / masks[0].height
    glyph_h = max(4.0, glyph_h)
    pitch = max(cell_h * 0.8, glyph_h * spacing)
    tall = Image.new("RGB", (cell_w, int(pitch * 4 + cell_h) + 2), bg)
    for k, d in enumerate(((digit - 1) % 10, digit, (digit + 1) % 10, (digit + 2) % 10)):
        mask = masks[d]
        size = (max(1, round(mask.width * ratio * stretch)), max(1, round(glyph_h)))
        mask = mask.resize(size, Image.Resampling.LANCZOS)
        ox = round((cell_w - size[0]) / 2)
        oy = round(k * pitch + (pitch - size[1]) / 2)
        tall.paste(Image.new("RGB", size, fg), (ox, oy), mask)
    top = max(0.0, pitch + (pitch - cell_h) / 2 + offset * pitch)
    window = tall.crop((0, round(top), cell_w, round(top) + cell_h))
    # Drum curvature: darker towards the window's top and bottom edges.
    shade = np.cos(np.linspace(-1.1, 1.1, cell_h))[:, None, None] ** 0.6
    arr = np.asarray(window, np.float32) * (0.55 + 0.45 * shade)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _render_drums(
    rng: random.Random,
    style: str,
    family: str,
    labels: list[int],
    decimals: int,
    cell_w: int,
    cell_h: int,
    gap: int,
    roll: bool = True,
) -> tuple[Image.Image, tuple[int, int, int, int], list[int], tuple[float, ...]]:
    """Mechanical counter: the panel, the digits' box, their labels and their positions."""
    n = len(labels)
    # The last drum may be caught mid-roll; a 9 rolling to 0 carries its left neighbours.
    offsets = [0.0] * n
    truth = list(labels)
    if roll and rng.random() < 0.6:
        f = rng.choice([rng.uniform(0.05, 0.4), rng.uniform(0.6, 0.95)])
        offsets[-1] = f
        i = n - 1
        while i > 0 and labels[i] == 9:
            offsets[i - 1] = f
            i -= 1
        if f >= 0.5:
            for j in range(i, n):
                truth[j] = (labels[j] + 1) % 10
    elif roll and rng.random() < 0.3:
        offsets = [rng.uniform(-0.12, 0.12) for _ in range(n)]  # slack drums sit a bit off
    n_red = decimals if decimals and rng.random() < 0.8 else rng.choice([0, 1, 2, 3])
    n_red = min(n_red, n - 1)
    fonts = _fonts_of(family)
    font_path = str(rng.choice(fonts)) if isinstance(fonts, list) else rng.choice(fonts.split())
    scale = rng.uniform(0.7, 0.95)
    spacing = rng.uniform(1.2, 1.6)
    stretch = rng.choice([1.0, rng.uniform(0.7, 1.3)])
    bold = rng.choice([0, 0, 0, 1, 2])
    if style == "drum_light":
        drum, ink, red_drum, red_ink = (
            _rgb((235, 232, 220), rng),
            _rgb((20, 20, 20), rng),
            _rgb((235, 232, 220), rng),
            _rgb((200, 25, 25), rng, 30),
        )
    else:
        drum, ink = _rgb((25, 25, 25), rng, 15), _rgb((235, 235, 230), rng)
        if rng.random() < 0.6:
            red_drum, red_ink = _rgb((190, 30, 30), rng, 30), _rgb((240, 240, 235), rng)
        else:
            red_drum, red_ink = drum, _rgb((220, 40, 40), rng, 30)
    plate = _rgb(rng.choice([(30, 30, 30), (200, 200, 200), (120, 120, 125), (230, 225, 210)]), rng)
    if style == "drum_inset":
        plate = _rgb(rng.choice([(170, 170, 175), (120, 125, 130), (210, 205, 190)]), rng)
        gap = max(gap, int(cell_w * rng.uniform(0.25, 0.6)))
    margin_x, margin_y = rng.randint(4, cell_w // 2 + 6), rng.randint(4, cell_h // 2 + 6)
    width = 2 * margin_x + n * cell_w + (n - 1) * gap
    height = 2 * margin_y + cell_h
    panel = Image.new("RGB", (width, height), plate)
    draw = ImageDraw.Draw(panel)
    for i, digit in enumerate(labels):
        red = i >= n - n_red
        window = _drum_column(
            font_path,
            digit,
            offsets[i],
            cell_w,
            cell_h,
            red_ink if red else ink,
            red_drum if red else drum,
            scale,
            spacing,
            stretch,
            bold,
        )
        x0 = margin_x + i * (cell_w + gap)
        panel.paste(window, (x0, margin_y))
        if style == "drum_inset":
            draw.rectangle(
                (x0 - 2, margin_y - 2, x0 + cell_w + 1, margin_y + cell_h + 1),
                outline=tuple(max(0, c - 60) for c in plate),
                width=2,
            )
    if decimals and style != "drum_light" and rng.random() < 0.5:
        i = n - decimals - 1
        r = max(1.5, cell_w * 0.06)
        cx = margin_x + (i + 1) * cell_w + i * gap + gap / 2
        draw.ellipse(
            (cx - r, margin_y + cell_h - 3 * r, cx + r, margin_y + cell_h - r), fill=(230, 230, 230)
        )
    # to the nearest tenth, as the real crops are labelled (a drum 68% rolled is labelled x.7)
    positions = tuple(
        round((label + offset) * 10) % 100 / 10
        for label, offset in zip(labels, offsets, strict=True)
    )
    return panel, (margin_x, margin_y, n * cell_w + (n - 1) * gap, cell_h), truth, positions


def render(
    rng: random.Random,
    *,
    styles: tuple[str, ...],
    families: tuple[str, ...],
    strength: float = 1.0,
    margin: tuple[float, float] = (0.0, 0.06),
    reading: str | None = None,
    decimals: int | None = None,
    marks: bool = False,
) -> Sample:
    """One photo of a meter display in a random style, as a camera would take it.

    ``reading`` (e.g. ``"01234567"``) fixes the digits shown, with no drum caught mid-roll.
    ``marks``: lines and bars across or beside the digits (``_mark``).
    """
    style = rng.choice(styles)
    digits = rng.randint(4, 9) if reading is None else len(reading)
    if decimals is None:
        decimals = rng.choice([0, 0, 1, 2, 3, 3]) if digits > 4 else rng.choice([0, 1])
    decimals = min(decimals, digits - 1)
    labels = _digit_sequence(rng, digits) if reading is None else [int(c) for c in reading]
    cell_h = rng.randint(20, 90)
    if style.startswith("drum"):
        fams = [f for f in families if f in TEXT_FAMILIES or f in FACES]
        family = rng.choice(fams)
        cell_w = max(8, int(cell_h * rng.uniform(0.55, 0.9)))
        gap = int(cell_w * rng.uniform(0.05, 0.45))
        panel, box, truth, positions = _render_drums(
            rng, style, family, labels, decimals, cell_w, cell_h, gap, roll=reading is None
        )
    else:
        fams = [f for f in families if f in SEGMENT_FAMILIES or f in FACES]
        family = rng.choice(fams)
        cell_w = max(8, int(cell_h * rng.uniform(0.5, 0.75)))
        gap = int(cell_w * rng.uniform(0.02, 0.4))
        if style == "lcd" and reading is None and labels[0] == 0 and rng.random() < 0.3:
            # Some LCDs blank their leading zeros.
            k = 0
            while k < digits - decimals - 1 and labels[k] == 0:
                labels[k] = BLANK
                k += 1
        panel, box = _render_segments(rng, style, family, labels, decimals, cell_w, cell_h, gap)
        truth, positions = labels, None
    return _photograph(
        rng, panel, box, truth, digits, decimals, style, family, strength, margin, marks, positions
    )


def _photograph(
    rng: random.Random,
    panel: Image.Image,
    box: tuple[int, int, int, int],
    labels: list[int],
    digits: int,
    decimals: int,
    style: str,
    family: str,
    strength: float,
    margin: tuple[float, float],
    marks: bool = False,
    positions: tuple[float, ...] | None = None,
) -> Sample:
    """Put the panel on a meter body, then tilt, blur, light and compress it like a photo."""
    pad_x = int(panel.width * rng.uniform(0.1, 0.5)) + 10
    pad_y = int(panel.height * rng.uniform(0.3, 1.2)) + 10
    body = _rgb(
        rng.choice(
            [
                (60, 60, 65),
                (200, 200, 195),
                (40, 45, 60),
                (180, 170, 150),
                (230, 230, 230),
                (90, 80, 70),
            ]
        ),
        rng,
        30,
    )
    canvas = Image.new("RGB", (panel.width + 2 * pad_x, panel.height + 2 * pad_y), body)
    draw = ImageDraw.Draw(canvas)
    if rng.random() < 0.7:  # labels printed on the meter body around the display
        font = _font(str(rng.choice(FAMILIES["dejavu_sans"])), max(8, panel.height // 4))  # type: ignore[arg-type]
        ink = (20, 20, 20) if sum(body) > 380 else (230, 230, 230)
        text = rng.choice(["m³", "kWh", "Gas", "G4", "Qmax 6", "No 123456", "Wasser"])
        draw.text(
            (pad_x, rng.randint(0, max(0, pad_y - panel.height // 4 - 2))),
            text,
            font=font,
            fill=ink,
        )
    canvas.paste(panel, (pad_x, pad_y))
    if marks:
        box = _mark(rng, canvas, (pad_x, pad_y), box)
    bx, by, bw, bh = box
    quad = [
        (pad_x + bx, pad_y + by),
        (pad_x + bx + bw, pad_y + by),
        (pad_x + bx + bw, pad_y + by + bh),
        (pad_x + bx, pad_y + by + bh),
    ]
    arr = np.asarray(canvas, np.float32)
    # lighting: a gradient across the frame and sometimes a glare spot
    h, w = arr.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    grad = 1 + strength * rng.uniform(0, 0.35) * (
        (xx / w - 0.5) * math.cos(angle) + (yy / h - 0.5) * math.sin(angle)
    )
    arr = arr * grad[..., None] * rng.uniform(0.7, 1.15)
    if rng.random() < 0.5 * strength + 0.1:
        gx, gy = quad[0][0] + rng.uniform(0, bw), quad[0][1] + rng.uniform(0, bh)
        radius = rng.uniform(0.1, 0.5) * bw
        blob = np.exp(-(((xx - gx) ** 2) / (radius**2) + ((yy - gy) ** 2) / ((radius * 0.5) ** 2)))
        arr = arr + blob[..., None] * rng.uniform(40, 140) * strength
    canvas = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    # geometry: a few degrees of rotation and a little perspective
    cx, cy = w / 2, h / 2
    rot = math.radians(rng.uniform(-4, 4) * strength)
    jitter = 0.03 * strength
    dst = []
    for px, py in [(0, 0), (w, 0), (w, h), (0, h)]:
        x = cx + (px - cx) * math.cos(rot) + (py - cy) * math.sin(rot)
        y = cy - (px - cx) * math.sin(rot) + (py - cy) * math.cos(rot)
        dst.append((x + rng.uniform(-jitter, jitter) * w, y + rng.uniform(-jitter, jitter) * h))
    from bridge.meter.geometry import apply_homography, homography

    src = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
    to_src = homography(dst, src)
    coeffs = tuple(float(v) for v in (to_src / to_src[2, 2]).flatten()[:8])
    canvas = canvas.transform(
        (w, h),
        Image.Transform.PERSPECTIVE,
        coeffs,
        resample=Image.Resampling.BICUBIC,
        fillcolor=body,
    )
    moved = apply_homography(homography(src, dst), [(float(x), float(y)) for x, y in quad])
    # blur, noise, resolution, JPEG
    blur = rng.uniform(0, 0.05) * strength * bh
    if blur > 0.3:
        canvas = canvas.filter(ImageFilter.GaussianBlur(blur))
    if rng.random() < 0.2 * strength:
        k = max(3, int(bh * rng.uniform(0.03, 0.1)) | 1)
        canvas = canvas.filter(ImageFilter.BoxBlur(k // 2))
    noise = rng.uniform(0, 12) * strength
    arr = np.asarray(canvas, np.float32)
    nprng = np.random.default_rng(rng.randrange(2**32))
    arr = arr + nprng.normal(0, noise, arr.shape)
    canvas = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=int(rng.uniform(95 - 75 * strength, 95)))
    canvas = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    xs = [p[0] for p in moved]
    ys = [p[1] for p in moved]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    mx = rng.uniform(*margin) * (x1 - x0)
    my = rng.uniform(*margin) * 2 * (y1 - y0)
    roi = (
        round(x0 - mx * rng.uniform(0.3, 1)),
        round(y0 - my * rng.uniform(0.3, 1)),
        round(x1 - x0 + 2 * mx),
        round(y1 - y0 + 2 * my),
    )
    return Sample(canvas, roi, digits, decimals, labels, style, family, positions)


def split_options(split: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Styles and font families of a split: ``train`` excludes what ``bench`` holds out.

    A family whose font files this machine lacks (no ``fonts-dseg`` package) is left out.
    """
    present = tuple(f for f, files in FAMILIES.items() if files)
    if split == "train":
        return (
            tuple(s for s in STYLES if s not in HELD_OUT_STYLES),
            tuple(f for f in present if f not in HELD_OUT_FAMILIES),
        )
    return STYLES, present


def bench_sample(rng: random.Random) -> Sample:
    """A held-out photo: an unseen font family or an unseen drum style, every time."""
    style = rng.choice(STYLES)
    if style == "drum_inset":
        fams = TEXT_FAMILIES
    elif style.startswith("drum"):
        fams = ("opencv",)
    else:
        fams = ("dseg14modern",)
    return render(rng, styles=(style,), families=fams, margin=(0.0, 0.04))


#: The styles ``face_sample`` may draw its typefaces in: ``all`` (the split's styles, drums and
#: LCD/LED panels) or ``drum`` (drums only: the typefaces never drawn as a panel).
FACE_STYLES = {
    "all": STYLES,
    "drum": tuple(s for s in STYLES if s.startswith("drum")),
}


def face_sample(rng: random.Random, split: str = "train", styles: str = "all") -> Sample:
    """A training photo in one of ``FACES``' typefaces, often crossed or cut off-centre.

    Drums (rolling as in ``render``) and LCD/LED panels typed in a text face, with the marks
    seen on unseen real meters: a bright or dark line crossing the digits, a bar above or below
    them that the region takes in (the digits sit high or low in their cells).  ``styles``: a
    key of ``FACE_STYLES``, the styles it may draw (those of ``split`` among them).
    """
    allowed = FACE_STYLES[styles]
    drawn = tuple(s for s in split_options(split)[0] if s in allowed)
    faces = tuple(f for f, files in FACES.items() if files)
    return render(rng, styles=drawn, families=faces, margin=(-0.01, 0.06), marks=True)


def write_set(folder: Path, count: int, seed: int, split: str) -> list[dict[str, object]]:
    """Write ``count`` photos and their ``manifest.json``; returns the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    styles, families = split_options(split)
    manifest: list[dict[str, object]] = []
    for index in range(count):
        sample = (
            bench_sample(rng) if split == "bench" else render(rng, styles=styles, families=families)
        )
        name = f"meter_{index:04d}.jpg"
        sample.image.save(folder / name, quality=92)
        manifest.append(
            {
                "file": name,
                "roi": list(sample.roi),
                "digits": sample.digits,
                "decimals": sample.decimals,
                "raw": sample.raw,
                "value": sample.value,
                "style": sample.style,
                "family": sample.family,
            }
        )
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def main() -> None:
    """Command line: write a set of synthetic meter photos."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--split",
        choices=("train", "bench", "all"),
        default="bench",
        help="bench: only held-out styles and fonts; train: none of them",
    )
    args = parser.parse_args()
    manifest = write_set(args.folder, args.count, args.seed, args.split)
    print(f"wrote {len(manifest)} photos and manifest.json to {args.folder}")


if __name__ == "__main__":
    main()

"""Finding a meter's digits in a snapshot, so nobody has to measure the region by hand.

The digits of a display are a row of blobs of about the same height, evenly spaced, dark on a
light face or light on a dark one.  The snapshot is thresholded against its local background
both ways; small gaps (the cuts between a 7-segment digit's segments) are closed; connected
blobs of digit shape are grouped into rows of matching height and alignment; the row with the
most ink in digit-sized blobs wins.  Its pitch gives the number of digits and equal cells
centred on the blobs; red blobs at its end (the decimal drums of a gas meter) or a point low
between two digits give the decimals.

OpenCV (which comes with RapidOCR, the OCR engine's dependency) does the image work.
"""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass

import numpy as np
from PIL import Image

#: The snapshot is searched at this longest side (digits of 1/20 of it are still ~30 px).
WORK_SIDE = 800
#: A digit's height, as a share of the snapshot's shorter side.
MIN_HEIGHT, MAX_HEIGHT = 0.025, 0.7
#: Width over height of a digit's blob: a thin ``1`` to a wide ``0`` (a little slack).
MIN_ASPECT, MAX_ASPECT = 0.1, 1.05
#: Blobs of one row: heights within this ratio, centres this share of a height apart vertically.
HEIGHT_RATIO = 1.3
ALIGN = 0.25
#: Two neighbours in a row are at most this many digit heights apart (centre to centre); up
#: to twice that when a digit between them was missed (glare, a blank LCD cell).
MAX_PITCH = 1.6
MIN_PITCH = 0.3
MIN_DIGITS = 3
#: A blob this many times wider than high may be a whole display whose digits touch; it is cut
#: into digits ``PACKED_PITCH`` heights apart (only when no digits were found one by one).
PACKED_ASPECT = (1.4, 10.0)
PACKED_PITCH = 0.68
#: A row grows by at most this many cells on each side, into cells of about the same
#: brightness as its digits' (grey levels): the display's face, not the meter's body.
MAX_GROWTH = 3
SAME_FACE = 40
MIN_SPREAD = 0.35
#: Blobs narrower than this (width over height) are a ``1`` or a bar; wider ones, filling more
#: than ``MAX_FILL`` of their box, are boxes rather than digits.
THIN = 0.35
MAX_FILL = 0.7
Box = tuple[int, int, int, int]


class NoDigitsError(ValueError):
    """No row of digits was found; the message says what was looked for."""


@dataclass(frozen=True)
class Proposal:
    """A region for the ``meter:`` block, in the snapshot's pixels."""

    roi: Box
    digits: int
    decimals: int
    #: The digit blobs the region was fitted to (x, y, w, h).
    blobs: tuple[Box, ...]


def _binaries(grey: np.ndarray) -> list[np.ndarray]:
    """Ink masks (dark on light, light on dark), each at two closing strengths."""
    import cv2

    block = max(15, (min(grey.shape) // 6) | 1)
    masks = []
    for dark in (True, False):
        source = grey if dark else 255 - grey  # ink: clearly darker (lighter) than around it
        mask = cv2.adaptiveThreshold(
            source, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 12
        )
        for size in (1, 3, 5, 9):
            closed = mask
            if size > 1:
                kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
                closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
            masks.append(closed)
    return masks


def _digit_blobs(mask: np.ndarray) -> list[Box]:
    """Connected blobs of a digit's size and shape."""
    import cv2

    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    short = min(mask.shape)
    blobs = []
    for x, y, w, h, area in stats[1:count].tolist():
        if not MIN_HEIGHT * short <= h <= MAX_HEIGHT * short or h < 8:
            continue
        if not MIN_ASPECT <= w / h <= MAX_ASPECT:
            continue
        if w / h > THIN and not 0.12 <= area / (w * h) <= MAX_FILL:
            continue  # a filled box (a drum's window, a label) or a hairline outline
        if x == 0 or y == 0 or x + w >= mask.shape[1] or y + h >= mask.shape[0]:
            continue  # touches the picture's edge
        blobs.append((x, y, w, h))
    return blobs


def _packed_strings(mask: np.ndarray, digits: list[Box]) -> list[Box]:
    """Wide blobs of a digit's height: a display whose digits touch (italic, glowing LEDs)."""
    import cv2

    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    short = min(mask.shape)
    found = []
    for x, y, w, h, area in stats[1:count].tolist():
        if not MIN_HEIGHT * short <= h <= MAX_HEIGHT * short or h < 8:
            continue
        if not PACKED_ASPECT[0] <= w / h <= PACKED_ASPECT[1] or not 0.15 <= area / (w * h) <= 0.7:
            continue
        if x == 0 or y == 0 or x + w >= mask.shape[1] or y + h >= mask.shape[0]:
            continue
        if any(d[0] >= x and d[0] + d[2] <= x + w and d[1] >= y for d in digits):
            continue  # a box around digits found one by one (a display's frame)
        found.append((x, y, w, h))
    return found


def _split(blob: Box) -> list[Box]:
    """A packed string cut into digits of a usual width."""
    x, y, w, h = blob
    count = max(MIN_DIGITS, round(w / (PACKED_PITCH * h)))
    step = w / count
    return [(round(x + i * step), y, max(1, round(step)), h) for i in range(count)]


def _rows(blobs: list[Box]) -> list[list[Box]]:
    """Chains of blobs of one height, side by side along a line."""
    rows = []
    for seed in blobs:
        _, sy, _, sh = seed
        centre = sy + sh / 2
        alike = sorted(
            (
                b
                for b in blobs
                if abs(b[1] + b[3] / 2 - centre) <= ALIGN * sh
                and 1 / HEIGHT_RATIO <= b[3] / sh <= HEIGHT_RATIO
            ),
            key=lambda b: b[0],
        )
        chain = [seed]
        start = alike.index(seed)
        for side in (alike[start + 1 :], alike[:start][::-1]):  # grow right, then left
            for blob in side:
                last = chain[-1] if blob[0] > seed[0] else chain[0]
                apart = abs((blob[0] + blob[2] / 2) - (last[0] + last[2] / 2))
                if apart < MIN_PITCH * sh:
                    continue  # a piece of the same digit, or a speck: not a neighbour
                if apart > 2 * MAX_PITCH * sh:
                    break
                chain = [*chain, blob] if blob[0] > seed[0] else [blob, *chain]
        if len(chain) >= MIN_DIGITS:
            rows.append(chain)
    return rows


def _score(row: list[Box]) -> float:
    """Ink in the row's digits, less for irregular spacing."""
    centres = [b[0] + b[2] / 2 for b in row]
    gaps = [b - a for a, b in itertools.pairwise(centres)]
    spread = statistics.pstdev(gaps) / statistics.mean(gaps) if len(gaps) > 1 else 0.0
    # thin blobs count little: a row of bars (a drum's window frames) is not a row of digits
    ink = sum(h * min(1.0, w / h / 0.45) for _, _, w, h in row)
    return ink * max(0.2, 1 - spread)


def _on_grid(row: list[Box]) -> tuple[list[Box], float]:
    """The row's digit pitch, and its blobs that sit on that pitch (bars between drums do not).

    The pitch comes from neighbouring wide blobs (a ``1`` or a bar says little about where its
    cell is); a gap of two pitches is a digit that was missed.
    """
    height = statistics.median(b[3] for b in row)
    wide = [b for b in row if b[2] / b[3] > THIN] or row
    centres = [b[0] + b[2] / 2 for b in wide]
    gaps = [b - a for a, b in itertools.pairwise(centres)]
    near = [g for g in gaps if MIN_PITCH * height <= g <= MAX_PITCH * height]
    if not near:
        near = gaps or [height * 0.8]
    pitch = statistics.median(near)
    origin = centres[0]
    kept = [b for b in row if abs(((b[0] + b[2] / 2 - origin) / pitch + 0.5) % 1 - 0.5) <= 0.3]
    return (kept if len(kept) >= 2 else row), pitch


def _extend(
    grey: np.ndarray, ends: tuple[float, float], pitch: float, band: tuple[int, int]
) -> tuple[float, float]:
    """Grow the row by whole cells on each side while they hold strokes like its digits.

    Digits the blob search missed (touching a window's frame, cut by glare, a blank LCD cell
    shows none) still have edges; the cells of the row's own digits say how many.
    """
    top, bottom = band
    strip = grey[top:bottom].astype(np.float32)
    strokes = np.abs(np.diff(strip, axis=1))

    columns = strokes.mean(axis=0)
    columns = np.clip(columns - np.percentile(columns, 20), 0, None)  # less noise and texture

    def cell(centre: float) -> tuple[float, float] | None:
        """(stroke energy, median brightness) of the cell centred at ``centre``.

        The energy counts only when strokes cross much of the cell's width: the edge of a
        display's window is one strong column, a digit's strokes spread over the cell.
        """
        left, right = round(centre - pitch / 2), round(centre + pitch / 2)
        if left < 0 or right > strokes.shape[1]:
            return None
        cols = columns[left:right]
        spread = float((cols > 0.5 * cols.mean()).mean())
        energy = float(cols.mean()) if spread >= MIN_SPREAD else 0.0
        return energy, float(np.median(strip[:, left:right]))

    first, last = ends
    inside = [cell(first + k * pitch) for k in range(round((last - first) / pitch) + 1)]
    known = [c for c in inside if c is not None]
    level = 0.8 * float(np.median([c[0] for c in known]))
    face = float(np.median([c[1] for c in known]))

    def like_a_digit(centre: float) -> bool:
        found = cell(centre)
        return found is not None and found[0] >= level > 0 and abs(found[1] - face) <= SAME_FACE

    for _ in range(MAX_GROWTH):
        if not like_a_digit(first - pitch):
            break
        first -= pitch
    for _ in range(MAX_GROWTH):
        if not like_a_digit(last + pitch):
            break
        last += pitch
    return first, last


def _red_decimals(rgb: np.ndarray, row: list[Box]) -> int:
    """Red blobs at the row's end (the decimal drums of a gas meter) count as decimals."""
    red = 0
    for x, y, w, h in reversed(row):
        patch = rgb[y : y + h, x : x + w].reshape(-1, 3).astype(np.float32)
        reddish = (patch[:, 0] - np.maximum(patch[:, 1], patch[:, 2])) > 40
        if reddish.mean() < 0.15:
            break
        red += 1
    return red if red < len(row) else 0


def _point_decimals(mask: np.ndarray, grid: tuple[float, float, int], band: tuple[int, int]) -> int:
    """Digits right of a decimal point: a small square blob low between two digits."""
    import cv2

    first, pitch, digits = grid
    top, bottom = band
    height = bottom - top
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    for x, y, w, h, area in stats[1:count].tolist():
        small = 0.04 * height <= max(w, h) <= 0.25 * height and 0.5 <= w / h <= 2
        low = abs(y + h - bottom) <= 0.2 * height
        centre = x + w / 2
        if not (small and low and area >= 0.5 * w * h and first < centre < first + pitch * digits):
            continue
        place = (centre - first) / pitch  # cells from the first digit's centre
        if abs(place % 1 - 0.5) <= 0.35:  # between two digits, not inside one
            return digits - 1 - int(place)
    return 0


def find_digits(image: Image.Image) -> Proposal:
    """The most digit-like row in the snapshot as a region; ``NoDigitsError`` when there is none."""
    import cv2

    scale = WORK_SIDE / max(image.size)  # small snapshots are enlarged: digits of 10 px
    work = image.convert("RGB").resize(
        (round(image.width * scale), round(image.height * scale)),
        Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR,
    )
    rgb = np.asarray(work)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    best: tuple[float, list[Box], np.ndarray] | None = None
    masks = _binaries(grey)
    for mask in masks:
        for row in _rows(_digit_blobs(mask)):
            score = _score(row)
            if best is None or score > best[0]:
                best = (score, row, mask)
    for mask in masks if best is None else []:  # no digits one by one: perhaps they touch
        for blob in _packed_strings(mask, []):
            row = _split(blob)
            score = _score(row)
            if best is None or score > best[0]:
                best = (score, row, mask)
    if best is None:
        raise NoDigitsError(
            f"no row of {MIN_DIGITS} or more digit-shaped marks of one size found "
            "(dark on light or light on dark); is the display in the picture, sharp and lit?"
        )
    _, row, mask = best
    row, pitch = _on_grid(row)
    top = min(b[1] for b in row)
    bottom = max(b[1] + b[3] for b in row)
    first, last = row[0][0] + row[0][2] / 2, row[-1][0] + row[-1][2] / 2
    first, last = _extend(grey, (first, last), pitch, (top, bottom))
    digits = round((last - first) / pitch) + 1
    slack = 0.08 * (bottom - top)
    left, right = first - pitch / 2, last + pitch / 2
    roi = (
        max(0, round(left / scale)),
        max(0, round((top - slack) / scale)),
        round((right - left) / scale),
        round((bottom - top + 2 * slack) / scale),
    )
    blobs = tuple(
        (round(x / scale), round(y / scale), round(w / scale), round(h / scale))
        for x, y, w, h in row
    )
    decimals = _red_decimals(rgb, row) or _point_decimals(
        mask, (first, pitch, digits), (top, bottom)
    )
    return Proposal(roi, digits, min(decimals, digits - 1), blobs)

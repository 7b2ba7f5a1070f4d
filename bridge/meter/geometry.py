"""From a camera frame to one normalised image per digit.

The region is a quadrilateral: an axis-aligned ``roi`` (optionally tilted by ``rotation``
degrees about its centre) or four ``corners`` for a display seen at an angle.  It is warped to
a strip in which every digit occupies a cell of ``CELL_W`` x ``CELL_H`` pixels, so that the
recogniser sees the same geometry whatever the camera's resolution.  Each cell is cut with a
little of its neighbours on both sides (``CONTEXT``), which makes the reading tolerant of a
region drawn a few pixels too wide or too narrow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from bridge.config import MeterConfig

#: Height of the warped strip and width of one digit's cell in it.
CELL_H = 32
CELL_W = 24
#: Pixels of the neighbouring cells included on each side of a cell.
CONTEXT = 4
#: What the recogniser gets per digit: (height, width).
INPUT_SHAPE = (CELL_H, CELL_W + 2 * CONTEXT)
#: Strip pixels warped beyond each end of the region: the context plus room to shift cells.
PAD = CONTEXT + 4

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]


class RegionError(ValueError):
    """The configured region does not describe a usable area of this image."""


def region_quad(meter: MeterConfig, size: tuple[int, int] | None = None) -> Quad:
    """The digits' quadrilateral (top-left, top-right, bottom-right, bottom-left) in the frame.

    ``rotation`` turns the ``roi`` rectangle about its centre, counter-clockwise as seen on the
    image for positive degrees: use it when the display sits tilted in the frame.
    """
    if meter.corners is not None:
        if len(meter.corners) != 4:
            raise RegionError("corners needs four points")
        tl, tr, br, bl = ((float(x), float(y)) for x, y in meter.corners)
        return (tl, tr, br, bl)
    if meter.roi is None:
        raise RegionError("the meter needs a roi or four corners")
    x, y, w, h = (float(v) for v in meter.roi)
    if w <= 0 or h <= 0:
        raise RegionError(f"roi width and height must be positive, got {list(meter.roi)}")
    if size is not None and (x >= size[0] or y >= size[1] or x + w <= 0 or y + h <= 0):
        raise RegionError(f"roi {list(meter.roi)} lies outside the {size[0]}x{size[1]} image")
    corners = ((x, y), (x + w, y), (x + w, y + h), (x, y + h))
    if not meter.rotation:
        return corners
    cx, cy = x + w / 2, y + h / 2
    angle = math.radians(meter.rotation)
    cos, sin = math.cos(angle), math.sin(angle)
    turned = [
        (cx + (px - cx) * cos + (py - cy) * sin, cy - (px - cx) * sin + (py - cy) * cos)
        for px, py in corners
    ]
    return (turned[0], turned[1], turned[2], turned[3])


def homography(src: Sequence[Point], dst: Sequence[Point]) -> np.ndarray:
    """The 3x3 projective map taking the four ``src`` points onto the four ``dst`` points."""
    rows = []
    rhs = []
    for (sx, sy), (dx, dy) in zip(src, dst, strict=True):
        rows.append([sx, sy, 1, 0, 0, 0, -dx * sx, -dx * sy])
        rows.append([0, 0, 0, sx, sy, 1, -dy * sx, -dy * sy])
        rhs.extend([dx, dy])
    try:
        solution = np.linalg.solve(np.asarray(rows, float), np.asarray(rhs, float))
    except np.linalg.LinAlgError as err:
        raise RegionError("the region's corners are degenerate (three on one line?)") from err
    return np.append(solution, 1.0).reshape(3, 3)


def apply_homography(matrix: np.ndarray, points: Sequence[Point]) -> list[Point]:
    """Map points through a homography."""
    out = []
    for x, y in points:
        u, v, w = matrix @ np.array([x, y, 1.0])
        out.append((float(u / w), float(v / w)))
    return out


def warp_strip(image: Image.Image, quad: Quad, digits: int, pad: int = PAD) -> np.ndarray:
    """The region as a grey strip, ``CELL_H`` high, one ``CELL_W`` cell per digit.

    ``pad`` pixels beyond the region's left and right edges are included, so every cell
    can be cut with the same margin (and shifted a little).  Large frames are first reduced
    with an area filter, so that warping does not alias fine segments away.
    """
    if digits < 1:
        raise RegionError("digits must be at least 1")
    tl, tr, br, bl = quad
    height = max(math.dist(tl, bl), math.dist(tr, br), 1.0)
    # Work on the region's neighbourhood only: converting or averaging a 12-megapixel frame
    # would cost more than reading the digits.
    xs = [p[0] for p in quad]
    ys = [p[1] for p in quad]
    margin = height
    left = max(0, math.floor(min(xs) - margin))
    top = max(0, math.floor(min(ys) - margin))
    right = min(image.width, math.ceil(max(xs) + margin))
    bottom = min(image.height, math.ceil(max(ys) + margin))
    if right - left < 2 or bottom - top < 2:
        raise RegionError("the region lies outside the image")
    grey = image.crop((left, top, right, bottom)).convert("L")
    quad = tuple((x - left, y - top) for x, y in quad)  # type: ignore[assignment]
    # Reduce big regions so they are about twice the strip's height before warping.
    factor = height / (2 * CELL_H)
    if factor > 1.5:
        new_size = (max(1, round(grey.width / factor)), max(1, round(grey.height / factor)))
        sx, sy = new_size[0] / grey.width, new_size[1] / grey.height
        grey = grey.resize(new_size, Image.Resampling.BOX)
        quad = tuple((x * sx, y * sy) for x, y in quad)  # type: ignore[assignment]
    width = digits * CELL_W
    out_w = width + 2 * pad
    # Strip pixel (u, v) -> frame point: the region spans u in [pad, pad + width].
    u0, u1 = float(pad), float(pad + width)
    strip_corners = ((u0, 0.0), (u1, 0.0), (u1, float(CELL_H)), (u0, float(CELL_H)))
    to_frame = homography(strip_corners, quad)
    coeffs = tuple(float(v) for v in (to_frame / to_frame[2, 2]).flatten()[:8])
    fill = int(np.asarray(grey).mean())
    warped = grey.transform(
        (out_w, CELL_H),
        Image.Transform.PERSPECTIVE,
        coeffs,
        resample=Image.Resampling.BILINEAR,
        fillcolor=fill,
    )
    return np.asarray(warped, dtype=np.float32)


def normalise(strip: np.ndarray) -> np.ndarray:
    """Zero mean, unit spread over the whole strip (not per cell).

    Per-strip, so that a blank cell on an LCD, whose unlit segments faintly show an "8",
    keeps its low contrast instead of being stretched into a lit "8".
    """
    centre = float(np.median(strip))
    spread = float(np.percentile(strip, 95) - np.percentile(strip, 5))
    return ((strip - centre) / max(spread, 8.0)).astype(np.float32)


def cut_cells(strip: np.ndarray, digits: int, shift: int = 0, pad: int = PAD) -> np.ndarray:
    """One ``INPUT_SHAPE`` array per digit, left to right: shape (digits, H, W).

    ``shift`` moves every cell that many strip pixels to the right (at most ``pad - CONTEXT``).
    """
    width = CELL_W + 2 * CONTEXT
    start = pad - CONTEXT + shift
    return np.stack(
        [strip[:, start + i * CELL_W : start + i * CELL_W + width] for i in range(digits)]
    )


def digit_cells(image: Image.Image, meter: MeterConfig, shifts: Sequence[int] = (0,)) -> np.ndarray:
    """The normalised cells of the configured region: shape (len(shifts) * digits, H, W).

    With several ``shifts``, the cells are cut once per shift (all of the first shift's
    digits, then the next shift's...), so a reader can average over a region drawn a little off.
    """
    return quad_cells(image, region_quad(meter, image.size), meter.digits, shifts)


def quad_cells(
    image: Image.Image, quad: Quad, digits: int, shifts: Sequence[int] = (0,)
) -> np.ndarray:
    """``digit_cells`` for a region given as its four corners."""
    strip = normalise(warp_strip(image, quad, digits))
    return np.concatenate([cut_cells(strip, digits, shift) for shift in shifts])

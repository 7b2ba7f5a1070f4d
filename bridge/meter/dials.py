"""Pointer dials: where a dial's pointer points, and how dials and drums make one value.

Water and gas meters often show their last decimals on small dials, each turn of one counting a
tenth of the one before.  No public set of real pointer crops with a licence that allows use was
found (``docs/meters.md`` names what was checked), so the pointer is found classically: the
dial is sampled along rays from its centre, between a third and four fifths of its radius
(clear of the hub, and of the numerals and ticks at the rim), and the ray crossing the most
pointer-coloured pixels wins.  A red pointer is looked for by its redness, any other by its
darkness against the face.  A dial where no ray stands out holds the whole reading back.

The carry between neighbours follows AI-on-the-edge-device's rule: a coarser pointer (or the last
drum) is read as the whole number that agrees with where the next finer pointer stands.  A drum
showing ``x.9`` while the next dial has just passed 0 has rolled over; a pointer just short of
4 while the finer one still reads 9.8 is at 3.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bridge.config import DialConfig

#: Side of the square the dial is resampled to before its rays are read.
SIZE = 96
#: Rays every this many degrees.
STEP_DEG = 2
#: Part of the radius the rays sample: clear of the hub and of the rim's numerals and ticks.
INNER, OUTER = 0.32, 0.8
#: A pointer must stand this many levels (of 255) above the dial's typical ray.
MIN_CONTRAST = 30.0
#: The same for redness: a plain face has next to none, so a faint red pointer still counts.
MIN_RED = 20.0
#: Below this confidence no pointer counts as found (another direction looks about as likely).
MIN_CONFIDENCE = 0.5
#: Directions this close to the best one (degrees) belong to the same pointer.
SAME_POINTER_DEG = 30


class DialError(ValueError):
    """A dial whose pointer cannot be found; the message says which and why."""


@dataclass(frozen=True)
class DialReading:
    """Where one pointer points: 0 to 10 (one turn), its angle and how sure the reader is."""

    value: float
    #: Degrees clockwise from 12 o'clock, as seen in the picture.
    angle: float
    confidence: float
    #: The dial's centre and radius in the frame (for drawing).
    centre: tuple[float, float]
    radius: float


def dial_circle(dial: DialConfig) -> tuple[float, float, float]:
    """The dial's centre and radius in the frame: from ``centre``/``radius`` or its box."""
    if dial.roi is not None:
        x, y, w, h = dial.roi
        return x + w / 2, y + h / 2, min(w, h) / 2
    assert dial.centre is not None  # the config checked both
    assert dial.radius is not None
    return float(dial.centre[0]), float(dial.centre[1]), float(dial.radius)


def _square(image: Image.Image, cx: float, cy: float, radius: float) -> np.ndarray:
    """The dial resampled to ``SIZE`` x ``SIZE`` RGB floats, the outside filled with grey."""
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if box[2] <= 0 or box[3] <= 0 or box[0] >= image.width or box[1] >= image.height:
        raise DialError(f"lies outside the {image.width}x{image.height} picture")
    patch = image.convert("RGB").transform(
        (SIZE, SIZE),
        Image.Transform.EXTENT,
        box,
        resample=Image.Resampling.BILINEAR,
        fillcolor=(128, 128, 128),
    )
    return np.asarray(patch, dtype=np.float32)


def _ray_profile(score: np.ndarray) -> np.ndarray:
    """Mean score along each ray (one per ``STEP_DEG``), circularly smoothed."""
    angles = np.deg2rad(np.arange(0, 360, STEP_DEG, dtype=np.float32))
    radii = np.linspace(INNER, OUTER, 16, dtype=np.float32) * (SIZE / 2 - 1)
    centre = (SIZE - 1) / 2
    # clockwise from 12 o'clock: x grows with sin, y (downwards) shrinks with cos
    xs = centre + np.outer(np.sin(angles), radii)
    ys = centre - np.outer(np.cos(angles), radii)
    samples = score[np.rint(ys).astype(int), np.rint(xs).astype(int)]
    profile = samples.mean(axis=1)
    return np.asarray((np.roll(profile, 1) + 2 * profile + np.roll(profile, -1)) / 4)


def _pointer_scores(rgb: np.ndarray) -> list[np.ndarray]:
    """Score maps a pointer stands out in: redness first, then darkness against the face."""
    red = rgb[..., 0] - np.maximum(rgb[..., 1], rgb[..., 2])
    grey = rgb.mean(axis=2)
    dark = float(np.percentile(grey, 90)) - grey
    return [np.clip(red, 0, None), np.clip(dark, 0, None)]


def _peak(profile: np.ndarray) -> tuple[float, float, float]:
    """(angle in degrees, contrast, confidence) of the profile's strongest direction."""
    best = int(np.argmax(profile))
    typical = float(np.median(profile))
    contrast = float(profile[best]) - typical
    # sub-step angle: a parabola through the peak and its neighbours
    left, right = float(profile[best - 1]), float(profile[(best + 1) % len(profile)])
    curve = left - 2 * float(profile[best]) + right
    offset = 0.5 * (left - right) / curve if curve < 0 else 0.0
    angle = ((best + offset) * STEP_DEG) % 360
    # the strongest direction that is neither this pointer nor its tail
    degrees = np.arange(len(profile)) * STEP_DEG
    apart = np.abs((degrees - best * STEP_DEG + 180) % 360 - 180)
    others = profile[(apart > SAME_POINTER_DEG) & (apart < 180 - SAME_POINTER_DEG)]
    rival = float(others.max()) - typical if others.size else 0.0
    confidence = 1.0 - max(0.0, rival) / contrast if contrast > 0 else 0.0
    return angle, contrast, max(0.0, min(1.0, confidence))


def read_dial(image: Image.Image, dial: DialConfig) -> DialReading:
    """Read one dial; ``DialError`` when no pointer stands out on it."""
    cx, cy, radius = dial_circle(dial)
    rgb = _square(image, cx, cy, radius)
    found: tuple[float, float, float] | None = None
    for score, least in zip(_pointer_scores(rgb), (MIN_RED, MIN_CONTRAST), strict=True):
        angle, contrast, confidence = _peak(_ray_profile(score))
        if contrast >= least and (found is None or confidence > found[2]):
            found = (angle, contrast, confidence)
    if found is None:
        raise DialError("no pointer found (nothing red or dark stands out along any direction)")
    angle, _, confidence = found
    if confidence < MIN_CONFIDENCE:
        raise DialError(
            f"no pointer found (another direction looks as much like one; confidence "
            f"{confidence:.2f})"
        )
    turned = angle if dial.clockwise else (360 - angle) % 360
    return DialReading(
        value=turned / 36,
        angle=angle,
        confidence=round(confidence, 3),
        centre=(cx, cy),
        radius=radius,
    )


def agreeing_digit(position: float, finer: float, roll_start: float = 0.0) -> int:
    """The whole number (0-9) shown at ``position`` (0-10) given the next finer pointer.

    The coarser pointer (or drum) stands past its number ``n`` by as much as the finer one has
    turned it: a tenth of the finer one's reading for a pointer, which turns all the time; for a
    drum that only starts to roll when the finer pointer passes ``roll_start``, nothing before
    that and the whole step from there to 0.  ``n`` is the number that agrees best.
    """
    offset = max(0.0, finer - roll_start) / (10 - roll_start)
    return round(position - offset) % 10


@dataclass(frozen=True)
class Combined:
    """Drums and dials as one reading."""

    raw: str
    text: str
    value: float
    #: The digit each dial stands for, coarsest first.
    dial_digits: list[int]


def combine(
    labels: list[int],
    decimals: int,
    readings: list[DialReading],
    last_position: float | None = None,
    roll_start: float = 0.0,
) -> Combined:
    """One value from the drums' digits (0-9, blank as 0) and the dials, coarsest first.

    The last drum is taken as the digit agreeing with the first dial (its carry decided by the
    dial), the drums to its left carrying with it; each dial agrees with the next finer one and
    the finest is read down (3.96 is still 3).  ``last_position`` is where the last drum stands
    in tenths (``3.9``: nearly rolled to 4) when the recogniser says so; else its digit.
    ``roll_start``: where the first dial stands when the last drum starts to roll.
    """
    digits = [0 if d > 9 else d for d in labels]
    drums = int("".join(str(d) for d in digits))
    if readings:
        position = float(digits[-1]) if last_position is None else last_position
        last = agreeing_digit(position, readings[0].value, roll_start)
        drums += (last - digits[-1] + 5) % 10 - 5  # +1 or -1 across a roll, carrying left
        drums %= 10 ** len(digits)
    dial_digits = [
        agreeing_digit(r.value, readings[i + 1].value)
        if i + 1 < len(readings)
        else math.floor(r.value) % 10
        for i, r in enumerate(readings)
    ]
    raw = f"{drums:0{len(digits)}d}" + "".join(str(d) for d in dial_digits)
    places = decimals + len(readings)
    text = f"{raw[:-places]}.{raw[-places:]}" if places else raw
    value = round(int(raw) / 10**places, places) if places else float(int(raw))
    return Combined(raw, text, value, dial_digits)

"""Regions drawn loosely around the digits: candidates fitted to where the digits' ink is.

The reader splits the region into ``digits`` equal cells, so a region drawn 10% too wide on
each side puts the last cells nearly a whole digit off (on a set of photos read 99.8% exactly
with tight regions, such regions read 45%).  People measure regions by eye, around the display's
window rather than the digits, so this module proposes tighter regions: the rows and columns of
the region where the image has strokes (edge energy well above the background's).

Fitting the left edge to the ink is not always right: an LCD that blanks its leading zeros has
no ink there, and a leading ``1`` starts right of its cell's edge.  So this proposes candidates
(right edge and height fitted; everything fitted) and the reader keeps whichever the recogniser
is most confident about, the configured region included.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from bridge.meter.geometry import Quad, apply_homography, homography, warp_strip

#: A column (row) has ink when its edge energy is above this share of the way from the
#: background's level (median) to the strokes' (95th percentile).
INK_LEVEL = 0.3
#: Slack kept around the ink: a share of the fitted width and height.
SLACK_X = 0.01
SLACK_Y = 0.06
#: Candidates that change the region by less than this share of its width are not worth a read.
MIN_CHANGE = 0.03


def _ink_runs(energy: np.ndarray, bridge: int) -> list[tuple[int, int]]:
    """Runs of indexes whose energy clears ``INK_LEVEL``, gaps up to ``bridge`` closed."""
    smooth = np.convolve(energy, np.ones(3) / 3, mode="same")
    low, high = float(np.median(smooth)), float(np.percentile(smooth, 95))
    if high - low < 1e-3:
        return []
    runs: list[tuple[int, int]] = []
    for index in np.flatnonzero(smooth > low + INK_LEVEL * (high - low)):
        if runs and index - runs[-1][1] <= bridge:
            runs[-1] = (runs[-1][0], int(index) + 1)
        else:
            runs.append((int(index), int(index) + 1))
    return runs


def _edges(runs: list[tuple[int, int]], narrow: float) -> tuple[list[int], list[int]]:
    """Where the digits may start and end: at the outer runs of ink.

    Also at the next runs in, when an outer run is narrow: the edge of the display's window or
    of the meter, not a digit.
    """
    starts, ends = [runs[0][0]], [runs[-1][1]]
    if len(runs) > 1 and runs[0][1] - runs[0][0] < narrow:
        starts.append(runs[1][0])
    if len(runs) > 1 and runs[-1][1] - runs[-1][0] < narrow:
        ends.append(runs[-2][1])
    return starts, ends


def candidate_quads(image: Image.Image, quad: Quad, digits: int) -> list[Quad]:
    """Tighter regions than ``quad`` around its digits' ink (possibly none)."""
    strip = warp_strip(image, quad, digits, pad=0)
    height, width = strip.shape
    dx = np.abs(np.diff(strip, axis=1))
    dy = np.abs(np.diff(strip, axis=0))
    row_runs = _ink_runs(np.pad(dy.sum(axis=1), (0, 1)) + dx.sum(axis=1), bridge=height // 4)
    if not row_runs:
        return []
    top, bottom = row_runs[0][0], row_runs[-1][1]  # the digits' band
    if bottom - top < height * 0.3:
        return []  # too little ink to say where the digits are
    band = slice(top, max(bottom - 1, top + 1))
    column_energy = np.pad(dx[band].sum(axis=0), (0, 1)) + dy[band].sum(axis=0)
    column_runs = _ink_runs(column_energy, bridge=2)
    if not column_runs:
        return []
    starts, ends = _edges(column_runs, narrow=0.2 * width / digits)
    slack_y = SLACK_Y * (bottom - top)
    top_v, bottom_v = max(0.0, top - slack_y), min(float(height), bottom + slack_y)
    to_frame = homography(
        [(0.0, 0.0), (float(width), 0.0), (float(width), float(height)), (0.0, float(height))],
        quad,
    )

    def region(u0: float, u1: float) -> Quad:
        tl, tr, br, bl = apply_homography(
            to_frame, [(u0, top_v), (u1, top_v), (u1, bottom_v), (u0, bottom_v)]
        )
        return (tl, tr, br, bl)

    candidates = []
    changed_height = (top_v + (height - bottom_v)) / height >= 2 * MIN_CHANGE
    for end in ends:
        for start in [0, *starts]:
            slack_x = SLACK_X * (end - start)
            u0, u1 = max(0.0, start - slack_x) if start else 0.0, min(float(width), end + slack_x)
            if u1 - u0 < width * 0.3:
                continue
            if u0 / width < MIN_CHANGE and (width - u1) / width < MIN_CHANGE and not changed_height:
                continue  # the configured region, near enough
            candidates.append(region(u0, u1))
    return candidates

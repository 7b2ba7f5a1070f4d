"""A second reader for a meter's digits: PP-OCR's text recogniser (RapidOCR) on the region.

The digit networks learnt from 18 real meters; PP-OCR's recogniser from far more text in far
more typefaces, and it fails in other ways.  A reading the networks are not quite sure of may
be published when this reader sees the same digits, every network read each uncertain digit
alike, and each stands still on a whole digit: OCR reads what a cell shows, and only the carry
rule knows what a drum caught mid-roll counts as.  How unsure the networks may be for that
(``confirm_confidence`` in the weights file) is calibrated with this reader on validation
displays, as ``min_confidence`` is (``tools/train_meter.py``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from bridge.meter.carry import BLANK
from bridge.meter.geometry import Quad, homography

#: PP-OCR's recogniser reads lines this many pixels high.
STRIP_HEIGHT = 48
#: Room left around the digits on every side, in strip heights: the recogniser wants margins.
MARGIN = 0.3
#: A cell this many tenths or fewer from a whole digit shows that digit whole.
AT_REST = 1


class SecondReader:
    """PP-OCR's recogniser alone (no text detection): the region is already known."""

    def __init__(self, threads: int | None = None) -> None:
        from rapidocr import RapidOCR

        # One thread unless configured: the meter must not take the caption model's cores.
        self._ocr: Any = RapidOCR(
            params={
                "Global.log_level": "error",
                "EngineConfig.onnxruntime.intra_op_num_threads": threads or 1,
            }
        )
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        # Its session loads on the first region asked about: most readings never need it, and
        # the bridge starts (and reads its first frames) as fast as without it.

    def digits(self, image: Image.Image, quad: Quad) -> str:
        """The digits PP-OCR reads in the region (anything else it reads dropped)."""
        output = self._ocr(strip_of(image, quad), use_det=False, use_cls=False, use_rec=True)
        return "".join(c for c in "".join(output.txts or ()) if c.isdigit())


def strip_of(image: Image.Image, quad: Quad) -> np.ndarray:
    """The region warped upright, ``STRIP_HEIGHT`` high with ``MARGIN`` around it, as BGR."""
    tl, tr, br, bl = quad
    height = max(math.dist(tl, bl), math.dist(tr, br), 1.0)
    width = max(math.dist(tl, tr), math.dist(bl, br), 1.0)
    pad = round(MARGIN * STRIP_HEIGHT)
    inner_w = max(1, round(width * STRIP_HEIGHT / height))
    u0, v0, u1, v1 = float(pad), float(pad), float(pad + inner_w), float(pad + STRIP_HEIGHT)
    # Only the region's neighbourhood is converted and warped, not the whole frame.
    reach = height * (1 + 2 * MARGIN)
    left = max(0, math.floor(min(p[0] for p in quad) - reach))
    top = max(0, math.floor(min(p[1] for p in quad) - reach))
    right = min(image.width, math.ceil(max(p[0] for p in quad) + reach))
    bottom = min(image.height, math.ceil(max(p[1] for p in quad) + reach))
    local = tuple((x - left, y - top) for x, y in quad)
    to_frame = homography(((u0, v0), (u1, v0), (u1, v1), (u0, v1)), local)
    coeffs = tuple(float(v) for v in (to_frame / to_frame[2, 2]).flatten()[:8])
    rgb = image.crop((left, top, right, bottom)).convert("RGB")
    strip = rgb.transform(
        (inner_w + 2 * pad, STRIP_HEIGHT + 2 * pad),
        Image.Transform.PERSPECTIVE,
        coeffs,
        resample=Image.Resampling.BILINEAR,
    )
    return np.ascontiguousarray(np.asarray(strip)[:, :, ::-1])


def confirmable(
    labels: Sequence[int],
    confidence: Sequence[float],
    positions: Sequence[float],
    member_labels: Sequence[Sequence[int]],
    min_confidence: float,
) -> bool:
    """Whether every digit below ``min_confidence`` is one OCR can vouch for.

    Every network, each on its own cut, read that digit (their mean alone is unsure), and it
    is neither a blank (OCR cannot tell a blank cell from a faint ``1`` it missed) nor a drum
    between two digits.
    """
    for cell, (label, sure, position) in enumerate(zip(labels, confidence, positions, strict=True)):
        if sure >= min_confidence:
            continue
        if label == BLANK or any(member[cell] != label for member in member_labels):
            return False
        tenths = round(position * 10) % 10
        if min(tenths, 10 - tenths) > AT_REST:
            return False
    return True


def agrees(text: str, labels: Sequence[int]) -> bool:
    """Whether OCR read exactly the digits read (a display's blank leading cells left out)."""
    shown = "".join(str(d) for d in labels if d != BLANK)
    return bool(shown) and text == shown

"""From each cell's drum position (in tenths of a digit) to the digits of the reading.

A drum caught mid-roll shows two digits at once; the recogniser says where the drum stands
(``3.4``: 40% of the way from 3 to 4) instead of guessing a digit, and the digit is decided
here from that position and from the drum to its right, the way AI-on-the-edge-device does it
(``ClassFlowCNNGeneral::PointerEvalHybridNew``, rewritten here from its rule, not its code):

* a drum whose right neighbour is well away from its own roll-over must be at rest, so it
  is rounded when near a whole digit (``3.8`` reads 4: the camera saw it a little off) and
  truncated otherwise (``3.5`` reads 3);
* the rightmost drum is read the same way, as if its right neighbour were at rest.  (AI-on-
  the-edge truncates it: ``3.9`` reads 3.  But the dataset labels a drum ``x.9`` once the next
  digit is nearly centred, and neither a person nor a recogniser can tell 3.9 from 4.0 reliably,
  so truncating would make every whole last digit a coin toss between two readings.);
* when the right neighbour has just rolled over to 0 or 1, this drum has rolled with it:
  ``3.6`` or more reads 4;
* when the right neighbour is still on 9, this drum has not rolled yet: ``4.1`` reads 3
  once the neighbour is past 9.7 (the drum moves early), ``3.8`` reads 3.

An LCD digit always stands on a whole position, so the rule gives plain digits there.  A cell
read as blank (an LCD not showing leading zeros) is ``BLANK``; a blank with a digit to its
left cannot be right and gets confidence 0, so the reading is held back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum

import numpy as np

#: Positions a cell can stand at: 0.0, 0.1 ... 9.9.
BINS = 100
#: Index of the blank class, after the positions.
BLANK_INDEX = BINS
#: The label of a blank cell (as the synthetic sets and ``format_reading`` use it).
BLANK = 10
#: A drum whose tenth is at most this or at least ``10 - NEAR_WHOLE`` stands on a digit.
NEAR_WHOLE = 3
#: The right neighbour is "at rest" between this and ``10 - RIGHT_AT_REST``.
RIGHT_AT_REST = 0.7
#: Past this, a right neighbour still on 9 is nearly rolled over and drags this drum early.
RIGHT_LATE = 9.7


class Neighbour(Enum):
    """What a drum's right neighbour says about its roll: all ``drum_digit`` looks at."""

    AT_REST = "at rest"  # or no neighbour: the drum is read on its own
    ROLLED = "rolled over"  # on 0 or 1: this drum has gone with it
    ON_NINE = "still on 9"  # this drum has not rolled yet
    LATE_ON_NINE = "nearly rolled"  # past 9.7: this drum may have moved a little early


def neighbour_of(right: tuple[float, int] | None) -> Neighbour:
    """``right``: the neighbour's (position, digit decided for it), None for the last drum."""
    if right is None:
        return Neighbour.AT_REST
    right_position, right_digit = right
    if RIGHT_AT_REST <= right_position <= 10 - RIGHT_AT_REST:
        return Neighbour.AT_REST
    if right_digit <= 1:
        return Neighbour.ROLLED
    return Neighbour.ON_NINE if right_position <= RIGHT_LATE else Neighbour.LATE_ON_NINE


def drum_digit(position: float, right: tuple[float, int] | None) -> int:
    """The digit a drum at ``position`` (0 <= p < 10) shows, given its right neighbour.

    ``right`` is the neighbour's (position, digit decided for it), None for the last drum.
    """
    return _digit(position, neighbour_of(right))


def _digit(position: float, neighbour: Neighbour) -> int:
    whole = math.floor(position + 1e-6) % 10
    tenth = math.floor(position * 10 + 1e-6) % 10
    if neighbour is Neighbour.AT_REST:
        if tenth <= NEAR_WHOLE or tenth >= 10 - NEAR_WHOLE:
            return round(position) % 10
        return whole
    if neighbour is Neighbour.ROLLED:
        return (whole + 1) % 10 if tenth > 5 else whole
    if neighbour is Neighbour.ON_NINE or tenth >= 4:
        return whole
    return (whole - 1) % 10


def digits_from_positions(positions: Sequence[float | None]) -> list[int]:
    """The digits of exact positions (None: a blank cell), e.g. a labelled set's truth."""
    digits: list[int] = []
    right: tuple[float, int] | None = None
    for position in reversed(positions):
        if position is None:
            digits.append(BLANK)
            right = None
            continue
        digit = drum_digit(position % 10, right)
        digits.append(digit)
        right = (position % 10, digit)
    return digits[::-1]


def point_position(probs: np.ndarray) -> float:
    """Where a cell's position distribution (``BINS`` values) is centred, 0 <= p < 10.

    The circular mean of the mass within three tenths of the most likely tenth.
    """
    best = int(np.argmax(probs))
    offsets = np.arange(-3, 4)
    weights = probs[(best + offsets) % BINS]
    total = float(weights.sum())
    shift = float((weights * offsets).sum()) / total if total > 0 else 0.0
    return ((best + shift) / 10) % 10


#: The digit each position bin reads as, for each kind of right neighbour.
_BIN_DIGITS = {
    neighbour: np.array([_digit(bin_ / 10, neighbour) for bin_ in range(BINS)])
    for neighbour in Neighbour
}


def read_cells(probs: np.ndarray) -> tuple[list[int], list[float]]:
    """Digits (or ``BLANK``) and their confidence from per-cell class probabilities.

    ``probs`` has shape (cells, ``BINS`` + 1): the positions, then blank.  Right to left, each
    cell's digit is the one that most of its position mass reads as under ``drum_digit`` given
    the neighbour already decided; that mass is its confidence.
    """
    digits: list[int] = []
    confidence: list[float] = []
    right: tuple[float, int] | None = None
    for cell in probs[::-1]:
        blank = float(cell[BLANK_INDEX])
        if blank >= 0.5:
            digits.append(BLANK)
            confidence.append(blank)
            right = None
            continue
        mass = np.bincount(_BIN_DIGITS[neighbour_of(right)], weights=cell[:BINS], minlength=10)
        digit = int(np.argmax(mass))
        digits.append(digit)
        confidence.append(float(mass[digit]))
        right = (point_position(cell[:BINS]), digit)
    digits.reverse()
    confidence.reverse()
    seen_digit = False
    for i, digit in enumerate(digits):  # a blank after a digit: not a display's blank
        if digit == BLANK and seen_digit:
            confidence[i] = 0.0
        seen_digit = seen_digit or digit != BLANK
    return digits, confidence

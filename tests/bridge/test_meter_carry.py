"""Drums caught mid-roll: digits decided from positions in tenths, blank LCD cells.

The recogniser says where each drum stands (``3.4``: 40% of the way from 3 to 4); these tests
pin how a reading is made of such positions, as a meter's drums actually turn.
"""

from __future__ import annotations

import numpy as np
import pytest

from bridge.meter.carry import (
    BINS,
    BLANK,
    BLANK_INDEX,
    digits_from_positions,
    drum_digit,
    point_position,
    read_cells,
)


def one_hot(*positions: float | None, spread: float = 0.0) -> np.ndarray:
    """Probabilities as a sure recogniser would give them (``spread``: share on +-0.1)."""
    probs = np.zeros((len(positions), BINS + 1))
    for i, position in enumerate(positions):
        if position is None:
            probs[i, BLANK_INDEX] = 1.0
            continue
        tenth = round(position * 10) % BINS
        probs[i, tenth] = 1.0 - spread
        probs[i, (tenth - 1) % BINS] += spread / 2
        probs[i, (tenth + 1) % BINS] += spread / 2
    return probs


def test_whole_digits_read_as_they_are() -> None:
    assert digits_from_positions([0.0, 1.0, 2.0, 3.0, 4.0]) == [0, 1, 2, 3, 4]


def test_the_last_drum_reads_the_digit_it_is_nearest_when_near_one_else_the_one_it_passed() -> None:
    assert digits_from_positions([1.0, 2.0, 3.9]) == [1, 2, 4]
    assert digits_from_positions([1.0, 2.0, 3.2]) == [1, 2, 3]
    assert digits_from_positions([1.0, 2.0, 3.6]) == [1, 2, 3]


def test_a_drum_beside_a_resting_neighbour_is_rounded_when_near_a_digit() -> None:
    # the camera saw the drum a little off its digit: 3.8 with a resting neighbour is a 4
    assert digits_from_positions([3.8, 5.0]) == [4, 5]
    assert digits_from_positions([4.2, 5.0]) == [4, 5]
    # half-way with a resting neighbour cannot happen on a real counter: the digit passed
    assert digits_from_positions([3.5, 5.0]) == [3, 5]


def test_a_rollover_carries_into_the_drums_to_its_left() -> None:
    # 1 2 9|9 -> 1 3 0|0 caught just after the last drum passed 0
    assert digits_from_positions([1.0, 2.8, 9.9, 0.1]) == [1, 3, 0, 0]
    # ... and just before: nothing has rolled over yet
    assert digits_from_positions([1.0, 2.8, 9.8, 9.6]) == [1, 2, 9, 9]


def test_a_drum_that_moves_early_is_held_to_its_digit_until_the_neighbour_rolls_over() -> None:
    # the neighbour is at 9.8 (not yet 0): a drum already showing 4.1 still counts 3
    assert digits_from_positions([4.1, 9.8, 9.5]) == [3, 9, 9]
    # at 9.5 the neighbour is not late enough to drag it: 4.1 is 4
    assert digits_from_positions([4.1, 9.5]) == [4, 9]


def test_sure_positions_read_with_full_confidence() -> None:
    digits, confidence = read_cells(one_hot(0.0, 1.0, 2.8, 9.9, 0.1))
    assert digits == [0, 1, 3, 0, 0]
    assert confidence == pytest.approx([1.0] * 5)


def test_a_position_on_the_edge_of_two_digits_is_uncertain_not_guessed() -> None:
    # the last drum, half its mass on 3.6 and half on 3.7: it reads 3 or 4
    probs = np.zeros((2, BINS + 1))
    probs[0, 10] = 1.0
    probs[1, 36] = probs[1, 37] = 0.5
    digits, confidence = read_cells(probs)
    assert digits[0] == 1
    assert confidence[1] == pytest.approx(0.5)


def test_a_whole_digit_read_a_tenth_either_side_is_still_that_digit() -> None:
    digits, confidence = read_cells(one_hot(2.0, 5.0, spread=0.4))
    assert digits == [2, 5]
    assert confidence == pytest.approx([1.0, 1.0])


def test_blank_leading_cells_read_as_blank() -> None:
    digits, confidence = read_cells(one_hot(None, None, 4.0, 7.0))
    assert digits == [BLANK, BLANK, 4, 7]
    assert min(confidence) == pytest.approx(1.0)


def test_a_blank_between_digits_is_not_a_display_blank_and_holds_the_reading_back() -> None:
    digits, confidence = read_cells(one_hot(1.0, None, 7.0))
    assert digits == [1, BLANK, 7]
    assert confidence[1] == 0.0


def test_each_cell_takes_the_digit_most_of_its_mass_reads_as_beside_its_right_neighbour() -> None:
    rng = np.random.default_rng(11)
    for _ in range(300):
        cells = rng.dirichlet(np.full(BINS + 1, 0.3), size=int(rng.integers(2, 8)))
        cells[:, BLANK_INDEX] = 0.0
        digits, confidence = read_cells(cells)
        right: tuple[float, int] | None = None
        for index in reversed(range(len(cells))):  # the rule as stated, bin by bin
            mass = np.zeros(10)
            for bin_ in range(BINS):
                mass[drum_digit(bin_ / 10, right)] += cells[index, bin_]
            assert digits[index] == int(np.argmax(mass))
            assert confidence[index] == pytest.approx(mass.max())
            right = (point_position(cells[index, :BINS]), digits[index])

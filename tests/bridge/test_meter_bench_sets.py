"""The real-crop bench's displays: independent crops, or composed as a counter can stand.

``bench/meter_accuracy.py --set real`` puts crops of one evaluation meter side by side at
random, so a drum at 3.5 may stand left of one at rest; ``--set real-counter`` must not.
"""

from __future__ import annotations

import sys
from itertools import pairwise
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import meter_real  # noqa: E402


def crops_of_one_meter() -> dict[str, list[meter_real.Crop]]:
    """Every position 0.0-9.9 once, as the collected drum crops cover them."""
    return {"drum/x": [meter_real.Crop(Path(f"{t}.jpg"), "drum/x", t) for t in range(100)]}


def test_a_counter_display_has_a_drum_mid_roll_only_while_its_right_neighbour_rolls_over() -> None:
    composed = meter_real.displays(crops_of_one_meter(), 300, seed=7, counter=True)
    assert len(composed) == 300
    for display in composed:
        assert 5 <= len(display) <= 8
        for left, right in pairwise(display):
            assert left.tenths is not None
            assert right.tenths is not None
            moved = left.tenths % 10
            if right.tenths > 90:  # the neighbour rolls over 9 -> 0: this drum may follow
                assert moved <= right.tenths % 10, [c.tenths for c in display]
            else:
                assert moved == 0, [c.tenths for c in display]


def test_independent_displays_repeat_with_their_seed_and_do_show_impossible_counters() -> None:
    meters = crops_of_one_meter()
    again = meter_real.displays(meters, 50, seed=7)
    assert [[c.tenths for c in d] for d in again] == [
        [c.tenths for c in d] for d in meter_real.displays(meters, 50, seed=7)
    ]
    impossible = sum(
        any(
            left.tenths is not None
            and right.tenths is not None
            and left.tenths % 10
            and right.tenths <= 90
            for left, right in pairwise(d)
        )
        for d in again
    )
    assert impossible > 25  # the reason the counter-composed set exists


def test_the_last_drum_of_a_counter_display_stands_anywhere() -> None:
    last = {
        d[-1].tenths for d in meter_real.displays(crops_of_one_meter(), 400, seed=3, counter=True)
    }
    assert any(t is not None and t % 10 for t in last)

"""The confidence thresholds a trained reader ships with publish only what it reads right.

``tools/train_meter.py`` fits them on validation readings: (lowest digit confidence, read
right), and for the second threshold whether the second reader confirmed the reading.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

from meter_real import Crop  # noqa: E402
from train_meter import (  # noqa: E402
    confirm_threshold_of,
    raised_to_floor,
    split_meters,
    threshold_of,
    wrong_rate_bound,
)


def readings(right: int, wrong_at: dict[float, int]) -> list[tuple[float, bool]]:
    """``right`` right readings spread over 0.95-0.999, and wrong ones at the given confidences."""
    scored = [(0.999 - 0.049 * i / right, True) for i in range(right)]
    scored += [(confidence, False) for confidence, count in wrong_at.items() for _ in range(count)]
    return scored


def test_the_share_rule_publishes_down_to_the_last_confidence_within_the_target() -> None:
    scored = readings(1000, {0.9: 1, 0.8: 5})
    threshold, published = threshold_of(scored, target=0.002)
    assert threshold == pytest.approx(0.9)  # one wrong of the 1001 above 0.8: 0.1%
    assert published == sum(confidence >= 0.9 for confidence, _ in scored)


def test_the_bound_rule_does_not_trust_a_threshold_resting_on_few_readings() -> None:
    few = readings(200, {})
    assert threshold_of(few, target=0.005) == (pytest.approx(0.950245), 200)
    threshold, published = threshold_of(few, target=0.005, bound=0.95)
    assert (threshold, published) == (1.0, 0)  # 0 wrong of 200 may still be 1.5% wrong


def test_the_bound_rule_stops_above_a_wrong_reading_the_share_rule_lets_through() -> None:
    scored = readings(1000, {0.9: 2})  # 2 wrong of 1002: a share of 0.2%, a bound of 0.63%
    share_threshold, _ = threshold_of(scored, target=0.002)
    bound_threshold, bound_published = threshold_of(scored, target=0.005, bound=0.95)
    assert share_threshold == pytest.approx(0.9)
    assert bound_threshold > 0.95
    assert bound_published == 1000  # 0 wrong of 1000: a bound of 0.3%


def test_readings_at_one_confidence_are_published_together_or_not_at_all() -> None:
    scored = [(0.99, True)] * 700 + [(0.95, True)] * 300 + [(0.95, False)] * 3
    threshold, published = threshold_of(scored, target=0.002)
    assert (threshold, published) == (0.99, 700)


@pytest.mark.parametrize(
    ("wrong", "readings_seen", "expected"),
    # scipy.stats.beta.ppf(0.95, wrong + 1, readings - wrong), the textbook form
    [(0, 600, 0.004980), (0, 100, 0.029513), (1, 1000, 0.004735), (5, 50, 0.198833)],
)
def test_the_bound_is_clopper_pearsons(wrong: int, readings_seen: int, expected: float) -> None:
    assert wrong_rate_bound(wrong, readings_seen, 0.95) == pytest.approx(expected, abs=2e-6)


def test_confirmed_readings_below_the_threshold_are_published_down_to_their_own_threshold() -> None:
    sure = [(0.99, True, False)] * 1000 + [(0.99, False, False)]  # 0.1% wrong: at the target
    below = [(0.8, True, True)] * 500 + [(0.6, False, True)] * 3 + [(0.7, True, False)]
    confirm, published = confirm_threshold_of(sure + below, 0.95, target=0.002)
    assert confirm == pytest.approx(0.8)  # 0.6 would make it 4 wrong of 1504
    assert published == 1501  # the unconfirmed 0.7 stays held back


def test_no_confirm_threshold_where_confirmed_readings_are_mostly_wrong() -> None:
    sure = [(0.99, True, False)] * 100
    below = [(0.8, False, True), (0.7, True, True)]
    assert confirm_threshold_of(sure + below, 0.95, target=0.002) == (None, 100)


def crops_of(meters: dict[str, int]) -> dict[str, list[Crop]]:
    return {
        name: [Crop(Path(f"{name}/{i}.jpg"), name, i % 100) for i in range(count)]
        for name, count in meters.items()
    }


METERS = {"gas/a": 400, "water/b": 100, "water/c": 60, "power/d": 40, "lcd/lcd_pb": 80}


def test_with_no_whole_meter_held_back_every_meter_is_fitted_and_each_keeps_a_share_back() -> None:
    fit, val = split_meters(crops_of(METERS), seed=1, whole_share=0)
    assert set(fit) == set(METERS) == set(val)
    for name, count in METERS.items():
        assert len(val[name]) == round(count * 0.15)
        assert not {c.path for c in val[name]} & {c.path for c in fit[name]}


def test_whole_drum_meters_are_held_back_up_to_their_share_and_never_the_lcd() -> None:
    fit, val = split_meters(crops_of(METERS), seed=1, whole_share=0.4)
    whole = set(val) - set(fit)
    assert whole  # some drum meter is seen by validation only
    assert "lcd/lcd_pb" in fit
    assert sum(METERS[name] for name in whole) <= 0.4 * sum(METERS.values())


def test_a_threshold_calibrated_below_its_floor_is_raised_to_it() -> None:
    assert raised_to_floor(0.90, 0.949, "min_confidence") == 0.949
    assert raised_to_floor(0.97, 0.949, "min_confidence") == 0.97
    assert raised_to_floor(0.90, None, "min_confidence") == 0.90

"""Plausibility: which meter readings are published, and how a rejection can never stick."""

from __future__ import annotations

import pytest

from bridge.config import MeterConfig
from bridge.meter.plausibility import (
    AGREEING_READINGS,
    MIN_CONFIDENCE,
    MeterState,
    judge,
    set_by_hand,
)

GAS = MeterConfig(digits=8, decimals=3, roi=(0, 0, 10, 10), max_rate=6.0)  # 6 m³/h at most
SURE = [0.99] * 8
HOUR = 3600.0


def started_at(value: float, at: float = 0.0) -> MeterState:
    state = MeterState()
    assert judge(GAS, state, value, SURE, at).accepted
    return state


def test_the_first_reading_is_published_and_becomes_the_previous_value() -> None:
    state = MeterState()
    verdict = judge(GAS, state, 1234.567, SURE, 100.0)
    assert verdict.accepted
    assert verdict.warning is None
    assert (state.value, state.at) == (1234.567, 100.0)


def test_a_normal_rise_is_published() -> None:
    state = started_at(1234.567)
    assert judge(GAS, state, 1236.0, SURE, HOUR).accepted
    assert state.value == 1236.0


def test_a_reading_below_the_previous_one_is_held_back_and_says_why() -> None:
    state = started_at(1234.567)
    verdict = judge(GAS, state, 1230.001, SURE, HOUR)
    assert not verdict.accepted
    assert verdict.code == "meter_decreased"
    assert "1230.001" in verdict.detail
    assert "1234.567" in verdict.detail
    assert state.value == 1234.567  # the previous value stays


def test_a_decreasing_meter_may_decrease_when_allowed() -> None:
    meter = MeterConfig(digits=6, decimals=1, roi=(0, 0, 10, 10), allow_decrease=True)
    state = MeterState()
    judge(meter, state, 500.0, [0.99] * 6, 0.0)
    assert judge(meter, state, 499.5, [0.99] * 6, HOUR).accepted
    assert state.value == 499.5


def test_a_decrease_is_never_accepted_by_repetition() -> None:
    state = started_at(1234.567)
    for minute in range(1, 10):
        assert judge(GAS, state, 1230.0, SURE, minute * 60).code == "meter_decreased"
    assert state.value == 1234.567


def test_rising_faster_than_max_rate_is_held_back() -> None:
    state = started_at(1000.0)
    verdict = judge(GAS, state, 1100.0, SURE, HOUR)  # 100 m³ in an hour, 6 allowed
    assert not verdict.accepted
    assert verdict.code == "meter_rate"
    assert "max_rate 6.0/h" in verdict.detail
    assert state.value == 1000.0


def test_one_step_of_the_last_digit_is_never_too_fast() -> None:
    state = started_at(1000.0, at=0.0)
    assert judge(GAS, state, 1000.001, SURE, 1.0).accepted


def test_without_max_rate_any_rise_is_published() -> None:
    meter = MeterConfig(digits=8, decimals=3, roi=(0, 0, 10, 10))
    state = MeterState()
    judge(meter, state, 1.0, SURE, 0.0)
    assert judge(meter, state, 99999.0, SURE, 1.0).accepted


def test_consecutive_agreeing_readings_that_only_fail_the_rate_are_accepted_with_a_warning() -> (
    None
):
    # The meter was offline for a while (or was set wrong): the real value is far above.
    state = started_at(1000.0)
    verdicts = [judge(GAS, state, 1500.0 + i * 0.01, SURE, HOUR + i * 60) for i in range(3)]
    assert [v.accepted for v in verdicts] == [False] * (AGREEING_READINGS - 1) + [True]
    assert verdicts[-1].warning is not None
    assert "agreed" in verdicts[-1].warning
    assert state.value == 1500.02
    assert state.pending == []


def test_readings_that_disagree_with_each_other_do_not_add_up() -> None:
    # A flickering misread (one digit jumping around) must not be accepted by repetition.
    state = started_at(1000.0)
    for i, value in enumerate([1900.0, 1500.0, 1900.0, 1500.0, 1900.0, 1500.0]):
        verdict = judge(GAS, state, value, SURE, HOUR + i * 60)
        assert not verdict.accepted
        assert verdict.code == "meter_rate"
    assert state.value == 1000.0


def test_a_plausible_reading_clears_the_readings_pending_on_the_rate() -> None:
    state = started_at(1000.0)
    judge(GAS, state, 1500.0, SURE, HOUR)
    assert len(state.pending) == 1
    assert judge(GAS, state, 1001.0, SURE, HOUR + 60).accepted
    assert state.pending == []


def test_a_low_confidence_digit_is_not_published_and_names_the_digit() -> None:
    state = started_at(1000.0)
    unsure = [*SURE[:6], MIN_CONFIDENCE / 2, 0.99]
    verdict = judge(GAS, state, 1000.5, unsure, HOUR)
    assert not verdict.accepted
    assert verdict.code == "meter_low_confidence"
    assert "digit 7" in verdict.detail
    assert state.value == 1000.0


def test_setting_the_value_by_hand_unblocks_a_replaced_meter() -> None:
    state = started_at(98765.0)
    assert judge(GAS, state, 12.0, SURE, HOUR).code == "meter_decreased"
    set_by_hand(state, 11.95, HOUR + 1)
    assert judge(GAS, state, 12.0, SURE, HOUR + 60).accepted
    assert state.value == 12.0


def test_the_state_survives_its_json_form() -> None:
    state = started_at(1000.0)
    judge(GAS, state, 1500.0, SURE, HOUR)
    again = MeterState.from_json(state.to_json())
    assert again == state


@pytest.mark.parametrize(
    "garbage", [None, [], "x", {"value": "12"}, {"value": True, "at": 3, "pending": [[1]]}]
)
def test_a_damaged_state_reads_as_no_previous_value(garbage: object) -> None:
    state = MeterState.from_json(garbage)
    assert state.value is None
    assert state.pending == []

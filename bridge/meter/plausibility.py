"""Whether a meter reading may be published: the rules, as pure functions of state and time.

A reading is held back (and an error event says why) when

* a digit was read with low confidence (``meter_low_confidence``),
* it is below the previous value and the meter may not decrease (``meter_decreased``),
* it rose faster than ``max_rate`` units per hour since the previous value (``meter_rate``).

So that one wrong value can never freeze the meter, ``AGREEING_READINGS`` consecutive readings
that fail only the rate check and agree with each other (each step neither decreasing nor
faster than ``max_rate``) are accepted, with a warning.  A decrease is only ever accepted by
setting the value by hand (a replaced meter), never by repetition: a misread digit repeats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.config import MeterConfig

#: Below this probability a digit does not count as read, unless the recogniser's weights
#: carry their own calibrated threshold (``DigitReader.min_confidence``).
MIN_CONFIDENCE = 0.55
#: This many consecutive readings that agree and fail only the rate check are accepted.
AGREEING_READINGS = 3


@dataclass
class MeterState:
    """What one meter remembers between readings (persisted by ``bridge.meter.state``)."""

    value: float | None = None
    #: Unix time of ``value``.
    at: float | None = None
    #: Consecutive readings held back by the rate check only: (value, unix time).
    pending: list[tuple[float, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON form kept in the state file."""
        return {"value": self.value, "at": self.at, "pending": [list(p) for p in self.pending]}

    @classmethod
    def from_json(cls, data: Any) -> MeterState:
        """Read what ``to_json`` wrote; anything malformed gives an empty state."""
        if not isinstance(data, dict):
            return cls()
        value: Any = data.get("value")
        at: Any = data.get("at")
        pending = [
            (float(p[0]), float(p[1]))
            for p in data.get("pending") or []
            if isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p)
        ]
        return cls(
            value=float(value) if _is_number(value) else None,
            at=float(at) if _is_number(at) else None,
            pending=pending,
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Verdict:
    """The outcome for one reading: publish it (perhaps with a warning) or say why not."""

    accepted: bool
    code: str | None = None
    detail: str = ""
    warning: str | None = None


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _too_fast(meter: MeterConfig, start: float, start_at: float, end: float, end_at: float) -> bool:
    """Did the value rise faster than ``max_rate``?  One step of the last digit is free."""
    if meter.max_rate is None:
        return False
    hours = max(0.0, end_at - start_at) / 3600
    step = 10.0**-meter.decimals
    return end - start > meter.max_rate * hours + step + 1e-9


def judge(
    meter: MeterConfig,
    state: MeterState,
    value: float,
    confidence: list[float],
    now: float,
    *,
    min_confidence: float = MIN_CONFIDENCE,
) -> Verdict:
    """Decide about ``value`` read at ``now`` and update ``state`` accordingly.

    A digit whose confidence is below ``min_confidence`` holds the reading back.

    ``state`` changes only as the verdict says: an accepted value becomes the previous one; a
    reading held back by the rate check joins ``pending``; any other rejection leaves it alone.
    """
    low = [i for i, c in enumerate(confidence) if c < min_confidence]
    if low:
        positions = ", ".join(str(i + 1) for i in low)
        return Verdict(
            False,
            "meter_low_confidence",
            f"read {_fmt(value, meter.decimals)}, but digit {positions} (from the left) "
            f"is uncertain (below {min_confidence:.0%}); not published",
        )
    previous = state.value
    if previous is None or state.at is None:
        _accept(state, value, now)
        return Verdict(True)
    if value < previous and not meter.allow_decrease:
        return Verdict(
            False,
            "meter_decreased",
            f"read {_fmt(value, meter.decimals)}, below the previous value "
            f"{_fmt(previous, meter.decimals)}; not published (allow_decrease is off)",
        )
    if not _too_fast(meter, previous, state.at, value, now):
        _accept(state, value, now)
        return Verdict(True)
    # Too fast.  Accept only when enough consecutive rate-failing readings agree.
    if state.pending:
        last_value, last_at = state.pending[-1]
        agrees = value >= last_value and not _too_fast(meter, last_value, last_at, value, now)
        if not agrees:
            state.pending.clear()
    state.pending.append((value, now))
    hours = max(0.0, now - state.at) / 3600
    if len(state.pending) >= AGREEING_READINGS:
        count = len(state.pending)
        _accept(state, value, now)
        return Verdict(
            True,
            warning=f"accepted {_fmt(value, meter.decimals)} after {count} consecutive "
            f"readings agreed, although it rose faster than max_rate {meter.max_rate}/h "
            f"from {_fmt(previous, meter.decimals)}",
        )
    return Verdict(
        False,
        "meter_rate",
        f"read {_fmt(value, meter.decimals)}, {value - previous:.{meter.decimals}f} above the "
        f"previous value {_fmt(previous, meter.decimals)} in {hours * 60:.1f} min: faster than "
        f"max_rate {meter.max_rate}/h; not published ({len(state.pending)} of "
        f"{AGREEING_READINGS} agreeing readings to accept it anyway)",
    )


def _accept(state: MeterState, value: float, now: float) -> None:
    state.value = value
    state.at = now
    state.pending.clear()


def set_by_hand(state: MeterState, value: float, now: float) -> None:
    """A person says what the meter shows: it becomes the previous value, nothing is pending."""
    _accept(state, value, now)

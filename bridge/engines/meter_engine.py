"""Meter displays: per-digit recognition in the configured region, then plausibility checks.

The region (``roi`` or four ``corners``, optional ``rotation``) is warped to a strip with one
cell per digit; a small CNN of our own (``bridge/meter/digits.pt``, trained on real camera crops
and synthetic displays by ``tools/train_meter.py``) reads each cell's position in tenths of a
digit, so a drum mid-roll is read, and ``bridge.meter.carry`` decides the digits from the
positions.  In the bridge, a reading that is implausible against the previous value, or that
has a digit below the weights' calibrated confidence, is not published; an error event carries
it (``raw``, ``value``) and says why.  A reading somewhat below that confidence is published
when a second reader, PP-OCR (``bridge.meter.second_reader``), reads the same digits.
``analyze`` on the command line only reads: no state, no plausibility.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from bridge.config import MeterConfig, ModelConfig
from bridge.engines.base import Capabilities, Engine, EngineOutput, JobOptions, register
from bridge.errors import ModelError
from bridge.meter.annotate import DialMark, draw_reading, encode
from bridge.meter.carry import BINS, point_position, read_cells
from bridge.meter.dials import DialError, combine, dial_circle, read_dial
from bridge.meter.geometry import INPUT_SHAPE, Quad, RegionError, quad_cells, region_quad
from bridge.meter.plausibility import MIN_CONFIDENCE, judge, set_by_hand
from bridge.meter.refine import candidate_quads
from bridge.meter.second_reader import SecondReader, agrees, confirmable
from bridge.meter.state import StateStore

_LOGGER = logging.getLogger(__name__)
#: Each region is read three times, shifted by this many strip pixels (an eighth of a digit),
#: and the digit probabilities averaged: a region drawn slightly off still reads right.
SHIFTS = (-3, 0, 3)
#: A region in which no digit reaches this confidence shows no display (a wall, a lens cap):
#: ``meter_unreadable`` rather than a low-confidence guess.
UNREADABLE_BELOW = 0.3
#: How much surer (mean log-probability per digit) a refitted region must be to replace the
#: configured one.
REFIT_MARGIN = 0.02


class RegionReading(NamedTuple):
    """What the digit networks read in the region they were surest of."""

    quad: Quad
    labels: list[int]
    confidence: list[float]
    probs: np.ndarray  # per cell: the positions' probabilities, then blank's
    members: np.ndarray  # the same, per network: (networks, cells, classes)

    def positions(self) -> list[float]:
        """Where each cell stands, in digits (0 <= p < 10)."""
        return [point_position(cell[:BINS]) for cell in self.probs]

    def member_labels(self) -> list[list[int]]:
        """The digits each network alone reads."""
        return [read_cells(probs)[0] for probs in self.members]


class MeterError(ModelError):
    """A reading that is not published; ``extra`` (raw, value) goes into the error event."""

    def __init__(
        self, code: str, detail: str, model: str = "", extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(code, detail, model)
        self.extra = extra or {}


def read_dials(image: Image.Image, meter: MeterConfig) -> list[DialMark]:
    """Each configured dial's reading, or why it has none (its ``reading`` is then ``None``)."""
    marks = []
    for dial in meter.dials:
        cx, cy, radius = dial_circle(dial)
        try:
            marks.append(DialMark((cx, cy), radius, dial.factor, read_dial(image, dial)))
        except DialError as err:
            marks.append(DialMark((cx, cy), radius, dial.factor, None, str(err)))
    return marks


def dial_fields(marks: list[DialMark], digits: list[int]) -> list[dict[str, Any]]:
    """The result's ``dials``: each dial's factor, pointer position (0-10), digit, confidence."""
    fields: list[dict[str, Any]] = []
    for index, mark in enumerate(marks):
        reading = mark.reading
        fields.append(
            {
                "factor": mark.factor,
                "reading": None if reading is None else round(reading.value, 2),
                "digit": digits[index] if index < len(digits) else None,
                "confidence": 0.0 if reading is None else reading.confidence,
            }
        )
    return fields


def _picture(
    image: Image.Image,
    quad: Quad,
    labels: list[int],
    confidence: list[float],
    marks: list[DialMark],
    *,
    min_confidence: float,
) -> bytes:
    """The annotated meter picture as JPEG (run only when it is published)."""
    return encode(
        draw_reading(image, quad, labels, confidence, marks, min_confidence=min_confidence)
    )


def format_reading(labels: list[int], decimals: int) -> tuple[str, str, float]:
    """(raw digits, text with the decimal point, value) from per-digit classes."""
    raw = "".join("0" if d > 9 else str(d) for d in labels)
    if decimals:
        text = f"{raw[:-decimals]}.{raw[-decimals:]}"
        value = round(int(raw) / 10**decimals, decimals)
    else:
        text, value = raw, float(int(raw))
    return raw, text, value


@register("meter")
class MeterEngine(Engine):
    """Reads each camera's configured digits; judges them when state is attached."""

    input_size = None  # full-resolution frames: the region is small
    capabilities = Capabilities(keeps_state=True, settable_value=True)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.reader: Any = None
        self.second: SecondReader | None = None
        self.store: StateStore | None = None
        self._lock = threading.Lock()
        self.clock = time.time

    @property
    def label(self) -> str:
        """``meter`` unless the configuration names the model otherwise."""
        return self.config.model or "meter"

    def load(self) -> None:
        """Load the digit recogniser's weights (``model`` may name another weights file)."""
        try:
            from bridge.meter.recognizer import WEIGHTS, DigitReader

            weights = Path(self.config.model) if self.config.model else WEIGHTS
            # threads only when configured: torch.set_num_threads is process-wide, and the
            # caption model in the same process should keep its own setting.
            self.reader = DigitReader(weights, threads=self.config.threads)
            self.reader.read(np.zeros((1, *INPUT_SHAPE), np.float32))  # warm up
        except Exception as err:
            raise ModelError(
                "model_unavailable", f"cannot load the meter digit weights ({err})", self.label
            ) from err
        if self.reader.confirm_confidence is None:
            return
        try:
            self.second = SecondReader(self.config.threads)
        except Exception as err:  # noqa: BLE001 - the networks read on without it
            _LOGGER.warning(
                "meter: no second reader (%s); readings below %.0f%% confidence are held back",
                err,
                100 * self.min_confidence,
            )

    def threshold(self, confirmed: bool) -> float:
        """The lowest digit confidence published: lower where the second reader agreed."""
        if confirmed and self.reader.confirm_confidence is not None:
            return float(self.reader.confirm_confidence)
        return self.min_confidence

    @property
    def min_confidence(self) -> float:
        """Below this a digit is not read: the weights' calibrated threshold, if they have one."""
        return float(getattr(self.reader, "min_confidence", MIN_CONFIDENCE))

    def attach_state(self, path: Path | None) -> None:
        """Turn on plausibility, remembering previous values in ``path`` (None: memory only)."""
        self.store = StateStore(path)

    def set_value(self, camera: str, value: float) -> None:
        """Set a meter's previous value by hand (a replaced meter, a stuck rejection)."""
        if self.store is None:
            self.store = StateStore(None)
        with self._lock:
            set_by_hand(self.store.get(camera), value, self.clock())
            self.store.save()

    def run_batch(
        self, images: list[Image.Image], options: list[JobOptions]
    ) -> list[EngineOutput | ModelError]:
        """Read each frame's region; one result or one typed error per frame."""
        results: list[EngineOutput | ModelError] = []
        for image, option in zip(images, options, strict=True):
            try:
                results.append(self._read(image, option))
            except ModelError as err:
                results.append(err)
            except Exception as err:  # noqa: BLE001 - one bad frame must not stop the others
                _LOGGER.warning("meter reading failed: %s", err)
                results.append(ModelError("model_failed", f"meter failed: {err}", self.label))
        return results

    def _read(self, image: Image.Image, option: JobOptions) -> EngineOutput:
        meter = option.meter
        if meter is None:
            raise ModelError(
                "meter_unreadable", "no meter settings (roi, digits) for this camera", self.label
            )
        try:
            reading = self._read_region(image, meter)
        except RegionError as err:
            raise ModelError("meter_unreadable", str(err), self.label) from err
        labels = reading.labels
        confidence = [round(p, 3) for p in reading.confidence]
        # judged on the confidences as published, like the thresholds were calibrated
        confirmed = self.confirmed(image, reading._replace(confidence=confidence))
        marks = read_dials(image, meter)
        preview = partial(
            _picture,
            image,
            reading.quad,
            labels,
            confidence,
            marks,
            min_confidence=self.threshold(confirmed),
        )
        try:
            return self._reading(
                meter,
                option.camera,
                labels=labels,
                confidence=confidence,
                marks=marks,
                preview=preview,
                confirmed=confirmed,
            )
        except MeterError as err:
            err.preview = preview
            raise

    def _reading(
        self,
        meter: MeterConfig,
        camera: str,
        *,
        labels: list[int],
        confidence: list[float],
        marks: list[DialMark],
        preview: Callable[[], bytes],
        confirmed: bool,
    ) -> EngineOutput:
        """The published reading of digits (and dials) read, or a ``MeterError`` saying why not."""
        if all(d > 9 or p < UNREADABLE_BELOW for d, p in zip(labels, confidence, strict=True)):
            raise MeterError(
                "meter_unreadable",
                "no digits could be read in the region",
                self.label,
                {"digit_confidence": confidence},
            )
        readings = [m.reading for m in marks if m.reading is not None]
        if len(readings) < len(marks):
            index, mark = next((i, m) for i, m in enumerate(marks) if m.reading is None)
            raise MeterError(
                "meter_unreadable",
                f"dial {index + 1} (x{mark.factor:g}): {mark.problem}; not published",
                self.label,
                {"digit_confidence": confidence, "dials": dial_fields(marks, [])},
            )
        if marks:
            combined = combine(labels, meter.decimals, readings, roll_start=meter.roll_start)
            raw, text, value = combined.raw, combined.text, combined.value
        else:
            raw, text, value = format_reading(labels, meter.decimals)
        extra: dict[str, Any] = {"value": value, "raw": raw, "digit_confidence": confidence}
        if confirmed:
            extra["confirmed_by"] = "ocr"
        if marks:
            extra["dials"] = dial_fields(marks, combined.dial_digits)
        if self.store is not None and camera:
            warning = self._judge(
                camera,
                meter=meter,
                value=value,
                raw=raw,
                confidence=confidence,
                confirmed=confirmed,
            )
            if warning:
                extra["warning"] = warning
        return EngineOutput(text=text, extra=extra, preview=preview)

    def confirmed(self, image: Image.Image, reading: RegionReading) -> bool:
        """Whether the second reader lets a reading through that the networks hold back.

        Only where the networks are not far from sure, each of them reads the digits it is
        unsure of alike, that reader can vouch for them, and it reads the same digits.
        """
        low = min(reading.confidence, default=0.0)
        floor = self.reader.confirm_confidence
        if self.second is None or floor is None or not floor <= low < self.min_confidence:
            return False
        if not confirmable(
            reading.labels,
            reading.confidence,
            reading.positions(),
            reading.member_labels(),
            self.min_confidence,
        ):
            return False
        try:
            return agrees(self.second.digits(image, reading.quad), reading.labels)
        except Exception as err:  # noqa: BLE001 - without it the reading is held back
            _LOGGER.warning("meter: the second reader failed: %s", err)
            return False

    def _read_region(self, image: Image.Image, meter: MeterConfig) -> RegionReading:
        """Digits and their probabilities in the configured region or a tighter fit of it.

        A region drawn loosely around the digits is also read fitted to their ink
        (``bridge.meter.refine``); the reading the recogniser is most sure of is kept, the
        configured region winning ties.
        """
        quad = region_quad(meter, image.size)
        best: tuple[float, RegionReading] | None = None
        for candidate in (quad, *candidate_quads(image, quad, meter.digits)):
            cells = quad_cells(image, candidate, meter.digits, SHIFTS)
            probs, members = self.reader.read_by_member(cells, len(SHIFTS))
            labels, confidence = read_cells(probs)
            score = float(np.mean(np.log(np.maximum(confidence, 1e-6))))
            if best is None or score > best[0] + REFIT_MARGIN:
                best = (score, RegionReading(candidate, labels, confidence, probs, members))
        assert best is not None
        return best[1]

    def _judge(
        self,
        camera: str,
        *,
        meter: MeterConfig,
        value: float,
        raw: str,
        confidence: list[float],
        confirmed: bool,
    ) -> str | None:
        assert self.store is not None
        with self._lock:
            state = self.store.get(camera)
            before = state.to_json()
            verdict = judge(
                meter,
                state,
                value,
                confidence,
                self.clock(),
                min_confidence=self.threshold(confirmed),
            )
            if state.to_json() != before:
                self.store.save()
        if not verdict.accepted:
            raise MeterError(
                verdict.code or "meter_unreadable",
                verdict.detail,
                self.label,
                {"raw": raw, "value": value},
            )
        if verdict.warning:
            _LOGGER.warning("meter %s: %s", camera, verdict.warning)
        return verdict.warning

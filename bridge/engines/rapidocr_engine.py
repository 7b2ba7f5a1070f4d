"""Whole-scene OCR with RapidOCR (PP-OCR weights as ONNX, shipped inside its wheel).

It finds text lines anywhere in the frame and reads each, so it suits signs, labels and
screens; it works offline with no model download.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PIL import Image

from bridge.config import ModelConfig
from bridge.engines.base import Engine, EngineOutput, JobOptions, register
from bridge.errors import ModelError

_LOGGER = logging.getLogger(__name__)
MAX_SIDE = 2048


@register("rapidocr")
class RapidOcrEngine(Engine):
    """Scene text: every line with its box and score, joined top to bottom as ``text``."""

    input_size = MAX_SIDE

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.engine: Any = None

    @property
    def label(self) -> str:
        """``rapidocr`` unless the configuration names it otherwise."""
        return self.config.model or "rapidocr"

    def load(self) -> None:
        """Create the ONNX sessions (weights ship in the wheel) and warm them up."""
        try:
            from rapidocr import RapidOCR

            params: dict[str, Any] = {}
            if self.config.threads:
                params["EngineConfig.onnxruntime.intra_op_num_threads"] = self.config.threads
            self.engine = RapidOCR(params=params) if params else RapidOCR()
            # RapidOCR configures its own INFO logger on construction; keep it to real problems.
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        except Exception as err:
            raise ModelError(
                "model_unavailable",
                f"cannot load rapidocr ({err}); install it with `pip install rapidocr onnxruntime`",
                self.label,
            ) from err
        self.run_batch([Image.new("RGB", (64, 32), (255, 255, 255))], [JobOptions()])

    def run_batch(
        self, images: list[Image.Image], options: list[JobOptions]
    ) -> list[EngineOutput | ModelError]:
        """Read each image on its own; RapidOCR has no batch API and sizes differ anyway."""
        results: list[EngineOutput | ModelError] = []
        for image in images:
            try:
                results.append(self._read(image))
            except Exception as err:  # noqa: BLE001 - one bad frame must not stop the others
                _LOGGER.warning("rapidocr failed: %s", err)
                results.append(ModelError("model_failed", f"rapidocr failed: {err}", self.label))
        return results

    def _read(self, image: Image.Image) -> EngineOutput:
        scale = 1.0
        if max(image.size) > MAX_SIDE:
            scale = max(image.size) / MAX_SIDE
            image = image.resize((round(image.width / scale), round(image.height / scale)))
        # RapidOCR's ndarray input is BGR, as OpenCV's.
        output = self.engine(np.ascontiguousarray(np.asarray(image)[:, :, ::-1]))
        texts = output.txts or ()
        boxes = output.boxes if output.boxes is not None else []
        scores = output.scores or ()
        lines = [
            {
                "text": str(text),
                "score": round(float(score), 4),
                "box": [[round(float(x) * scale), round(float(y) * scale)] for x, y in box],
            }
            for text, score, box in zip(texts, scores, boxes, strict=False)
        ]
        rows = reading_order(lines)
        ordered = [line for row in rows for line in row]
        text = "\n".join(" ".join(str(line["text"]) for line in row) for row in rows)
        return EngineOutput(text=text, extra={"lines": ordered})


def reading_order(lines: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Group boxes into rows (vertical centres within half a line height), left to right.

    Sorting by the top-left corner alone breaks on a sign photographed a few degrees off level:
    the right half of "NO PARKING" then starts higher and comes first.
    """

    def centre_y(line: dict[str, Any]) -> float:
        return float(sum(point[1] for point in line["box"])) / 4

    def height(line: dict[str, Any]) -> float:
        ys = [float(point[1]) for point in line["box"]]
        return max(max(ys) - min(ys), 1.0)

    rows: list[list[dict[str, Any]]] = []
    for line in sorted(lines, key=centre_y):
        if rows:
            row = rows[-1]
            row_centre = sum(centre_y(item) for item in row) / len(row)
            if abs(centre_y(line) - row_centre) < 0.5 * min(height(line), height(row[0])):
                row.append(line)
                continue
        rows.append([line])
    return [sorted(row, key=lambda item: min(point[0] for point in item["box"])) for row in rows]

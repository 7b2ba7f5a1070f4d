"""Find faces in a picture and describe each as 128 numbers, with dlib and nothing else.

HOG detection with one upsampling (faces down to ~40 px on a doorbell frame), the 5-point landmark
model to align each face, and dlib's ResNet descriptor.  The 68-point landmark model is never
loaded: its training data forbids commercial use (docs/faces.md), and the ``face_recognition``
wrapper is not used because it loads that model at import.  The model files are installed by
``tools/install_face_models.py``; nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bridge.errors import ModelError

DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
LANDMARKS_FILE = "shape_predictor_5_face_landmarks.dat"
#: Overrides the default model folder (the environment's ``share/image-to-text/faces``).
MODELS_ENV = "IMAGE_TO_TEXT_FACE_MODELS"
LABEL = "dlib-resnet-v1"

Box = tuple[int, int, int, int]


def default_model_dir() -> Path:
    """Where the install step put the model files: ``$IMAGE_TO_TEXT_FACE_MODELS`` or the venv."""
    configured = os.environ.get(MODELS_ENV)
    if configured:
        return Path(configured)
    return Path(sys.prefix) / "share" / "image-to-text" / "faces"


@dataclass(frozen=True)
class FoundFace:
    """One detected face: where it is (x, y, w, h in the picture's pixels) and its descriptor."""

    box: Box
    descriptor: np.ndarray[Any, np.dtype[np.float64]]

    @property
    def size(self) -> int:
        """The face's size in pixels: the smaller side of its box."""
        return min(self.box[2], self.box[3])


class FaceDescriber:
    """The loaded dlib models; one call finds and describes every face of a picture."""

    def __init__(self, model_dir: Path | None = None, upsample: int = 1) -> None:
        directory = model_dir or default_model_dir()
        missing = [f for f in (DESCRIPTOR_FILE, LANDMARKS_FILE) if not (directory / f).is_file()]
        if missing:
            raise ModelError(
                "model_unavailable",
                f"face model files missing in {directory}: {', '.join(missing)} "
                "(install them with: python tools/install_face_models.py)",
                LABEL,
            )
        try:
            import dlib  # type: ignore[import-untyped]  # no stubs or py.typed
        except ImportError as err:
            raise ModelError(
                "model_unavailable", f"dlib is not installed ({err}); pip install dlib-bin", LABEL
            ) from err
        self._detector = dlib.get_frontal_face_detector()
        self._landmarks = dlib.shape_predictor(str(directory / LANDMARKS_FILE))
        self._encoder = dlib.face_recognition_model_v1(str(directory / DESCRIPTOR_FILE))
        self._dlib = dlib
        self.upsample = upsample

    def find(
        self, image: Image.Image, max_side: int | None = None, jitters: int = 0
    ) -> list[FoundFace]:
        """Every face dlib finds, left to right, boxes in the given picture's pixels.

        ``jitters``: describe each face this many more times, slightly shifted and scaled, and
        average (enrolment only: it costs that many descriptor runs).
        """
        scale = 1.0
        if max_side is not None and max(image.size) > max_side:
            scale = max(image.size) / max_side
            size = (round(image.width / scale), round(image.height / scale))
            image = image.resize(size, Image.Resampling.BILINEAR)
        pixels = np.asarray(image.convert("RGB"))
        found = []
        for rect in self._detector(pixels, self.upsample):
            shape = self._landmarks(pixels, rect)
            descriptor = np.asarray(self._encoder.compute_face_descriptor(pixels, shape, jitters))
            left, top = max(0, rect.left()), max(0, rect.top())
            right = min(pixels.shape[1], rect.right() + 1)
            bottom = min(pixels.shape[0], rect.bottom() + 1)
            box = (
                round(left * scale),
                round(top * scale),
                round((right - left) * scale),
                round((bottom - top) * scale),
            )
            found.append(FoundFace(box, descriptor.astype(np.float64)))
        found.sort(key=lambda face: face.box[0])
        return found

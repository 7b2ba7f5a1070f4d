"""The ``faces`` task: who is in the frame, named from the people enrolled with ``faces add``.

Result fields beyond ``text``: ``names`` (enrolled names found, and ``unknown`` once per
stranger) and ``faces`` (``[{name, distance, box: [x, y, w, h]}]``), never face crops.  The
database file is re-read when another process (the ``faces`` CLI) changed it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PIL import Image

from bridge.config import FacesConfig, ModelConfig
from bridge.engines.base import Capabilities, Engine, EngineOutput, JobOptions, register
from bridge.errors import ModelError
from bridge.faces.db import FaceDb, FaceDbError
from bridge.faces.describer import LABEL, FaceDescriber
from bridge.faces.enrol import EnrolReport, enrol_photos
from bridge.faces.recognizer import Recognizer, describe_people


@register("dlib")
class FacesEngine(Engine):
    """dlib's HOG detector, 5-point alignment and ResNet descriptors, matched to the database."""

    input_size = None  # full frames: doorbell faces are small, and downscaling misses them
    #: Enrolment over MQTT (``<base>/faces/...``) goes to the engine that names the faces.
    capabilities = Capabilities(enrols_faces=True)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        self.settings = config.faces or FacesConfig()
        self.recognizer: Recognizer | None = None
        #: One dlib call at a time: frames (the model thread) and enrolments (MQTT) share it.
        self._lock = threading.Lock()

    @property
    def label(self) -> str:
        """The descriptor model's name, unless the configuration names it otherwise."""
        return self.config.model or LABEL

    def load(self) -> None:
        """Load the two model files and the database (a bad file is a load error, not a crash)."""
        directory = Path(self.settings.model_dir) if self.settings.model_dir else None
        describer = FaceDescriber(directory)
        try:
            db = FaceDb(Path(self.settings.db) if self.settings.db else None)
        except FaceDbError as err:
            raise ModelError("model_unavailable", err.detail, self.label) from err
        self.recognizer = Recognizer(
            describer,
            db,
            threshold=self.settings.threshold,
            min_face=self.settings.min_face,
            max_side=self.settings.max_side,
        )

    def run_batch(
        self, images: list[Image.Image], options: list[JobOptions]
    ) -> list[EngineOutput | ModelError]:
        """Name every face of each frame; a frame that fails does not stop the others."""
        recognizer = self._ready()
        outputs: list[EngineOutput | ModelError] = []
        with self._lock:
            try:
                recognizer.db.reload_if_changed()
            except FaceDbError as err:
                return [ModelError("face_db", err.detail, self.label) for _ in images]
            for image in images:
                try:
                    faces, small = recognizer.recognise(image)
                except (RuntimeError, ValueError) as err:  # dlib rejects odd pixel layouts
                    outputs.append(ModelError("model_failed", str(err), self.label))
                    continue
                extra: dict[str, Any] = {
                    "names": [f.name for f in faces],
                    "faces": [f.as_dict() for f in faces],
                    "small_faces": small,
                }
                outputs.append(EngineOutput(describe_people(faces), extra))
        return outputs

    def enrol(self, name: str, photos: list[bytes], threshold: float | None = None) -> EnrolReport:
        """Enrol a person from photo bytes (MQTT ``faces/add``); refusals are in the report."""
        recognizer = self._ready()
        with self._lock:
            recognizer.db.reload_if_changed()
            return enrol_photos(recognizer, name, photos, threshold)

    def database(self) -> FaceDb:
        """The loaded database (``faces/list``, ``remove``, ``rename`` over MQTT)."""
        return self._ready().db

    def _ready(self) -> Recognizer:
        if self.recognizer is None:
            raise ModelError("model_unavailable", "the faces engine is not loaded", self.label)
        return self.recognizer

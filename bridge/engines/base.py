"""The one small interface every model kind implements, and the registry that picks one.

A new model kind is one new module that subclasses ``Engine`` and registers itself under the
``engine`` name used in the configuration (``models.<task>.engine``).  Engines are blocking
code: the scheduler calls them from a worker thread, never on the event loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from bridge.config import MeterConfig, ModelConfig
from bridge.errors import ModelError

if TYPE_CHECKING:
    from bridge.faces.db import FaceDb
    from bridge.faces.enrol import EnrolReport


@dataclass(frozen=True)
class JobOptions:
    """Per-frame settings that vary by camera or request, not by model."""

    prompt: str | None = None
    meter: MeterConfig | None = None
    camera: str = ""


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do beyond analysing images; the service asks, never guesses."""

    #: Keeps state between runs in a file (``attach_state``): a meter's previous values.
    keeps_state: bool = False
    #: Takes a value set by hand (``set_value``): a meter's reading corrected by its owner.
    settable_value: bool = False
    #: Enrols people and keeps their descriptors (``enrol``, ``database``): the enrolment
    #: commands on ``<base>/faces/...`` go to it.
    enrols_faces: bool = False


@dataclass(frozen=True)
class EngineOutput:
    """What a model made of one image: the text, plus task-specific result fields."""

    text: str
    extra: dict[str, Any] = field(default_factory=dict)
    #: Draws the picture published on ``<camera>/<task>/image`` instead of the bare frame (a
    #: meter's annotated reading); called only when the picture is published.
    preview: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)


class Engine(ABC):
    """A loaded model that turns a batch of RGB images into text."""

    #: Longest image side the model works at; frames are decoded near it (JPEG draft mode).
    #: ``None`` means the engine wants the full frame (OCR of small text, meter regions).
    input_size: int | None = None
    #: What else the engine does (most engines: nothing).
    capabilities = Capabilities()

    def __init__(self, config: ModelConfig) -> None:
        self.config = config

    @property
    def label(self) -> str:
        """The model's name in result events and log lines."""
        return self.config.label

    @abstractmethod
    def load(self) -> None:
        """Load weights and warm up; raise ``ModelError('model_unavailable', ...)`` if it can't."""

    @abstractmethod
    def run_batch(
        self, images: list[Image.Image], options: list[JobOptions]
    ) -> list[EngineOutput | ModelError]:
        """Analyse the images; one output (or a per-image ``ModelError``) for each, in order."""

    def attach_state(self, path: Path | None) -> None:  # noqa: B027 - optional, most keep none
        """Where to keep state between runs (``None``: memory only); with ``keeps_state``."""

    def set_value(self, camera: str, value: float) -> None:
        """Take a value set by hand for ``camera``; with ``settable_value``."""
        raise NotImplementedError(f"{self.label} takes no value set by hand")

    def enrol(self, name: str, photos: list[bytes], threshold: float | None = None) -> EnrolReport:
        """Enrol a person from photo bytes; with ``enrols_faces``."""
        raise NotImplementedError(f"{self.label} enrols nobody")

    def database(self) -> FaceDb:
        """The enrolled people; with ``enrols_faces``."""
        raise NotImplementedError(f"{self.label} keeps no face database")

    def details(self) -> dict[str, Any]:
        """What the bridge's info says about the loaded model beyond its name (default: nothing)."""
        return {}

    @property
    def max_batch(self) -> int:
        """How many frames may go through the model in one call."""
        return max(1, self.config.batch_size)


EngineFactory = Callable[[ModelConfig], Engine]
_REGISTRY: dict[str, EngineFactory] = {}


def register(name: str) -> Callable[[type[Engine]], type[Engine]]:
    """Class decorator: make an engine available as ``engine: <name>`` in the configuration."""

    def wrap(cls: type[Engine]) -> type[Engine]:
        _REGISTRY[name] = cls
        return cls

    return wrap


def create_engine(config: ModelConfig) -> Engine:
    """Instantiate the engine a task's configuration names (nothing is loaded yet)."""
    from bridge import engines  # noqa: F401 - importing the package registers all kinds

    try:
        factory = _REGISTRY[config.engine]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ModelError(
            "model_unavailable", f"unknown engine {config.engine!r} (known: {known})", config.label
        ) from None
    return factory(config)


def known_engines() -> list[str]:
    """Names accepted as ``engine:`` (for ``check-config``)."""
    from bridge import engines  # noqa: F401

    return sorted(_REGISTRY)

"""Typed, validated configuration (BRIEF §3).

The YAML file is read once and turned into frozen dataclasses before anything connects, so a
mistake is reported up front with the file, the key path and what was expected, instead of as
a crash minutes later.  ``!env NAME`` pulls secrets from the environment.  Unknown keys are
errors: a typo such as ``max_new_token`` must not be silently ignored.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from bridge.errors import ConfigError

TASKS = ("caption", "ocr", "meter", "faces")
CAMERA_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
SECRET_KEYS = frozenset({"password"})

T = TypeVar("T")


_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnvRef:
    """A ``!env NAME`` placeholder, resolved during validation so errors can name the key."""

    name: str


class _Loader(yaml.SafeLoader):
    """SafeLoader that knows ``!env``; never constructs arbitrary Python objects."""


def _env_constructor(loader: yaml.SafeLoader, node: yaml.Node) -> EnvRef:
    return EnvRef(str(loader.construct_scalar(node)))  # type: ignore[arg-type]


_Loader.add_constructor("!env", _env_constructor)


@dataclass(frozen=True)
class TlsConfig:
    """TLS towards the broker; ``ca_certs`` alone gives server verification."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class MqttConfig:
    """How to reach the broker and where the bridge's topics live."""

    host: str = "localhost"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    base_topic: str = "image_to_text"
    client_id: str = "image-to-text-bridge"
    keepalive: int = 30
    session_expiry: int = 86400
    reconnect_max_delay: float = 30.0
    outbox_limit: int = 1000
    tls: TlsConfig | None = None
    discovery: bool = True
    discovery_prefix: str = "homeassistant"

    @property
    def embedded(self) -> bool:
        """``host: embedded`` means: start the built-in broker and connect to it."""
        return self.host == "embedded"


@dataclass(frozen=True)
class FramesConfig:
    """Limits for incoming frames; they bound memory and refuse decompression bombs."""

    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    url_allowed_hosts: tuple[str, ...] = ()
    url_timeout: float = 10.0
    publish_image: bool = True


@dataclass(frozen=True)
class FacesConfig:
    """The ``faces`` task's settings (docs/faces.md); thresholds are descriptor distances."""

    #: The enrolled people's descriptors; ``None``: in memory only.  Default: next to the config.
    db: str | None = None
    threshold: float = 0.55
    min_face: int = 40
    #: Frames larger than this (long side) are scaled down first; detection time grows with area.
    max_side: int = 1280
    #: Folder of the two model files; ``None``: where the install step put them.
    model_dir: str | None = None


@dataclass(frozen=True)
class ModelConfig:
    """One task's engine: which implementation, which weights, and how to run it."""

    engine: str
    model: str | None = None
    max_new_tokens: int = 30
    prompt: str | None = None
    device: str = "auto"
    #: ``auto``: the fastest form whose next-token logits match fp32's (checked at load).
    precision: Literal["fp32", "bf16", "int8", "mixed", "fp16", "auto"] = "auto"
    batch_size: int = 4
    threads: int | None = None
    num_beams: int = 1
    faces: FacesConfig | None = None

    @property
    def label(self) -> str:
        """What result events and log lines call this model."""
        return self.model or self.engine


@dataclass(frozen=True)
class MeterConfig:
    """Where a meter's digits are and how to read them (``docs/meters.md``)."""

    digits: int
    decimals: int = 0
    roi: tuple[int, int, int, int] | None = None
    corners: tuple[tuple[int, int], ...] | None = None
    rotation: float = 0.0
    unit: str | None = None
    device_class: str | None = None
    max_rate: float | None = None
    allow_decrease: bool = False


@dataclass(frozen=True)
class CameraConfig:
    """One camera: the topic its snapshots arrive on and what to do with them."""

    name: str
    topic: str
    tasks: tuple[str, ...]
    prompt: str | None = None
    #: Skip frames showing the same scene as the last analysed one (``bridge/dedup.py``).
    dedup: bool = True
    #: Scene-change score (0..1) above which a frame is analysed; ``None``: the default.
    dedup_threshold: float | None = None
    meter: MeterConfig | None = None


@dataclass(frozen=True)
class BridgeConfig:
    """The whole validated configuration."""

    mqtt: MqttConfig
    models: Mapping[str, ModelConfig]
    cameras: Mapping[str, CameraConfig]
    frames: FramesConfig = field(default_factory=FramesConfig)
    bridge_id: str = "image_to_text"
    source: str = "<memory>"


DEFAULT_MODELS: dict[str, dict[str, Any]] = {
    "caption": {"engine": "transformers", "model": "Salesforce/blip-image-captioning-base"},
    "ocr": {"engine": "rapidocr"},
    "meter": {"engine": "meter"},
    "faces": {"engine": "dlib"},
}


class _Reader:
    """Reads one mapping of the YAML file, tracking the key path for error messages."""

    def __init__(self, source: str, path: str, data: object) -> None:
        self.source = source
        self.path = path
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(source, path or "<top>", f"expected a mapping, got {_kind(data)}")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self._join(key), problem)

    def _join(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def child(self, key: str) -> _Reader:
        self.used.add(key)
        return _Reader(self.source, self._join(key), self._resolve(key, self.data.get(key)))

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def _resolve(self, key: str, value: object) -> object:
        """``!env NAME``: the variable's text, or nothing when it is not set.

        An unset variable leaves the key unset, with one warning naming both: a broker without
        accounts takes ``username: !env MQTT_USER`` as "no credentials", and a key that must have
        a value is refused as missing.
        """
        if isinstance(value, EnvRef):
            if value.name not in os.environ:
                _LOGGER.warning(
                    "%s: %s: environment variable %s is not set (!env); taken as not given",
                    self.source,
                    self._join(key),
                    value.name,
                )
                return None
            return _EnvText(os.environ[value.name])
        return value

    def raw(self, key: str) -> object:
        self.used.add(key)
        return self._resolve(key, self.data.get(key))

    def get(self, key: str, kind: type[T], default: T) -> T:
        value = self.raw(key)
        if value is None:
            return default
        return self._check(key, value, kind)

    def optional(self, key: str, kind: type[T]) -> T | None:
        value = self.raw(key)
        return None if value is None else self._check(key, value, kind)

    def require(self, key: str, kind: type[T]) -> T:
        value = self.raw(key)
        if value is None:
            raise self.error(key, f"required, expected {_kind_name(kind)}")
        return self._check(key, value, kind)

    def _check(self, key: str, value: object, kind: type[T]) -> T:
        if isinstance(value, _EnvText):
            # `port: !env MQTT_PORT` is a number, as YAML would read it; a secret stays text
            value = _scalar(value) if kind in (int, float, bool) else str(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # type: ignore[return-value]
        if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # type: ignore[return-value]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(key, f"expected {_kind_name(kind)}, got {_kind(value)}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


class _EnvText(str):
    """Text that came from the environment (``!env``): always a string, whatever it looks like."""

    __slots__ = ()


def _scalar(text: str) -> object:
    """What YAML makes of ``text`` as a plain scalar (``1883`` → 1883, ``true`` → True)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {value!r}"


def _kind_name(kind: type[Any]) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a mapping",
    }.get(kind, kind.__name__)


def _int_list(reader: _Reader, key: str, count: int, what: str) -> tuple[int, ...] | None:
    value = reader.raw(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise reader.error(key, f"expected {count} integers ({what}), got {_kind(value)}")
    if len(value) != count:
        raise reader.error(key, f"expected {count} integers, got {len(value)}")
    return tuple(value)


def _positive(reader: _Reader, key: str, value: T) -> T:
    if isinstance(value, int | float) and value <= 0:
        raise reader.error(key, f"expected a positive number, got {value}")
    return value


def _read_tls(reader: _Reader) -> TlsConfig:
    tls = TlsConfig(
        ca_certs=reader.optional("ca_certs", str),
        certfile=reader.optional("certfile", str),
        keyfile=reader.optional("keyfile", str),
        insecure=reader.get("insecure", bool, False),
    )
    reader.finish()
    return tls


def _read_mqtt(reader: _Reader) -> MqttConfig:
    d = MqttConfig()
    base = reader.get("base_topic", str, d.base_topic).strip("/")
    if not base or any(c in base for c in "#+"):
        raise reader.error("base_topic", f"expected a topic without wildcards, got {base!r}")
    mqtt = MqttConfig(
        host=reader.get("host", str, d.host),
        port=_positive(reader, "port", reader.get("port", int, d.port)),
        username=reader.optional("username", str),
        password=reader.optional("password", str),
        base_topic=base,
        client_id=reader.get("client_id", str, f"image-to-text-{base.replace('/', '-')}"),
        keepalive=_positive(reader, "keepalive", reader.get("keepalive", int, d.keepalive)),
        session_expiry=_positive(
            reader, "session_expiry", reader.get("session_expiry", int, d.session_expiry)
        ),
        reconnect_max_delay=_positive(
            reader,
            "reconnect_max_delay",
            reader.get("reconnect_max_delay", float, d.reconnect_max_delay),
        ),
        outbox_limit=_positive(
            reader, "outbox_limit", reader.get("outbox_limit", int, d.outbox_limit)
        ),
        tls=_read_tls(reader.child("tls")) if reader.has("tls") else None,
        discovery=reader.get("discovery", bool, d.discovery),
        discovery_prefix=reader.get("discovery_prefix", str, d.discovery_prefix),
    )
    if mqtt.tls is None:
        reader.raw("tls")
    reader.finish()
    return mqtt


def _read_frames(reader: _Reader) -> FramesConfig:
    d = FramesConfig()
    hosts = reader.raw("url_allowed_hosts")
    if hosts is not None and (
        not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts)
    ):
        raise reader.error(
            "url_allowed_hosts", f"expected a list of host names, got {_kind(hosts)}"
        )
    frames = FramesConfig(
        max_bytes=_positive(reader, "max_bytes", reader.get("max_bytes", int, d.max_bytes)),
        max_pixels=_positive(reader, "max_pixels", reader.get("max_pixels", int, d.max_pixels)),
        url_allowed_hosts=tuple(h.lower() for h in hosts or ()),
        url_timeout=_positive(
            reader, "url_timeout", reader.get("url_timeout", float, d.url_timeout)
        ),
        publish_image=reader.get("publish_image", bool, d.publish_image),
    )
    reader.finish()
    return frames


def _read_model(reader: _Reader, task: str) -> ModelConfig:
    defaults = DEFAULT_MODELS[task]
    engine = reader.get("engine", str, defaults["engine"])
    model = reader.optional("model", str)
    if model is None and "engine" not in reader.data:
        model = defaults.get("model")
    precision = reader.get("precision", str, "auto")
    if precision not in ("fp32", "bf16", "int8", "mixed", "fp16", "auto"):
        raise reader.error(
            "precision", f"expected fp32, bf16, fp16, int8, mixed or auto, got {precision!r}"
        )
    device = reader.get("device", str, "auto")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise reader.error("device", f"expected auto, cpu or cuda[:N], got {device!r}")
    cfg = ModelConfig(
        engine=engine,
        model=model,
        max_new_tokens=_positive(reader, "max_new_tokens", reader.get("max_new_tokens", int, 30)),
        prompt=reader.optional("prompt", str),
        device=device,
        precision=precision,  # type: ignore[arg-type]
        batch_size=_positive(reader, "batch_size", reader.get("batch_size", int, 4)),
        threads=reader.optional("threads", int),
        num_beams=_positive(reader, "num_beams", reader.get("num_beams", int, 1)),
        faces=_read_faces(reader) if task == "faces" else None,
    )
    reader.finish()
    return cfg


def _read_faces(reader: _Reader) -> FacesConfig:
    """``models.faces``: the face database's place and the thresholds that decide a name."""
    d = FacesConfig()
    threshold = reader.get("threshold", float, d.threshold)
    if not 0 < threshold < 1:
        raise reader.error("threshold", f"expected a number between 0 and 1, got {threshold}")
    db = reader.optional("db", str)
    if db is None and reader.source != "<memory>":
        db = str(Path(reader.source).parent / "faces.json")
    elif db is not None and reader.source != "<memory>":
        db = str(Path(reader.source).parent / Path(db).expanduser())
    return FacesConfig(
        db=db,
        threshold=threshold,
        min_face=_positive(reader, "min_face", reader.get("min_face", int, d.min_face)),
        max_side=_positive(reader, "max_side", reader.get("max_side", int, d.max_side)),
        model_dir=reader.optional("model_dir", str),
    )


def _read_meter(reader: _Reader) -> MeterConfig:
    digits = _positive(reader, "digits", reader.require("digits", int))
    decimals = reader.get("decimals", int, 0)
    if not 0 <= decimals < digits:
        raise reader.error("decimals", f"expected 0 to {digits - 1} (digits - 1), got {decimals}")
    roi = _int_list(reader, "roi", 4, "x, y, width, height")
    corners_raw = reader.raw("corners")
    corners: tuple[tuple[int, int], ...] | None = None
    if corners_raw is not None:
        ok = (
            isinstance(corners_raw, list)
            and len(corners_raw) == 4
            and all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) for v in p)
                for p in corners_raw
            )
        )
        if not ok:
            raise reader.error("corners", f"expected 4 [x, y] points, got {_kind(corners_raw)}")
        points: list[list[int]] = corners_raw  # type: ignore[assignment]
        corners = tuple((int(p[0]), int(p[1])) for p in points)
    if roi is None and corners is None:
        raise reader.error("roi", "required (or corners): where the digits are, as [x, y, w, h]")
    if roi is not None and (roi[2] <= 0 or roi[3] <= 0):
        raise reader.error("roi", f"width and height must be positive, got {list(roi)}")
    device_class = reader.optional("device_class", str)
    if device_class is not None and device_class not in ("gas", "water", "energy"):
        raise reader.error("device_class", f"expected gas, water or energy, got {device_class!r}")
    max_rate = reader.optional("max_rate", float)
    meter = MeterConfig(
        digits=digits,
        decimals=decimals,
        roi=roi,  # type: ignore[arg-type]
        corners=corners,
        rotation=reader.get("rotation", float, 0.0),
        unit=reader.optional("unit", str),
        device_class=device_class,
        max_rate=_positive(reader, "max_rate", max_rate) if max_rate is not None else None,
        allow_decrease=reader.get("allow_decrease", bool, False),
    )
    reader.finish()
    return meter


def _read_dedup(reader: _Reader) -> tuple[bool, float | None]:
    """``dedup: true|false``, or ``dedup: {threshold: 0.03}`` (on, with its own threshold)."""
    if not isinstance(reader.data.get("dedup"), dict):
        return reader.get("dedup", bool, True), None
    options = reader.child("dedup")
    enabled = options.get("enabled", bool, True)
    threshold = options.optional("threshold", float)
    if threshold is not None and not 0 <= threshold < 1:
        raise options.error("threshold", f"expected a number from 0 to 1, got {threshold}")
    options.finish()
    return enabled, threshold


def _read_camera(reader: _Reader, name: str) -> CameraConfig:
    if not CAMERA_NAME.match(name):
        raise ConfigError(
            reader.source, reader.path, "camera names are lower-case letters, digits and _"
        )
    if name == "faces":  # <base>/faces/... is the enrolment topic (docs/faces.md)
        raise ConfigError(reader.source, reader.path, "'faces' is reserved; pick another name")
    topic = reader.require("topic", str)
    tasks_raw = reader.get("tasks", list, ["caption"])
    for task in tasks_raw:
        if task not in TASKS:
            raise reader.error(
                "tasks", f"unknown task {task!r}, expected one of {', '.join(TASKS)}"
            )
    if not tasks_raw:
        raise reader.error("tasks", "expected at least one task")
    tasks = tuple(dict.fromkeys(tasks_raw))
    meter = _read_meter(reader.child("meter")) if reader.has("meter") else None
    if meter is None:
        reader.raw("meter")
    if "meter" in tasks and meter is None:
        raise reader.error("meter", "required for the meter task (roi, digits, decimals...)")
    dedup, dedup_threshold = _read_dedup(reader)
    cam = CameraConfig(
        name=name,
        topic=topic,
        tasks=tasks,
        prompt=reader.optional("prompt", str),
        dedup=dedup,
        dedup_threshold=dedup_threshold,
        meter=meter,
    )
    reader.finish()
    return cam


def parse_config(data: object, source: str = "<memory>") -> BridgeConfig:
    """Validate already-parsed YAML data; raise ``ConfigError`` naming the first bad key."""
    top = _Reader(source, "", data)
    mqtt = _read_mqtt(top.child("mqtt"))
    frames = _read_frames(top.child("frames"))
    models_reader = top.child("models")
    cams_reader = top.child("cameras")
    cameras: dict[str, CameraConfig] = {}
    for name in cams_reader.data:
        cameras[str(name)] = _read_camera(cams_reader.child(str(name)), str(name))
    if not cameras:
        raise ConfigError(source, "cameras", "expected at least one camera")
    for key in models_reader.data:
        if key not in TASKS:
            raise models_reader.error(str(key), f"unknown task, expected one of {', '.join(TASKS)}")
    used_tasks = {t for cam in cameras.values() for t in cam.tasks}
    models = {
        task: _read_model(models_reader.child(task), task)
        for task in TASKS
        if task in used_tasks or task in models_reader.data
    }
    models_reader.finish()
    bridge = top.child("bridge")
    bridge_id = bridge.get("id", str, mqtt.base_topic.replace("/", "_"))
    if not CAMERA_NAME.match(bridge_id):
        raise bridge.error("id", "expected lower-case letters, digits and _")
    bridge.finish()
    top.finish()
    return BridgeConfig(
        mqtt=mqtt, models=models, cameras=cameras, frames=frames, bridge_id=bridge_id, source=source
    )


def load_config(path: str | Path) -> BridgeConfig:
    """Read and validate a YAML configuration file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(source, "", f"cannot read the file ({err.strerror})") from err
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "yaml"
        raise ConfigError(
            source, where, f"not valid YAML ({getattr(err, 'problem', err)})"
        ) from err
    return parse_config(data, source)


def explain(config: BridgeConfig) -> dict[str, Any]:
    """The effective configuration as plain data, secrets masked (for ``check-config``)."""

    def convert(value: Any, key: str = "") -> Any:
        if key in SECRET_KEYS and value is not None:
            return "***"
        if is_dataclass(value) and not isinstance(value, type):
            return {f.name: convert(getattr(value, f.name), f.name) for f in fields(value)}
        if isinstance(value, Mapping):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        return value

    result: dict[str, Any] = convert(config)
    return result


__all__: list[str] = [
    "BridgeConfig",
    "CameraConfig",
    "FacesConfig",
    "FramesConfig",
    "MeterConfig",
    "ModelConfig",
    "MqttConfig",
    "TlsConfig",
    "explain",
    "load_config",
    "parse_config",
]

"""Typed, validated configuration: pydantic models of ``bridge.yaml``.

The YAML file is read once and validated before anything connects, so a mistake is reported up
front with the file, the key path and what was expected, instead of as a crash minutes later.
Every default lives on its model's field; ``image-to-text check-config --schema`` prints the
models as JSON Schema (``docs/configuration.md`` is tested against it).  ``!env NAME`` pulls
secrets from the environment.  Unknown keys are errors (``extra="forbid"``): a typo such as
``max_new_token`` must not be silently ignored.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    SecretStr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from bridge.errors import ConfigError
from bridge.protocol import camera_name_problem, slug

TASKS = ("caption", "ocr", "meter", "faces")
Precision = Literal["fp32", "bf16", "int8", "mixed", "fp16", "openvino", "auto"]
#: A bridge id becomes part of Home Assistant unique ids and topics: kept plain.
BRIDGE_ID = re.compile(r"^[a-z0-9][a-z0-9_]*$")
#: The model each task runs when its ``models`` entry names no engine (the one place for them).
DEFAULT_MODELS: dict[str, dict[str, str]] = {
    "caption": {"engine": "transformers", "model": "Salesforce/blip-image-captioning-base"},
    "ocr": {"engine": "rapidocr"},
    "meter": {"engine": "meter"},
    "faces": {"engine": "dlib"},
}
DEFAULT_CAPTION_MODEL = DEFAULT_MODELS["caption"]["model"]

_LOGGER = logging.getLogger(__name__)
Positive = Annotated[int, Field(gt=0)]
PositiveNumber = Annotated[float, Field(gt=0)]


class ProblemError(ValueError):
    """A validator's complaint about ``keys`` below the value it checked (empty: that value)."""

    def __init__(self, message: str, *keys: str) -> None:
        super().__init__(message)
        self.keys = keys


class _Section(BaseModel):
    """Frozen, no unknown keys; numbers given where text is expected are read as text."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


class TlsConfig(_Section):
    """TLS towards the broker; ``ca_certs`` alone gives server verification."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False


class MqttConfig(_Section):
    """How to reach the broker and where the bridge's topics live."""

    host: str = "localhost"
    port: Positive = 1883
    username: str | None = None
    password: SecretStr | None = None
    base_topic: str = "image_to_text"
    #: Default: ``image-to-text-<base_topic>`` (filled in by ``BridgeConfig``).
    client_id: str = "image-to-text-bridge"
    keepalive: Positive = 30
    session_expiry: Positive = 86400
    reconnect_max_delay: PositiveNumber = 30.0
    outbox_limit: Positive = 1000
    tls: TlsConfig | None = None
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    #: Shared-subscription group: bridges with the same ``share`` split the frames (MQTT 5).
    share: str | None = None

    @field_validator("share")
    @classmethod
    def _plain_group(cls, group: str | None) -> str | None:
        if group is not None and (not group or any(c in group for c in "/#+")):
            raise ProblemError(f"expected a group name without '/', '#' or '+', got {group!r}")
        return group

    @model_validator(mode="after")
    def _share_needs_mqtt5(self) -> MqttConfig:
        if self.share is not None and self.embedded:
            raise ProblemError(
                "shared subscriptions need MQTT 5; the embedded broker speaks MQTT 3.1.1 "
                "(use a broker such as Mosquitto 2, or remove mqtt.share)",
                "share",
            )
        return self

    @field_validator("base_topic")
    @classmethod
    def _plain_topic(cls, base: str) -> str:
        base = base.strip("/")
        if not base or any(c in base for c in "#+"):
            raise ProblemError(f"expected a topic without wildcards, got {base!r}")
        return base

    @property
    def embedded(self) -> bool:
        """``host: embedded`` means: start the built-in broker and connect to it."""
        return self.host == "embedded"

    @property
    def secret(self) -> str | None:
        """The password in clear, for the one place that hands it to the broker."""
        return self.password.get_secret_value() if self.password is not None else None


class FramesConfig(_Section):
    """Limits for incoming frames; they bound memory and refuse decompression bombs."""

    max_bytes: Positive = 15 * 1024 * 1024
    max_pixels: Positive = 40_000_000
    url_allowed_hosts: tuple[str, ...] = ()
    url_timeout: PositiveNumber = 10.0
    publish_image: bool = True

    @field_validator("url_allowed_hosts", mode="before")
    @classmethod
    def _host_names(cls, hosts: object) -> object:
        if not isinstance(hosts, list | tuple) or not all(isinstance(h, str) for h in hosts):
            raise ProblemError(f"expected a list of host names, got {describe(hosts)}")
        return tuple(h.lower() for h in hosts)


class FacesConfig(_Section):
    """The ``faces`` task's settings (docs/faces.md); thresholds are descriptor distances.

    In the file they sit beside the model's own keys under ``models.faces``.
    """

    #: The enrolled people's descriptors; ``None``: in memory only.  From a file: relative to
    #: it, ``faces.json`` next to it by default (``parse_config``).
    db: str | None = None
    threshold: float = 0.55
    min_face: Positive = 40
    #: Frames larger than this (long side) are scaled down first; detection time grows with area.
    max_side: Positive = 1280
    #: Folder of the two model files; ``None``: where the install step put them.
    model_dir: str | None = None

    @field_validator("threshold")
    @classmethod
    def _distance(cls, threshold: float) -> float:
        if not 0 < threshold < 1:
            raise ProblemError(f"expected a number between 0 and 1, got {threshold}")
        return threshold


class ModelConfig(_Section):
    """One task's engine: which implementation, which weights, and how to run it."""

    engine: str
    model: str | None = None
    max_new_tokens: Positive = 30
    prompt: str | None = None
    device: str = "auto"
    #: ``auto``: the fastest form whose next-token logits match fp32's (checked at load).
    precision: Precision = "auto"
    batch_size: Positive = 4
    threads: int | None = None
    num_beams: Positive = 1
    #: The ``faces`` task's own settings (``models.faces`` only; written beside the keys above).
    faces: SkipJsonSchema[FacesConfig | None] = None

    @field_validator("precision", mode="before")
    @classmethod
    def _known_precision(cls, value: object) -> object:
        if value not in ("fp32", "bf16", "int8", "mixed", "fp16", "openvino", "auto"):
            raise ProblemError(
                f"expected fp32, bf16, fp16, int8, mixed, openvino or auto, got {value!r}"
            )
        return value

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if device not in ("auto", "cpu") and not device.startswith("cuda"):
            raise ProblemError(f"expected auto, cpu or cuda[:N], got {device!r}")
        return device

    @property
    def label(self) -> str:
        """What result events and log lines call this model."""
        return self.model or self.engine


class DialConfig(_Section):
    """A meter's pointer dial: where it is, what one turn counts (``docs/meters.md``)."""

    roi: tuple[int, int, int, int] | None = None
    centre: tuple[int, int] | None = None
    radius: Positive | None = None
    factor: PositiveNumber
    clockwise: bool = True

    @field_validator("roi", mode="before")
    @classmethod
    def _dial_box(cls, roi: object) -> object:
        if roi is None:
            return None
        if not isinstance(roi, list | tuple) or len(roi) != 4 or not all(_is_int(v) for v in roi):
            raise ProblemError(f"expected 4 integers (x, y, width, height), got {describe(roi)}")
        if roi[2] <= 0 or roi[3] <= 0:
            raise ProblemError(f"width and height must be positive, got {list(roi)}")
        return tuple(roi)

    @field_validator("centre", mode="before")
    @classmethod
    def _point(cls, centre: object) -> object:
        if centre is None:
            return None
        if (
            not isinstance(centre, list | tuple)
            or len(centre) != 2
            or not all(_is_int(v) for v in centre)
        ):
            raise ProblemError(f"expected 2 integers (x, y), got {describe(centre)}")
        return tuple(centre)

    @field_validator("factor")
    @classmethod
    def _power_of_ten(cls, factor: float) -> float:
        exponent = round(math.log10(factor))
        if exponent >= 0 or not math.isclose(factor, 10.0**exponent, rel_tol=1e-9):
            raise ProblemError(f"expected 0.1, 0.01, 0.001..., got {factor}")
        return factor

    @model_validator(mode="after")
    def _placed_once(self) -> DialConfig:
        circle = self.centre is not None or self.radius is not None
        if self.roi is not None and circle:
            raise ProblemError("give roi or centre and radius, not both", "roi")
        if self.roi is None and (self.centre is None or self.radius is None):
            raise ProblemError(
                "required (or centre and radius): the dial's box as [x, y, w, h]", "roi"
            )
        return self


class MeterConfig(_Section):
    """Where a meter's digits are and how to read them (``docs/meters.md``)."""

    digits: Positive
    decimals: int = 0
    roi: tuple[int, int, int, int] | None = None
    corners: tuple[tuple[int, int], ...] | None = None
    rotation: float = 0.0
    unit: str | None = None
    device_class: str | None = None
    max_rate: PositiveNumber | None = None
    allow_decrease: bool = False
    dials: tuple[DialConfig, ...] = ()
    roll_start: float = Field(default=9.2, ge=0, lt=10)

    @field_validator("decimals")
    @classmethod
    def _fewer_decimals_than_digits(cls, decimals: int, info: ValidationInfo) -> int:
        digits = info.data.get("digits")
        if digits is not None and not 0 <= decimals < digits:
            raise ProblemError(f"expected 0 to {digits - 1} (digits - 1), got {decimals}")
        return decimals

    @field_validator("roi", mode="before")
    @classmethod
    def _four_integers(cls, roi: object) -> object:
        if roi is None:
            return None
        if not isinstance(roi, list | tuple) or not all(_is_int(v) for v in roi):
            raise ProblemError(f"expected 4 integers (x, y, width, height), got {describe(roi)}")
        if len(roi) != 4:
            raise ProblemError(f"expected 4 integers, got {len(roi)}")
        if roi[2] <= 0 or roi[3] <= 0:
            raise ProblemError(f"width and height must be positive, got {list(roi)}")
        return tuple(roi)

    @field_validator("corners", mode="before")
    @classmethod
    def _four_points(cls, corners: object) -> object:
        if corners is None:
            return None
        ok = (
            isinstance(corners, list | tuple)
            and len(corners) == 4
            and all(
                isinstance(p, list | tuple) and len(p) == 2 and all(_is_int(v) for v in p)
                for p in corners
            )
        )
        if not ok:
            raise ProblemError(f"expected 4 [x, y] points, got {describe(corners)}")
        return corners

    @field_validator("device_class")
    @classmethod
    def _energy_class(cls, device_class: str | None) -> str | None:
        if device_class is not None and device_class not in ("gas", "water", "energy"):
            raise ProblemError(f"expected gas, water or energy, got {device_class!r}")
        return device_class

    @model_validator(mode="after")
    def _somewhere(self) -> MeterConfig:
        if self.roi is None and self.corners is None:
            raise ProblemError(
                "required (or corners): where the digits are, as [x, y, w, h]", "roi"
            )
        step = 10.0**-self.decimals
        for index, dial in enumerate(self.dials):
            step /= 10
            if not math.isclose(dial.factor, step, rel_tol=1e-9):
                raise ProblemError(
                    f"dial {index + 1} counts {dial.factor}, expected {step:g}: the first dial "
                    "counts a tenth of the last digit, each next one a tenth of the one before",
                    "dials",
                )
        return self


class DedupOptions(_Section):
    """``dedup: {threshold: 0.03}``: deduplication on, with a threshold of its own."""

    enabled: bool = True
    #: Scene-change score (0..1) above which a frame is analysed; ``None``: the default.
    threshold: float | None = None

    @field_validator("threshold")
    @classmethod
    def _fraction(cls, threshold: float | None) -> float | None:
        if threshold is not None and not 0 <= threshold < 1:
            raise ProblemError(f"expected a number from 0 to 1, got {threshold}")
        return threshold


def _dedup_form(value: object) -> str:
    return "options" if isinstance(value, dict | DedupOptions) else "flag"


#: Tags of the two forms ``dedup`` takes; they are not keys, so error paths leave them out.
_FORM_TAGS = frozenset({"flag", "options"})


class CameraConfig(_Section):
    """One camera: the topic its snapshots arrive on and what to do with them."""

    #: The camera's key under ``cameras`` (filled in from it, never written).
    name: SkipJsonSchema[str] = ""
    topic: str
    tasks: tuple[str, ...] = ("caption",)
    prompt: str | None = None
    #: Skip frames showing the same scene as the last analysed one (``bridge/dedup.py``).
    dedup_setting: Annotated[
        Annotated[bool, Tag("flag")] | Annotated[DedupOptions, Tag("options")],
        Discriminator(_dedup_form),
    ] = Field(default=True, alias="dedup")
    meter: MeterConfig | None = None

    @field_validator("tasks", mode="before")
    @classmethod
    def _known_tasks(cls, tasks: object) -> object:
        if not isinstance(tasks, list | tuple):
            raise ProblemError(f"expected a list, got {describe(tasks)}")
        for task in tasks:
            if task not in TASKS:
                raise ProblemError(f"unknown task {task!r}, expected one of {', '.join(TASKS)}")
        if not tasks:
            raise ProblemError("expected at least one task")
        return tuple(dict.fromkeys(tasks))

    @model_validator(mode="after")
    def _meter_settings(self) -> CameraConfig:
        if "meter" in self.tasks and self.meter is None:
            raise ProblemError("required for the meter task (roi, digits, decimals...)", "meter")
        return self

    @property
    def dedup(self) -> bool:
        """Whether frames showing the last analysed scene are skipped."""
        setting = self.dedup_setting
        return setting.enabled if isinstance(setting, DedupOptions) else setting

    @property
    def dedup_threshold(self) -> float | None:
        """The camera's own scene-change threshold, if it has one."""
        setting = self.dedup_setting
        return setting.threshold if isinstance(setting, DedupOptions) else None


class BridgeSection(_Section):
    """The bridge's own identity, and the site (group of bridges) it serves."""

    #: Default: the host name, slugged.  Carried as ``bridge_id`` by results, errors, info.
    id: str | None = None
    #: Default: the base topic with ``/`` as ``_`` (or ``id`` when set without ``mqtt.share``).
    #: Home Assistant unique ids derive from it, so every bridge of a group shares it.
    site_id: str | None = None

    @field_validator("id", "site_id")
    @classmethod
    def _plain_id(cls, bridge_id: str | None) -> str | None:
        if bridge_id is not None and not BRIDGE_ID.match(bridge_id):
            raise ProblemError("expected lower-case letters, digits and _")
        return bridge_id


class HttpConfig(_Section):
    """The status server (``/healthz``, ``/metrics``, the status page): off unless ``port`` is set.

    Bound to loopback by default: the page shows camera frames, so reaching it from the network
    is a choice the user makes (``host: 0.0.0.0``), never a default.
    """

    port: Annotated[int, Field(gt=0, lt=65536)] | None = None
    host: str = "127.0.0.1"


class BridgeConfig(_Section):
    """The whole validated configuration (the file's top level)."""

    mqtt: MqttConfig = MqttConfig()
    frames: FramesConfig = FramesConfig()
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    cameras: dict[str, CameraConfig]
    bridge: BridgeSection = BridgeSection()
    http: HttpConfig = HttpConfig()
    _source: str = PrivateAttr(default="<memory>")

    @model_validator(mode="before")
    @classmethod
    def _fill_in(cls, data: object) -> object:
        """Names from keys, task defaults, ids from the base topic: before fields are checked."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        cameras = data.get("cameras")
        if isinstance(cameras, dict):
            data["cameras"] = _named_cameras(cameras)
            data["models"] = _models_with_defaults(data.get("models"), data["cameras"])
        return _identities(data)

    @field_validator("cameras")
    @classmethod
    def _at_least_one(cls, cameras: dict[str, CameraConfig]) -> dict[str, CameraConfig]:
        if not cameras:
            raise ProblemError("expected at least one camera")
        return cameras

    @property
    def bridge_id(self) -> str:
        """The bridge's id (``bridge.id``)."""
        return self.bridge.id or host_id()

    @property
    def site_id(self) -> str:
        """The id Home Assistant unique ids derive from (``bridge.site_id``)."""
        return self.bridge.site_id or self.bridge_id

    @property
    def source(self) -> str:
        """The file this configuration came from, or ``<memory>``."""
        return self._source


def host_id() -> str:
    """The machine's host name as a bridge id (lower-case letters, digits and ``_``)."""
    name = socket.gethostname().split(".")[0].lower()
    plain = re.sub(r"[^a-z0-9]+", "_", name).strip("_")
    return plain if BRIDGE_ID.match(plain) else "bridge"


def _identities(data: dict[str, Any]) -> dict[str, Any]:
    """Fill in ``bridge.id``, ``bridge.site_id`` and ``mqtt.client_id`` from what is given.

    A bridge without ``mqtt.share`` whose file sets ``bridge.id`` keeps that id as its site id,
    so a single bridge's Home Assistant unique ids never change.  Members of a share group need
    client ids of their own: two with one id would keep taking the session from each other.
    """
    given = data.get("mqtt")
    mqtt = given if isinstance(given, dict) else None
    base = mqtt.get("base_topic", "image_to_text") if mqtt is not None else "image_to_text"
    plain = (base if isinstance(base, str) else "image_to_text").strip("/")
    share = mqtt.get("share") if mqtt is not None else None
    section = data.get("bridge") or {}
    if not isinstance(section, dict):
        return data
    given_id = section.get("id")
    bridge_id = given_id if given_id is not None else host_id()
    site_id = section.get("site_id")
    if site_id is None:
        keep = given_id is not None and share is None and isinstance(given_id, str)
        site_id = given_id if keep else plain.replace("/", "_")
    data["bridge"] = {**section, "id": bridge_id, "site_id": site_id}
    if mqtt is not None and isinstance(base, str) and "client_id" not in mqtt:
        client_id = f"image-to-text-{plain}"
        if share is not None:
            client_id += f"-{bridge_id}"
        data["mqtt"] = {**mqtt, "client_id": client_id.replace("/", "-")}
    return data


def _named_cameras(cameras: dict[Any, Any]) -> dict[str, Any]:
    """Each camera's settings with its name, after the one camera-name rule."""
    named: dict[str, Any] = {}
    slugs: dict[str, str] = {}
    for key, settings in cameras.items():
        name = str(key)
        problem = camera_name_problem(name)
        if problem is not None:
            raise ProblemError(problem, "cameras", name)
        other = slugs.setdefault(slug(name), name)
        if other != name:
            raise ProblemError(
                f"its id {slug(name)!r} is the same as camera {other!r}'s", "cameras", name
            )
        if isinstance(settings, dict) and "name" in settings:
            raise ProblemError("unknown key", "cameras", name, "name")
        named[name] = {**settings, "name": name} if isinstance(settings, dict) else settings
    return named


def _models_with_defaults(models: object, cameras: dict[str, Any]) -> object:
    """A model entry for every task a camera uses; an entry naming no engine gets the default."""
    if models is None:
        models = {}
    if not isinstance(models, dict):
        return models
    used: set[str] = set()
    for settings in cameras.values():
        tasks = settings.get("tasks", ["caption"]) if isinstance(settings, dict) else []
        used |= {task for task in tasks if task in TASKS} if isinstance(tasks, list) else set()
    filled: dict[Any, Any] = {}
    for task in TASKS:
        given = models.get(task)
        if task not in used and task not in models:
            continue
        if given is None:
            given = {}
        if isinstance(given, dict) and "engine" not in given:
            given = {**DEFAULT_MODELS[task], **given}
        filled[task] = _faces_nested(task, given)
    for key in models:
        if key not in TASKS:
            raise ProblemError(f"unknown task, expected one of {', '.join(TASKS)}", "models", key)
    return filled


def _faces_nested(task: str, settings: object) -> object:
    """``models.faces``: the keys of ``FacesConfig`` (written beside the model's) as ``faces``."""
    if not isinstance(settings, dict):
        return settings
    if "faces" in settings:  # written in the file: not a key of any task
        raise ProblemError("unknown key", "models", task, "faces")
    if task != "faces":
        return settings
    own = {key: value for key, value in settings.items() if key not in FacesConfig.model_fields}
    return {**own, "faces": {k: v for k, v in settings.items() if k in FacesConfig.model_fields}}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- reading the file ---


class EnvRef(BaseModel):
    """A ``!env NAME`` placeholder, resolved before validation so errors can name the key."""

    model_config = ConfigDict(frozen=True)
    name: str


class _Loader(yaml.SafeLoader):
    """SafeLoader that knows ``!env``; never constructs arbitrary Python objects."""


def _env_constructor(loader: yaml.SafeLoader, node: yaml.Node) -> EnvRef:
    assert isinstance(node, yaml.ScalarNode)
    return EnvRef(name=str(loader.construct_scalar(node)))


_Loader.add_constructor("!env", _env_constructor)


def _resolve_env(data: object, source: str, path: str = "") -> object:
    """Every ``!env NAME`` as the variable's text; an unset variable leaves its key unset.

    One warning names both: a broker without accounts takes ``username: !env MQTT_USER`` as
    "no credentials", and a key that must have a value is refused as missing.  The text is
    then read as its key expects (``port: !env MQTT_PORT`` is a number, a password stays text).
    """
    if isinstance(data, dict):
        resolved = {}
        for key, value in data.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(value, EnvRef) and value.name not in os.environ:
                _LOGGER.warning(
                    "%s: %s: environment variable %s is not set (!env); taken as not given",
                    source,
                    where,
                    value.name,
                )
                continue
            resolved[key] = _resolve_env(value, source, where)
        return resolved
    if isinstance(data, list):
        return [_resolve_env(value, source, f"{path}[{i}]") for i, value in enumerate(data)]
    if isinstance(data, EnvRef):
        return os.environ[data.name]
    return data


def parse_config(data: object, source: str = "<memory>") -> BridgeConfig:
    """Validate already-parsed YAML data; raise ``ConfigError`` naming the first bad key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, "<top>", f"expected a mapping, got {describe(data)}")
    try:
        config = BridgeConfig.model_validate(_resolve_env(data, source))
    except ValidationError as err:
        raise _config_error(source, err) from None
    config = _faces_db_beside(config, source)
    config._source = source  # set once, right after validation
    return config


def _faces_db_beside(config: BridgeConfig, source: str) -> BridgeConfig:
    """A configuration file's face database is relative to it (default: ``faces.json``)."""
    model = config.models.get("faces")
    if model is None or source == "<memory>":
        return config
    settings = model.faces or FacesConfig()
    db = Path(source).parent / Path(settings.db or "faces.json").expanduser()
    faces = settings.model_copy(update={"db": str(db)})
    models = {**config.models, "faces": model.model_copy(update={"faces": faces})}
    return config.model_copy(update={"models": models})


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


# --- what a user is told ---

#: pydantic's error types, as the sentence this project has always used for them.
_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "dict": "a mapping",
    "model": "a mapping",
    "model_attributes": "a mapping",
    "list": "a list",
    "tuple": "a list",
}


def _config_error(source: str, err: ValidationError) -> ConfigError:
    """The first problem pydantic found, as ``file: key.path: what was expected``."""
    first = err.errors(include_url=False)[0]
    keys = [str(part) for part in first["loc"] if part not in _FORM_TAGS]
    if keys[:3] == ["models", "faces", "faces"]:  # written beside the model's keys (FacesConfig)
        del keys[2]
    kind, value, ctx = first["type"], first.get("input"), first.get("ctx") or {}
    cause = ctx.get("error")
    if isinstance(cause, ProblemError):
        keys += cause.keys
        problem = str(cause)
    elif kind == "extra_forbidden":
        problem = "unknown key"
    elif kind == "missing":
        problem = "required"
    elif kind in ("greater_than", "greater_than_equal"):
        problem = f"expected a positive number, got {value}"
    elif kind.removesuffix("_type").removesuffix("_parsing") in _EXPECTED:
        expected = _EXPECTED[kind.removesuffix("_type").removesuffix("_parsing")]
        problem = f"expected {expected}, got {describe(value)}"
    elif kind in ("int_from_float", "string_too_short"):
        problem = f"expected an integer, got {describe(value)}"
    else:
        problem = str(first["msg"]).removeprefix("Value error, ")
    return ConfigError(source, ".".join(keys) or "<top>", problem)


def describe(value: object) -> str:
    """A value as an error message shows what was found."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "a mapping"
    return f"{type(value).__name__} {value!r}"


def explain(config: BridgeConfig) -> dict[str, Any]:
    """The effective configuration as plain data, secrets masked (for ``check-config``)."""

    def convert(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "***"
        if isinstance(value, BaseModel):
            fields = type(value).model_fields
            plain = {
                info.alias or name: convert(getattr(value, name)) for name, info in fields.items()
            }
            if isinstance(value, ModelConfig):  # the faces settings, as written: beside the rest
                plain.update(plain.pop("faces") or {})
            return plain
        if isinstance(value, Mapping):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, tuple | list):
            return [convert(v) for v in value]
        return value

    result: dict[str, Any] = convert(config)
    return result


def json_schema() -> dict[str, Any]:
    """The configuration file's JSON Schema (``check-config --schema``).

    ``models`` is keyed by task; ``models.faces`` also takes ``FacesConfig``'s keys, written
    beside the model's own.
    """
    schema = BridgeConfig.model_json_schema(by_alias=True)
    defs = schema["$defs"]
    model = defs["ModelConfig"]
    defs["FacesConfig"] = FacesConfig.model_json_schema(by_alias=True)
    defs["FacesModelConfig"] = {
        **model,
        "title": "FacesModelConfig",
        "properties": {**model["properties"], **defs["FacesConfig"]["properties"]},
    }
    models = schema["properties"]["models"]
    models.pop("additionalProperties", None)
    models["properties"] = {
        task: {"$ref": f"#/$defs/{'FacesModelConfig' if task == 'faces' else 'ModelConfig'}"}
        for task in TASKS
    }
    models["additionalProperties"] = False
    return schema


__all__: list[str] = [
    "BridgeConfig",
    "CameraConfig",
    "FacesConfig",
    "FramesConfig",
    "HttpConfig",
    "MeterConfig",
    "ModelConfig",
    "MqttConfig",
    "TlsConfig",
    "explain",
    "json_schema",
    "load_config",
    "parse_config",
]

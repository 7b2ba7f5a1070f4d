"""Shared fixtures: a real Mosquitto per test, tiny models built from configs, an MQTT watcher.

The broker, ports, waiting and fonts come from the shared test kit, ``tests/support/``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from PIL import Image, ImageDraw, ImageFont

from tests.support.blip import reinit_vision
from tests.support.fonts import font
from tests.support.inbox import Inbox
from tests.support.mosquitto import Mosquitto

if TYPE_CHECKING:
    from bridge.engines.transformers_engine import TransformersEngine

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
FONT = font("DejaVuSans-Bold.ttf")

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _converted_models_in_the_test_runs_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Conversions the bridge caches (OpenVINO encoders) go to this run's folder, not ~/.cache."""
    os.environ["IMAGE_TO_TEXT_CACHE"] = str(tmp_path_factory.mktemp("model-cache"))


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path)
    broker.start()
    yield broker
    broker.stop()


class Watcher:
    """A plain MQTT client that records what arrives, as Home Assistant or a script would."""

    def __init__(
        self,
        port: int,
        topics: list[str],
        *,
        credentials: tuple[str, str] | None = None,
        ca_certs: Path | None = None,
    ) -> None:
        self.inbox = Inbox()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"watcher-{time.time_ns()}"
        )
        self.client.on_message = lambda c, u, m: self.inbox.put(m.topic, bytes(m.payload))
        if credentials is not None:
            self.client.username_pw_set(*credentials)
        if ca_certs is not None:
            self.client.tls_set(ca_certs=str(ca_certs))
        self.client.connect("127.0.0.1", port)
        for topic in topics:
            self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def wait_for(
        self, topic: str, predicate: Callable[[bytes], bool] = lambda _: True, timeout: float = 60
    ) -> bytes:
        return self.inbox.wait_for(topic, predicate, timeout)

    def wait_json(self, topic: str, timeout: float = 60, **match: Any) -> dict[str, Any]:
        return self.inbox.wait_json(topic, timeout, **match)

    def wait_ready(self, timeout: float = 300) -> dict[str, Any]:
        """The bridge's info once every model has loaded.

        A frame published earlier waits for its model, which is right, but the first bridge
        of a test run also converts its model (OpenVINO, int8 trials): on a slow 2-core CI
        host that alone has outlasted a result's 60 s wait.
        """

        def loaded(payload: bytes) -> bool:
            models = json.loads(payload).get("models", {})
            return bool(models) and all(m["status"] == "ready" for m in models.values())

        info: dict[str, Any] = json.loads(self.wait_for("itt/bridge/info", loaded, timeout))
        return info

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def watcher(mosquitto: Mosquitto) -> Iterator[Watcher]:
    w = Watcher(mosquitto.port, ["#"])
    yield w
    w.close()


# --- tiny models, built from configs with random weights (no hub here or in CI) ---


@pytest.fixture(scope="session")
def tiny_blip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipProcessor
    from transformers.models.blip import BlipImageProcessor

    folder = tmp_path_factory.mktemp("tiny-blip")
    words = ["a", "photo", "of", "the", "cat", "door", "man", "parcel", "at", "on"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *words]
    (folder / "vocab.txt").write_text("\n".join(vocab))
    tokenizer = BertTokenizer(str(folder / "vocab.txt"), bos_token="[DEC]")
    text = {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 64,
        "bos_token_id": 5,
        "sep_token_id": 3,
        "pad_token_id": 0,
    }
    vision = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "image_size": 64,
        "patch_size": 16,
    }
    config = BlipConfig(text_config=text, vision_config=vision, projection_dim=32)
    import torch

    torch.manual_seed(0)
    BlipForConditionalGeneration(config).save_pretrained(folder)
    image_processor = BlipImageProcessor(size={"height": 64, "width": 64})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def seeing_blip(tiny_blip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BLIP with vision weights that carry the image through to the decoder.

    Vision weights re-initialised (normal(0, 0.02), LayerNorm weight 1, bias 0) and the decoder's
    cross-attention drawn at normal(0, 0.1): ``BlipConfig``'s vision initializer_range of 1e-10
    leaves an encoder whose output never reaches the decoder, and at 0.02 the tiny decoder's
    logits for two different pictures still agree to a cosine of 0.99998, so every parity check
    would pass whatever encoder ran.
    """
    import torch
    from transformers import BlipForConditionalGeneration, BlipProcessor

    folder = tmp_path_factory.mktemp("seeing-blip")
    model = BlipForConditionalGeneration.from_pretrained(tiny_blip)
    generator = torch.Generator().manual_seed(3)
    reinit_vision(model, generator)
    with torch.no_grad():
        for name, module in model.text_decoder.named_modules():
            if isinstance(module, torch.nn.Linear) and ".crossattention." in name:
                module.weight.normal_(0.0, 0.1, generator=generator)
    model.save_pretrained(folder)
    BlipProcessor.from_pretrained(tiny_blip).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_trocr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import (
        BertTokenizer,
        TrOCRConfig,
        TrOCRProcessor,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    folder = tmp_path_factory.mktemp("tiny-trocr")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz0123456789"]
    (folder / "vocab.txt").write_text("\n".join(vocab))
    tokenizer = BertTokenizer(str(folder / "vocab.txt"))
    encoder = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=64,
        patch_size=16,
    )
    decoder = TrOCRConfig(
        vocab_size=len(vocab),
        d_model=32,
        decoder_layers=2,
        decoder_attention_heads=2,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
        decoder_start_token_id=2,
    )
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = 2, 0, 3
    import torch

    torch.manual_seed(0)
    model = VisionEncoderDecoderModel(config)
    model.generation_config.decoder_start_token_id = 2
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = 3
    model.save_pretrained(folder)
    processor = TrOCRProcessor(
        image_processor=ViTImageProcessor(size={"height": 64, "width": 64}), tokenizer=tokenizer
    )
    processor.save_pretrained(folder)
    return folder


# --- images ---


def render_sign(
    lines: list[str], size: tuple[int, int] = (900, 400), rotate: float = 0.0
) -> Image.Image:
    """A sign as a camera would see it: dark letters on a light board."""
    image = Image.new("RGB", size, (235, 232, 220))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 90)
    step = size[1] // (len(lines) + 1)
    for i, line in enumerate(lines, start=1):
        draw.text((size[0] // 2, step * i), line, fill=(20, 20, 20), font=font, anchor="mm")
    return image.rotate(rotate, fillcolor=(235, 232, 220)) if rotate else image


def photo(seed: int = 0, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A noisy picture with shapes: enough structure for a captioner to chew on."""
    import numpy as np

    rng = np.random.default_rng(seed)
    array = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(array)
    draw = ImageDraw.Draw(image)
    draw.rectangle((100 + seed, 100, 300, 400), fill=(120, 60, 30))
    return image


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def jpeg_segment(marker: int, body: bytes) -> bytes:
    """One JPEG header segment: marker, length, body."""
    return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body


def crafted_jpeg_header(size: tuple[int, int] = (1920, 1080)) -> bytes:
    """A colour JPEG's header up to its scans: empty tables, then the baseline frame header."""
    width, height = size
    components = bytes([3, 1, 17, 0, 2, 17, 0, 3, 17, 0])
    frame = bytes([8]) + height.to_bytes(2, "big") + width.to_bytes(2, "big") + components
    tables = jpeg_segment(0xDB, bytes(65)) + jpeg_segment(0xC4, bytes([0, 1, *[0] * 15, 0]))
    return b"\xff\xd8" + tables + jpeg_segment(0xC0, frame)


#: A scan of the first colour only, with no data: libjpeg then accepts any number of them.
EMPTY_FIRST_COLOUR_SCAN = jpeg_segment(0xDA, bytes([1, 1, 0, 0, 63, 0]))


def jpeg_of_empty_scans(count: int, size: tuple[int, int] = (1920, 1080)) -> bytes:
    """A crafted JPEG: ``count`` empty scans, each of which walks every block of ``size``."""
    return crafted_jpeg_header(size) + EMPTY_FIRST_COLOUR_SCAN * count + b"\xff\xd9"


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# --- the bridge as a process, as users run it ---


@dataclass
class BridgeProcess:
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    #: How to start ``image-to-text``: the real command, or with the test-only engines added.
    launcher: tuple[str, ...] = ("-m", "bridge")
    #: More ``run`` options (``--log-format json``) and environment (``NOTIFY_SOCKET``).
    options: tuple[str, ...] = ()
    environ: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **self.environ)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, *self.launcher, "run", "-c", str(self.config_path), *self.options],
            stdout=log,
            stderr=log,
            env=env,
            cwd=REPO,
        )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def hangup(self) -> None:
        """SIGHUP, as ``systemctl reload`` sends it: reread the configuration."""
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def terminate(self, timeout: float = 15) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def bridge_config(tmp_path: Path, mosquitto: Mosquitto) -> Callable[..., Path]:
    """Write a bridge configuration pointing at the test's broker."""

    def write(cameras: dict[str, Any], models: dict[str, Any], **sections: Any) -> Path:
        data: dict[str, Any] = {
            "mqtt": {
                "host": "127.0.0.1",
                "port": mosquitto.port,
                "base_topic": "itt",
                "client_id": "bridge-under-test",
                "reconnect_max_delay": 2,
            },
            "models": models,
            "cameras": cameras,
        }
        for key, value in sections.items():
            if key == "mqtt":
                data["mqtt"].update(value)
            else:
                data[key] = value
        path = tmp_path / "bridge.yaml"
        path.write_text(yaml.safe_dump(data, allow_unicode=True))
        return path

    return write


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None] | pytest.TestReport:
    """A failing test's report carries the logs of the bridges it ran (CI shows only output)."""
    report: pytest.TestReport = yield
    if report.failed:
        for proc in item.stash.get(_BRIDGES, []):
            report.sections.append((f"bridge log {proc.log_path.name}", proc.log[-8000:]))
    return report


_BRIDGES = pytest.StashKey[list["BridgeProcess"]]()


@pytest.fixture
def run_bridge(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., BridgeProcess]]:
    started: list[BridgeProcess] = []
    request.node.stash[_BRIDGES] = started

    def start(
        config_path: Path,
        *,
        faulty: bool = False,
        options: tuple[str, ...] = (),
        environ: dict[str, str] | None = None,
    ) -> BridgeProcess:
        proc = BridgeProcess(config_path, tmp_path / f"bridge{len(started)}.log", options=options)
        proc.environ.update(environ or {})
        if faulty:
            proc.launcher = (str(Path(__file__).with_name("fault_bridge.py")),)
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.process is not None and proc.process.poll() is None:
            proc.process.kill()
            proc.process.wait(10)


def caption_engine(
    model: Path, precision: str = "auto", threads: int | None = None
) -> TransformersEngine:
    """A loaded CPU caption engine for a test model folder, eight new tokens at most."""
    from bridge.config import ModelConfig
    from bridge.engines.transformers_engine import TransformersEngine

    loaded = TransformersEngine(
        ModelConfig(
            engine="transformers",
            model=str(model),
            precision=precision,  # type: ignore[arg-type]
            device="cpu",
            max_new_tokens=8,
            threads=threads,
        )
    )
    loaded.load()
    return loaded

"""Shared pieces of the benchmarks: a base-sized random BLIP, a broker, camera-like frames.

No model hub here: the caption model is ``BlipConfig()`` (the configuration of
``Salesforce/blip-image-captioning-base``) with random weights, so it costs what the real model
costs while its words are noise.  It is built once and kept under ``~/.cache/image-to-text``.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(
    os.environ.get("IMAGE_TO_TEXT_BENCH_CACHE", Path.home() / ".cache/image-to-text/bench")
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bars in tables

#: Sizes of random BLIPs: "base" is blip-image-captioning-base's compute, "small" a few layers.
SIZES = ("base", "small")


def blip_model(size: str = "base") -> Path:
    """A BLIP folder (``save_pretrained`` layout) with random weights; built on first use.

    The vision weights are re-initialised (``reinit_vision``): ``BlipConfig``'s vision
    initializer_range of 1e-10 would give an encoder whose output (~1e-9) never reaches the
    decoder, so any precision would pass the parity check and int8 calibration would see zeros.
    """
    folder = CACHE / f"blip-{size}-random-v2"
    if (folder / "config.json").exists() and (folder / "vocab.txt").exists():
        return folder
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipProcessor
    from transformers.models.blip import BlipImageProcessor

    if size == "base":
        config = BlipConfig()
    elif size == "small":
        text = {
            "num_hidden_layers": 2,
            "hidden_size": 256,
            "num_attention_heads": 4,
            "intermediate_size": 1024,
            "encoder_hidden_size": 256,
        }
        vision = {
            "num_hidden_layers": 2,
            "hidden_size": 256,
            "num_attention_heads": 4,
            "intermediate_size": 1024,
            "image_size": 224,
            "patch_size": 16,
        }
        config = BlipConfig(text_config=text, vision_config=vision)
    else:
        raise ValueError(f"unknown size {size!r}, expected one of {SIZES}")
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    vocab_size = config.text_config.vocab_size
    specials = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}
    specials[config.text_config.bos_token_id] = "[DEC]"
    vocab = [specials.get(i, f"w{i}") for i in range(vocab_size)]
    (tmp / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(tmp / "vocab.txt"), bos_token="[DEC]")
    from tests.support.blip import reinit_vision

    torch.manual_seed(0)
    model = BlipForConditionalGeneration(config)
    reinit_vision(model)
    model.save_pretrained(tmp)
    image_size = config.vision_config.image_size
    image_processor = BlipImageProcessor(size={"height": image_size, "width": image_size})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(tmp)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


# --- frames a camera would send ---


def scene(seed: int, size: tuple[int, int] = (1280, 720)) -> Image.Image:
    """A smooth 'scene' with shapes (cameras see surfaces, not white noise)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(30, 220, (9, 16, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y = int(rng.integers(0, size[0] - 200)), int(rng.integers(0, size[1] - 150))
        w, h = int(rng.integers(60, 200)), int(rng.integers(60, 150))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.rectangle((x, y, x + w, y + h), fill=colour)
    return image.filter(ImageFilter.GaussianBlur(1.5))


def with_noise(image: Image.Image, seed: int, sigma: float = 4.0) -> Image.Image:
    """The same scene as a sensor sees it again: gaussian noise per pixel."""
    rng = np.random.default_rng(seed)
    array = np.asarray(image, dtype=np.int16)
    noisy = array + rng.normal(0, sigma, array.shape).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> str:
    """``uptime``'s load averages: the benchmark shares the CPU, so say how busy it was."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), q))


#: The CPU features that decide which precision path is fastest (bench/RESULTS.md).
FEATURES = ("avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def cpu_name() -> str:
    """The CPU's model name and the features that matter here, from /proc/cpuinfo."""
    name, flags = "unknown CPU", set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name == "unknown CPU":
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    present = [f for f in FEATURES if f in flags]
    listed = " ".join(present) or "none of " + " ".join(FEATURES)
    return f"{name}, {os.cpu_count()} CPUs, features: {listed}"


def gpu_name(device: str) -> str:
    """The accelerator behind a torch device string, with its memory and torch's CUDA version."""
    import torch

    if not torch.cuda.is_available():
        return "CUDA not available"
    props = torch.cuda.get_device_properties(torch.device(device))
    memory = props.total_memory / 2**30
    return f"{props.name}, {memory:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}"

"""A model's vision encoder compiled by OpenVINO: int8 (NNCF, calibrated), the rest bf16.

Why: on a CPU without AMX (Intel N100, AMD Ryzen/EPYC) torch's best vision encoder was dynamic
int8 at 0.41 s a frame for BLIP-base; OpenVINO's static int8 kernels with its bf16 (where the CPU
has AVX-512 BF16) ran the same encoder in about half that (bench/RESULTS.md, issue 14).

Converting is slow (export, calibration, quantization: tens of seconds for BLIP-base), so the
result is written to a cache directory keyed by the model's revision and the OpenVINO and NNCF
versions; a later start reads it back in a second or two.  What runs is still checked against
fp32 at every start by the load-time parity check (``precision.py``), which falls back if it
drifts: a cache hit is no excuse to skip it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

_LOGGER = logging.getLogger(__name__)
#: Bumped whenever what is cached changes shape (outputs, quantization settings).
CACHE_FORMAT = 1
#: Where converted encoders go unless ``IMAGE_TO_TEXT_CACHE`` says otherwise.
DEFAULT_CACHE = Path("~/.cache/image-to-text").expanduser()


def available() -> bool:
    """Whether OpenVINO (and NNCF for its int8 form) can be imported here."""
    return all(importlib.util.find_spec(name) is not None for name in ("openvino", "nncf"))


def cache_root() -> Path:
    """The folder holding converted encoders (``$IMAGE_TO_TEXT_CACHE/openvino``)."""
    base = os.environ.get("IMAGE_TO_TEXT_CACHE")
    return (Path(base).expanduser() if base else DEFAULT_CACHE) / "openvino"


def revision(config: Any) -> str:
    """The weights' identity: the hub commit, or a local folder's files (names, sizes, times)."""
    commit = getattr(config, "_commit_hash", None)
    if commit:
        return str(commit)
    folder = Path(str(getattr(config, "_name_or_path", "") or ""))
    digest = hashlib.sha1(usedforsecurity=False)
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix in (".json", ".safetensors", ".bin"):
                stat = path.stat()
                digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    else:
        digest.update(config.to_json_string().encode())
    return digest.hexdigest()


def cache_key(config: Any, image_shape: tuple[int, int], *, quantize: bool = True) -> str:
    """One folder name per model revision, input size, form and OpenVINO/NNCF versions."""
    parts = [
        "int8" if quantize else "float",
        str(getattr(config, "_name_or_path", "")),
        revision(config),
        importlib.metadata.version("openvino"),
        importlib.metadata.version("nncf"),
        f"{image_shape[0]}x{image_shape[1]}",
        f"format{CACHE_FORMAT}",
    ]
    return hashlib.sha1("|".join(parts).encode(), usedforsecurity=False).hexdigest()[:20]


class _Outputs(torch.nn.Module):
    """The encoder as a function of the pixels alone, returning plain tensors for the export."""

    def __init__(self, vision: torch.nn.Module) -> None:
        super().__init__()
        self.vision = vision

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Last hidden state and pooled output, as transformers' vision models give them."""
        out = self.vision(pixel_values=pixel_values)
        return out.last_hidden_state, out.pooler_output


class OpenVinoVision(torch.nn.Module):
    """Stands in for the torch vision encoder: same call, same outputs, OpenVINO inside."""

    def __init__(self, compiled: Any, *, cached: bool, seconds: float) -> None:
        super().__init__()
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        #: Whether the converted encoder came from the cache, and how long getting it took.
        self.cached = cached
        self.seconds = seconds

    def forward(self, pixel_values: torch.Tensor, *_: Any, **__: Any) -> Any:
        """``BaseModelOutputWithPooling`` in fp32, whatever extra arguments the caller passes."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        pixels = pixel_values.detach().float().contiguous().numpy()
        self.request.infer({0: pixels})
        last = torch.from_numpy(self.request.get_output_tensor(0).data.copy())
        pooled = torch.from_numpy(self.request.get_output_tensor(1).data.copy())
        return BaseModelOutputWithPooling(last_hidden_state=last, pooler_output=pooled)


def compile_vision(
    vision: torch.nn.Module,
    calibration: list[torch.Tensor],
    config: Any,
    *,
    threads: int,
    bf16: bool,
    folder: Path | None = None,
    quantize: bool = True,
) -> OpenVinoVision:
    """``vision`` converted (or read from the cache), int8-quantized, compiled for this CPU.

    ``calibration``: pixel batches as the processor makes them (the parity check's frame and
    a few more); NNCF sets the int8 ranges from them.  ``quantize=False`` (benchmarks): no
    int8, the encoder at the inference precision alone (bf16 or fp32).
    """
    import openvino as ov

    started = time.perf_counter()
    height, width = calibration[0].shape[-2:]
    size = (int(height), int(width))
    folder = folder or cache_root() / cache_key(config, size, quantize=quantize)
    xml = folder / "vision.xml"
    core = ov.Core()
    cached = xml.is_file()
    if not cached:
        _save(_convert(vision, calibration, size, quantize=quantize), folder)
    # Always compile what is on disk: a freshly converted model may still share memory with
    # the torch weights, which are let go once it is accepted.
    model = core.read_model(xml)
    properties = {
        "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
        "INFERENCE_NUM_THREADS": max(1, threads),
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "CACHE_DIR": str(folder / "compiled"),
    }
    compiled = core.compile_model(model, "CPU", properties)
    seconds = time.perf_counter() - started
    _LOGGER.info(
        "vision encoder in OpenVINO %s (%s, %.1f s): %s",
        "int8" if quantize else "without int8",
        "cached" if cached else "converted",
        seconds,
        folder,
    )
    return OpenVinoVision(compiled, cached=cached, seconds=seconds)


def _convert(
    vision: torch.nn.Module,
    calibration: list[torch.Tensor],
    size: tuple[int, int],
    *,
    quantize: bool,
) -> Any:
    import nncf
    import openvino as ov

    with torch.inference_mode():
        model = ov.convert_model(
            _Outputs(vision).eval(),
            example_input=calibration[0].float(),
            input=[ov.PartialShape([-1, 3, *size])],
        )
    if not quantize:
        return model
    dataset = nncf.Dataset([batch.float().numpy() for batch in calibration])
    return nncf.quantize(
        model,
        dataset,
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(calibration),
    )


def _save(model: Any, folder: Path) -> None:
    """Write the IR next to its final place and rename it in, so no reader sees half a file."""
    import openvino as ov

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=folder.parent))
    try:
        ov.save_model(model, staging / "vision.xml", compress_to_fp16=False)
        if (folder / "vision.xml").is_file():  # another bridge got there first: keep its copy
            return
        shutil.rmtree(folder, ignore_errors=True)  # a broken copy (no vision.xml) goes
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

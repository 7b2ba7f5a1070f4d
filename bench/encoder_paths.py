"""The vision encoder alone, every way we know to run it on a CPU, side by side.

Same model (``_support.blip_model``: ``BlipConfig()``, i.e. blip-image-captioning-base's
shape, ViT-B/16 at 384 px, random weights with the vision part re-initialised normal(0, 0.02),
LayerNorm 1/0), same frames (``_support.scene``), same threads.  For each path: seconds for a
batch of 1 and per frame in a batch of 4 (median of ``--runs`` after a warm-up), and the worst
cosine of its last hidden state to fp32's.

    .venv/bin/python bench/encoder_paths.py              # ~3-6 minutes on 2 cores
    .venv/bin/python bench/encoder_paths.py --runs 3 --paths torch-int8,openvino-int8

The ONNX Runtime rows need the ``onnx`` and ``onnxscript`` packages (``pip install
'.[bench]'``) to export; without them those rows are skipped with a line saying so.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _support

from bridge.cli import set_thread_policy

set_thread_policy()  # as the bridge does before torch loads: OpenMP threads spin briefly
import numpy as np  # noqa: E402 - after the thread policy
import torch  # noqa: E402 - after the thread policy

Runner = Callable[[torch.Tensor], torch.Tensor]
PATHS = (
    "torch-fp32",
    "torch-int8",
    "torch-bf16",
    "ort-fp32",
    "ort-int8-dynamic",
    "ort-int8-static",
    "openvino-fp",
    "openvino-int8",
)


class _Last(torch.nn.Module):
    def __init__(self, vision: torch.nn.Module) -> None:
        super().__init__()
        self.vision = vision

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.vision(pixel_values=pixel_values).last_hidden_state


def torch_runner(vision: torch.nn.Module, form: str) -> Runner:
    from bridge.engines.precision import quantize_linear_layers

    module = copy.deepcopy(vision)
    if form == "int8":
        module = quantize_linear_layers(module, torch)
    elif form == "bf16":
        module = module.to(torch.bfloat16)
    dtype = torch.bfloat16 if form == "bf16" else torch.float32

    def run(pixels: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(pixel_values=pixels.to(dtype)).last_hidden_state.float()

    return run


def onnx_runner(
    vision: torch.nn.Module, form: str, calibration: list[torch.Tensor], work: Path, threads: int
) -> Runner:
    import onnxruntime as ort
    from onnxruntime import quantization as q

    path = work / "vision.onnx"
    if not path.exists():
        with torch.inference_mode():
            torch.onnx.export(
                _Last(vision).eval(),
                (calibration[0],),
                str(path),
                input_names=["pixel_values"],
                output_names=["last"],
                dynamic_axes={"pixel_values": {0: "batch"}, "last": {0: "batch"}},
                dynamo=False,
            )
    model = path
    if form == "int8-dynamic":
        model = work / "vision-dyn.onnx"
        q.quantize_dynamic(str(path), str(model), weight_type=q.QuantType.QInt8)
    elif form == "int8-static":
        model = work / "vision-static.onnx"
        batches = iter([{"pixel_values": c.numpy()} for c in calibration])

        class Reader(q.CalibrationDataReader):
            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(batches, None)

        q.quantize_static(
            str(path),
            str(model),
            Reader(),
            quant_format=q.QuantFormat.QDQ,
            activation_type=q.QuantType.QUInt8,
            weight_type=q.QuantType.QInt8,
            per_channel=True,
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def run(pixels: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"pixel_values": pixels.numpy()})[0])

    return run


def openvino_runner(
    vision: torch.nn.Module, form: str, calibration: list[torch.Tensor], work: Path, threads: int
) -> Runner:
    from bridge.engines.openvino_vision import compile_vision
    from bridge.engines.precision import cpu_has

    bf16 = cpu_has("avx512_bf16") or cpu_has("amx_bf16")  # as the bridge decides

    compiled = compile_vision(
        vision,
        calibration,
        None,
        threads=threads,
        bf16=bf16,
        folder=work / f"openvino-{form}",
        quantize=form == "int8",
    )
    kind = "bf16" if bf16 else "f32"
    print(f"  openvino-{form} ({kind} inference): converted, compiled in {compiled.seconds:.1f} s")
    again = compile_vision(
        vision,
        calibration,
        None,
        threads=threads,
        bf16=bf16,
        folder=work / f"openvino-{form}",
        quantize=form == "int8",
    )
    print(f"  openvino-{form}: from the cache in {again.seconds:.1f} s", flush=True)

    def run(pixels: torch.Tensor) -> torch.Tensor:
        return again(pixels).last_hidden_state  # type: ignore[no-any-return]

    return run


def timed(run: Runner, pixels: torch.Tensor, runs: int) -> float:
    run(pixels)  # warm-up at this shape
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        run(pixels)
        times.append(time.perf_counter() - started)
    return float(statistics.median(times))


def cosine(reference: torch.Tensor, candidate: torch.Tensor) -> float:
    flat = reference.flatten(1), candidate.flatten(1)
    return float(torch.nn.functional.cosine_similarity(*flat, dim=1).min())


def main(argv: list[str] | None = None) -> int:
    """Print one row per path: batch 1, batch 4 per frame, cosine to fp32."""
    from bridge.engines.blip_attention import use_fused_attention

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--size", default="base", choices=_support.SIZES)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from transformers import BlipForConditionalGeneration, BlipProcessor

    folder = _support.blip_model(args.size)
    model = BlipForConditionalGeneration.from_pretrained(folder).eval()
    use_fused_attention(model)
    vision = model.vision_model
    processor = BlipProcessor.from_pretrained(folder)
    frames = [_support.scene(2000 + i) for i in range(12)]

    def pixels(images: list[Any]) -> torch.Tensor:
        return processor(images=images, return_tensors="pt")["pixel_values"]  # type: ignore[no-any-return]

    calibration = [pixels([frame]) for frame in frames[4:12]]
    one, four = pixels(frames[:1]), pixels(frames[:4])
    with torch.inference_mode():
        reference = vision(pixel_values=four).last_hidden_state
    print(f"# vision encoder paths: {_support.cpu_name()}, {args.threads} threads")
    print(f"# model: BlipConfig() ({args.size}), vision re-initialised normal(0, 0.02)")
    print(f"# load average before: {_support.load_average()}")
    print("| path | batch 1 s | batch 4 s a frame | cosine to fp32 | load |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="encoder-paths-") as tmp:
        work = Path(tmp)
        for name in args.paths.split(","):
            family, _, form = name.partition("-")
            try:
                if family == "torch":
                    run = torch_runner(vision, form)
                elif family == "ort":
                    run = onnx_runner(vision, form, calibration, work, args.threads)
                else:
                    run = openvino_runner(vision, form, calibration, work, args.threads)
            except ImportError as err:
                print(f"| {name} | skipped: {err} | | | |", flush=True)
                continue
            single = timed(run, one, args.runs)
            batch = timed(run, four, args.runs) / 4
            similar = cosine(reference, run(four))
            print(
                f"| {name} | {single:.3f} | {batch:.3f} | {similar:.5f} | "
                f"{_support.load_average()} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Decoding frames while the caption model runs: what the overlap costs the model, what it hides.

A frame that arrives while a batch runs is decoded beside it (``bridge/intake.py``, in a worker
thread), so by the time the model is free the frame is ready.  On a 2-core host the decode then
takes CPU from the batch.  This measures both sides on the bridge's own engine and decode
(with the scene signature, as the intake makes them): the batch alone, the decodes alone, and
both at once.  The overlap pays when it delays the batch by less than the decodes take alone.

    .venv/bin/python bench/decode_overlap.py --size small --frames 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _support

from bridge.cli import set_thread_policy

set_thread_policy()  # as the bridge does before torch loads

NEW_TOKENS = 12
#: How far into the batch the frames arrive, as a fraction of the batch's time alone.
ARRIVAL = 0.25


def _decode(data: bytes, size: int | None) -> None:
    from bridge.dedup import scene_signature
    from bridge.frames import decode_image

    scene_signature(decode_image(data, 40_000_000, size))


def _decodes(pool: ThreadPoolExecutor, frames: list[bytes], size: int | None) -> float:
    """Seconds until all are decoded, each submitted at once to the pool (cameras' frames
    arriving together)."""

    submitted = time.perf_counter()
    futures = [pool.submit(_decode, data, size) for data in frames]
    for future in futures:
        future.result()
    return time.perf_counter() - submitted


def measure(
    engine: Any, batch_frames: list[bytes], frames: list[bytes], runs: int, workers: int
) -> dict[str, float]:
    """Medians in ms: the batch alone, the decodes alone, both overlapped."""
    from bridge.engines.base import JobOptions
    from bridge.frames import decode_image

    size = engine.input_size
    images = [decode_image(f, 40_000_000, size) for f in batch_frames]
    options = [JobOptions()] * len(images)
    pool = ThreadPoolExecutor(max_workers=workers)
    engine.run_batch(images, options)  # warm-up
    _decodes(pool, frames, size)
    alone, decodes, overlapped, delayed_decodes = [], [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        engine.run_batch(images, options)
        alone.append(time.perf_counter() - started)
        time.sleep(0.05)
        decodes.append(_decodes(pool, frames, size))
        time.sleep(0.05)
    arrival = statistics.median(alone) * ARRIVAL

    def late_frames() -> None:
        time.sleep(arrival)
        delayed_decodes.append(_decodes(pool, frames, size))

    for _ in range(runs):
        side = threading.Thread(target=late_frames)
        started = time.perf_counter()
        side.start()
        engine.run_batch(images, options)
        overlapped.append(time.perf_counter() - started)
        side.join()
        time.sleep(0.05)
    pool.shutdown()
    ms = 1000.0
    return {
        "batch_alone_ms": statistics.median(alone) * ms,
        "decodes_alone_ms": statistics.median(decodes) * ms,
        "batch_with_decodes_ms": statistics.median(overlapped) * ms,
        "decodes_during_batch_ms": statistics.median(delayed_decodes) * ms,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="base", choices=_support.SIZES)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--frames", type=int, default=4, help="frames decoded beside the batch")
    parser.add_argument("--batch", type=int, default=4, help="frames in the model's batch")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--workers",
        default="6,2,1",
        help="decoding threads to try (6: asyncio.to_thread's default pool on 2 cores)",
    )
    args = parser.parse_args()

    from bridge.config import ModelConfig
    from bridge.engines.transformers_engine import TransformersEngine

    model = _support.blip_model(args.size)
    engine = TransformersEngine(
        ModelConfig(
            engine="transformers",
            model=str(model),
            precision=args.precision,
            device="cpu",
            max_new_tokens=NEW_TOKENS,
        )
    )
    engine.load()
    batch_frames = [_support.jpeg(_support.scene(2000 + i)) for i in range(args.batch)]
    frames = [_support.jpeg(_support.scene(3000 + i)) for i in range(args.frames)]
    print(f"# decode overlap: {_support.cpu_name()}")
    print(
        f"# model: BlipConfig() random weights ({args.size}), {engine.precision}, batch "
        f"{args.batch}; {args.frames} 1280x720 JPEGs decoded with their scene signatures, "
        f"arriving {ARRIVAL:.0%} into the batch; median of {args.runs}"
    )
    print(f"# load average before: {_support.load_average()}")
    print(
        "| decoding threads | batch alone | decodes alone | batch with decodes | its delay "
        "| decodes during it |"
    )
    print("|---|---|---|---|---|---|")
    for workers in (int(w) for w in args.workers.split(",")):
        row = measure(engine, batch_frames, frames, args.runs, workers)
        delay = row["batch_with_decodes_ms"] - row["batch_alone_ms"]
        print(
            f"| {workers} | {row['batch_alone_ms']:.1f} ms | {row['decodes_alone_ms']:.2f} ms | "
            f"{row['batch_with_decodes_ms']:.1f} ms | {delay:+.1f} ms | "
            f"{row['decodes_during_batch_ms']:.2f} ms |",
            flush=True,
        )
    print(f"# load average after: {_support.load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

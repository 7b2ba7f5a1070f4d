"""Meter and faces engines: time per frame alone, and while caption batches run beside them.

In the bridge every task's model runs in a thread of its own (``bridge/scheduler.py``), so a
meter camera's frame never queues behind a caption batch; it still shares the CPU's cores with
it.  This measures both: the engine alone, then the same frames while another thread keeps the
caption engine busy with batches of four (as four caption cameras would).

    .venv/bin/python bench/side_engines.py     # printed by caption_speed.py too
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _support

from bridge.cli import set_thread_policy

set_thread_policy()  # as the bridge does before torch loads: OpenMP threads spin briefly

RUNS = 6


def _engines(work: Path) -> list[tuple[str, Any, Any, Any]]:
    """(name, engine, frame, options) for the meter and the faces engines."""
    from PIL import Image

    from bridge.config import FacesConfig, MeterConfig, ModelConfig
    from bridge.engines.base import JobOptions
    from bridge.engines.faces_engine import FacesEngine
    from bridge.engines.meter_engine import MeterEngine
    from tests.bridge.meter_kit import METER

    meter = MeterEngine(ModelConfig(engine="meter", threads=1))
    meter.load()
    meter_options = JobOptions(meter=MeterConfig(roi=list(METER.roi), digits=8, decimals=3))
    faces = FacesEngine(ModelConfig(engine="dlib", faces=FacesConfig(db=str(work / "faces.json"))))
    faces.load()
    door = Image.open(_support.REPO / "config/samples/visitors_at_door.jpg").convert("RGB")
    return [
        ("meter (digit recogniser, 1 thread)", meter, METER.image.convert("RGB"), meter_options),
        (f"faces (dlib, {door.width}x{door.height} frame)", faces, door, JobOptions()),
    ]


def _median_ms(engine: Any, frame: Any, options: Any) -> float:
    engine.run_batch([frame], [options])  # warm-up
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        engine.run_batch([frame], [options])
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(caption: Any | None) -> list[dict[str, Any]]:
    """Rows: per-frame ms alone and beside ``caption`` (a loaded caption engine) kept busy."""
    from bridge.engines.base import JobOptions

    rows = []
    with tempfile.TemporaryDirectory(prefix="side-engines-") as tmp:
        for name, engine, frame, options in _engines(Path(tmp)):
            row: dict[str, Any] = {"engine": name, "alone_ms": _median_ms(engine, frame, options)}
            if caption is not None:
                stop = threading.Event()
                scenes = [_support.scene(3000 + i).resize((640, 360)) for i in range(4)]

                def busy(stop: threading.Event = stop, scenes: list[Any] = scenes) -> None:
                    while not stop.is_set():
                        caption.run_batch(scenes, [JobOptions()] * len(scenes))

                thread = threading.Thread(target=busy, name="model-caption", daemon=True)
                thread.start()
                time.sleep(1.0)  # the first caption batch is under way
                row["beside_caption_ms"] = _median_ms(engine, frame, options)
                stop.set()
                thread.join()
            row["load_average"] = _support.load_average()
            rows.append(row)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| engine | ms a frame alone | ms a frame while caption batches run | load |",
        "|---|---|---|---|",
    ]
    for row in rows:
        beside = row.get("beside_caption_ms")
        lines.append(
            f"| {row['engine']} | {row['alone_ms']:.1f} | "
            f"{'-' if beside is None else f'{beside:.1f}'} | {row['load_average']} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Time both engines, beside the bench's base-sized caption model at ``auto``."""
    import logging

    from bridge.config import ModelConfig
    from bridge.engines.transformers_engine import TransformersEngine

    logging.basicConfig(level=logging.INFO, format="# %(name)s: %(message)s")
    started = time.perf_counter()
    caption = TransformersEngine(
        ModelConfig(
            engine="transformers", model=str(_support.blip_model("base")), max_new_tokens=12
        )
    )
    caption.load()
    print(f"# {_support.cpu_name()}; caption beside: {caption.precision} {caption.details()}")
    print(f"# caption model loaded in {time.perf_counter() - started:.1f} s")
    print(format_rows(measure(caption)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

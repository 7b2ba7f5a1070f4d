"""Deduplication over the real bridge: a static camera, 200 frames, 5 real scene changes.

Every frame is the same doorstep seen again -- fresh sensor noise, re-encoded at a different
JPEG quality -- except at five moments when the scene really changes (a parcel covering 5% of
the frame appears, a person walks up, the parcel is taken, a car parks, the light drops).
The frames go to ``image-to-text run`` over a real Mosquitto; the figure of merit is how many
frames cost no model time, and whether every change was still captioned.

    .venv/bin/python bench/dedup_bench.py            # through the bridge (about a minute)
    .venv/bin/python bench/dedup_bench.py --direct   # the detector alone, no broker
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _support
import numpy as np
from caption_speed import BridgeRun
from PIL import Image, ImageDraw, ImageEnhance

from bridge.dedup import DEFAULT_THRESHOLD, SceneMemory, scene_signature
from bridge.frames import decode_image, frame_id_of

SIZE = (1280, 720)


@dataclass(frozen=True)
class Frame:
    """One published frame and the scene (segment) it shows."""

    data: bytes
    segment: int


def scenes() -> list[tuple[str, Image.Image]]:
    """The doorstep, then five real changes, each building on the last."""
    base = _support.scene(7, SIZE)
    parcel = base.copy()
    side = int((SIZE[0] * SIZE[1] * 0.05) ** 0.5)  # a parcel covering 5% of the frame
    ImageDraw.Draw(parcel).rectangle((700, 460, 700 + side, 460 + side), fill=(150, 110, 70))
    person = parcel.copy()
    ImageDraw.Draw(person).rectangle((300, 200, 420, 640), fill=(40, 50, 90))
    ImageDraw.Draw(person).ellipse((320, 130, 400, 210), fill=(200, 160, 130))
    taken = base.copy()
    car = taken.copy()
    ImageDraw.Draw(car).rectangle((100, 420, 620, 700), fill=(180, 20, 20))
    dusk = ImageEnhance.Brightness(car).enhance(0.7)
    return [
        ("doorstep", base),
        ("a parcel appears (5% of the frame)", parcel),
        ("a person walks up", person),
        ("person and parcel gone", taken),
        ("a car parks", car),
        ("the light drops by 30%", dusk),
    ]


def frames(count: int = 200, changes_at: tuple[int, ...] = (30, 70, 110, 150, 180)) -> list[Frame]:
    """``count`` frames; the scene changes at the given frame numbers."""
    pictures = scenes()
    out: list[Frame] = []
    segment = 0
    rng = np.random.default_rng(5)
    for i in range(count):
        if segment < len(changes_at) and i == changes_at[segment]:
            segment += 1
        noisy = _support.with_noise(pictures[segment][1], seed=i, sigma=3.0)
        out.append(Frame(_support.jpeg(noisy, quality=int(rng.integers(70, 93))), segment))
    return out


def direct(stream: list[Frame]) -> list[int]:
    """Run the detector alone; the indexes of the frames it would analyse."""
    memory = SceneMemory()
    analysed = []
    for i, frame in enumerate(stream):
        image = decode_image(frame.data, 40_000_000, 384)
        signature = scene_signature(image)
        if memory.is_new_scene("door", signature):
            memory.remember("door", signature)
            analysed.append(i)
    return analysed


def through_bridge(stream: list[Frame], fps: float) -> tuple[list[int], dict[str, Any]]:
    """Publish the frames to a real bridge at ``fps``; indexes of captioned frames, counters."""
    by_id = {frame_id_of(f.data): i for i, f in enumerate(stream)}
    with tempfile.TemporaryDirectory(prefix="dedup-bench-") as tmp:
        run = BridgeRun(Path(tmp), _support.blip_model("small"), 1, "auto", 4, None, ocr=False)
        try:
            run.start()
            assert run.client is not None
            for frame in stream:
                run.client.publish("bench_cam/0", frame.data, qos=1)
                time.sleep(1 / fps)
            counters = _wait_for_counters(run, len(stream))
        finally:
            run.stop()
    # analysed = results that are not a repeat of the last analysis ("unchanged")
    captioned = sorted(
        by_id[f]
        for f, (_, data) in run.received.items()
        if f in by_id and not data.get("unchanged")
    )
    return captioned, counters


def _wait_for_counters(run: BridgeRun, total: int, timeout: float = 120) -> dict[str, Any]:
    """The camera's counters, once every frame is accounted for (the bridge publishes them)."""
    deadline = time.monotonic() + timeout
    with run.arrived:
        while time.monotonic() < deadline:
            counters: dict[str, Any] = run.info.get("counters", {}).get("cam0", {})
            ended = sum(counters.get(k, 0) for k in ("results", "errors", "superseded"))
            if counters.get("received") == total and ended == total:
                return counters
            run.arrived.wait(0.5)
    raise RuntimeError(f"counters never added up: {run.info.get('counters')}")


def report(stream: list[Frame], analysed: list[int], how: str) -> bool:
    """Print the figures; whether the case passes (>= 95% skipped, every change captioned)."""
    segments = len(scenes())
    seen = {stream[i].segment for i in analysed}
    skipped = len(stream) - len(analysed)
    names = [name for name, _ in scenes()]
    missed = [names[s] for s in range(1, segments) if s not in seen]
    ok = skipped / len(stream) >= 0.95 and not missed
    print(f"dedup ({how}, threshold {DEFAULT_THRESHOLD}): {len(stream)} frames")
    print(f"  analysed {len(analysed)} (frames {analysed}), skipped {skipped}")
    print(
        f"  = {skipped / len(stream):.1%} skipped; changes captioned: "
        f"{segments - 1 - len(missed)} of {segments - 1}"
        + (f"; MISSED: {missed}" if missed else "")
    )
    print("PASS" if ok else "FAIL", "(target: >= 95% skipped, all 5 changes captioned)")
    return ok


def main(argv: list[str] | None = None) -> int:
    """Run the case through the bridge (or the detector alone with ``--direct``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--direct", action="store_true", help="the detector alone, no broker")
    parser.add_argument("--fps", type=float, default=10.0, help="camera frame rate")
    args = parser.parse_args(argv)
    stream = frames()
    if args.direct:
        return 0 if report(stream, direct(stream), "detector alone") else 1
    captioned, counters = through_bridge(stream, args.fps)
    print(f"bridge counters: {json.dumps(counters)}")
    return 0 if report(stream, captioned, "real bridge over Mosquitto") else 1


if __name__ == "__main__":
    sys.exit(main())

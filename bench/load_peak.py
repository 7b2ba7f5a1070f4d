"""Peak RSS while the caption model loads, per precision, each start in a fresh process.

Why: ``precision: auto`` on a CPU without AMX checks and times two forms at load; holding both
at once took peak RSS at load from ~2.0 to ~3.5 GB for BLIP-base, which a 4 GB board cannot
afford.  Each case here is one child process that only loads the bench model (BLIP-base
shaped, random weights) the way the bridge does, then reports ``ru_maxrss``, the load time and
what was chosen.  ``--code`` runs another checkout's ``bridge`` (say, ``git archive main``) for
a before/after.  ``auto`` is run twice against one cache: the first start probes, the second
reads the probe's record (where this code has one).

    .venv/bin/python bench/load_peak.py --cache /tmp/itt-cache
    .venv/bin/python bench/load_peak.py --cache /tmp/itt-cache-main --code /tmp/main-tree
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _support

REPO = Path(__file__).resolve().parents[1]


def child(model: str, precision: str, code: str, captions: str) -> dict[str, Any]:
    """Load ``model`` at ``precision`` with the ``bridge`` in ``code``; time ``captions``."""
    import logging
    import resource
    import time

    sys.path.insert(0, code)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from bridge.cli import set_thread_policy

    set_thread_policy()  # as ``image-to-text run`` does before torch loads
    from bridge.config import ModelConfig
    from bridge.engines.transformers_engine import TransformersEngine

    started = time.perf_counter()
    engine = TransformersEngine(
        ModelConfig(engine="transformers", model=model, precision=precision, device="cpu")  # type: ignore[arg-type]
    )
    engine.load()
    peak = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    loaded = round(time.perf_counter() - started, 1)
    seconds = caption_seconds(engine, int(captions))
    return {
        "precision": precision,
        "chosen": engine.precision,
        "load_s": loaded,
        "peak_rss_mb": peak,
        "caption_median_s": round(statistics.median(seconds), 3) if seconds else None,
        "caption_s": [round(value, 3) for value in seconds],
        "details": engine.details(),
        "bridge": sys.modules["bridge"].__file__,
    }


def caption_seconds(engine: Any, count: int) -> list[float]:
    """Seconds per caption of one camera-like frame, ``count`` times after a warm-up."""
    import time

    from bridge.engines.base import JobOptions
    from bridge.frames import decode_image

    image = decode_image(_support.jpeg(_support.scene(7)), 40_000_000, engine.input_size)
    times = []
    for run in range(count + 1 if count else 0):
        started = time.perf_counter()
        engine.run_batch([image], [JobOptions()])
        if run:
            times.append(time.perf_counter() - started)
    return times


def run_case(
    model: Path, precision: str, code: Path, cache: Path, threads: int, captions: int
) -> dict[str, Any]:
    """One start in a fresh process (``ru_maxrss`` is per process), with its load average."""
    env = {**os.environ, "IMAGE_TO_TEXT_CACHE": str(cache), "OMP_NUM_THREADS": str(threads)}
    load_before = _support.load_average()
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(model), precision, str(code), str(captions)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"{precision} failed:\n{done.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    found["load"] = f"{load_before} -> {_support.load_average()}"
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="IMAGE_TO_TEXT_CACHE to use (required)")
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose bridge runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--cases", default="fp32,int8,auto,auto", help="precisions, in order, one start each"
    )
    parser.add_argument("--captions", type=int, default=0, help="time N captions after load")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    if args.cache is None:
        parser.error("--cache is required")
    model = _support.blip_model("base")
    print(f"# {_support.cpu_name()}; code {args.code}; cache {args.cache}")
    for precision in args.cases.split(","):
        found = run_case(model, precision, args.code, args.cache, args.threads, args.captions)
        details = found["details"]
        source = "record" if "probe_record" in details else "measured"
        print(
            f"{precision:>5} -> {found['chosen']:<8} peak RSS {found['peak_rss_mb']:>5} MB, "
            f"load {found['load_s']:>6.1f} s, probe {details.get('probe')} ({source}); "
            f"caption median {found['caption_median_s']} s {found['caption_s']}; "
            f"load average {found['load']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How often the meter reader reads a display exactly, and how long a reading takes.

Three kinds of sets, each read through the same path as ``image-to-text analyze --task meter``
(JPEG bytes decoded at full resolution, region warped, digits classified):

* ``--set real`` (needs ``--dataset``, a checkout of ``haverland/Tenth-of-step-of-a-meter-digit``,
  see ``tools/meter_real.py``): displays of 5-8 real camera crops drawn from one *evaluation*
  meter at a time (meters training never saw), the region exactly around the crops.  The
  reading a display stands for is its crops' labels through the carry rule
  (``bridge.meter.carry``).  The crops are drawn independently, so a drum caught mid-roll
  often stands left of a drum at rest, which no counter shows, and a tenth's error flips it;
* ``--set real-counter``: the same meters' crops composed as a counter can stand (a drum
  mid-roll only while its right neighbour rolls over; the last drum anywhere);
* ``--set unseen`` (the default): synthetic photos (``tools/meter_synth.py``, a seed training
  never used) in styles and fonts that ``tools/train_meter.py --split train`` never shows the
  network: a DSEG14 Modern LCD/LED display, a drum counter in OpenCV's sans typeface, or a drum
  counter behind separate windows in a face plate;
* ``--set all``: synthetic photos in every style; ``--manifest``: any labelled set.

For each set, by meter (or style) and in total: **exact** (the digits read are right, published
or not), **wrong published** (a wrong reading whose every digit clears the weights' calibrated
confidence, or the lower one that holds where the second reader agreed, so the bridge would
publish it), **held back** (a digit below it), how many the second reader confirmed, and ms a
reading::

    python bench/meter_accuracy.py --set real --dataset /tmp/tenth
    python bench/meter_accuracy.py --weights /tmp/digits-train.pt   # 300 unseen-style photos
    python bench/meter_accuracy.py --manifest DIR/manifest.json
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import meter_real  # noqa: E402
import meter_synth  # noqa: E402

from bridge.config import MeterConfig, ModelConfig  # noqa: E402
from bridge.engines import meter_engine  # noqa: E402
from bridge.engines.base import EngineOutput, JobOptions  # noqa: E402
from bridge.engines.meter_engine import MeterEngine  # noqa: E402
from bridge.frames import decode_image  # noqa: E402

BENCH_SEED = 99_2026  # training uses tools/train_meter.SEED


def _generated(count: int, seed: int, which: str) -> list[tuple[bytes, dict[str, object]]]:
    rng = random.Random(seed)
    items = []
    styles, families = meter_synth.split_options("all")
    for _ in range(count):
        if which == "unseen":
            sample = meter_synth.bench_sample(rng)
        else:
            sample = meter_synth.render(rng, styles=styles, families=families, margin=(0.0, 0.04))
        buf = io.BytesIO()
        sample.image.save(buf, "JPEG", quality=92)
        items.append(
            (
                buf.getvalue(),
                {
                    "roi": list(sample.roi),
                    "digits": sample.digits,
                    "decimals": sample.decimals,
                    "raw": sample.raw,
                    "style": sample.style,
                    "family": sample.family,
                },
            )
        )
    return items


def _real(
    dataset: Path, per_meter: int, seed: int, counter: bool = False
) -> list[tuple[bytes, dict[str, object]]]:
    """Displays of real crops, ``per_meter`` from each evaluation meter.

    ``counter``: composed as a counter can stand (``meter_real.counter_digits``) rather than
    of independent crops.
    """
    _, evaluation, _ = meter_real.scan(dataset)
    items = []
    for crops in meter_real.displays(evaluation, per_meter, seed, counter=counter):
        image, roi = meter_real.compose(crops)
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=95)
        meter = crops[0].meter
        truth = {"roi": list(roi), "digits": len(crops), "raw": meter_real.truth(crops)}
        items.append(
            (buf.getvalue(), {**truth, "style": meter_real.style_of(meter), "family": meter})
        )
    return items


def _from_manifest(path: Path) -> list[tuple[bytes, dict[str, object]]]:
    entries = json.loads(path.read_text(encoding="utf-8"))
    return [((path.parent / e["file"]).read_bytes(), e) for e in entries]


def _meter_of(truth: dict[str, object]) -> MeterConfig:
    roi = truth.get("roi")
    corners = truth.get("corners")
    return MeterConfig(
        digits=int(truth["digits"]),  # type: ignore[call-overload]
        decimals=int(truth.get("decimals", 0)),  # type: ignore[call-overload]
        roi=tuple(roi) if roi else None,  # type: ignore[arg-type]
        corners=tuple(tuple(p) for p in corners) if corners else None,  # type: ignore[arg-type, attr-defined]
        rotation=float(truth.get("rotation", 0.0)),  # type: ignore[arg-type]
    )


def _expected(truth: dict[str, object], meter: MeterConfig) -> str:
    expected = str(truth.get("raw") or "")
    if not expected and "value" in truth:
        expected = f"{float(truth['value']):.{meter.decimals}f}".replace(".", "")  # type: ignore[arg-type]
        expected = expected.zfill(meter.digits)
    return expected


def _report(name: str, rows: list[tuple[bool, bool, float]]) -> str:
    """One line: exact, wrong published, held back, ms (rows: exact, published, seconds)."""
    n = len(rows)
    exact = sum(e for e, _, _ in rows)
    wrong = sum(p and not e for e, p, _ in rows)
    held = sum(not p for _, p, _ in rows)
    ms = sum(t for _, _, t in rows) / n * 1000
    return (
        f"  {name:40s} {n:5d}  exact {exact / n:6.1%}  wrong published {wrong / n:5.1%}  "
        f"held back {held / n:5.1%}  {ms:5.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=BENCH_SEED)
    parser.add_argument(
        "--set",
        choices=("unseen", "all", "real", "real-counter"),
        default="unseen",
        help="unseen: only the styles and fonts `train_meter.py --split train` leaves out; "
        "all: every style and font (new seeds); real: displays of evaluation meters' crops; "
        "real-counter: the same crops composed as a counter can stand",
    )
    parser.add_argument("--dataset", type=Path, help="the real crops' checkout (--set real)")
    parser.add_argument("--per-meter", type=int, default=20, help="displays per real meter")
    parser.add_argument("--manifest", type=Path, help="a labelled set instead of generating one")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--weights", type=Path, help="another weights file (default: built in)")
    parser.add_argument("--single-view", action="store_true", help="no shifted re-reads")
    parser.add_argument("--show", type=int, default=15, help="misreadings to list")
    args = parser.parse_args()
    if args.manifest:
        items = _from_manifest(args.manifest)
    elif args.set in ("real", "real-counter"):
        if not args.dataset:
            parser.error(f"--set {args.set} needs --dataset")
        items = _real(args.dataset, args.per_meter, args.seed, args.set == "real-counter")
    else:
        items = _generated(args.count, args.seed, args.set)
    if args.single_view:
        meter_engine.SHIFTS = (0,)
    model = str(args.weights) if args.weights else None
    engine = MeterEngine(ModelConfig(engine="meter", model=model, threads=args.threads))
    started = time.perf_counter()
    engine.load()
    confirm = engine.reader.confirm_confidence
    second = (
        f", or below {confirm:.3f} where the second reader agrees"
        if engine.second is not None and confirm is not None
        else " (no second reader)"
    )
    print(
        f"loaded in {(time.perf_counter() - started) * 1000:.0f} ms; digits below "
        f"{engine.min_confidence:.3f} confidence are held back{second}",
        flush=True,
    )
    confirmed_count = 0
    by_family: dict[str, list[tuple[bool, bool, float]]] = defaultdict(list)
    by_style: dict[str, list[tuple[bool, bool, float]]] = defaultdict(list)
    misses = []
    for data, truth in items:
        meter = _meter_of(truth)
        t0 = time.perf_counter()
        image = decode_image(data, 100_000_000, None)
        out = engine.run_batch([image], [JobOptions(meter=meter)])[0]
        spent = time.perf_counter() - t0
        read = out.extra["raw"] if isinstance(out, EngineOutput) else None
        conf = out.extra.get("digit_confidence") if isinstance(out, EngineOutput) else None
        exact = read == _expected(truth, meter)
        confirmed = isinstance(out, EngineOutput) and out.extra.get("confirmed_by") == "ocr"
        confirmed_count += confirmed
        published = bool(conf) and min(conf) >= engine.threshold(confirmed)
        row = (exact, published, spent)
        by_family[f"{truth.get('style', '?')}/{truth.get('family', '?')}"].append(row)
        by_style[str(truth.get("style", "?"))].append(row)
        if not exact:
            misses.append(
                (
                    truth.get("file", ""),
                    truth.get("family"),
                    _expected(truth, meter),
                    read,
                    published,
                    conf,
                )
            )
    rows = [r for group in by_style.values() for r in group]
    print(f"\n{args.set if not args.manifest else args.manifest} ({args.threads} thread):")
    print(_report("all", rows))
    print("by style:")
    for style, group in sorted(by_style.items()):
        print(_report(style, group))
    print("by meter / font family:")
    for family, group in sorted(by_family.items()):
        print(_report(family, group))
    print(f"confirmed by the second reader: {confirmed_count} of {len(rows)}")
    for name, family, expected, read, published, conf in misses[: args.show]:
        mark = "PUBLISHED" if published else "held back"
        shown = [round(c, 2) for c in conf] if conf else None
        print(f"  miss {name} {family}: expected {expected} read {read} ({mark}) {shown}")


if __name__ == "__main__":
    main()

"""Where the real-display misses of ``meter_accuracy.py --set real`` come from (issue 10).

Reads the same displays (same seed) and, per digit, how far the recogniser's position is from
the crop's label (in tenths, circular: 9.9 is next to 0.0), then sorts every display it does
not read exactly into the first cause that explains it:

* **region**: the configured region, cut exactly, reads right; the refitted region the engine
  preferred (``bridge.meter.refine``) does not;
* **blank**: a wrong cell is a blank one, or is read as blank;
* **misread**: a wrong cell's position is half a digit or more off its label;
* **neighbour**: a wrong cell's right neighbour is half a digit or more off (the carry rule
  decided from a misread);
* **carry flip**: every position is within half a digit, yet a digit differs: a drum whose
  label sits next to a boundary of the carry rule (``bridge.meter.carry``) read a tenth off.

It also counts the right readings held back (a digit below the calibrated confidence)::

    python bench/meter_misses.py --dataset /tmp/tenth
    python bench/meter_misses.py --dataset /tmp/tenth --set real-counter --weights W.pt
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "bench"))

import meter_accuracy  # noqa: E402
import meter_real  # noqa: E402

from bridge.config import ModelConfig  # noqa: E402
from bridge.engines.meter_engine import SHIFTS, MeterEngine  # noqa: E402
from bridge.frames import decode_image  # noqa: E402
from bridge.meter.carry import BINS, BLANK, point_position, read_cells  # noqa: E402
from bridge.meter.geometry import quad_cells, region_quad  # noqa: E402

HALF = 5  # tenths


def _bucket(error: int) -> str:
    return (
        "0"
        if error == 0
        else "1"
        if error == 1
        else "2-4"
        if error < HALF
        else "5-9"
        if error < 10
        else ">=10"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--set", choices=("real", "real-counter"), default="real")
    parser.add_argument("--per-meter", type=int, default=20)
    parser.add_argument("--seed", type=int, default=meter_accuracy.BENCH_SEED)
    parser.add_argument("--weights", type=Path)
    args = parser.parse_args()
    engine = MeterEngine(
        ModelConfig(engine="meter", model=str(args.weights) if args.weights else None, threads=1)
    )
    engine.load()
    counter = args.set == "real-counter"
    items = meter_accuracy._real(args.dataset, args.per_meter, args.seed, counter)
    _, evaluation, _ = meter_real.scan(args.dataset)
    compositions = meter_real.displays(evaluation, args.per_meter, args.seed, counter=counter)
    errors: dict[str, Counter[str]] = defaultdict(Counter)
    misread: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    causes: Counter[str] = Counter()
    exact = held_right = 0
    for (data, truth), crops in zip(items, compositions, strict=True):
        meter = meter_accuracy._meter_of(truth)
        image = decode_image(data, 100_000_000, None)
        probs = engine.reader.probabilities(
            quad_cells(image, region_quad(meter, image.size), meter.digits, SHIFTS), len(SHIFTS)
        )
        as_cut, _ = read_cells(probs)
        reading = engine._read_region(image, meter)
        digits, confidence = reading.labels, reading.confidence
        want = str(truth["raw"])
        got = "".join("0" if d == BLANK else str(d) for d in digits)
        cut = "".join("0" if d == BLANK else str(d) for d in as_cut)
        off: list[int | None] = []
        for crop, cell in zip(crops, probs, strict=True):
            if crop.tenths is None:
                off.append(None)
                continue
            gap = abs(round(point_position(cell[:BINS]) * 10) - crop.tenths) % BINS
            gap = min(gap, BINS - gap)
            off.append(gap)
            errors[str(truth["style"])][_bucket(gap)] += 1
            misread[crop.meter][0] += 1
            misread[crop.meter][1] += gap >= HALF
        if got == want:
            exact += 1
            confirmed = engine.confirmed(image, reading)
            held_right += min(confidence) < engine.threshold(confirmed)
            continue
        wrong = [i for i, (a, b) in enumerate(zip(want, got, strict=True)) if a != b]
        if cut == want:
            causes["region"] += 1
        elif any(crops[i].tenths is None or as_cut[i] == BLANK for i in wrong):
            causes["blank"] += 1
        elif any((off[i] or 0) >= HALF for i in wrong):
            causes["misread"] += 1
        elif any(i + 1 < len(off) and (off[i + 1] or 0) >= HALF for i in wrong):
            causes["neighbour"] += 1
        else:
            causes["carry flip"] += 1
    n = len(items)
    print(
        f"{args.set}: {n} displays, {exact} exact ({exact / n:.1%}); of the right readings, "
        f"{held_right} held back (below {engine.min_confidence:.3f}, or "
        f"{engine.reader.confirm_confidence} where the second reader agreed)"
    )
    print(f"misses by cause: {dict(causes.most_common())}")
    print("digits by |position - label| in tenths:")
    for style, counts in sorted(errors.items()):
        total = sum(counts.values())
        shares = ", ".join(
            f"{k}: {counts[k] / total:.1%}" for k in ("0", "1", "2-4", "5-9", ">=10")
        )
        print(f"  {style} ({total} digits): {shares}")
    print("digits half a digit or more off, by meter:")
    for name, (total, bad) in sorted(misread.items()):
        print(f"  {name:45s} {total:4d}  {bad / total:6.1%}")


if __name__ == "__main__":
    main()

"""How well the dial reader and ``meter-setup``'s region finder do, on drawn pictures.

Prints, for drawn dials (``tools/dial_synth.py``), the share read within a fifth of a step, the
worst error, how many were refused as "no pointer found" and the milliseconds per dial; and for
the generator's meter photos (``tools/meter_synth.py``, every style), the share whose proposed
region overlaps the true one (IoU >= 0.6), the share with the right number of digits and of
decimals, and the milliseconds per snapshot.

    python bench/meter_dials_setup.py --dials 300 --photos 60 --seed 3
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import dial_synth  # noqa: E402
import meter_synth  # noqa: E402

from bridge.config import DialConfig  # noqa: E402
from bridge.meter.dials import DialError, read_dial  # noqa: E402
from bridge.meter.locate import NoDigitsError, find_digits  # noqa: E402


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two [x, y, w, h] boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter)


def dials(count: int, seed: int) -> None:
    """Drawn dials at random positions, red and black pointers, both directions."""
    rng = random.Random(seed)
    good = refused = 0
    worst = 0.0
    spent = 0.0
    for _ in range(count):
        value = rng.uniform(0, 10)
        clockwise = rng.random() < 0.8
        pointer = rng.choice(["red", "black"])
        radius = rng.randint(18, 80)
        photo = dial_synth.dial_row([value], radius, rng, pointer=pointer, clockwise=clockwise)
        config = DialConfig(roi=photo.dials[0][0], factor=0.1, clockwise=clockwise)
        started = time.perf_counter()
        try:
            reading = read_dial(photo.image, config)
        except DialError:
            refused += 1
            continue
        finally:
            spent += time.perf_counter() - started
        error = abs((reading.value - value + 5) % 10 - 5)
        worst = max(worst, error)
        good += error <= 0.2
    print(
        f"dials: {count} drawn, {100 * good / count:.1f}% within 0.2 of a step, worst "
        f"{worst:.3f}, {refused} refused, {1000 * spent / count:.1f} ms a dial"
    )


def photos(count: int, seed: int) -> None:
    """The generator's photos in every style whose fonts are installed."""
    rng = random.Random(seed)
    families = tuple(f for f in meter_synth.FAMILIES if meter_synth.FAMILIES[f] != [])
    overlap = digits = decimals = none = 0
    spent = 0.0
    for _ in range(count):
        sample = meter_synth.render(
            rng, styles=meter_synth.STYLES, families=families, margin=(0.0, 0.02)
        )
        started = time.perf_counter()
        try:
            proposal = find_digits(sample.image)
        except NoDigitsError:
            none += 1
            continue
        finally:
            spent += time.perf_counter() - started
        overlap += iou(proposal.roi, sample.roi) >= 0.6
        digits += proposal.digits == sample.digits
        decimals += proposal.decimals == sample.decimals
    print(
        f"meter-setup: {count} photos, IoU >= 0.6 {100 * overlap / count:.1f}%, digits right "
        f"{100 * digits / count:.1f}%, decimals right {100 * decimals / count:.1f}%, "
        f"{none} without a proposal, {1000 * spent / count:.0f} ms a snapshot"
    )


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dials", type=int, default=300)
    parser.add_argument("--photos", type=int, default=60)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    dials(args.dials, args.seed)
    photos(args.photos, args.seed)


if __name__ == "__main__":
    main()

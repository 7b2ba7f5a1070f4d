"""Train the meter digit recogniser on synthetic displays; writes ``bridge/meter/digits.pt``.

Reproducible: fixed seeds for the generator and for torch, single-threaded data generation
order.  The photos come from ``tools/meter_synth.py``.  ``--split train`` leaves out the font
families and the drum style that ``bench/meter_accuracy.py`` holds out, which is how the
figure for styles never seen is measured; the shipped weights are trained with ``--split all``
(the default: every style and font this machine has, the most variety a user's meter can
meet), and are then checked by the bench on photos of seeds training never used.  Each photo
goes through the very same cropping code as the live reader (``bridge.meter.geometry``), so
the network learns the cells it will be shown, region margins and tilt included::

    python tools/train_meter.py                  # the shipped weights, ~15 minutes on 2 cores
    python tools/train_meter.py --split train --out /tmp/digits-train.pt   # leave-out weights
    python tools/train_meter.py --photos 2000 --epochs 2 --out /tmp/digits.pt   # smoke run
"""

# ruff: noqa: S311 - seeded RNG for reproducible synthetic data
from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import meter_synth

from bridge.config import MeterConfig
from bridge.meter.geometry import digit_cells
from bridge.meter.recognizer import WEIGHTS, DigitNet

SEED = 20261125


def _cells_of(seed: int, count: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Render ``count`` training photos from ``seed``; return their cells and labels."""
    rng = random.Random(seed)
    styles, families = meter_synth.split_options(split)
    cells: list[np.ndarray] = []
    labels: list[int] = []
    for _ in range(count):
        sample = meter_synth.render(rng, styles=styles, families=families, margin=(-0.01, 0.06))
        meter = MeterConfig(digits=sample.digits, decimals=sample.decimals, roi=sample.roi)
        cells.append(digit_cells(sample.image, meter))
        labels.extend(sample.labels)
    return np.concatenate(cells).astype(np.float16), np.asarray(labels, np.int64)


def build_dataset(
    photos: int, seed: int, workers: int, split: str = "all"
) -> tuple[np.ndarray, np.ndarray]:
    """Cells from ``photos`` photos, generated in fixed chunks so the result is reproducible."""
    chunk = 250
    chunks = (photos + chunk - 1) // chunk
    jobs = [(seed * 1000 + i, min(chunk, photos - i * chunk), split) for i in range(chunks)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.starmap(_cells_of, jobs)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def augment(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Changes the renderer does not cover on its own, so that unseen fonts read too.

    Contrast, offset and polarity; strokes made thicker or thinner (a 3x3 max or min filter);
    glyphs squeezed, stretched, sheared and moved a little (an affine warp).
    """
    n = batch.shape[0]
    out = batch
    # stroke weight: dilate or erode a third of the cells each
    pick = torch.rand(n, generator=gen)
    dilated = nn.functional.max_pool2d(out, 3, stride=1, padding=1)
    eroded = -nn.functional.max_pool2d(-out, 3, stride=1, padding=1)
    out = torch.where((pick < 0.15).view(n, 1, 1, 1), dilated, out)
    out = torch.where(((pick >= 0.15) & (pick < 0.3)).view(n, 1, 1, 1), eroded, out)
    # geometry: scale x/y 0.85-1.15, shear +-0.15, shift +-2 px
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = torch.empty(n).uniform_(0.85, 1.15, generator=gen)
    theta[:, 1, 1] = torch.empty(n).uniform_(0.88, 1.12, generator=gen)
    theta[:, 0, 1] = torch.empty(n).uniform_(-0.15, 0.15, generator=gen)
    theta[:, 0, 2] = torch.empty(n).uniform_(-0.12, 0.12, generator=gen)
    theta[:, 1, 2] = torch.empty(n).uniform_(-0.1, 0.1, generator=gen)
    grid = nn.functional.affine_grid(theta, list(out.shape), align_corners=False)
    out = nn.functional.grid_sample(out, grid, padding_mode="border", align_corners=False)
    scale = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.4, generator=gen)
    shift = torch.empty(n, 1, 1, 1).uniform_(-0.3, 0.3, generator=gen)
    flip = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.25, -1.0, 1.0)
    return out * scale * flip + shift


def train(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> tuple[DigitNet, float]:
    """Train on 95% of the cells; return the net and its accuracy on the other 5%."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(y), generator=gen)
    n_val = max(1, len(y) // 20)
    val_idx, train_idx = order[:n_val], order[n_val:]
    xs = torch.from_numpy(x.astype(np.float32)).unsqueeze(1)
    ys = torch.from_numpy(y)
    net = DigitNet()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    batch = 256
    steps = epochs * ((len(train_idx) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    for epoch in range(epochs):
        net.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=gen)]
        total = 0.0
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(net(augment(xs[idx], gen)), ys[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        acc = evaluate(net, xs[val_idx], ys[val_idx])
        print(
            f"epoch {epoch + 1}/{epochs}: loss {total / len(perm):.4f}, held-back cells {acc:.4%}",
            flush=True,
        )
    return net, evaluate(net, xs[val_idx], ys[val_idx])


def evaluate(net: DigitNet, xs: torch.Tensor, ys: torch.Tensor) -> float:
    """Share of cells classified right."""
    net.eval()
    with torch.inference_mode():
        pred = torch.cat([net(xs[i : i + 1024]).argmax(1) for i in range(0, len(xs), 1024)])
    return float((pred == ys).float().mean())


def main() -> None:
    """Command line: generate, train, write the weights."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=18000)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--split",
        choices=("all", "train"),
        default="all",
        help="all: every style and font (the shipped weights); train: leave the bench's out",
    )
    parser.add_argument("--cache", type=Path, help="keep the generated cells in this .npz")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    if args.cache and args.cache.exists():
        data = np.load(args.cache)
        x, y = data["x"], data["y"]
    else:
        x, y = build_dataset(args.photos, args.seed, args.workers, args.split)
        if args.cache:
            np.savez(args.cache, x=x, y=y)
    generated = time.monotonic()
    print(
        f"{len(y)} cells from {args.photos} photos in {generated - started:.0f} s; "
        f"classes {np.bincount(y, minlength=11).tolist()}",
        flush=True,
    )
    net, acc = train(x, y, args.epochs, args.seed)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    print(
        f"held-back cell accuracy {acc:.4%}; trained in {time.monotonic() - generated:.0f} s; "
        f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)"
    )


if __name__ == "__main__":
    main()

"""Train the meter digit recogniser on real crops and synthetic displays; writes ``digits.pt``.

The network reads each cell's position in tenths (100 classes, 0.0-9.9) or blank
(``bridge.meter.recognizer``).  Two sources:

* **real crops** from ``haverland/Tenth-of-step-of-a-meter-digit`` (``tools/meter_real.py``:
  what may be used, the evaluation meters never touched, copies of their files dropped), put
  side by side into displays of 4-8 crops of one meter and cut by the live reader's own code
  (``bridge.meter.geometry``), regions drawn a little off.  A quarter of the training meters
  (whole) and 15% of the others' crops are kept back for validation;
* **synthetic photos** from ``tools/meter_synth.py`` (LCD and LED fonts, drums, blur, glare),
  for the styles real crops lack (LEDs, blank LCD cells, fonts), plus ``--face-photos`` in
  typefaces of Debian font packages installed for training only (``meter_synth.FACES``),
  crossed by lines or sitting on bars, as the digit faces unseen real meters are misread on.
  Each epoch sees every real cell and a fresh ``--synthetic-per-epoch`` of the synthetic ones.

Loss: a real crop labelled ``3.4`` is taught as position 3.4 with its neighbouring tenths
shaded in (circular: 9.9 is next to 0.0); a synthetic cell says only which digit it shows, so it
is taught as "somewhere within half a digit of that digit".  After training, the confidence
below which a digit is held back is calibrated by reading the validation displays through the
bridge's own meter engine: the lowest threshold at which at most ``--wrong-target`` of the
readings it lets through are wrong (``--wrong-bound``: the upper end of that share's confidence
interval instead), over ``--validation-displays`` displays.  Then, unless
``--no-second-reader``, the same readings are read again with the second reader
(``bridge.meter.second_reader``) and ``confirm_confidence`` set by the same rule: the lowest
confidence at which the readings it confirms, added, keep the published within the target.
Reproducible: fixed seeds, dataset commit recorded::

    python tools/train_meter.py --dataset /tmp/tenth --cache /tmp/meter-synth.npz   # shipped
    python tools/train_meter.py --dataset /tmp/tenth --photos 500 --epochs 1 --out /tmp/d.pt

The shipped weights hold four networks, two reading each shifted cut of a region
(``--ensemble FIRST A1 A2 A3 --nets-per-view 1 --validation-displays 8000 --whole-meters-share 0
--floor-from BEFORE``, ``bridge/meter/DATA_CARD.md``), each trained with ``--face-photos 2500
--face-styles drum --synthetic-per-epoch 0 --whole-meters-share 0`` (fonts-dseg,
fonts-dejavu-core and the ``meter_synth.FACES`` packages installed): FIRST with ``--init-seed
20261125 --epochs 20``, the others at 12 epochs with ``--init-seed`` 20261125, 20261203 and
20261204.  Recipes tried and not shipped, and why: ``bench/RESULTS.md`` (issue 10, rounds two to
eleven).
"""

# ruff: noqa: S311 - seeded RNG for reproducible synthetic data
from __future__ import annotations

import argparse
import io
import math
import multiprocessing
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import meter_real
import meter_synth
from PIL import Image

from bridge.config import MeterConfig
from bridge.meter.carry import BINS, BLANK_INDEX
from bridge.meter.geometry import digit_cells
from bridge.meter.recognizer import CLASSES, WEIGHTS, DigitNet, member_states

if TYPE_CHECKING:
    from bridge.engines.meter_engine import MeterEngine

SEED = 20261125
#: Share of each training meter's crops kept for validation (besides whole meters).
VALIDATION_SHARE = 0.15
#: Whole meters kept for validation: up to this share of all training crops.
WHOLE_METERS_SHARE = 0.25
#: Displays of real validation crops the confidence threshold is calibrated on (and 200 photos).
VALIDATION_DISPLAYS = 800
#: Spread of a real label over its neighbouring tenths (in tenths).
LABEL_SIGMA = 1.0
#: Offset of the extra typefaces' photo seeds from the other synthetic photos' seeds.
FACE_SEEDS = 500


def _cells_of(
    seed: int, count: int, split: str, faces: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Render ``count`` training photos from ``seed``; return their cells and labels.

    ``faces``: photos in the extra typefaces, with lines and bars (``meter_synth.face_sample``),
    in the styles it names (a key of ``meter_synth.FACE_STYLES``); None: the ordinary photos.
    """
    rng = random.Random(seed)
    styles, families = meter_synth.split_options(split)
    cells: list[np.ndarray] = []
    labels: list[int] = []
    for _ in range(count):
        if faces is not None:
            sample = meter_synth.face_sample(rng, split, faces)
        else:
            sample = meter_synth.render(rng, styles=styles, families=families, margin=(-0.01, 0.06))
        meter = MeterConfig(digits=sample.digits, decimals=sample.decimals, roi=sample.roi)
        cells.append(digit_cells(sample.image, meter))
        labels.extend(sample.labels)
    return np.concatenate(cells).astype(np.float16), np.asarray(labels, np.int64)


def build_dataset(
    photos: int,
    seed: int,
    workers: int,
    split: str = "all",
    faces: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cells from ``photos`` photos, generated in fixed chunks so the result is reproducible.

    ``faces``: the extra typefaces' photos in these styles (``_cells_of``), from seeds of
    their own (``FACE_SEEDS``).
    """
    chunk = 250
    chunks = (photos + chunk - 1) // chunk
    base = seed * 1000 + (FACE_SEEDS if faces is not None else 0)
    jobs = [(base + i, min(chunk, photos - i * chunk), split, faces) for i in range(chunks)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.starmap(_cells_of, jobs)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def augment(batch: torch.Tensor, gen: torch.Generator, camera: bool = True) -> torch.Tensor:
    """Changes the renderer and the collected meters do not cover, so unseen meters read too.

    Unseen meters differ from the training ones by their lighting, lens and cut more than by
    their digits (``bench/RESULTS.md``, issue 10): contrast, offset, gamma and polarity (a dim
    grey digit on black); blur and sensor noise; strokes made thicker or thinner (a 3x3 max or
    min filter); glyphs squeezed, stretched, sheared, turned a few degrees and moved a little
    (an affine warp), so a loose or shifted cut reads too.  Without ``camera`` (the shipped
    weights): only stroke weight, the warp without rotation, contrast, offset and polarity.
    """
    n = batch.shape[0]
    out = batch
    # stroke weight: dilate or erode a sixth of the cells each
    pick = torch.rand(n, generator=gen)
    dilated = nn.functional.max_pool2d(out, 3, stride=1, padding=1)
    eroded = -nn.functional.max_pool2d(-out, 3, stride=1, padding=1)
    out = torch.where((pick < 0.15).view(n, 1, 1, 1), dilated, out)
    out = torch.where(((pick >= 0.15) & (pick < 0.3)).view(n, 1, 1, 1), eroded, out)
    # geometry: scale x/y 0.85-1.15, shear +-0.15, rotation +-5 degrees, shift +-2 px
    angle = torch.empty(n).uniform_(-0.09, 0.09, generator=gen) * float(camera)
    sx = torch.empty(n).uniform_(0.85, 1.15, generator=gen)
    sy = torch.empty(n).uniform_(0.86, 1.14, generator=gen)
    shear = torch.empty(n).uniform_(-0.15, 0.15, generator=gen)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = sx * cos
    theta[:, 0, 1] = shear - sin * sy
    theta[:, 1, 0] = sin * sx
    theta[:, 1, 1] = sy * cos
    theta[:, 0, 2] = torch.empty(n).uniform_(-0.12, 0.12, generator=gen)
    theta[:, 1, 2] = torch.empty(n).uniform_(-0.14, 0.14, generator=gen) * (
        1 if camera else 0.1 / 0.14
    )
    grid = nn.functional.affine_grid(theta, list(out.shape), align_corners=False)
    out = nn.functional.grid_sample(out, grid, padding_mode="border", align_corners=False)
    if not camera:
        scale = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.4, generator=gen)
        shift = torch.empty(n, 1, 1, 1).uniform_(-0.3, 0.3, generator=gen)
        flip = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.25, -1.0, 1.0)
        return out * scale * flip + shift
    # gamma: on the cell's own 0-1 range, 0.6-1.6, for half the cells
    low = out.amin(dim=(2, 3), keepdim=True)
    span = (out.amax(dim=(2, 3), keepdim=True) - low).clamp(min=1e-3)
    gamma = torch.empty(n, 1, 1, 1).uniform_(-0.5, 0.5, generator=gen).exp()
    gamma = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.5, gamma, torch.ones_like(gamma))
    out = low + span * ((out - low) / span).clamp(0, 1) ** gamma
    # blur (a 3x3 box mixed in) for a third of the cells, sensor noise for half
    blurred = nn.functional.avg_pool2d(out, 3, stride=1, padding=1, count_include_pad=False)
    mix = torch.empty(n, 1, 1, 1).uniform_(0.3, 1.0, generator=gen)
    mix = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.33, mix, torch.zeros_like(mix))
    out = out + mix * (blurred - out)
    sigma = torch.empty(n, 1, 1, 1).uniform_(0.0, 0.12, generator=gen)
    sigma = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.5, sigma, torch.zeros_like(sigma))
    out = out + sigma * torch.randn(out.shape, generator=gen)
    scale = torch.empty(n, 1, 1, 1).uniform_(0.5, 1.4, generator=gen)
    shift = torch.empty(n, 1, 1, 1).uniform_(-0.3, 0.3, generator=gen)
    flip = torch.where(torch.rand(n, 1, 1, 1, generator=gen) < 0.35, -1.0, 1.0)
    return out * scale * flip + shift


def split_meters(
    meters: dict[str, list[meter_real.Crop]], seed: int, whole_share: float = WHOLE_METERS_SHARE
) -> tuple[dict[str, list[meter_real.Crop]], dict[str, list[meter_real.Crop]]]:
    """(fit, validation): whole drum meters up to ``whole_share`` of the crops, and a share of each.

    LCD meters are never held back whole: there are too few real ones to spare one.
    """
    rng = random.Random(seed)
    names = sorted(meters)
    rng.shuffle(names)
    budget = sum(len(c) for c in meters.values()) * whole_share
    fit: dict[str, list[meter_real.Crop]] = {}
    val: dict[str, list[meter_real.Crop]] = {}
    for name in names:
        crops = list(meters[name])
        if meter_real.style_of(name) == "drum" and len(crops) <= budget:
            val[name] = crops
            budget -= len(crops)
            continue
        rng.shuffle(crops)
        cut = round(len(crops) * VALIDATION_SHARE)
        if cut:
            val[name] = crops[:cut]
        fit[name] = crops[cut:]
    return fit, val


def real_cells(
    meters: dict[str, list[meter_real.Crop]], repeat: int, seed: int, jpeg: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Cells of displays made from each meter's crops, each crop in about ``repeat`` displays.

    Labels are tenths (0-99) or ``BLANK_INDEX``.  With ``jpeg``, half the displays are
    compressed once more at a random quality (30-90), as an ESP32-CAM stream would.
    """
    rng = random.Random(seed)
    pictures: dict[Path, Image.Image] = {}

    def loader(crop: meter_real.Crop) -> Image.Image:
        if crop.path not in pictures:
            pictures[crop.path] = meter_real.load(crop)
        return pictures[crop.path]

    cells: list[np.ndarray] = []
    labels: list[int] = []
    for name in sorted(meters):
        crops = meters[name]
        digits = [c for c in crops if c.tenths is not None]
        blanks = [c for c in crops if c.tenths is None]
        pool = [c for _ in range(repeat) for c in digits]
        rng.shuffle(pool)
        while pool:
            n = rng.randint(4, 8)
            chosen, pool = pool[:n], pool[n:]
            if blanks and rng.random() < 0.3:
                chosen = [rng.choice(blanks) for _ in range(rng.randint(1, 2))] + chosen
            image, roi = meter_real.compose(chosen, rng, loader)
            if jpeg and rng.random() < 0.5:  # the camera's JPEG again, harder than the crop's
                buf = io.BytesIO()
                image.save(buf, "JPEG", quality=rng.randint(30, 90))
                image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
            meter = MeterConfig(digits=len(chosen), roi=roi)
            cells.append(digit_cells(image, meter, (rng.choice((-3, 0, 3)),)))
            labels.extend(BLANK_INDEX if c.tenths is None else c.tenths for c in chosen)
    return np.concatenate(cells).astype(np.float16), np.asarray(labels, np.int64)


def targets() -> tuple[torch.Tensor, torch.Tensor]:
    """(soft targets of the real labels, log-masks of the synthetic digits' windows).

    ``soft[t]`` spreads tenth ``t`` over its circular neighbours; ``soft[BLANK_INDEX]`` is blank.
    ``window[d]`` is 0 on the positions within half a digit of ``d`` (3.5-4.4 for 4), -inf
    elsewhere; ``window[10]`` is blank.
    """
    soft = torch.zeros(CLASSES, CLASSES)
    offsets = torch.arange(-3, 4)
    weights = torch.exp(-(offsets.float() ** 2) / (2 * LABEL_SIGMA**2))
    for t in range(BINS):
        soft[t, (t + offsets) % BINS] = weights / weights.sum()
    soft[BLANK_INDEX, BLANK_INDEX] = 1.0
    window = torch.full((11, CLASSES), float("-inf"))
    for d in range(10):
        window[d, (10 * d + torch.arange(-5, 5)) % BINS] = 0.0
    window[10, BLANK_INDEX] = 0.0
    return soft, window


def loss_of(
    logits: torch.Tensor,
    labels: torch.Tensor,
    synthetic: torch.Tensor,
    tables: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Mean loss of a batch mixing real (tenths) and synthetic (digit) labels."""
    soft, window = tables
    logp = torch.log_softmax(logits, dim=1)
    real = -(soft[labels.clamp(max=CLASSES - 1)] * logp).sum(dim=1)
    synth = -torch.logsumexp(logp + window[labels.clamp(max=10)], dim=1)
    return torch.where(synthetic, synth, real).mean()


def train(
    x: np.ndarray,
    y: np.ndarray,
    synthetic: np.ndarray,
    epochs: int,
    seed: int,
    *,
    synthetic_per_epoch: int = 0,
    check: tuple[np.ndarray, np.ndarray] | None = None,
    camera: bool = True,
    width: int = 16,
) -> DigitNet:
    """Train on every real cell each epoch and ``synthetic_per_epoch`` synthetic ones (0: all).

    The real crops are what unseen meters look like, so each epoch sees all of them; a fresh
    sample of the synthetic cells keeps the styles real crops lack without doubling the time.
    ``check`` (validation cells, tenths): the share read within a tenth, printed per epoch.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xs = torch.from_numpy(x.astype(np.float32)).unsqueeze(1)
    ys = torch.from_numpy(y)
    syn = torch.from_numpy(synthetic)
    real_index = torch.nonzero(~syn).flatten()
    synth_index = torch.nonzero(syn).flatten()
    per_epoch = len(synth_index)
    if synthetic_per_epoch:
        per_epoch = min(per_epoch, synthetic_per_epoch)
    tables = targets()
    net = DigitNet(width)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    batch = 256
    size = len(real_index) + per_epoch
    steps = epochs * ((size + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for epoch in range(epochs):
        net.train()
        chosen = synth_index[torch.randperm(len(synth_index), generator=gen)[:per_epoch]]
        order = torch.cat([real_index, chosen])
        perm = order[torch.randperm(len(order), generator=gen)]
        total = 0.0
        started = time.monotonic()
        for i in range(0, len(perm), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_of(net(augment(xs[idx], gen, camera)), ys[idx], syn[idx], tables)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        note = ""
        if check is not None:
            note = f", validation cells within a tenth {within_a_tenth(net, *check):.1%}"
        print(
            f"epoch {epoch + 1}/{epochs}: loss {total / len(perm):.4f} "
            f"({time.monotonic() - started:.0f} s){note}",
            flush=True,
        )
    net.eval()
    return net


def within_a_tenth(net: DigitNet, x: np.ndarray, y: np.ndarray) -> float:
    """Share of cells whose most likely class is the label or a tenth next to it (circular)."""
    net.eval()
    with torch.inference_mode():
        cells = torch.from_numpy(x.astype(np.float32)).unsqueeze(1)
        best = torch.cat([net(cells[i : i + 512]).argmax(1) for i in range(0, len(cells), 512)])
    labels = torch.from_numpy(y)
    blank = labels == BLANK_INDEX
    gap = (best - labels).abs() % BINS
    near = torch.minimum(gap, BINS - gap) <= 1
    right = torch.where(blank, best == BLANK_INDEX, near & (best != BLANK_INDEX))
    return float(right.float().mean())


def state_of(net: DigitNet) -> dict[str, torch.Tensor]:
    """A trained network's weights, detached for saving."""
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def save_states(
    states: list[dict[str, torch.Tensor]],
    min_confidence: float,
    out: Path,
    nets_per_view: int | None = None,
    confirm_confidence: float | None = None,
) -> None:
    """The weights file of one network (``net``) or of several averaged (``nets``).

    Each look at a region is read by ``nets_per_view`` of them (None: all; ``DigitReader``).
    ``confirm_confidence`` (None: no second reader) is the lower threshold that holds where
    the second reader read the same digits.
    """
    saved: dict[str, object] = {"net": states[0]} if len(states) == 1 else {"nets": states}
    if nets_per_view is not None:
        saved["nets_per_view"] = torch.tensor(nets_per_view)
    saved["min_confidence"] = torch.tensor(min_confidence)
    if confirm_confidence is not None:
        saved["confirm_confidence"] = torch.tensor(confirm_confidence)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(saved, out)


def _synthetic(
    cache: Path | None,
    photos: int,
    seed: int,
    workers: int,
    split: str,
    *,
    faces: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic cells from ``cache`` if it exists, else rendered (and kept there)."""
    if cache and cache.exists():
        data = np.load(cache)
        return data["x"], data["y"]
    xs, ys = build_dataset(photos, seed, workers, split, faces)
    if cache:
        np.savez(cache, x=xs, y=ys)
    return xs, ys


def faces_cache_of(cache: Path | None, face_styles: str) -> Path | None:
    """Where the face photos' cells are kept beside ``cache``: one file per ``face_styles``."""
    if cache is None:
        return None
    tail = "" if face_styles == "all" else f"-{face_styles}"
    return cache.with_name(f"{cache.stem}-faces{tail}.npz")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="checkout of the crops")
    parser.add_argument("--photos", type=int, default=4000, help="synthetic photos")
    parser.add_argument(
        "--face-photos",
        type=int,
        default=0,
        help="more synthetic photos in the extra typefaces with lines and bars "
        "(meter_synth.face_sample; needs the font packages named in meter_synth.FACES)",
    )
    parser.add_argument(
        "--face-styles",
        choices=tuple(meter_synth.FACE_STYLES),
        default="all",
        help="styles the --face-photos are drawn in: all (drums and LCD/LED panels) or "
        "drum (drums only); their cache is kept apart (<cache>-faces-drum.npz)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="displays each real crop is in")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument(
        "--synthetic-per-epoch",
        type=int,
        default=0,
        help="synthetic cells drawn afresh each epoch (0: all of them every epoch)",
    )
    parser.add_argument(
        "--augment",
        choices=("basic", "camera"),
        default="basic",
        help="camera: also gamma, blur, noise, rotation and re-compressed real displays "
        "(read worse on the real bench, bench/RESULTS.md)",
    )
    parser.add_argument(
        "--width", type=int, default=16, help="the network's first layer's channels (DigitNet)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--init-seed",
        type=int,
        help="the network's initialisation, batch order and augmentation (default: --seed); "
        "the split and the data stay --seed's, so networks trained apart share one validation "
        "split and can be paired (--ensemble)",
    )
    parser.add_argument(
        "--split",
        choices=("all", "train"),
        default="all",
        help="synthetic styles: all (the shipped weights); train: leave the bench's out",
    )
    parser.add_argument(
        "--whole-meters-share",
        type=float,
        default=WHOLE_METERS_SHARE,
        help="share of the training crops held back for validation as whole meters (0: every "
        "meter is fitted, 15%% of each kept back; use with --floor-from, bench/RESULTS.md)",
    )
    parser.add_argument(
        "--floor-from",
        type=Path,
        help="thresholds no lower than this weights file's: where no meter is held back "
        "whole, the validation split shows no meter the networks never saw, so the floor is "
        "a calibration of the same recipe on meters it never saw",
    )
    parser.add_argument("--wrong-target", type=float, default=0.002)
    parser.add_argument(
        "--wrong-bound",
        type=float,
        help="hold the wrong share's upper confidence bound (e.g. 0.95), not the share "
        "itself, to --wrong-target",
    )
    parser.add_argument(
        "--validation-displays",
        type=int,
        default=VALIDATION_DISPLAYS,
        help="displays of real validation crops to calibrate on",
    )
    parser.add_argument("--cache", type=Path, help="keep the synthetic cells in this .npz")
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument(
        "--calibrate-only", action="store_true", help="recalibrate the weights in --out"
    )
    parser.add_argument(
        "--ensemble",
        type=Path,
        nargs="+",
        help="write these trained weights files' networks into --out as one reader (their "
        "probabilities averaged) and calibrate it; no training",
    )
    parser.add_argument(
        "--no-second-reader",
        action="store_true",
        help="calibrate no confirm_confidence: readings below min_confidence are always held "
        "back, whatever the second reader (bridge.meter.second_reader) reads",
    )
    parser.add_argument(
        "--nets-per-view",
        type=int,
        help="with --ensemble: how many of the networks read each shifted look at a region "
        "(default: all of them)",
    )
    return parser


def main() -> None:
    """Command line: gather the cells, train, calibrate, write the weights."""
    parser = _parser()
    args = parser.parse_args()
    if args.face_photos and not any(meter_synth.FACES.values()):
        parser.error("--face-photos needs the font packages named in meter_synth.FACES")
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    meters, _, dropped = meter_real.scan(args.dataset)
    fit, val = split_meters(meters, args.seed, args.whole_meters_share)
    if args.calibrate_only or args.ensemble:
        files = [torch.load(source, weights_only=True) for source in args.ensemble or [args.out]]
        states = [state for saved in files for state in member_states(saved)]
        per_view = args.nets_per_view
        if per_view is None and args.calibrate_only and "nets_per_view" in files[0]:
            per_view = int(files[0]["nets_per_view"])  # recalibrated as it reads
        _calibrated(args, val, states, per_view)
        return
    print(
        f"dataset {meter_real.DATASET_COMMIT[:10]}: {sum(map(len, meters.values()))} training "
        f"crops from {len(meters)} meters ({dropped} copies of evaluation crops dropped); "
        f"fitting on {sum(map(len, fit.values()))}, validating on {sum(map(len, val.values()))} "
        f"(whole meters: {sorted(set(val) - set(fit))})",
        flush=True,
    )
    camera = args.augment == "camera"
    xr, yr = real_cells(fit, args.repeat, args.seed, jpeg=camera)
    xs, ys = _synthetic(args.cache, args.photos, args.seed, args.workers, args.split)
    if args.face_photos:
        xf, yf = _synthetic(
            faces_cache_of(args.cache, args.face_styles),
            args.face_photos,
            args.seed,
            args.workers,
            args.split,
            faces=args.face_styles,
        )
        xs, ys = np.concatenate([xs, xf]), np.concatenate([ys, yf])
    x = np.concatenate([xr, xs])
    y = np.concatenate([yr, ys])
    synthetic = np.concatenate([np.zeros(len(yr), bool), np.ones(len(ys), bool)])
    print(
        f"{len(yr)} real cells, {len(ys)} synthetic cells in {time.monotonic() - started:.0f} s",
        flush=True,
    )
    check = real_cells(val, 1, args.seed + 3, jpeg=False)
    net = train(
        x,
        y,
        synthetic,
        args.epochs,
        args.seed if args.init_seed is None else args.init_seed,
        synthetic_per_epoch=args.synthetic_per_epoch,
        check=check,
        camera=camera,
        width=args.width,
    )
    trained = time.monotonic()
    _calibrated(args, val, [state_of(net)], None)
    print(
        f"trained in {trained - started:.0f} s, calibrated in {time.monotonic() - trained:.0f} s; "
        f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)"
    )


Case = tuple[Image.Image, MeterConfig, str]


def _calibrated(
    args: argparse.Namespace,
    val: dict[str, list[meter_real.Crop]],
    states: list[dict[str, torch.Tensor]],
    per_view: int | None,
) -> None:
    """Calibrate ``states`` as the command line asks and write them to ``--out``.

    First ``min_confidence`` from the networks alone; then, unless ``--no-second-reader``,
    ``confirm_confidence`` with that threshold in place, from the readings below it that the
    second reader confirms.
    """
    cases = validation_cases(val, args.seed, args.split, args.validation_displays)
    floor_min, floor_confirm = _floors(args.floor_from)
    save_states(states, 0.5, args.out, per_view)
    threshold = calibrate(args.out, cases, args.wrong_target, bound=args.wrong_bound)
    threshold = raised_to_floor(threshold, floor_min, "min_confidence")
    confirm = None
    if not args.no_second_reader:
        save_states(states, threshold, args.out, per_view, confirm_confidence=0.5)
        confirm = calibrate_confirmation(args.out, cases, args.wrong_target, bound=args.wrong_bound)
        if confirm is not None:
            confirm = raised_to_floor(confirm, floor_confirm, "confirm_confidence")
    save_states(states, threshold, args.out, per_view, confirm_confidence=confirm)


def _floors(weights: Path | None) -> tuple[float | None, float | None]:
    """``min_confidence`` and ``confirm_confidence`` of ``weights`` (None: no floor)."""
    if weights is None:
        return None, None
    saved = torch.load(weights, weights_only=True)
    confirm = saved.get("confirm_confidence")
    return float(saved["min_confidence"]), None if confirm is None else float(confirm)


def raised_to_floor(threshold: float, floor: float | None, name: str) -> float:
    """``threshold``, or ``floor`` where that is higher (said in the output)."""
    if floor is None or threshold >= floor:
        return threshold
    print(f"{name}: {threshold:.3f} raised to the floor {floor:.3f}", flush=True)
    return floor


def validation_cases(
    val: dict[str, list[meter_real.Crop]], seed: int, split: str, displays: int
) -> list[Case]:
    """Validation displays of real crops, then synthetic photos of seeds training never used."""
    rng = random.Random(seed + 1)
    cases: list[Case] = []
    for crops in meter_real.displays(val, 1 + displays // max(1, len(val)), seed + 2):
        image, roi = meter_real.compose(crops, rng)
        cases.append((image, MeterConfig(digits=len(crops), roi=roi), meter_real.truth(crops)))
    styles, families = meter_synth.split_options(split)
    for _ in range(200):
        sample = meter_synth.render(rng, styles=styles, families=families, margin=(0.0, 0.04))
        cases.append((sample.image, MeterConfig(digits=sample.digits, roi=sample.roi), sample.raw))
    return cases


def _read_cases(
    weights: Path, cases: list[Case]
) -> tuple[MeterEngine, list[tuple[float, bool, bool]]]:
    """The meter engine on ``weights``, and what it made of each case.

    Per case: the lowest digit confidence, whether it read right, whether the second reader
    confirmed it.
    """
    from bridge.config import ModelConfig
    from bridge.engines.base import EngineOutput, JobOptions
    from bridge.engines.meter_engine import MeterEngine

    engine = MeterEngine(ModelConfig(engine="meter", model=str(weights)))
    engine.load()
    scored: list[tuple[float, bool, bool]] = []
    for image, meter, expected in cases:
        out = engine.run_batch([image], [JobOptions(meter=meter)])[0]
        if isinstance(out, EngineOutput):
            confirmed = out.extra.get("confirmed_by") == "ocr"
            right = out.extra["raw"] == expected
            scored.append((min(out.extra["digit_confidence"]), right, confirmed))
        else:
            scored.append((0.0, False, False))
    return engine, scored


def calibrate(
    weights: Path, cases: list[Case], target: float, *, bound: float | None = None
) -> float:
    """The lowest digit confidence at which at most ``target`` of published readings are wrong.

    Read through the bridge's meter engine (JPEG, shifted views, refitted regions), on
    ``validation_cases``.
    """
    _, read = _read_cases(weights, cases)
    scored = [(low, right) for low, right, _ in read]
    threshold, published = threshold_of(scored, target, bound)
    exact = sum(right for _, right in scored)
    rule = f"{bound:.0%} sure of " if bound is not None else ""
    print(
        f"validation: {len(scored)} readings, {exact / len(scored):.1%} exact; threshold "
        f"{threshold:.3f} publishes {published / len(scored):.1%} "
        f"(wrong among them {rule}at most {target:.1%}), "
        f"holds back {1 - published / len(scored):.1%}",
        flush=True,
    )
    return threshold


def calibrate_confirmation(
    weights: Path, cases: list[Case], target: float, *, bound: float | None = None
) -> float | None:
    """The lowest confidence at which a reading the second reader confirms is published.

    At most ``target`` of all published readings may be wrong; None where no threshold keeps
    to it.  ``weights`` holds the calibrated ``min_confidence`` and ``confirm_confidence`` 0.5, so
    the engine asks the second reader about every reading in between.
    """
    engine, read = _read_cases(weights, cases)
    if engine.second is None:
        raise SystemExit("no second reader (rapidocr): calibrate with --no-second-reader")
    confirm, published = confirm_threshold_of(read, engine.min_confidence, target, bound)
    confirmed = sum(ok for _, _, ok in read)
    print(
        f"second reader: confirmed {confirmed} of {len(read)} readings below "
        f"{engine.min_confidence:.3f}; threshold "
        + ("none" if confirm is None else f"{confirm:.3f}")
        + f" publishes {published / len(read):.1%} in all",
        flush=True,
    )
    return confirm


def confirm_threshold_of(
    scored: list[tuple[float, bool, bool]],
    min_confidence: float,
    target: float,
    bound: float | None = None,
) -> tuple[float | None, int]:
    """``threshold_of`` for confirmed readings below ``min_confidence``, the others fixed.

    ``scored``: (lowest digit confidence, read right, confirmed) per validation reading.
    Returns the threshold (None: none keeps the wrong share within ``target``) and how many
    readings are then published in all.
    """
    published = [right for low, right, _ in scored if low >= min_confidence]
    ranked = sorted(
        ((low, right) for low, right, ok in scored if ok and low < min_confidence), reverse=True
    )
    return _lowest_within(ranked, published.count(False), len(published), target, bound)


def threshold_of(
    scored: list[tuple[float, bool]], target: float, bound: float | None = None
) -> tuple[float, int]:
    """The lowest confidence that keeps wrong readings within ``target``, and how many it publishes.

    ``scored``: (lowest digit confidence, read right) per validation reading.  Without
    ``bound`` the share of wrong ones among those published must be at most ``target``; with
    it, the upper end of their one-sided ``bound`` confidence interval (Clopper-Pearson), so a
    threshold resting on few readings, or letting a wrong one through, is not trusted.
    """
    threshold, published = _lowest_within(sorted(scored, reverse=True), 0, 0, target, bound)
    return max(0.5, 1.0 if threshold is None else threshold), published


def _lowest_within(
    ranked: list[tuple[float, bool]],
    wrong: int,
    count: int,
    target: float,
    bound: float | None,
) -> tuple[float | None, int]:
    """Readings, surest first, added to ``count`` published already (``wrong`` of them wrong).

    Returns the lowest confidence at which the wrong share stays within ``target`` (None: at
    none) and how many are published then.
    """
    best: tuple[float | None, int] = (None, count)
    for k, (confidence, right) in enumerate(ranked, 1):
        wrong += not right
        count += 1
        if k < len(ranked) and ranked[k][0] == confidence:
            continue  # a threshold publishes every reading at its confidence or none
        rate = wrong / count if bound is None else wrong_rate_bound(wrong, count, bound)
        if rate <= target:
            best = (confidence, count)
    return best


def wrong_rate_bound(wrong: int, readings: int, confidence: float) -> float:
    """Clopper-Pearson upper bound of a rate seen as ``wrong`` of ``readings``."""
    if wrong >= readings:
        return 1.0
    alpha = 1.0 - confidence

    def at_most_seen(rate: float) -> float:  # P(X <= wrong) for X ~ Binomial(readings, rate)
        return sum(
            math.exp(
                math.lgamma(readings + 1)
                - math.lgamma(i + 1)
                - math.lgamma(readings - i + 1)
                + i * math.log(rate)
                + (readings - i) * math.log1p(-rate)
            )
            for i in range(wrong + 1)
        )

    low, high = wrong / readings, 1.0
    for _ in range(60):  # P(X <= wrong) falls as the rate rises
        middle = (low + high) / 2
        if middle <= 0.0 or at_most_seen(middle) > alpha:
            low = middle
        else:
            high = middle
    return high


if __name__ == "__main__":
    main()

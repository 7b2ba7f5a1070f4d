"""The digit recogniser: a small CNN that says where each cell's digit stands, or blank.

A cell is classified into 100 positions, 0.0 to 9.9 in tenths of a digit (a drum caught
mid-roll between 3 and 4 stands at 3.4; an LCD digit at 3.0), plus blank (an LCD that does
not show leading zeros).  ``bridge.meter.carry`` turns the positions into digits.  It is trained
by ``tools/train_meter.py`` on real camera crops and synthetic displays and ships as
``digits.pt`` next to this module, together with the confidence below which a digit does not
count as read, calibrated on held-back meters (``DATA_CARD.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from bridge.meter.carry import BINS, BLANK, read_cells
from bridge.meter.geometry import INPUT_SHAPE

WEIGHTS = Path(__file__).with_name("digits.pt")
CLASSES = BINS + 1  # positions 0.0-9.9, then blank
__all__ = ["BLANK", "CLASSES", "WEIGHTS", "DigitNet", "DigitReader", "member_states"]


class DigitNet(nn.Module):
    """Four 3x3 convolutions and two small dense layers: ~0.2 M parameters at ``width`` 16.

    ``width`` is the first convolution's channels; the others have two and four times as many.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(1, width),
            nn.MaxPool2d(2),
            *block(width, 2 * width),
            *block(2 * width, 2 * width),
            nn.MaxPool2d(2),
            *block(2 * width, 4 * width),
            nn.MaxPool2d(2),
        )
        height, width_px = INPUT_SHAPE
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(4 * width * (height // 8) * (width_px // 8), 8 * width),
            nn.ReLU(),
            nn.Linear(8 * width, CLASSES),
        )

    def forward(self, cells: torch.Tensor) -> torch.Tensor:
        """Logits, shape (batch, ``CLASSES``), for cells of shape (batch, 1, H, W)."""
        out: torch.Tensor = self.head(self.features(cells))
        return out


class DigitReader:
    """Loaded weights, ready to read cells; cheap to call from one worker thread.

    A weights file holds one network (``net``) or several trained apart (``nets``), whose
    probabilities are averaged: networks trained apart rarely make the same confident mistake,
    so their mean holds back readings one alone would have misread.  The looks at a region
    (shifted cuts) are dealt out among the networks, ``nets_per_view`` of them reading each
    look (all, unless the file says otherwise): on the bench, three networks reading one look
    each publish more readings than two reading all three, none of them wrong, at half the
    work (``bench/RESULTS.md``).  ``min_confidence`` is the digit confidence the file was
    calibrated for: below it a digit does not count as read (``bridge.meter.plausibility``).
    ``confirm_confidence``, where the file has one, is the lower confidence a reading may have
    when a second reader sees the same digits (``bridge.meter.second_reader``).
    """

    def __init__(self, weights: Path = WEIGHTS, threads: int | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        saved: dict[str, Any] = torch.load(weights, map_location="cpu", weights_only=True)
        self.nets = [_loaded(state) for state in member_states(saved)]
        self.nets_per_view = int(saved.get("nets_per_view", len(self.nets)))
        self.min_confidence = float(saved["min_confidence"])
        confirm = saved.get("confirm_confidence")
        self.confirm_confidence = None if confirm is None else float(confirm)

    def probabilities(self, cells: np.ndarray, views: int = 1) -> np.ndarray:
        """Class probabilities per digit, shape (digits, ``CLASSES``), averaged over reads.

        ``cells`` holds ``views`` looks at the same digits one after the other (the region
        cut with small shifts).  Look ``v`` is read by networks ``v``, ``v + 1``... (cyclic),
        as many as ``nets_per_view`` says and enough that every network reads some look
        (four networks, three looks: two a look).
        """
        return self.read_by_member(cells, views)[0]

    def read_by_member(self, cells: np.ndarray, views: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``probabilities``, and each network's own: shape (networks, digits, ``CLASSES``).

        A network's own are averaged over the looks it read; the second reader asks whether
        the networks agree (``bridge.meter.second_reader``).
        """
        # look v goes to networks v, v + 1...: the last look must reach the last network
        per_view = min(len(self.nets), max(self.nets_per_view, len(self.nets) - views + 1))
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(cells, dtype=np.float32)).unsqueeze(1)
            batch = batch.contiguous(memory_format=torch.channels_last)
            size = len(batch) // views
            reads = [
                (index, torch.softmax(self.nets[index](batch[view * size : (view + 1) * size]), 1))
                for view in range(views)
                for index in ((view + k) % len(self.nets) for k in range(per_view))
            ]
            mean = torch.stack([probs for _, probs in reads]).mean(0)
            members = torch.stack(
                [
                    torch.stack([probs for index, probs in reads if index == member]).mean(0)
                    for member in range(len(self.nets))
                ]
            )
            return mean.numpy().astype(np.float64), members.numpy().astype(np.float64)

    def read(self, cells: np.ndarray, views: int = 1) -> tuple[list[int], list[float]]:
        """Digit (0-9, or ``BLANK``) and its confidence for each cell, left to right."""
        return read_cells(self.probabilities(cells, views))


def member_states(saved: dict[str, Any]) -> list[dict[str, torch.Tensor]]:
    """The state dicts of a weights file's networks: ``nets``, or the one ``net``."""
    states: list[dict[str, torch.Tensor]] = saved["nets"] if "nets" in saved else [saved["net"]]
    return states


def width_of(state: dict[str, torch.Tensor]) -> int:
    """The ``DigitNet`` width a state dict was trained at."""
    return int(state["features.0.weight"].shape[0])


def _loaded(state: dict[str, torch.Tensor]) -> nn.Module:
    """A network ready to read: batch norms folded into their convolutions, channels last.

    Both leave what it computes as it was (to float rounding) and make a reading of a few dozen
    small cells several times cheaper on a CPU (``bench/RESULTS.md``).
    """
    net = DigitNet(width_of(state))
    net.load_state_dict(state)
    net.eval()
    layers: list[nn.Module] = []
    for layer in net.features:
        if isinstance(layer, nn.BatchNorm2d) and isinstance(layers[-1], nn.Conv2d):
            layers[-1] = fuse_conv_bn_eval(layers[-1], layer)
        else:
            layers.append(layer)
    for layer in layers:
        if isinstance(layer, nn.Conv2d):  # oneDNN's fast kernels for small images want NHWC
            layer.weight.data = layer.weight.data.contiguous(memory_format=torch.channels_last)
    net.features = nn.Sequential(*layers)
    return net

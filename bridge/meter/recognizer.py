"""The digit recogniser: a small CNN that classifies one cell as 0-9 or blank.

It is trained by ``tools/train_meter.py`` on synthetic displays (7-segment LCDs and LEDs,
mechanical drums) and ships as ``digits.pt`` next to this module (about half a megabyte).
A blank cell (an LCD that does not show leading zeros) reads as ``0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bridge.meter.geometry import INPUT_SHAPE

WEIGHTS = Path(__file__).with_name("digits.pt")
CLASSES = 11  # 0-9 and blank
BLANK = 10


class DigitNet(nn.Module):
    """Four 3x3 convolutions and two small dense layers: ~0.1 M parameters."""

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(
            *block(1, 16),
            nn.MaxPool2d(2),
            *block(16, 32),
            *block(32, 32),
            nn.MaxPool2d(2),
            *block(32, 64),
            nn.MaxPool2d(2),
        )
        height, width = INPUT_SHAPE
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.2),
            nn.Linear(64 * (height // 8) * (width // 8), 96),
            nn.ReLU(),
            nn.Linear(96, CLASSES),
        )

    def forward(self, cells: torch.Tensor) -> torch.Tensor:
        """Logits, shape (batch, 11), for cells of shape (batch, 1, H, W)."""
        out: torch.Tensor = self.head(self.features(cells))
        return out


class DigitReader:
    """Loaded weights, ready to read cells; cheap to call from one worker thread."""

    def __init__(self, weights: Path = WEIGHTS, threads: int | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.net = DigitNet()
        state: dict[str, Any] = torch.load(weights, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        self.net.eval()

    def read(self, cells: np.ndarray, views: int = 1) -> tuple[list[int], list[float]]:
        """Class (0-9, or ``BLANK``) and its probability for each digit, left to right.

        ``cells`` holds ``views`` looks at the same digits one after the other (the region
        cut with small shifts); their probabilities are averaged.
        """
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(cells, dtype=np.float32)).unsqueeze(1)
            probs = torch.softmax(self.net(batch), dim=1)
            probs = probs.reshape(views, -1, CLASSES).mean(dim=0)
            best = probs.max(dim=1)
        return [int(v) for v in best.indices], [float(v) for v in best.values]

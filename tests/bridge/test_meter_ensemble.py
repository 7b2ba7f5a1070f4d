"""A weights file of several digit networks reads each cell by the mean of their probabilities."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.meter.geometry import INPUT_SHAPE
from bridge.meter.recognizer import WEIGHTS, DigitNet, DigitReader, member_states


def trained_apart(seed: int, width: int = 16) -> dict[str, torch.Tensor]:
    """A network's weights as training leaves them (here: a seed's random ones)."""
    torch.manual_seed(seed)
    net = DigitNet(width)
    for module in net.modules():  # batch statistics of their own, as training would leave
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    return {k: v.clone() for k, v in net.state_dict().items()}


def cells(count: int) -> np.ndarray:
    return np.random.default_rng(5).random((count, *INPUT_SHAPE), dtype=np.float32)


def test_two_networks_read_as_the_mean_of_each_alone(tmp_path: Path) -> None:
    first, second = trained_apart(1), trained_apart(2, width=32)  # widths may differ
    threshold = torch.tensor(0.9)
    torch.save({"net": first, "min_confidence": threshold}, tmp_path / "first.pt")
    torch.save({"net": second, "min_confidence": threshold}, tmp_path / "second.pt")
    torch.save({"nets": [first, second], "min_confidence": threshold}, tmp_path / "both.pt")
    looks = cells(12)  # three views of four digits

    alone = [
        DigitReader(tmp_path / f"{name}.pt").probabilities(looks, 3) for name in ("first", "second")
    ]
    together = DigitReader(tmp_path / "both.pt")

    assert not np.allclose(alone[0], alone[1], atol=1e-3)  # the two really differ
    np.testing.assert_allclose(
        together.probabilities(looks, 3), (alone[0] + alone[1]) / 2, atol=1e-6
    )
    assert together.min_confidence == pytest.approx(0.9)


def test_the_shipped_weights_load_every_network_they_hold() -> None:
    saved = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    reader = DigitReader(WEIGHTS)
    assert len(reader.nets) == len(member_states(saved)) >= 1
    digits, confidences = reader.read(cells(4))
    assert len(digits) == len(confidences) == 4


@pytest.mark.parametrize("width", [16, 32])
def test_a_network_reads_as_its_trained_layers_do(tmp_path: Path, width: int) -> None:
    """Loading folds batch norms and reorders memory: the probabilities must not move.

    The network is rebuilt at the width it was trained at, which the file does not name.
    """
    state = trained_apart(3, width)
    torch.save({"net": state, "min_confidence": torch.tensor(0.9)}, tmp_path / "one.pt")
    as_trained = DigitNet(width)
    as_trained.load_state_dict(state)
    as_trained.eval()
    looks = cells(10)
    with torch.inference_mode():
        expected = torch.softmax(as_trained(torch.from_numpy(looks).unsqueeze(1)), dim=1)
    got = DigitReader(tmp_path / "one.pt").probabilities(looks)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)


def one_a_look(tmp_path: Path, seeds: tuple[int, ...]) -> tuple[list[DigitReader], DigitReader]:
    """Networks, each alone, and together in one file with ``nets_per_view: 1``."""
    states = [trained_apart(seed) for seed in seeds]
    threshold = torch.tensor(0.9)
    for index, state in enumerate(states):
        torch.save({"net": state, "min_confidence": threshold}, tmp_path / f"{index}.pt")
    torch.save(
        {"nets": states, "nets_per_view": torch.tensor(1), "min_confidence": threshold},
        tmp_path / "dealt.pt",
    )
    alone = [DigitReader(tmp_path / f"{i}.pt") for i in range(len(seeds))]
    return alone, DigitReader(tmp_path / "dealt.pt")


def test_three_networks_one_to_a_view_each_read_their_own_look(tmp_path: Path) -> None:
    """``nets_per_view: 1``: the first look is the first network's, the second the second's..."""
    alone, dealt = one_a_look(tmp_path, (4, 5, 6))
    looks = cells(12)  # three views of four digits

    expected = sum(alone[v].probabilities(looks[v * 4 : (v + 1) * 4]) for v in range(3)) / 3
    np.testing.assert_allclose(dealt.probabilities(looks, 3), expected, atol=1e-6)
    # one look (a caller without shifts) is still read by every network
    everyone = sum(reader.probabilities(looks[:4]) for reader in alone) / 3
    np.testing.assert_allclose(dealt.probabilities(looks[:4]), everyone, atol=1e-6)


def test_two_looks_at_three_networks_leave_none_of_them_out(tmp_path: Path) -> None:
    alone, dealt = one_a_look(tmp_path, (7, 8, 9))
    first, second = cells(8)[:4], cells(8)[4:]
    # each look read by two: the first by networks 0 and 1, the second by 1 and 2
    read = [reader.probabilities for reader in alone]
    expected = (read[0](first) + read[1](first) + read[1](second) + read[2](second)) / 4
    np.testing.assert_allclose(dealt.probabilities(cells(8), 2), expected, atol=1e-6)


@pytest.mark.parametrize("count", [4, 5, 6])
def test_three_looks_at_more_networks_leave_none_of_them_out(tmp_path: Path, count: int) -> None:
    """Look ``v`` goes to networks ``v``, ``v + 1``...: as many each as reach the last network."""
    alone, dealt = one_a_look(tmp_path, tuple(range(20, 20 + count)))
    looks = [cells(12)[v * 4 : (v + 1) * 4] for v in range(3)]
    mean, members = dealt.read_by_member(cells(12), 3)

    each = count - 2
    reads = [(v, v + k) for v in range(3) for k in range(each)]
    expected = sum(alone[net].probabilities(looks[v]) for v, net in reads) / len(reads)
    np.testing.assert_allclose(mean, expected, atol=1e-6)
    last = alone[count - 1].probabilities(looks[2])  # the last network reads the last look
    np.testing.assert_allclose(members[count - 1], last, atol=1e-6)


def test_each_network_alone_is_told_apart_for_the_second_reader(tmp_path: Path) -> None:
    """Network 1 read the first and the second look: its own is their mean."""
    alone, dealt = one_a_look(tmp_path, (10, 11, 12))
    first, second = cells(8)[:4], cells(8)[4:]
    mean, members = dealt.read_by_member(cells(8), 2)

    np.testing.assert_allclose(mean, dealt.probabilities(cells(8), 2), atol=1e-12)
    np.testing.assert_allclose(members[0], alone[0].probabilities(first), atol=1e-6)
    own = (alone[1].probabilities(first) + alone[1].probabilities(second)) / 2
    np.testing.assert_allclose(members[1], own, atol=1e-6)
    np.testing.assert_allclose(members[2], alone[2].probabilities(second), atol=1e-6)

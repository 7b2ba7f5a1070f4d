"""On a CPU without AMX the vision encoder runs in OpenVINO int8, only where it keeps the captions.

The tiny BLIP here is ``seeing_blip`` (conftest.py): one whose image reaches the decoder, so a
wrong encoder cannot pass the parity check.
"""

from __future__ import annotations

import gc
import json
import logging
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch

from bridge.engines import openvino_vision
from bridge.engines import precision as precision_module
from bridge.engines.base import EngineOutput, JobOptions
from bridge.engines.openvino_vision import OpenVinoVision
from bridge.engines.precision import PARITY_MIN_COSINE, ParityProbe, probe_image, step_cosines
from bridge.engines.transformers_engine import TransformersEngine
from tests.bridge.conftest import caption_engine as engine
from tests.bridge.conftest import photo

pytest.importorskip("openvino")
pytest.importorskip("nncf")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_TO_TEXT_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)


def fp32_probe(model: Path) -> ParityProbe:
    fp32 = engine(model, "fp32")
    pictures = [probe_image(64), photo(11, (64, 64)), photo(12, (96, 64))]
    return ParityProbe.run(fp32.model, fp32.processor, "cpu", pictures, max_new_tokens=8)


def test_the_image_reaches_the_decoder_of_the_test_model(seeing_blip: Path) -> None:
    probe = fp32_probe(seeing_blip)
    # different pictures, different next-token logits: a wrong encoder cannot go unnoticed
    assert min(step_cosines(probe.logits[:1], probe.logits[1:2])) < 0.9
    assert min(step_cosines(probe.logits[1:2], probe.logits[2:3])) < 0.9


def test_openvino_runs_the_vision_encoder_and_keeps_fp32s_logits(
    seeing_blip: Path, tmp_path: Path
) -> None:
    probe = fp32_probe(seeing_blip)
    fast = engine(seeing_blip, "openvino")
    assert fast.precision == "openvino"
    vision = fast.model.vision_model
    assert isinstance(vision, OpenVinoVision)
    assert not vision.cached  # converted on this first start
    assert not list(vision.parameters())  # the torch copy of the vision weights is gone
    assert fast.parity is not None
    assert min(fast.parity) >= PARITY_MIN_COSINE
    assert min(probe.cosines(fast.model, None)) >= PARITY_MIN_COSINE
    decoder = fast.model.text_decoder.modules()
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in decoder)
    (output,) = fast.run_batch([photo(13, (64, 64))], [JobOptions()])
    assert isinstance(output, EngineOutput)
    assert output.text
    assert list((tmp_path / "cache" / "openvino").glob("*/vision.xml"))
    assert fast.details()["precision"] == "openvino"


def test_the_next_start_reads_the_converted_encoder_from_the_cache(seeing_blip: Path) -> None:
    first = engine(seeing_blip, "openvino")
    again = engine(seeing_blip, "openvino")
    assert isinstance(again.model.vision_model, OpenVinoVision)
    assert again.model.vision_model.cached
    assert again.parity is not None
    assert min(again.parity) >= PARITY_MIN_COSINE
    frames = [photo(14, (64, 64)), photo(15, (80, 64))]
    options = [JobOptions(), JobOptions()]
    assert first.run_batch(frames, options) == again.run_batch(frames, options)


def test_a_broken_openvino_encoder_is_refused_with_a_log_line(
    seeing_blip: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_forward = openvino_vision._Outputs.forward

    def shuffled(self: Any, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        last, pooled = real_forward(self, pixel_values)
        return last.roll(1, dims=-1) * 3.0, pooled  # features shifted and scaled: a bad export

    monkeypatch.setattr(openvino_vision._Outputs, "forward", shuffled)
    monkeypatch.setattr(precision_module, "cpu_has_amx", lambda: False)
    with caplog.at_level(logging.WARNING, logger="bridge.engines.precision"):
        chosen = engine(seeing_blip, "auto")
    assert chosen.precision == "int8"  # the other candidate, which keeps parity
    assert not isinstance(chosen.model.vision_model, OpenVinoVision)
    assert "openvino not kept" in caplog.text
    assert chosen.probe is None or "openvino" not in chosen.probe
    forced = engine(seeing_blip, "openvino")
    assert forced.precision == "fp32"  # asked for openvino alone: it drifts, so fp32
    assert forced.parity is not None
    assert min(forced.parity) < PARITY_MIN_COSINE


def test_auto_times_both_forms_at_load_and_keeps_the_faster(
    seeing_blip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision_module, "cpu_has_amx", lambda: False)
    measured = engine(seeing_blip, "auto")
    assert measured.probe is not None
    assert set(measured.probe) == {"openvino", "int8"}
    assert measured.precision == min(measured.probe, key=measured.probe.__getitem__)
    assert measured.details()["probe"].keys() == {"openvino", "int8"}

    def int8_wins(fast: Any, _reference: ParityProbe) -> float:
        return 0.1 if fast.precision == "int8" else 0.2

    monkeypatch.setattr(precision_module, "probe_seconds", int8_wins)
    for record in (tmp_path / "cache" / "openvino" / "probe").glob("*.json"):
        record.unlink()  # measured afresh, not read back from the first start's record
    assert engine(seeing_blip, "auto").precision == "int8"


def test_auto_holds_one_candidate_at_a_time_and_rebuilds_an_earlier_winner(
    seeing_blip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a 4 GB board two BLIP-base forms at once (~3.5 GB at load) would not fit.
    monkeypatch.setattr(precision_module, "cpu_has_amx", lambda: False)
    loaded: list[weakref.ref[Any]] = []
    alive_at_each_load: list[int] = []
    real_load = TransformersEngine._load_weights

    def load_weights(self: TransformersEngine) -> Any:
        gc.collect()
        alive_at_each_load.append(sum(ref() is not None for ref in loaded))
        model = real_load(self)
        loaded.append(weakref.ref(model))
        return model

    def openvino_wins(fast: Any, _reference: ParityProbe) -> float:
        return 0.1 if fast.precision == "openvino" else 0.2

    monkeypatch.setattr(TransformersEngine, "_load_weights", load_weights)
    monkeypatch.setattr(precision_module, "probe_seconds", openvino_wins)
    chosen = engine(seeing_blip, "auto")
    # fp32 (turned into openvino), a fresh one for int8, a fresh one to rebuild the winner
    assert alive_at_each_load == [0, 0, 0]
    assert chosen.precision == "openvino"
    assert isinstance(chosen.model.vision_model, OpenVinoVision)
    assert chosen.probe == {"openvino": 0.1, "int8": 0.2}
    assert chosen.parity is not None
    assert min(chosen.parity) >= PARITY_MIN_COSINE


def probe_counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The forms the speed probe times from now on, in order (it still really times them)."""
    timed: list[str] = []
    real_probe = precision_module.probe_seconds

    def counted(fast: Any, reference: ParityProbe) -> float:
        timed.append(fast.precision)
        return real_probe(fast, reference)

    monkeypatch.setattr(precision_module, "cpu_has_amx", lambda: False)
    monkeypatch.setattr(precision_module, "probe_seconds", counted)
    return timed


def test_a_later_start_builds_only_the_choice_its_probe_recorded(
    seeing_blip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    timed = probe_counted(monkeypatch)
    first = engine(seeing_blip, "auto")
    assert sorted(timed) == ["int8", "openvino"]
    assert "probe_record" not in first.details()
    (path,) = (tmp_path / "cache" / "openvino" / "probe").glob("*.json")
    record = json.loads(path.read_text())
    assert record["precision"] == first.precision
    assert record["identity"]["versions"]["openvino"]
    # The record decides, not a new measurement: say the other form won, and it is built.
    other = "int8" if first.precision == "openvino" else "openvino"
    path.write_text(json.dumps({**record, "precision": other}))
    timed.clear()
    with caplog.at_level(logging.INFO, logger="bridge.engines.precision"):
        again = engine(seeing_blip, "auto")
    assert timed == []
    assert again.precision == other
    assert isinstance(again.model.vision_model, OpenVinoVision) == (other == "openvino")
    assert again.details()["probe_record"] == str(path)
    assert again.probe == record["seconds"]
    assert "as recorded by an earlier start's probe" in caplog.text
    assert again.parity is not None
    assert min(again.parity) >= PARITY_MIN_COSINE  # still checked against fp32


@pytest.mark.parametrize(
    ("field", "elsewhere"),
    [
        ("cpu", "AMD Ryzen 7 5800X 8-Core Processor"),
        ("cpu_flags", "0123456789abcdef"),
        ("versions", {"torch": "2.5.1", "transformers": "4.46.0", "openvino": "2024.6.0"}),
        ("decoder_threads", None),  # made before the decoder had a thread count of its own
    ],
)
def test_a_probe_record_from_another_cpu_or_other_versions_is_measured_again(
    seeing_blip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    field: str,
    elsewhere: Any,
) -> None:
    timed = probe_counted(monkeypatch)
    engine(seeing_blip, "auto")
    (path,) = (tmp_path / "cache" / "openvino" / "probe").glob("*.json")
    here = json.loads(path.read_text())
    moved = {**here, "identity": {**here["identity"], field: elsewhere}}
    path.write_text(json.dumps(moved))
    timed.clear()
    with caplog.at_level(logging.INFO, logger="bridge.engines"):
        again = engine(seeing_blip, "auto")
    assert sorted(timed) == ["int8", "openvino"]  # probed again
    assert "probe_record" not in again.details()
    assert f"was made with another {field}" in caplog.text
    rewritten = json.loads(path.read_text())
    assert rewritten["identity"] == here["identity"]  # this CPU's figures replace the others


def test_a_recorded_choice_that_drifts_from_fp32_is_forgotten_and_the_others_measured(
    seeing_blip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    timed = probe_counted(monkeypatch)
    engine(seeing_blip, "auto")
    (path,) = (tmp_path / "cache" / "openvino" / "probe").glob("*.json")
    path.write_text(json.dumps({**json.loads(path.read_text()), "precision": "openvino"}))
    real_forward = openvino_vision._Outputs.forward

    def shuffled(self: Any, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        last, pooled = real_forward(self, pixel_values)
        return last.roll(1, dims=-1) * 3.0, pooled

    # a new OpenVINO cache: the encoder is exported again, this time wrong
    monkeypatch.setenv("IMAGE_TO_TEXT_CACHE", str(tmp_path / "cache2"))
    (tmp_path / "cache2" / "openvino" / "probe").mkdir(parents=True)
    path.rename(tmp_path / "cache2" / "openvino" / "probe" / path.name)
    monkeypatch.setattr(openvino_vision._Outputs, "forward", shuffled)
    timed.clear()
    with caplog.at_level(logging.WARNING, logger="bridge.engines.precision"):
        again = engine(seeing_blip, "auto")
    assert "the recorded choice openvino no longer keeps parity" in caplog.text
    assert again.precision == "int8"
    assert "probe_record" not in again.details()
    assert timed == []  # int8 alone is left: nothing to time against
    assert not list((tmp_path / "cache2" / "openvino" / "probe").glob("*.json"))

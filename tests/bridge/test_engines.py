"""Engines on the real model classes: tiny BLIP and TrOCR built from configs, real RapidOCR."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import ModelConfig
from bridge.engines.base import EngineOutput, JobOptions, create_engine
from bridge.errors import ModelError
from tests.bridge.conftest import photo, render_sign


def test_a_blip_folder_captions_a_batch_with_and_without_a_prompt(tiny_blip: Path) -> None:
    engine = create_engine(
        ModelConfig(engine="transformers", model=str(tiny_blip), max_new_tokens=6)
    )
    engine.load()
    assert engine.input_size == 64
    outputs = engine.run_batch(
        [photo(1), photo(2), photo(3)],
        [JobOptions(), JobOptions(prompt="a photo of"), JobOptions()],
    )
    assert all(isinstance(o, EngineOutput) for o in outputs)
    prompted = outputs[1]
    assert isinstance(prompted, EngineOutput)
    assert prompted.text.startswith("a photo of")  # BLIP continues the prompt
    plain = engine.run_batch([photo(1)], [JobOptions()])[0]
    assert plain == outputs[0]  # batching does not change a frame's caption


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_reduced_precision_options_load_and_caption(tiny_blip: Path, precision: str) -> None:
    engine = create_engine(
        ModelConfig(
            engine="transformers",
            model=str(tiny_blip),
            precision=precision,  # type: ignore[arg-type]
            max_new_tokens=4,
        )
    )
    engine.load()
    (output,) = engine.run_batch([photo(4)], [JobOptions()])
    assert isinstance(output, EngineOutput)


def test_trocr_reads_a_line_with_a_score(tiny_trocr: Path) -> None:
    engine = create_engine(ModelConfig(engine="trocr", model=str(tiny_trocr), max_new_tokens=6))
    engine.load()
    (output,) = engine.run_batch([render_sign(["12345"], size=(300, 80))], [JobOptions()])
    assert isinstance(output, EngineOutput)
    for line in output.extra["lines"]:
        assert 0.0 <= line["score"] <= 1.0
        assert line["box"][2] == [300, 80]


def test_rapidocr_reads_a_whole_scene_in_reading_order() -> None:
    engine = create_engine(ModelConfig(engine="rapidocr"))
    engine.load()
    (output,) = engine.run_batch(
        [render_sign(["NO PARKING", "DELIVERIES ONLY"], rotate=3)], [JobOptions()]
    )
    assert isinstance(output, EngineOutput)
    assert output.text == "NO PARKING\nDELIVERIES ONLY"


def test_a_missing_model_is_named_with_a_way_to_supply_it(tmp_path: Path) -> None:
    engine = create_engine(ModelConfig(engine="transformers", model="example-org/absent-model"))
    with pytest.raises(ModelError) as caught:
        engine.load()
    assert caught.value.code == "model_unavailable"
    assert "example-org/absent-model" in caught.value.detail
    assert "save_pretrained" in caught.value.detail
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    with pytest.raises(ModelError, match="empty-folder"):
        create_engine(ModelConfig(engine="transformers", model=str(empty))).load()


def test_an_unknown_engine_lists_the_known_ones() -> None:
    with pytest.raises(ModelError, match=r"unknown engine 'yolo' \(known: .*rapidocr"):
        create_engine(ModelConfig(engine="yolo"))

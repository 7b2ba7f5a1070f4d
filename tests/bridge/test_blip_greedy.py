"""BLIP captions from our own greedy loop: generate's tokens, or generate where they differ."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from bridge.engines import precision as precision_module
from bridge.engines.base import EngineOutput, JobOptions
from bridge.engines.blip_greedy import GreedyBlip
from bridge.engines.image_attention import attend_to_image_features
from tests.bridge.conftest import caption_engine, photo


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_TO_TEXT_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)


def folded_blip(model: Path) -> Any:
    from transformers import BlipForConditionalGeneration

    blip = BlipForConditionalGeneration.from_pretrained(model).eval()
    attend_to_image_features(blip)
    return blip


def frames(model: Path, prompt: str | None = None) -> Any:
    from transformers import BlipProcessor

    pictures = [photo(31, (64, 64)), photo(32, (96, 64)), photo(33, (64, 80))]
    text = {"text": [prompt] * len(pictures)} if prompt else {}
    return BlipProcessor.from_pretrained(model)(images=pictures, return_tensors="pt", **text)


@pytest.mark.parametrize("prompt", [None, "a photo of"])
def test_the_greedy_loop_gives_generates_tokens_for_a_batch(
    seeing_blip: Path, prompt: str | None
) -> None:
    blip = folded_blip(seeing_blip)
    greedy = GreedyBlip.for_model(blip)
    assert greedy is not None
    inputs = frames(seeing_blip, prompt)
    with torch.inference_mode():
        expected = blip.generate(**inputs, max_new_tokens=9)
        ours = greedy.generate(
            inputs["pixel_values"], 9, inputs.get("input_ids"), inputs.get("attention_mask")
        )
    assert torch.equal(ours, expected)


def test_a_caption_that_ends_early_is_padded_as_generate_pads_it(seeing_blip: Path) -> None:
    blip = folded_blip(seeing_blip)
    inputs = frames(seeing_blip)
    with torch.inference_mode():
        blip.config.text_config.sep_token_id = 4  # [MASK]: never said, so no caption ends
        free = blip.generate(**inputs, max_new_tokens=8)
        assert free.shape[1] == 9
        # a word of the first frame's caption that the second's lacks ends only the first
        ending = next(int(t) for t in free[0, 1:] if not (free[1] == t).any())
        blip.config.text_config.sep_token_id = ending
        expected = blip.generate(**inputs, max_new_tokens=8)
        greedy = GreedyBlip.for_model(blip)
        assert greedy is not None
        ours = greedy.generate(inputs["pixel_values"], 8)
    assert (expected == blip.config.text_config.pad_token_id).any()  # some caption did end
    assert torch.equal(ours, expected)


def test_settings_that_change_the_logits_leave_captions_to_generate(seeing_blip: Path) -> None:
    blip = folded_blip(seeing_blip)
    blip.text_decoder.generation_config.repetition_penalty = 1.3
    assert GreedyBlip.for_model(blip) is None


def test_an_unfolded_decoder_and_a_padded_prompt_go_to_generate(seeing_blip: Path) -> None:
    from transformers import BlipForConditionalGeneration

    plain = BlipForConditionalGeneration.from_pretrained(seeing_blip).eval()
    assert GreedyBlip.for_model(plain) is None  # it would project the image at every token
    greedy = GreedyBlip.for_model(folded_blip(seeing_blip))
    assert greedy is not None
    inputs = frames(seeing_blip, "a photo of")
    mask = inputs["attention_mask"].clone()
    mask[0, -1] = 0
    assert greedy.generate(inputs["pixel_values"], 4, inputs["input_ids"], mask) is None


def bf16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision_module, "cpu_has", lambda flag: flag == "avx512_bf16")


def test_the_engine_captions_with_the_greedy_loop_where_it_matches(
    seeing_blip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bf16_cpu(monkeypatch)
    engine = caption_engine(seeing_blip, "int8")
    assert engine.greedy is not None
    assert engine.details()["greedy_loop"] is True
    calls: list[int] = []
    real_decode = GreedyBlip._decode

    def counted(self: GreedyBlip, *args: Any) -> Any:
        calls.append(1)
        return real_decode(self, *args)

    monkeypatch.setattr(GreedyBlip, "_decode", counted)
    frame = photo(34, (64, 64))
    (output,) = engine.run_batch([frame], [JobOptions()])
    assert calls == [1]
    engine.greedy = None  # the same frame through generate
    assert engine.run_batch([frame], [JobOptions()]) == [output]
    assert isinstance(output, EngineOutput)
    assert output.text


def test_a_greedy_loop_that_strays_is_dropped_at_load_with_a_log_line(
    seeing_blip: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bf16_cpu(monkeypatch)
    real_decode = GreedyBlip._decode

    def strayed(self: GreedyBlip, features: Any, prompt: Any, new: int) -> Any:
        tokens = real_decode(self, features, prompt, new)
        tokens[:, -1] = (tokens[:, -1] + 1) % self.model.config.text_config.vocab_size
        return tokens

    monkeypatch.setattr(GreedyBlip, "_decode", strayed)
    with caplog.at_level(logging.WARNING, logger="bridge.engines.transformers_engine"):
        engine = caption_engine(seeing_blip, "int8")
    assert engine.greedy is None
    assert "greedy loop's tokens differ" in caplog.text
    (output,) = engine.run_batch([photo(35, (64, 64))], [JobOptions()])
    assert isinstance(output, EngineOutput)
    assert output.text

"""BLIP's decoder attends to the image features directly: transformers' captions, no image cache."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from bridge.engines import image_attention
from bridge.engines import precision as precision_module
from bridge.engines.base import EngineOutput, JobOptions
from bridge.engines.image_attention import attend_to_image_features
from bridge.engines.precision import PARITY_MIN_COSINE, step_cosines, teacher_forced_logits
from tests.bridge.conftest import caption_engine, photo


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGE_TO_TEXT_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)


def two_copies(model: Path) -> tuple[Any, Any]:
    from transformers import BlipForConditionalGeneration

    original = BlipForConditionalGeneration.from_pretrained(model).eval()
    folded = BlipForConditionalGeneration.from_pretrained(model).eval()
    return original, folded


def inputs(model: Path, prompt: str | None = None) -> Any:
    from transformers import BlipProcessor

    processor = BlipProcessor.from_pretrained(model)
    pictures = [photo(21, (64, 64)), photo(22, (96, 64)), photo(23, (64, 80))]
    text = {"text": [prompt] * len(pictures)} if prompt else {}
    return processor(images=pictures, return_tensors="pt", **text)


def test_folded_cross_attention_captions_exactly_as_transformers_does(seeing_blip: Path) -> None:
    original, folded = two_copies(seeing_blip)
    layers = original.config.text_config.num_hidden_layers
    assert attend_to_image_features(folded) == layers
    frames = inputs(seeing_blip)
    with torch.inference_mode():
        for beams in (1, 3):
            expected = original.generate(**frames, max_new_tokens=10, num_beams=beams)
            assert torch.equal(
                folded.generate(**frames, max_new_tokens=10, num_beams=beams), expected
            )
        prompted = inputs(seeing_blip, "a photo of")
        expected = original.generate(**prompted, max_new_tokens=6)
        assert torch.equal(folded.generate(**prompted, max_new_tokens=6), expected)
    sequences = original.generate(**frames, max_new_tokens=10, min_new_tokens=10)
    reference = teacher_forced_logits(original, frames, sequences, None)
    candidate = teacher_forced_logits(folded, frames, sequences, None)
    assert torch.allclose(candidate, reference, atol=1e-4)


def test_no_keys_or_values_of_the_image_are_kept_per_layer(seeing_blip: Path) -> None:
    original, folded = two_copies(seeing_blip)
    attend_to_image_features(folded)
    frames = inputs(seeing_blip)
    with torch.inference_mode():
        kept = original.text_decoder.generate(
            **_decoder_inputs(original, frames), max_new_tokens=4, return_dict_in_generate=True
        )
        none = folded.text_decoder.generate(
            **_decoder_inputs(folded, frames), max_new_tokens=4, return_dict_in_generate=True
        )
    assert _cached_image_tensors(kept) > 0  # the test can see a cache where there is one
    assert _cached_image_tensors(none) == 0


def _decoder_inputs(model: Any, frames: Any) -> dict[str, Any]:
    features = model.vision_model(pixel_values=frames["pixel_values"]).last_hidden_state
    start = torch.full((features.shape[0], 1), model.decoder_input_ids)
    return {"input_ids": start, "encoder_hidden_states": features}


def _cached_image_tensors(generated: Any) -> int:
    cache = getattr(generated, "past_key_values", None) or getattr(generated, "cache", None)
    layers = getattr(cache.cross_attention_cache, "layers", [])
    return sum(1 for layer in layers if getattr(layer, "keys", None) is not None)


def test_bf16_folds_keep_fp32s_next_token_logits(seeing_blip: Path) -> None:
    original, folded = two_copies(seeing_blip)
    attend_to_image_features(folded, torch.bfloat16)
    frames = inputs(seeing_blip)
    with torch.inference_mode():
        sequences = original.generate(**frames, max_new_tokens=8, min_new_tokens=8)
    cosines = step_cosines(
        teacher_forced_logits(original, frames, sequences, None),
        teacher_forced_logits(folded, frames, sequences, None),
    )
    assert min(cosines) >= 0.9999


@pytest.mark.parametrize(("bf16", "folded"), [(True, True), (False, False)])
def test_int8_folds_the_image_attention_only_where_the_cpu_multiplies_bf16(
    seeing_blip: Path, monkeypatch: pytest.MonkeyPatch, bf16: bool, folded: bool
) -> None:
    monkeypatch.setattr(precision_module, "cpu_has", lambda flag: bf16 and flag == "avx512_bf16")
    engine = caption_engine(seeing_blip, "int8")
    assert engine.precision == "int8"
    cross = engine.model.text_decoder.bert.encoder.layer[0].crossattention.self
    assert hasattr(cross, "image_query_fold") is folded
    assert hasattr(cross, "key") is not folded
    (output,) = engine.run_batch([photo(24, (64, 64))], [JobOptions()])
    assert isinstance(output, EngineOutput)
    assert output.text


def test_a_fold_that_mixes_up_the_heads_is_refused_at_load_and_the_cache_kept(
    seeing_blip: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(precision_module, "cpu_has", lambda flag: flag == "avx512_bf16")
    real_attend = image_attention._attend

    def heads_rolled(self: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        context, probs = real_attend(self, *args, **kwargs)
        return context.roll(self.attention_head_size, dims=-1), probs

    monkeypatch.setattr(image_attention, "_attend", heads_rolled)
    forced = caption_engine(seeing_blip, "int8")
    assert forced.precision == "int8"  # asked for explicitly: converted, not checked
    assert hasattr(
        forced.model.text_decoder.bert.encoder.layer[0].crossattention.self, "image_query_fold"
    )
    with caplog.at_level(logging.WARNING, logger="bridge.engines.precision"):
        checked = caption_engine(seeing_blip, "auto")
    assert "folded changes the next-token logits" in caplog.text
    # the fast form is kept, with transformers' own cross-attention instead of the fold
    assert checked.precision in ("int8", "openvino")
    cross = checked.model.text_decoder.bert.encoder.layer[0].crossattention.self
    assert not hasattr(cross, "image_query_fold")
    assert hasattr(cross, "key")
    assert checked.parity is not None
    assert min(checked.parity) >= PARITY_MIN_COSINE
    assert checked.greedy is None  # the own loop needs the fold

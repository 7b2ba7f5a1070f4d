"""The default precision is fast only where it keeps the captions: checked against fp32."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bridge.engines import precision as precision_module
from bridge.engines.base import EngineOutput, JobOptions
from bridge.engines.blip_attention import use_fused_attention
from bridge.engines.precision import (
    PARITY_MIN_COSINE,
    ParityProbe,
    probe_image,
    step_cosines,
    teacher_forced_logits,
)
from tests.bridge.conftest import caption_engine as engine
from tests.bridge.conftest import photo


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_the_default_precision_keeps_next_token_logits_at_every_step(tiny_blip: Path) -> None:
    fp32 = engine(tiny_blip, "fp32")
    pictures = [probe_image(64), photo(1, (64, 64)), photo(2, (96, 64))]
    probe = ParityProbe.run(fp32.model, fp32.processor, "cpu", pictures, max_new_tokens=8)

    default = engine(tiny_blip)
    assert default.config.precision == "auto"
    # the fast form on a CPU (mixed where it has AMX; int8 or openvino, whichever the load-time
    # probe timed faster, where it has not), or fp32 if it drifts
    assert default.precision in ("int8", "openvino", "mixed", "fp32")
    logits = teacher_forced_logits(default.model, probe.inputs, probe.sequences, default.dtype)
    cosines = step_cosines(probe.logits, logits)
    assert len(cosines) == probe.sequences.shape[1]
    assert min(cosines) >= PARITY_MIN_COSINE
    assert default.parity is not None  # the engine ran the same check at load time
    assert min(default.parity) >= PARITY_MIN_COSINE


def test_a_model_that_drifts_in_int8_stays_fp32_and_captions_as_fp32(
    tiny_blip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision_module, "PARITY_MIN_COSINE", 1.5)  # nothing can pass
    strict = engine(tiny_blip)
    assert strict.precision == "fp32"
    assert strict.parity is not None
    assert min(strict.parity) < 1.5
    fp32 = engine(tiny_blip, "fp32")
    frames = [photo(3, (64, 64)), photo(4, (64, 64))]
    options = [JobOptions(), JobOptions()]
    assert strict.run_batch(frames, options) == fp32.run_batch(frames, options)


def test_an_unrelated_model_scores_low_so_the_check_can_fail(tiny_blip: Path) -> None:
    fp32 = engine(tiny_blip, "fp32")
    probe = ParityProbe.run(fp32.model, fp32.processor, "cpu", [probe_image(64)], 6)
    scrambled = engine(tiny_blip, "fp32")
    torch.manual_seed(1)
    with torch.no_grad():
        for parameter in scrambled.model.text_decoder.parameters():
            parameter.add_(torch.randn_like(parameter) * parameter.std().clamp(min=0.02))
    assert min(probe.cosines(scrambled.model, None)) < PARITY_MIN_COSINE


def test_fused_vision_attention_gives_the_eager_result(tiny_blip: Path) -> None:
    from transformers import BlipForConditionalGeneration

    eager = BlipForConditionalGeneration.from_pretrained(tiny_blip).eval()
    fused = BlipForConditionalGeneration.from_pretrained(tiny_blip).eval()
    assert use_fused_attention(fused) == fused.config.vision_config.num_hidden_layers
    pixels = torch.rand(2, 3, 64, 64)
    with torch.inference_mode():
        expected = eager.vision_model(pixel_values=pixels).last_hidden_state
        actual = fused.vision_model(pixel_values=pixels).last_hidden_state
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_every_precision_option_captions(tiny_blip: Path) -> None:
    for precision in ("fp32", "bf16", "int8", "mixed", "auto"):
        loaded = engine(tiny_blip, precision)
        (output,) = loaded.run_batch([photo(5, (64, 64))], [JobOptions()])
        assert isinstance(output, EngineOutput), precision
        assert output.text, precision


def test_a_model_the_check_cannot_drive_stays_fp32_and_still_captions(
    tiny_blip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_run(*_: object, **__: object) -> ParityProbe:
        raise TypeError("this model's forward takes other arguments")

    monkeypatch.setattr(ParityProbe, "run", cannot_run)
    loaded = engine(tiny_blip)
    assert loaded.precision == "fp32"
    (output,) = loaded.run_batch([photo(6, (64, 64))], [JobOptions()])
    assert isinstance(output, EngineOutput)


def test_mixed_runs_the_vision_encoder_in_bf16_and_the_decoder_in_int8_with_fp32s_logits(
    tiny_blip: Path,
) -> None:
    fp32 = engine(tiny_blip, "fp32")
    pictures = [probe_image(64), photo(7, (64, 64))]
    probe = ParityProbe.run(fp32.model, fp32.processor, "cpu", pictures, max_new_tokens=8)

    mixed = engine(tiny_blip, "mixed")
    assert mixed.precision == "mixed"
    vision_weights = {p.dtype for p in mixed.model.vision_model.parameters()}
    assert vision_weights == {torch.bfloat16}
    decoder = dict(mixed.model.text_decoder.named_modules())
    plain = {name: m for name, m in decoder.items() if type(m) is torch.nn.Linear}
    # the projections of the image features (once per image, many rows) stay bf16 for AMX ...
    assert plain
    assert all(
        name.endswith((".crossattention.self.key", ".crossattention.self.value")) for name in plain
    )
    assert {m.weight.dtype for m in plain.values()} == {torch.bfloat16}
    # ... and every token-by-token layer is dynamic int8
    assert [m for m in decoder.values() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)]
    logits = teacher_forced_logits(mixed.model, probe.inputs, probe.sequences, mixed.dtype)
    assert min(step_cosines(probe.logits, logits)) >= PARITY_MIN_COSINE


@pytest.mark.parametrize(("amx", "expected"), [(True, {"mixed"}), (False, {"int8", "openvino"})])
def test_auto_picks_mixed_on_a_cpu_with_amx_and_int8_or_openvino_elsewhere(
    tiny_blip: Path, monkeypatch: pytest.MonkeyPatch, amx: bool, expected: set[str]
) -> None:
    monkeypatch.setattr(precision_module, "cpu_has_amx", lambda: amx)
    chosen = engine(tiny_blip)
    assert chosen.precision in expected
    if amx:  # AMX keeps its measured choice: nothing else is tried, nothing timed
        assert chosen.probe is None


def test_vocabularies_are_kept_in_bf16_and_looked_up_in_fp32() -> None:
    from bridge.engines.precision import VOCABULARY_ROWS, vocabulary_in_bf16

    torch.manual_seed(5)
    model = torch.nn.ModuleDict(
        {
            "words": torch.nn.Embedding(VOCABULARY_ROWS + 1, 16),
            "positions": torch.nn.Embedding(64, 16),
        }
    )
    words = model["words"].weight.detach().clone()
    assert vocabulary_in_bf16(model, torch) == 1
    assert model["words"].weight.dtype == torch.bfloat16
    assert model["positions"].weight.dtype == torch.float32  # small tables stay as they are
    ids = torch.tensor([[0, 7, VOCABULARY_ROWS]])
    rows = model["words"](ids)
    assert rows.dtype == torch.float32
    assert torch.allclose(rows, words[ids], rtol=1 / 128)

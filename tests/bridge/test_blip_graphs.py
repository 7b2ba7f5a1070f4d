"""On a GPU, BLIP captions come from a fixed-shape step replayed as a CUDA graph.

No GPU here or in CI: these tests run the very step the graph captures, eagerly on the CPU, and
check that it gives ``generate``'s tokens; bench/RESULTS.md has the GPU's figures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from bridge.engines import blip_graphs
from bridge.engines.base import EngineOutput, JobOptions
from bridge.engines.blip_graphs import GraphedBlip
from tests.bridge.conftest import caption_engine, photo
from tests.bridge.test_blip_greedy import folded_blip, frames


@pytest.fixture(autouse=True)
def _one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IMAGE_TO_TEXT_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def as_given(inputs: Any) -> dict[str, Any]:
    """The processor's output for ``generate``, which overwrites the prompt's first token in place.

    Our loop must replace it itself: it is given the processor's ids as they came.
    """
    given = dict(inputs)
    if "input_ids" in given:
        given["input_ids"] = given["input_ids"].clone()
    return given


def plain_blip(model: Path, *, attentive: bool = True) -> Any:
    """The test BLIP; ``attentive``: its decoder's self-attention redrawn so that words matter.

    At the test model's 0.02 a token hardly attends to the words before it, and a step that
    masked the wrong cache slots would still give the same words.  (Redrawn, every picture gets
    the same caption: the test of captions that end apart needs the model as it is.)
    """
    from transformers import BlipForConditionalGeneration

    blip = BlipForConditionalGeneration.from_pretrained(model).eval()
    if not attentive:
        return blip
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for layer in blip.text_decoder.bert.encoder.layer:
            own = layer.attention.self
            for part in (own.query, own.key, own.value):
                part.weight.copy_(torch.randn(part.weight.shape, generator=generator) * 0.3)
    return blip


@pytest.mark.parametrize("prompt", [None, "a photo of"])
def test_each_step_scores_the_next_word_as_generate_does(
    seeing_blip: Path, prompt: str | None
) -> None:
    blip = plain_blip(seeing_blip)
    blip.config.text_config.sep_token_id = 4  # [MASK]: never said, so every caption runs on
    loop = GraphedBlip.for_model(blip, "cpu")
    assert loop is not None
    inputs = frames(seeing_blip, prompt)
    ours: list[Any] = []
    with torch.inference_mode():
        expected = blip.generate(
            **as_given(inputs), max_new_tokens=9, output_logits=True, return_dict_in_generate=True
        )
        tokens = loop.generate(
            inputs["pixel_values"],
            9,
            inputs.get("input_ids"),
            inputs.get("attention_mask"),
            logits=ours,
        )
    assert torch.equal(tokens, expected.sequences)
    assert len(ours) == len(expected.logits) == 9
    for step, (mine, theirs) in enumerate(zip(ours, expected.logits, strict=True)):
        assert torch.allclose(mine, theirs, atol=1e-4), f"step {step}"


@pytest.mark.parametrize("prompt", [None, "a photo of"])
def test_the_fixed_shape_step_gives_generates_tokens_for_a_batch(
    seeing_blip: Path, prompt: str | None
) -> None:
    blip = plain_blip(seeing_blip)
    loop = GraphedBlip.for_model(blip, "cpu")
    assert loop is not None
    assert not loop.graphs  # no CUDA: the step runs as it is
    inputs = frames(seeing_blip, prompt)
    with torch.inference_mode():
        expected = blip.generate(**as_given(inputs), max_new_tokens=9)
        ours = loop.generate(
            inputs["pixel_values"], 9, inputs.get("input_ids"), inputs.get("attention_mask")
        )
    assert torch.equal(ours, expected)


def test_the_buffers_of_one_caption_do_not_leak_into_the_next(seeing_blip: Path) -> None:
    blip = plain_blip(seeing_blip)
    blip.config.text_config.sep_token_id = 4
    loop = GraphedBlip.for_model(blip, "cpu")
    assert loop is not None
    first, second = frames(seeing_blip)["pixel_values"][:2].split(1)
    alone: list[Any] = []
    after: list[Any] = []
    with torch.inference_mode():
        loop.generate(second, 8, logits=alone)
        loop.generate(first, 8)  # same shape: same buffers, now holding the first caption
        loop.generate(second, 8, logits=after)
    assert len(after) == len(alone) == 8
    assert all(torch.equal(a, b) for a, b in zip(after, alone, strict=True))


def test_a_caption_that_ends_early_is_padded_as_generate_pads_it(seeing_blip: Path) -> None:
    blip = plain_blip(seeing_blip, attentive=False)
    inputs = frames(seeing_blip)
    with torch.inference_mode():
        blip.config.text_config.sep_token_id = 4  # [MASK]: never said, so no caption ends
        free = blip.generate(**inputs, max_new_tokens=8)
        ending = next(int(t) for t in free[0, 1:] if not (free[1] == t).any())
        blip.config.text_config.sep_token_id = ending
        expected = blip.generate(**inputs, max_new_tokens=8)
        loop = GraphedBlip.for_model(blip, "cpu")
        assert loop is not None
        ours = loop.generate(inputs["pixel_values"], 8)
    assert (expected == blip.config.text_config.pad_token_id).any()
    assert torch.equal(ours, expected)


def test_a_folded_decoder_a_changed_config_and_a_padded_prompt_are_not_its_business(
    seeing_blip: Path,
) -> None:
    assert GraphedBlip.for_model(folded_blip(seeing_blip), "cuda") is None
    changed = plain_blip(seeing_blip)
    changed.text_decoder.generation_config.repetition_penalty = 1.3
    assert GraphedBlip.for_model(changed, "cuda") is None
    loop = GraphedBlip.for_model(plain_blip(seeing_blip), "cuda")
    assert loop is not None
    assert loop.graphs
    inputs = frames(seeing_blip, "a photo of")
    mask = inputs["attention_mask"].clone()
    mask[0, -1] = 0
    assert loop.generate(inputs["pixel_values"], 4, inputs["input_ids"], mask) is None


def as_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine picks the loop as it would on CUDA; here it runs without graphs."""
    monkeypatch.setattr(blip_graphs, "pays_on", lambda device: True)


def test_the_engine_on_a_gpu_captions_with_the_fixed_shape_step(
    seeing_blip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_on_a_gpu(monkeypatch)
    engine = caption_engine(seeing_blip, "fp32")
    assert isinstance(engine.greedy, GraphedBlip)
    assert engine.details()["greedy_loop"] is True
    assert "cuda_graphs" not in engine.details()  # no CUDA here: the step runs eagerly
    steps: list[int] = []
    real_step = GraphedBlip._step

    def counted(self: GraphedBlip, buffers: Any) -> None:
        steps.append(1)
        real_step(self, buffers)

    monkeypatch.setattr(GraphedBlip, "_step", counted)
    frames_ = [photo(41, (64, 64)), photo(42, (64, 64))]
    outputs = engine.run_batch(frames_, [JobOptions()] * 2)
    assert steps
    engine.greedy = None  # the same frames through generate
    assert engine.run_batch(frames_, [JobOptions()] * 2) == outputs
    assert all(isinstance(o, EngineOutput) and o.text for o in outputs)


def test_a_step_that_strays_is_dropped_at_load_with_a_log_line(
    seeing_blip: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    as_on_a_gpu(monkeypatch)
    real_step = GraphedBlip._step

    def strayed(self: GraphedBlip, buffers: Any) -> None:
        real_step(self, buffers)
        buffers.chosen.add_(1).remainder_(self.vocabulary)

    monkeypatch.setattr(GraphedBlip, "_step", strayed)
    with caplog.at_level(logging.WARNING, logger="bridge.engines.transformers_engine"):
        engine = caption_engine(seeing_blip, "fp32")
    assert engine.greedy is None
    assert "greedy loop's tokens differ" in caplog.text
    (output,) = engine.run_batch([photo(43, (64, 64))], [JobOptions()])
    assert isinstance(output, EngineOutput)
    assert output.text


def test_on_a_cpu_the_engine_keeps_generate_where_nothing_is_folded(seeing_blip: Path) -> None:
    engine = caption_engine(seeing_blip, "fp32")
    assert engine.greedy is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the lent GPU)")
def test_on_cuda_the_replayed_graphs_give_the_eager_steps_tokens(seeing_blip: Path) -> None:
    blip = plain_blip(seeing_blip).to("cuda")
    blip.config.text_config.sep_token_id = 4
    graphed = GraphedBlip.for_model(blip, "cuda")
    eager = GraphedBlip(blip, graphs=False)
    assert graphed is not None
    assert graphed.graphs
    inputs = frames(seeing_blip, "a photo of").to("cuda")
    replayed: list[Any] = []
    stepped: list[Any] = []
    with torch.inference_mode():
        expected = blip.generate(**inputs, max_new_tokens=9)
        for _ in range(2):  # the second caption replays the graph the first one captured
            replayed.clear()
            ours = graphed.generate(
                inputs["pixel_values"], 9, inputs["input_ids"], inputs["attention_mask"], replayed
            )
        eager.generate(
            inputs["pixel_values"], 9, inputs["input_ids"], inputs["attention_mask"], stepped
        )
    assert torch.equal(ours, expected)
    assert all(torch.equal(a, b) for a, b in zip(replayed, stepped, strict=True))


def test_a_graph_that_cannot_be_captured_leaves_its_shape_to_the_plain_step(
    seeing_blip: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: GraphedBlip, buffers: Any) -> Any:
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(GraphedBlip, "_capture", broken)
    blip = plain_blip(seeing_blip)
    expected = frames(seeing_blip)["pixel_values"]
    asked = GraphedBlip(blip, graphs=True)  # as on a GPU, where another thread broke a capture
    with torch.inference_mode():
        reference = blip.generate(pixel_values=expected, max_new_tokens=6)
        with caplog.at_level(logging.WARNING, logger="bridge.engines.blip_graphs"):
            ours = asked.generate(expected, 6)
            again = asked.generate(expected, 6)
    assert torch.equal(ours, reference)
    assert torch.equal(again, reference)
    assert caplog.text.count("no CUDA graph for a batch of 3") == 1  # tried once per shape


def test_every_batch_size_reads_the_image_from_one_pair_of_buffers(seeing_blip: Path) -> None:
    blip = plain_blip(seeing_blip)
    blip.config.text_config.sep_token_id = 4
    loop = GraphedBlip.for_model(blip, "cpu", max_batch=3)
    assert loop is not None
    pixels = frames(seeing_blip)["pixel_values"]
    with torch.inference_mode():
        for batch in (1, 3, 2, 1):  # each batch size's rows overwrite the others' in turn
            expected = blip.generate(pixel_values=pixels[:batch], max_new_tokens=6)
            assert torch.equal(loop.generate(pixels[:batch], 6), expected), batch
    assert len(loop._image) == 1
    ((keys, _values),) = loop._image.values()
    assert keys.shape[1] == 3


def test_in_bf16_the_step_picks_generates_words_too(seeing_blip: Path) -> None:
    blip = plain_blip(seeing_blip).to(torch.bfloat16)
    blip.config.text_config.sep_token_id = 4
    loop = GraphedBlip.for_model(blip, "cpu")
    assert loop is not None
    differ = 0
    for seed in range(40):
        pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(seed))
        pixels = pixels.to(torch.bfloat16)
        with torch.inference_mode():
            expected = blip.generate(pixel_values=pixels, max_new_tokens=20)
            differ += not torch.equal(loop.generate(pixels, 20), expected)
    assert differ == 0


def test_a_batch_above_the_planned_size_gets_buffers_of_its_own(seeing_blip: Path) -> None:
    blip = plain_blip(seeing_blip)
    blip.config.text_config.sep_token_id = 4
    loop = GraphedBlip.for_model(blip, "cpu", max_batch=1)
    assert loop is not None
    pixels = frames(seeing_blip)["pixel_values"]
    with torch.inference_mode():
        for chosen in ([0], [0, 1], [2]):  # the batch of one after the larger one: its own rows
            expected = blip.generate(pixel_values=pixels[chosen], max_new_tokens=6)
            assert torch.equal(loop.generate(pixels[chosen], 6), expected), chosen


def test_prompts_of_similar_length_share_a_shape_and_the_graphs_are_bounded(
    seeing_blip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured: list[tuple[int, int]] = []

    class Replayed:
        """Stands for a captured graph: a replay runs the step as it is."""

        def __init__(self, loop: GraphedBlip, buffers: Any) -> None:
            self.loop, self.buffers = loop, buffers

        def replay(self) -> None:
            real_step(self.loop, self.buffers)

    def capture(self: GraphedBlip, buffers: Any) -> Any:
        captured.append((buffers.ids.shape[0], buffers.slots.shape[0]))
        return Replayed(self, buffers)

    real_step = GraphedBlip._step
    monkeypatch.setattr(GraphedBlip, "_capture", capture)
    monkeypatch.setattr(blip_graphs, "MAX_GRAPHS", 2)
    blip = plain_blip(seeing_blip)
    loop = GraphedBlip(blip, graphs=True)
    from transformers import BlipProcessor

    processor = BlipProcessor.from_pretrained(seeing_blip)
    picture = photo(44, (64, 64))
    with torch.inference_mode():
        for prompt in ("a photo of", "a photo of the", "a photo of the cat at the door"):
            inputs = processor(images=[picture], text=[prompt], return_tensors="pt")
            expected = blip.generate(**as_given(inputs), max_new_tokens=4)
            ours = loop.generate(
                inputs["pixel_values"], 4, inputs["input_ids"], inputs["attention_mask"]
            )
            assert torch.equal(ours, expected), prompt
        for batch in (2, 3):  # shapes past the bound: step by step, still the same words
            pixels = frames(seeing_blip)["pixel_values"][:batch]
            assert torch.equal(
                loop.generate(pixels, 4), blip.generate(pixel_values=pixels, max_new_tokens=4)
            )
    # prompts of 4 and 5 tokens and 4 new words share 8 slots; the long prompt takes 16
    assert captured == [(1, 8), (1, 16)]

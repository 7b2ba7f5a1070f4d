"""The caption model's encoder uses the engine's threads; its token-by-token decoder uses one."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from bridge.engines.base import EngineOutput, JobOptions
from bridge.engines.thread_split import DECODER_THREADS
from bridge.engines.transformers_engine import TransformersEngine
from tests.bridge.conftest import caption_engine, photo


def threads_seen(engine: TransformersEngine) -> dict[str, list[int]]:
    """Caption one frame, noting the thread count inside the encoder and the decoder."""
    seen: dict[str, list[int]] = {"encoder": [], "decoder": [], "image keys": []}
    model: Any = engine.model
    inside_encoder = model.vision_model.embeddings if precision_is_torch(engine) else None
    hooks = [
        # the language head runs at every token, whichever loop drives the decoder
        model.text_decoder.cls.register_forward_pre_hook(
            lambda *_: seen["decoder"].append(torch.get_num_threads())
        )
    ]
    image_keys = getattr(model.text_decoder.bert.encoder.layer[0].crossattention.self, "key", None)
    if image_keys is not None:  # absent where the cross-attention is folded (image_attention.py)
        hooks.append(
            image_keys.register_forward_pre_hook(
                lambda *_: seen["image keys"].append(torch.get_num_threads())
            )
        )
    if inside_encoder is not None:
        hooks.append(
            inside_encoder.register_forward_pre_hook(
                lambda *_: seen["encoder"].append(torch.get_num_threads())
            )
        )
    try:
        (output,) = engine.run_batch([photo(3, (96, 64))], [JobOptions()])
    finally:
        for hook in hooks:
            hook.remove()
    assert isinstance(output, EngineOutput)
    return seen


def precision_is_torch(engine: TransformersEngine) -> bool:
    return engine.precision != "openvino"


@pytest.mark.parametrize("precision", ["int8", "auto"])
def test_the_decoder_steps_run_on_one_thread_and_the_encoder_on_the_engines(
    tiny_blip: Path, precision: str
) -> None:
    engine = caption_engine(tiny_blip, precision, threads=2)
    assert engine.precision in ("int8", "openvino")
    seen = threads_seen(engine)
    assert seen["decoder"]
    assert set(seen["decoder"]) == {DECODER_THREADS}
    # the decoder's projections of the image, once per caption, are image-sized work; where
    # the cross-attention is folded into the queries there are none
    folded = hasattr(
        engine.model.text_decoder.bert.encoder.layer[0].crossattention.self, "image_query_fold"
    )
    assert seen["image keys"] == ([] if folded else [2])
    if precision_is_torch(engine):
        assert seen["encoder"] == [2]


def test_fp32_is_left_as_configured(tiny_blip: Path) -> None:
    engine = caption_engine(tiny_blip, "fp32", threads=2)
    seen = threads_seen(engine)
    assert set(seen["decoder"]) == {2}
    assert seen["encoder"] == [2]


def test_the_split_touches_only_the_thread_running_the_model(tiny_blip: Path) -> None:
    """Another engine's thread (the meter's, say) keeps the count it set for itself."""
    engine = caption_engine(tiny_blip, "int8", threads=2)
    counts: list[int] = []

    def other_engine() -> None:
        torch.set_num_threads(2)
        torch.get_num_threads()  # as a first operation does: the count is now this thread's own
        ready.set()
        captioned.wait(60)
        counts.append(torch.get_num_threads())

    ready, captioned = threading.Event(), threading.Event()
    worker = threading.Thread(target=other_engine)
    worker.start()
    ready.wait(60)
    threads_seen(engine)
    captioned.set()
    worker.join(60)
    assert counts == [2]

"""BLIP's greedy captions on a GPU, each token one replay of a captured CUDA graph.

Why: on a GPU, ``generate`` launches each token's few hundred small kernels one by one from
Python, and the GPU waits on the host: a BLIP-base caption costs the same in fp16 as in fp32, and
at a batch of four as at one (bench/RESULTS.md).  A captured graph launches a token's kernels in
one call.  A graph replays fixed shapes at fixed addresses, so the step attends to the whole
self-attention cache under a mask, writes its keys and values at a position held in a tensor, and
reads the image's cross-attention keys and values from buffers filled once per caption.  A
prompt is fed a token at a time through the same step.  One graph per batch size and caption
length (in steps of ``LENGTH_STEP``), captured on first use, ``MAX_GRAPHS`` at most.  Off CUDA
the same step runs without a graph (how the tests check its arithmetic against ``generate``);
the engine uses it on CUDA only (``pays_on``).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

from bridge.engines.blip_greedy import BlipDecoderLoop, plain_blip_captioner

_LOGGER = logging.getLogger(__name__)
#: Eager runs of a step before its capture (lazy initialisation must not happen inside one).
WARM_UP_STEPS = 2
#: Caption lengths are rounded up to a multiple of this: prompts of similar length share a graph.
LENGTH_STEP = 8
#: Graphs one model keeps at most; later shapes (prompts sent in requests) run step by step.
MAX_GRAPHS = 16
#: One capture at a time in a process (torch's rule), whichever engine's thread captures.
_CAPTURING = threading.Lock()


def pays_on(device: str) -> bool:
    """Whether the loop is worth using on ``device``: on a GPU only.

    On a CPU the launches cost little beside the arithmetic: without a graph the step was as
    fast as ``generate`` in int8 and a few percent faster in fp32 (bench/RESULTS.md), not enough
    to change the CPU's tuned paths for.
    """
    return device.startswith("cuda")


@dataclass
class _Buffers:
    """What one graph reads and writes, allocated once for its batch size and length."""

    ids: Any  # (batch, 1) the token fed at this step
    position: Any  # (1,) where it stands in the caption
    slots: Any  # (length,) 0..length-1, to mask the positions not written yet
    keys: Any  # (layers, batch, heads, length, width): the self-attention cache
    values: Any
    image_keys: Any  # (layers, batch, heads, image tokens, width)
    image_values: Any
    logits: Any  # (batch, vocabulary) the step's scores for the next token
    chosen: Any  # (batch,) the token the step predicts next


class GraphedBlip(BlipDecoderLoop):
    """BLIP's text decoder, one fixed-shape greedy step per token (a CUDA graph on a GPU)."""

    def __init__(self, model: Any, *, graphs: bool, max_batch: int = 4) -> None:
        super().__init__(model)
        self.graphs = graphs
        self.max_batch = max_batch
        self._captured: dict[tuple[int, int, int], tuple[_Buffers, Any]] = {}
        #: The image's keys and values, one pair of buffers for every batch size's graph (a
        #: graph reads its first rows): for BLIP-base, 21 MB a frame in fp16.
        self._image: dict[tuple[int, Any], tuple[Any, Any]] = {}

    @classmethod
    def for_model(cls, model: Any, device: str, max_batch: int = 4) -> GraphedBlip | None:
        """The loop for a BLIP captioner with transformers' own cross-attention, else None."""
        if not plain_blip_captioner(model):
            return None
        if not all(hasattr(layer.crossattention.self, "key") for layer in cls._layers(model)):
            return None  # folded (image_attention.py): GreedyBlip's business
        return cls(model, graphs=device.startswith("cuda"), max_batch=max_batch)

    @staticmethod
    def _layers(model: Any) -> list[Any]:
        return list(model.text_decoder.bert.encoder.layer)

    def generate(
        self,
        pixel_values: Any,
        max_new_tokens: int,
        input_ids: Any = None,
        attention_mask: Any = None,
        logits: list[Any] | None = None,
    ) -> Any | None:
        """Token ids as ``model.generate`` gives them; None where only ``generate`` can do it.

        ``logits``: where given, each new token's scores are added to it (as ``generate``'s
        ``output_logits``).
        """
        import torch

        with torch.inference_mode():  # the buffers are inference tensors
            started = self._start(pixel_values, input_ids, attention_mask)
            if started is None:
                return None
            return self._decode(*started, max_new_tokens, logits)

    def _decode(self, features: Any, prompt: Any, max_new_tokens: int, logits: Any) -> Any:
        import torch

        batch, start = prompt.shape
        length = -(-(start + max_new_tokens) // LENGTH_STEP) * LENGTH_STEP
        buffers, graph = self._graph(batch, length, features)
        self._project_image(features, buffers)
        finished = torch.zeros(batch, dtype=torch.bool, device=features.device)
        tokens = [prompt]
        for position in range(start + max_new_tokens - 1):
            fed = prompt[:, position : position + 1] if position < start else tokens[-1]
            buffers.ids.copy_(fed)
            buffers.position.fill_(position)
            if graph is not None:
                graph.replay()
            else:
                self._step(buffers)
            if position < start - 1:
                continue  # still reading the prompt
            if logits is not None:
                logits.append(buffers.logits.clone())
            chosen = torch.where(finished, self.pad, buffers.chosen)
            tokens.append(chosen[:, None])
            finished |= chosen == self.eos
            if bool(finished.all()):
                break
        return torch.cat(tokens, dim=1)

    def _graph(self, batch: int, length: int, features: Any) -> tuple[_Buffers, Any]:
        """The buffers, and the captured graph on a GPU, for this shape; made on first use."""
        key = (batch, length, features.shape[1])
        if key not in self._captured:
            buffers = self._buffers(batch, length, features)
            graph = None
            captured = sum(1 for _, made in self._captured.values() if made is not None)
            if self.graphs and captured >= MAX_GRAPHS:
                _LOGGER.info("%d CUDA graphs already; a new shape runs step by step", captured)
            elif self.graphs:
                try:
                    graph = self._capture(buffers)
                except RuntimeError as err:  # e.g. another thread's CUDA work broke the capture
                    _LOGGER.warning(
                        "no CUDA graph for a batch of %d (%s); its tokens run step by step",
                        batch,
                        str(err).splitlines()[0][:200],
                    )
            self._captured[key] = (buffers, graph)
        return self._captured[key]

    def _buffers(self, batch: int, length: int, features: Any) -> _Buffers:
        import torch

        device, dtype = features.device, features.dtype
        cache = (len(self.layers), batch, self.heads, length, self.width)
        image_keys, image_values = self._image_buffers(batch, features)
        # zeros, not empty: a masked slot's value is multiplied by a weight of 0, and 0 x NaN
        # would not be 0
        return _Buffers(
            ids=torch.zeros((batch, 1), dtype=torch.long, device=device),
            position=torch.zeros(1, dtype=torch.long, device=device),
            slots=torch.arange(length, device=device),
            keys=torch.zeros(cache, dtype=dtype, device=device),
            values=torch.zeros(cache, dtype=dtype, device=device),
            image_keys=image_keys[:, :batch],
            image_values=image_values[:, :batch],
            logits=torch.zeros((batch, self.vocabulary), device=device),
            chosen=torch.zeros(batch, dtype=torch.long, device=device),
        )

    def _image_buffers(self, batch: int, features: Any) -> tuple[Any, Any]:
        """The shared image keys and values for ``features``' kind, with room for ``batch``.

        A batch above ``max_batch`` gets larger ones; graphs captured before keep theirs.
        """
        import torch

        key = (features.shape[1], features.dtype)
        held = self._image.get(key)
        if held is None or held[0].shape[1] < batch:
            rows = max(batch, self.max_batch)
            shape = (len(self.layers), rows, self.heads, features.shape[1], self.width)
            keys = torch.zeros(shape, dtype=features.dtype, device=features.device)
            held = (keys, torch.zeros_like(keys))
            self._image[key] = held
        return held

    def _capture(self, buffers: _Buffers) -> Any:
        import torch

        if not buffers.ids.is_cuda:  # a capture of CPU work is empty: its replays do nothing
            raise RuntimeError("the model is not on a CUDA device")
        # the model's device, not the current one (cuda:1), for the streams and the capture
        with _CAPTURING, torch.cuda.device(buffers.ids.device):
            stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(WARM_UP_STEPS):
                    self._step(buffers)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            # thread_local: another engine's thread may use CUDA while this one captures
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self._step(buffers)
        return graph

    def _project_image(self, features: Any, buffers: _Buffers) -> None:
        """Each layer's cross-attention keys and values of this batch's image features."""
        batch, count, _ = features.shape
        shape = (batch, count, self.heads, self.width)
        for index, layer in enumerate(self.layers):
            attention = layer.crossattention.self
            buffers.image_keys[index].copy_(attention.key(features).view(shape).transpose(1, 2))
            buffers.image_values[index].copy_(attention.value(features).view(shape).transpose(1, 2))

    def _step(self, buffers: _Buffers) -> None:
        """One token through the decoder at ``buffers.position``; its successor to ``chosen``."""
        import torch

        embeddings = self.embeddings
        batch = buffers.ids.shape[0]
        hidden = embeddings.word_embeddings(buffers.ids)
        hidden = embeddings.LayerNorm(hidden + embeddings.position_embeddings(buffers.position))
        # transformers' additive mask: 0 where seen, the dtype's lowest where not written yet
        hidden_slots = (buffers.slots > buffers.position).to(hidden.dtype)
        unwritten = (hidden_slots * torch.finfo(hidden.dtype).min).view(1, 1, 1, -1)
        shape = (batch, 1, self.heads, self.width)
        for index, layer in enumerate(self.layers):
            own = layer.attention.self
            query = own.query(hidden).view(shape).transpose(1, 2)
            keys, values = buffers.keys[index], buffers.values[index]
            keys.index_copy_(2, buffers.position, own.key(hidden).view(shape).transpose(1, 2))
            values.index_copy_(2, buffers.position, own.value(hidden).view(shape).transpose(1, 2))
            context = self._attend(query, keys, values, unwritten)
            hidden = layer.attention.output(context, hidden)
            cross = layer.crossattention
            query = cross.self.query(hidden).view(shape).transpose(1, 2)
            context = self._attend(query, buffers.image_keys[index], buffers.image_values[index])
            hidden = cross.output(context, hidden)
            hidden = layer.output(layer.intermediate(hidden), hidden)
        buffers.logits.copy_(self.head(hidden)[:, -1])
        buffers.chosen.copy_(torch.argmax(buffers.logits, dim=-1))

    def _attend(self, query: Any, keys: Any, values: Any, mask: Any = None) -> Any:
        """BLIP's attention written as transformers writes it, not a fused kernel.

        The fused kernel's other order of operations picks other words in bf16 (21 of 100
        test captions), and the load-time check sees one frame only.
        """
        import torch

        scores = torch.matmul(query, keys.transpose(-1, -2)) / math.sqrt(self.width)
        if mask is not None:
            scores = scores + mask
        context = torch.matmul(torch.softmax(scores, dim=-1), values)
        batch, heads, count, width = context.shape
        return context.permute(0, 2, 1, 3).contiguous().view(batch, count, heads * width)

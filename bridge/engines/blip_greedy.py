"""Greedy BLIP captions without transformers' ``generate`` loop.

Why: at a batch of one, ``generate`` spends about as long per token in Python (module calls,
masks rebuilt every step, cache bookkeeping, logits processors) as the int8 layers take to
stream their weights.  This loop calls the same layers, with the self-attention's keys and
values in a cache allocated once per caption.  It does plain greedy decoding only: beams, or a
generation config that changes the logits, go to ``generate``.  It needs the cross-attention
folded (``image_attention.py``), and the engine keeps it only if it gives ``generate``'s own
tokens on the load-time check's frame (``transformers_engine.py``).
"""

from __future__ import annotations

from typing import Any

#: Generation settings that leave greedy decoding plain (anything else goes to ``generate``).
_PLAIN_SETTINGS = frozenset(
    {
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "sep_token_id",
        "decoder_start_token_id",
        "max_length",
        "max_new_tokens",
        "use_cache",
        "transformers_version",
        "_from_model_config",
    }
)
#: Settings that leave it plain at these values (beam-only ones change nothing at one beam).
_PLAIN_VALUES: dict[str, Any] = {
    "output_attentions": False,
    "output_hidden_states": False,
    "output_scores": False,
    "output_logits": False,
    "return_dict_in_generate": False,
    "do_sample": False,
    "num_beams": 1,
    "num_return_sequences": 1,
    "min_length": 0,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "length_penalty": 1.0,
    "early_stopping": False,
}


def plain_blip_captioner(model: Any) -> bool:
    """Whether ``model`` is a BLIP captioner whose greedy decoding a loop of ours can repeat.

    Its decoder must have absolute positions and a generation config that changes no logits.
    """
    if getattr(model.config, "model_type", "") != "blip":
        return False
    text = getattr(model, "text_decoder", None)
    bert = getattr(text, "bert", None)
    if text is None or bert is None or not hasattr(text, "cls"):
        return False
    settings = text.generation_config.to_diff_dict()
    for name, value in settings.items():
        if name not in _PLAIN_SETTINGS and _PLAIN_VALUES.get(name, object()) != value:
            return False
    return getattr(bert.embeddings, "position_embedding_type", "absolute") == "absolute"


def prompt_ids(input_ids: Any, features: Any, bos: int) -> Any:
    """The decoder's first tokens, as ``generate`` makes them from the processor's prompt.

    No prompt: the start token alone.  A prompt: its first token replaced by the start token and
    its last, the separator, dropped.
    """
    import torch

    if input_ids is None:
        return torch.full((features.shape[0], 1), bos, dtype=torch.long, device=features.device)
    prompt = input_ids[:, :-1].clone()
    prompt[:, 0] = bos
    return prompt


class BlipDecoderLoop:
    """What a loop of ours reads of BLIP's text decoder: its modules and its special tokens."""

    def __init__(self, model: Any) -> None:
        text = model.text_decoder
        config = model.config.text_config
        self.model = model
        self.embeddings = text.bert.embeddings
        self.layers = list(text.bert.encoder.layer)
        self.head = text.cls
        self.bos, self.eos, self.pad = config.bos_token_id, config.sep_token_id, config.pad_token_id
        self.vocabulary = config.vocab_size
        first = self.layers[0].attention.self
        self.heads, self.width = first.num_attention_heads, first.attention_head_size

    def _start(
        self, pixel_values: Any, input_ids: Any, attention_mask: Any
    ) -> tuple[Any, Any] | None:
        """The image features and the decoder's first tokens; None for a padded prompt.

        A padded prompt needs ``generate``'s masks.
        """
        if attention_mask is not None and not bool(attention_mask.all()):
            return None
        features = self.model.vision_model(pixel_values=pixel_values)[0]
        return features, prompt_ids(input_ids, features, self.bos)


class GreedyBlip(BlipDecoderLoop):
    """BLIP's text decoder run token by token, greedily, over the image features."""

    @classmethod
    def for_model(cls, model: Any) -> GreedyBlip | None:
        """The loop for ``model`` if it is a BLIP captioner it can run exactly, else None."""
        if not plain_blip_captioner(model):
            return None
        if not all(
            hasattr(layer.crossattention.self, "image_query_fold")
            for layer in model.text_decoder.bert.encoder.layer
        ):
            return None
        return cls(model)

    def generate(
        self,
        pixel_values: Any,
        max_new_tokens: int,
        input_ids: Any = None,
        attention_mask: Any = None,
    ) -> Any | None:
        """Token ids as ``model.generate`` gives them; None where only ``generate`` can do it.

        ``input_ids``: a prompt as the processor makes it (BLIP replaces its first token by
        the decoder's start and drops its last, the separator, as ``generate`` does).
        """
        started = self._start(pixel_values, input_ids, attention_mask)
        return None if started is None else self._decode(*started, max_new_tokens)

    def _decode(self, features: Any, prompt: Any, max_new_tokens: int) -> Any:
        import torch

        batch, start = prompt.shape
        length = start + max_new_tokens
        shape = (len(self.layers), batch, self.heads, length, self.width)
        keys = torch.empty(shape, dtype=features.dtype)
        values = torch.empty(shape, dtype=features.dtype)
        finished = torch.zeros(batch, dtype=torch.bool)
        tokens = [prompt]
        step, done = prompt, 0
        for _ in range(max_new_tokens):
            logits = self._forward(step, done, features, keys, values)
            chosen = logits[:, -1].argmax(dim=-1)
            chosen = torch.where(finished, torch.full_like(chosen, self.pad), chosen)
            tokens.append(chosen[:, None])
            finished |= chosen == self.eos
            if bool(finished.all()):
                break
            done += step.shape[1]
            step = chosen[:, None]
        return torch.cat(tokens, dim=1)

    def _forward(self, ids: Any, done: int, features: Any, keys: Any, values: Any) -> Any:
        """Logits for ``ids``, which follow ``done`` cached positions; the cache is extended."""
        embeddings = self.embeddings
        positions = embeddings.position_ids[:, done : done + ids.shape[1]]
        hidden = embeddings.word_embeddings(ids) + embeddings.position_embeddings(positions)
        hidden = embeddings.LayerNorm(hidden)
        for index, layer in enumerate(self.layers):
            attended = self._self_attend(
                layer.attention.self, hidden, done, keys[index], values[index]
            )
            hidden = layer.attention.output(attended, hidden)
            crossed, _ = layer.crossattention.self(hidden, encoder_hidden_states=features)
            hidden = layer.crossattention.output(crossed, hidden)
            hidden = layer.output(layer.intermediate(hidden), hidden)
        return self.head(hidden[:, -1:]).float()

    def _self_attend(self, attention: Any, hidden: Any, done: int, keys: Any, values: Any) -> Any:
        import torch

        batch, count, _ = hidden.shape
        shape = (batch, count, self.heads, self.width)
        query = attention.query(hidden).view(shape).transpose(1, 2)
        keys[:, :, done : done + count] = attention.key(hidden).view(shape).transpose(1, 2)
        values[:, :, done : done + count] = attention.value(hidden).view(shape).transpose(1, 2)
        seen = done + count
        context = torch.nn.functional.scaled_dot_product_attention(
            query, keys[:, :, :seen], values[:, :, :seen], is_causal=count > 1 and done == 0
        )
        return context.transpose(1, 2).reshape(batch, count, self.heads * self.width)

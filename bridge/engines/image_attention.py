"""BLIP's text decoder attending to the image features themselves, not to cached keys and values.

Why: transformers projects the image features into keys and values for each of the decoder's
layers once per caption (for BLIP-base, 12 layers x 2 products of 577x768 by 768x768 per frame,
about a sixth of the vision encoder's work) and reads those caches, 3.5 MB a layer per frame, at
every token.  The projections can be folded into the query and the output instead:

    softmax(q Wk (X Wk' + bk)') X Wv' + bv = softmax((q Wk) X') X Wv' + bv

(``X`` the image features, shared by every layer; ``q Wk . bk`` is the same for every image
token, so softmax drops it).  Each step then multiplies one small matrix per layer with ``X``,
which stays in the CPU's cache, and no per-layer keys or values exist at all.  The results are
those of the original arithmetic, reordered (bench/RESULTS.md has the timings).
"""

from __future__ import annotations

import math
import types
from typing import Any

#: Where BLIP's decoder keeps its cross-attention (the parent module's name ends with this).
_CROSS_ATTENTION = ".crossattention.self"


def attend_to_image_features(model: Any, dtype: Any = None) -> int:
    """Fold the key/value projections of BLIP's cross-attention into its queries; how many.

    The ``key`` and ``value`` Linear layers are removed (their weights live on as the module's
    buffers), so later conversions (int8, bf16) see only the per-token layers.  Models other
    than BLIP are left as they are.
    """
    import torch

    shared = _Features()
    patched = 0
    for name, module in model.named_modules():
        if not name.endswith(_CROSS_ATTENTION) or not _foldable(module, torch):
            continue
        heads, width = module.num_attention_heads, module.attention_head_size
        keys, values = module.key, module.value
        # (heads, head width, feature width): a head's query times its slice: a feature-space query
        module.register_buffer(
            "image_query_fold", keys.weight.detach().reshape(heads, width, -1).clone()
        )
        # (heads, feature width, head width): a feature-space mix times its slice gives the context
        module.register_buffer(
            "image_value_fold",
            values.weight.detach().reshape(heads, width, -1).transpose(1, 2).contiguous(),
        )
        module.register_buffer(
            "image_value_bias", values.bias.detach().reshape(heads, 1, width).clone()
        )
        if dtype is not None:
            module.image_query_fold = module.image_query_fold.to(dtype)
            module.image_value_fold = module.image_value_fold.to(dtype)
        module.image_features = shared
        del module.key, module.value
        module.forward = types.MethodType(_attend, module)
        patched += 1
    return patched


def _foldable(module: Any, torch: Any) -> bool:
    return (
        all(
            isinstance(getattr(module, part, None), torch.nn.Linear)
            for part in ("query", "key", "value")
        )
        and getattr(module.value, "bias", None) is not None
    )


def _attend(
    self: Any,
    hidden_states: Any,
    attention_mask: Any = None,
    encoder_hidden_states: Any = None,
    encoder_attention_mask: Any = None,
    **_: Any,
) -> tuple[Any, Any]:
    """The cross-attention's forward, computed against the features (see the module's doc)."""
    import torch

    if encoder_hidden_states is None:
        raise ValueError("BLIP's cross-attention was called without image features")
    batch, length, _ = hidden_states.shape
    heads, width = self.num_attention_heads, self.attention_head_size
    features = self.image_features.cast(encoder_hidden_states, self.image_query_fold.dtype)
    tokens = features.shape[1]
    # head-major (heads, batch x length, width): one batched product per fold for the batch
    query = self.query(hidden_states).view(batch, length, heads, width).permute(2, 0, 1, 3)
    query = query.reshape(heads, batch * length, width).to(features.dtype)
    # each head's query moved into the features' space
    folded = torch.bmm(query, self.image_query_fold).view(heads, batch, length, -1)
    folded = folded.permute(1, 0, 2, 3).reshape(batch, heads * length, -1)
    scores = torch.bmm(folded, features.transpose(1, 2)).view(batch, heads, length, tokens)
    scores = scores / math.sqrt(width)
    mask = encoder_attention_mask if encoder_attention_mask is not None else attention_mask
    if mask is not None:
        scores = scores + mask.to(scores.dtype)
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(features.dtype)
    mixed = torch.bmm(probs.view(batch, heads * length, tokens), features)
    mixed = (
        mixed.view(batch, heads, length, -1).permute(1, 0, 2, 3).reshape(heads, batch * length, -1)
    )
    context = torch.bmm(mixed, self.image_value_fold) + self.image_value_bias
    context = context.view(heads, batch, length, width).permute(1, 2, 0, 3)
    return context.reshape(batch, length, heads * width).to(hidden_states.dtype), probs


class _Features:
    """The image features in the folds' dtype, cast once per caption for all layers and steps."""

    def __init__(self) -> None:
        self.source: Any = None
        self.cast_to: Any = None

    def cast(self, features: Any, dtype: Any) -> Any:
        if features.dtype == dtype:
            return features
        if self.source is not features:
            self.source, self.cast_to = features, features.to(dtype)
        return self.cast_to

"""BLIP's vision attention through PyTorch's fused ``scaled_dot_product_attention``.

A patch, kept apart from the engine: transformers' ``BlipAttention`` only has the eager form
(matmul, softmax, matmul), which writes out a 577x577 score matrix per head for BLIP-base; the
fused kernel gives the same values without it (bench/RESULTS.md).
"""

from __future__ import annotations

import types
from typing import Any


def use_fused_attention(model: Any) -> int:
    """Run BLIP's vision attention through ``scaled_dot_product_attention``; how many modules.

    transformers' ``BlipAttention`` only has the eager form (matmul, softmax, matmul), which
    writes the full 577x577 score matrix per head to memory; the fused kernel computes the same
    values without it.  Other models are left as they are.
    """
    try:
        from transformers.models.blip.modeling_blip import BlipAttention
    except ImportError:  # pragma: no cover - BLIP is part of every transformers we support
        return 0
    patched = 0
    for module in model.modules():
        if isinstance(module, BlipAttention) and hasattr(module, "qkv"):
            module.forward = types.MethodType(_fused_blip_attention, module)  # type: ignore[method-assign]
            patched += 1
    return patched


def _fused_blip_attention(self: Any, hidden_states: Any, **_: Any) -> tuple[Any, None]:
    import torch

    batch, length, width = hidden_states.shape
    qkv = self.qkv(hidden_states).reshape(batch, length, 3, self.num_heads, self.head_dim)
    query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    context = torch.nn.functional.scaled_dot_product_attention(query, key, value, scale=self.scale)
    return self.projection(context.transpose(1, 2).reshape(batch, length, width)), None

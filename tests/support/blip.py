"""BLIP test models whose image reaches the decoder (shared by the tests and the benchmarks)."""

from __future__ import annotations

from typing import Any


def reinit_vision(model: Any, generator: Any = None) -> None:
    """Vision weights normal(0, 0.02), LayerNorm weight 1 and bias 0, other biases 0.

    ``BlipConfig``'s vision initializer_range is 1e-10: a model built from it has image features
    of ~1e-9, so the decoder never sees the picture and every parity check passes, whatever the
    encoder does.  ``generator``: the random stream to draw from (default: seeded 0), so a
    caller can go on drawing the rest of its model from the same one.
    """
    import torch

    vision = model.vision_model
    generator = generator or torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in vision.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
            elif isinstance(module, torch.nn.Linear | torch.nn.Conv2d):
                module.weight.normal_(0.0, 0.02, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
        vision.embeddings.class_embedding.normal_(0.0, 0.02, generator=generator)
        vision.embeddings.position_embedding.normal_(0.0, 0.02, generator=generator)

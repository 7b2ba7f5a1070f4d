"""The vision encoder on all of the engine's threads, the token-by-token decoder on one.

Why: a decoder step is a few hundred small matrix products, each too small to share between
cores without the threads meeting at a barrier after it.  With two threads those barriers cost
more than they save, and far more when anything else wants the CPU: a thread waiting for a
sibling the kernel has parked waits a scheduler tick, hundreds of times a token.  Where the
encoder runs in OpenVINO, its own thread pool and torch's took turns on the cores as well.
The encoder, one large batch of work, still uses every thread it is given
(bench/RESULTS.md, issue 14, has the figures).

OpenMP's thread count is a per-thread setting, so switching it here touches only the thread
that runs this model, never another engine's.
"""

from __future__ import annotations

from typing import Any

#: Threads the text decoder runs on (see the module docstring for why one).
DECODER_THREADS = 1


def split_threads(wide: list[Any], encoder_threads: int, torch: Any) -> None:
    """Run the ``wide`` modules on ``encoder_threads``, and everything after them on one thread.

    ``wide``: the vision encoder, and the decoder's projections of the image features (run once
    per caption over every image token: image-sized work, not a step's).  The hooks set the
    calling thread's OpenMP thread count around each call of them; the decoder steps between
    and after them run at ``DECODER_THREADS``.
    """

    def widen(_module: Any, _args: Any) -> None:
        torch.set_num_threads(max(1, encoder_threads))

    def narrow(_module: Any, _args: Any, _output: Any) -> None:
        torch.set_num_threads(DECODER_THREADS)

    for module in wide:
        module.register_forward_pre_hook(widen)
        module.register_forward_hook(narrow)

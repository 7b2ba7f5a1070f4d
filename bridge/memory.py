"""The bridge process's heap: fewer glibc arenas, and freed memory handed back when idle.

Owned here rather than by an engine because the arena limit works best when set before the
first worker thread allocates (``image-to-text run`` calls it first thing), and because both
the caption engine and the start-up path use it.  On a C library other than glibc both
functions do nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc

#: glibc's ``mallopt`` parameter number for the arena limit (``M_ARENA_MAX`` in malloc.h).
_M_ARENA_MAX = -8
#: Arenas allowed: enough for the model thread and the event loop's helpers to rarely wait.
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """Cap glibc's malloc arenas for the whole process (no-op elsewhere).

    glibc gives each thread that meets a locked arena a new one, up to 8 per core, and each
    keeps its own freed memory: with frames decoded in worker threads and batches of four in
    the model thread, the bridge held ~1.19 GB with 4 cameras against ~1.03 GB with two
    arenas, at the same throughput (bench/RESULTS.md).  Called before the model allocates.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, arenas)


def give_back_freed_memory() -> None:
    """Return freed heap to the system, where glibc can (after loading; when idle).

    glibc keeps freed memory in its arenas for reuse: after a load that freed hundreds of MB of
    fp32 copies, or a batch of four frames' activations, that memory would stay in the bridge's
    RSS for good.  Trimming after every batch would cost ~8% throughput in page faults, so the
    engine trims once the model has been idle for a while.
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)

"""The load-time speed probe's choice, remembered next to the OpenVINO cache.

Why: ``precision: auto`` on a CPU without AMX times each candidate form (OpenVINO encoder,
torch dynamic int8) on the parity check's frame before it keeps one.  That costs a load of the
fp32 weights per candidate and tens of seconds; on the same CPU, with the same model and the
same library versions, the answer does not change.  So the winner is written to
``<cache>/openvino/probe/<model>.json`` with what it was measured on (model revision, versions,
the CPU's model name and feature flags, threads); a later start whose identity matches builds
only that candidate.  Its parity against fp32 is still checked on every start; a record whose
choice no longer keeps parity is forgotten, and one made elsewhere is ignored and overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)
#: The libraries whose kernels decide which form is faster.
VERSIONED = ("torch", "transformers", "openvino", "nncf")


def cpu_identity() -> dict[str, str]:
    """The CPU's model name and a digest of its feature flags (Linux: /proc/cpuinfo)."""
    name, flags = "unknown", ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name == "unknown":
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = " ".join(sorted(value.split()))
    digest = hashlib.sha1(flags.encode(), usedforsecurity=False).hexdigest()[:16]
    return {"cpu": name, "cpu_flags": digest}


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


@dataclass
class Recalled:
    """A choice read back: the precision kept and the probe's timings behind it."""

    precision: str
    seconds: dict[str, float]


class ProbeRecord:
    """One model's probe record: where it lives and what it must have been measured on."""

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path = path
        self.identity = identity

    @classmethod
    def for_model(cls, config: Any, candidates: list[str], threads: int) -> ProbeRecord:
        """The record for ``config``'s model choosing among ``candidates`` on this CPU."""
        from bridge.engines.openvino_vision import cache_root, revision
        from bridge.engines.precision import PROBE_BATCH
        from bridge.engines.thread_split import DECODER_THREADS

        name = str(getattr(config, "_name_or_path", "") or "")
        identity: dict[str, Any] = {
            "model": name,
            "revision": revision(config),
            "versions": {package: _version(package) for package in VERSIONED},
            **cpu_identity(),
            "threads": threads,
            # how the forms ran when timed: a record made before the decoder had its own
            # thread count timed OpenVINO's pool fighting torch's, and is measured again
            "decoder_threads": DECODER_THREADS,
            # what was timed: a record that timed one frame alone is measured again
            "probe_frames": [1, PROBE_BATCH],
            "candidates": candidates,
        }
        key = hashlib.sha1(f"{name}|{identity['revision']}".encode(), usedforsecurity=False)
        return cls(cache_root() / "probe" / f"{key.hexdigest()[:20]}.json", identity)

    def recall(self) -> Recalled | None:
        """The recorded choice, if there is one made with this very identity."""
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
            chosen = Recalled(str(stored["precision"]), dict(stored.get("seconds") or {}))
            made_on = stored["identity"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            _LOGGER.warning("probe record %s unreadable (%s): probing again", self.path, err)
            return None
        if made_on != self.identity:
            changed = sorted(
                key
                for key in set(made_on) | set(self.identity)
                if made_on.get(key) != self.identity.get(key)
            )
            _LOGGER.info(
                "probe record %s was made with another %s: probing again",
                self.path,
                ", ".join(changed),
            )
            return None
        return chosen

    def remember(self, precision: str, seconds: dict[str, float]) -> None:
        """Write the choice (atomically: a rename, so no reader sees half a record)."""
        text = json.dumps(
            {"precision": precision, "seconds": seconds, "identity": self.identity}, indent=1
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, staging = tempfile.mkstemp(prefix=".partial-", dir=self.path.parent)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            Path(staging).replace(self.path)
        except OSError as err:  # a read-only cache costs the probe at every start, nothing more
            _LOGGER.warning("probe record %s not written (%s)", self.path, err)

    def forget(self) -> None:
        """Drop a record whose choice no longer keeps parity."""
        with contextlib.suppress(OSError):
            self.path.unlink()

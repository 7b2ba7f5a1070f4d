"""Does a fast precision keep the captions?  Teacher-forced next-token logits against fp32.

For each model size and precision: fp32 captions a few pictures greedily; the candidate is fed
fp32's own tokens and its next-token logits are compared with fp32's at every step (cosine of
the mean-centred logit vectors, worst over the pictures), along with how often its top token is
fp32's.  ``precision: auto`` keeps a fast form only at cosine >= 0.99 at every step; the engine
runs the same check at load time, this script shows it across sizes.

    .venv/bin/python bench/precision_check.py [--sizes small,base] [--precisions int8,mixed,bf16]
"""

from __future__ import annotations

import argparse
import gc
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _support
from PIL import Image

from bridge.config import ModelConfig
from bridge.engines.precision import (
    PARITY_MIN_COSINE,
    ParityProbe,
    probe_image,
    step_cosines,
    teacher_forced_logits,
)
from bridge.engines.transformers_engine import TransformersEngine


@dataclass
class ParityRow:
    """One model size at one precision, compared with fp32."""

    size: str
    precision: str
    min_cosine: float
    mean_cosine: float
    top1_agreement: float
    steps: int
    seconds: float

    @property
    def passes(self) -> bool:
        """Whether ``auto`` would keep this precision."""
        return self.min_cosine >= PARITY_MIN_COSINE


def _pictures() -> list[Image.Image]:
    frames = [_support.jpeg(_support.scene(seed)) for seed in (11, 12)]
    return [probe_image(), *(Image.open(io.BytesIO(f)).convert("RGB") for f in frames)]


def _engine(path: Path, precision: str, device: str = "cpu") -> TransformersEngine:
    engine = TransformersEngine(
        ModelConfig(
            engine="transformers",
            model=str(path),
            precision=precision,  # type: ignore[arg-type]
            device=device,
            max_new_tokens=4,
        )
    )
    engine.load()
    return engine


def check(
    sizes: tuple[str, ...] = ("small", "base"),
    precisions: tuple[str, ...] = ("int8", "mixed", "bf16"),
    tokens: int = 12,
    device: str = "cpu",
) -> list[ParityRow]:
    """Compare each precision with fp32 on each model size; one row each."""
    rows: list[ParityRow] = []
    pictures = _pictures()
    for size in sizes:
        path = _support.blip_model(size)
        reference = _engine(path, "fp32", device)
        probe = ParityProbe.run(
            reference.model, reference.processor, device, pictures, max_new_tokens=tokens
        )
        del reference
        gc.collect()
        for precision in precisions:
            started = time.perf_counter()
            engine = _engine(path, precision, device)
            logits = teacher_forced_logits(
                engine.model, probe.inputs, probe.sequences, engine.dtype
            )
            cosines = step_cosines(probe.logits, logits)
            # the token each step predicts next, for all but the last step (it has no next token)
            same = (logits[:, :-1].argmax(-1) == probe.logits[:, :-1].argmax(-1)).float()
            rows.append(
                ParityRow(
                    size=size,
                    precision=engine.precision,
                    min_cosine=min(cosines),
                    mean_cosine=sum(cosines) / len(cosines),
                    top1_agreement=float(same.mean()),
                    steps=len(cosines),
                    seconds=time.perf_counter() - started,
                )
            )
            del engine, logits
            gc.collect()
        del probe
        gc.collect()
    return rows


def format_rows(rows: list[ParityRow]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| model | precision | min cosine | mean cosine | same top token | auto keeps it |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| blip-{row.size} (random) | {row.precision} | {row.min_cosine:.4f} | "
            f"{row.mean_cosine:.4f} | {row.top1_agreement:.0%} | "
            f"{'yes' if row.passes else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the parity table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,base")
    parser.add_argument("--precisions", default="int8,mixed,bf16")
    parser.add_argument("--tokens", type=int, default=12)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    args = parser.parse_args(argv)
    rows = check(
        tuple(args.sizes.split(",")),
        tuple(args.precisions.split(",")),
        tokens=args.tokens,
        device=args.device,
    )
    print(format_rows(rows))
    return 0 if all(row.passes for row in rows if row.precision in ("int8", "mixed", "fp16")) else 1


if __name__ == "__main__":
    sys.exit(main())

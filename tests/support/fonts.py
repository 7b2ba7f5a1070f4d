"""The fonts tests draw with, committed beside this file with their licences.

``fonts/dseg`` is DSEG (SIL Open Font License 1.1), ``fonts/dejavu`` is DejaVu (the Bitstream
Vera / DejaVu free licence); see the LICENSE file in each folder and ``fonts/README.md``.  No
system font is needed; ``tools/meter_synth.py`` looks here first too.
"""

from __future__ import annotations

from pathlib import Path

FONTS = Path(__file__).resolve().parent / "fonts"


def font(name: str) -> Path:
    """One committed font file by name, e.g. ``DejaVuSans-Bold.ttf``."""
    matches = sorted(FONTS.glob(f"*/{name}"))
    if not matches:
        raise FileNotFoundError(f"{name} is not among the committed fonts in {FONTS}")
    return matches[0]

"""``image-to-text meter-setup IMAGE``: propose a meter's region from one snapshot.

Finds the row of digits (``bridge.meter.locate``), reads it with the built-in recogniser, prints
the ``meter:`` block to paste into the configuration, and writes the same annotated picture the
bridge publishes on ``<base>/<camera>/meter/image``, so the proposal is checked by eye first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from bridge.config import MeterConfig, ModelConfig

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``meter-setup`` on the main command line."""
    setup = sub.add_parser(
        "meter-setup", help="find a meter's digits in a snapshot and print its meter: block"
    )
    setup.add_argument("image", help="a snapshot from the meter's camera")
    setup.add_argument(
        "--out", help="where to write the annotated picture (default: IMAGE.meter-setup.jpg)"
    )
    setup.set_defaults(func=cmd_meter_setup)


def meter_block(meter: MeterConfig, text: str, picture: Path) -> str:
    """The ``meter:`` block to paste, with a comment on what was read."""
    assert meter.roi is not None
    roi = ", ".join(str(v) for v in meter.roi)
    return (
        f"# read {text}; check the picture {picture} before using it\n"
        "meter:\n"
        f"  roi: [{roi}]\n"
        f"  digits: {meter.digits}\n"
        f"  decimals: {meter.decimals}   # a guess: count the digits after the point\n"
    )


def cmd_meter_setup(args: argparse.Namespace) -> int:
    """Propose, read and draw; exit 1 when no digits are found, 2 when IMAGE is no picture."""
    from bridge.engines.base import JobOptions
    from bridge.engines.meter_engine import MeterEngine
    from bridge.errors import ModelError
    from bridge.meter.annotate import draw_reading, encode
    from bridge.meter.geometry import region_quad
    from bridge.meter.locate import NoDigitsError, find_digits

    path = Path(args.image)
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, UnidentifiedImageError) as err:
        print(f"error: cannot read {path} as a picture: {err}", file=sys.stderr)
        return EXIT_USAGE
    try:
        proposal = find_digits(image)
    except NoDigitsError as err:
        print(f"error: {path}: {err}", file=sys.stderr)
        return EXIT_FAILED
    meter = MeterConfig(roi=proposal.roi, digits=proposal.digits, decimals=proposal.decimals)
    engine = MeterEngine(ModelConfig(engine="meter"))
    engine.load()
    out = engine.run_batch([image], [JobOptions(meter=meter)])[0]
    if isinstance(out, ModelError):
        text, preview = f"nothing for sure ({out.detail})", out.preview
    else:
        text, preview = out.text, out.preview
    jpeg = preview() if preview else encode(draw_reading(image, region_quad(meter), [], []))
    picture = Path(args.out) if args.out else path.with_name(f"{path.stem}.meter-setup.jpg")
    picture.write_bytes(jpeg)
    print(meter_block(meter, text, picture), end="")
    return EXIT_OK

"""Turning an MQTT payload into a safe RGB image.

Frames come from cameras we do not control, so everything here assumes hostile input: byte and
pixel limits are checked before any pixel is decoded (decompression bombs), only the formats
cameras actually send are accepted, and every refusal is a ``FrameError`` whose code ends up in
an error event.  Decoding happens near the size the model needs (JPEG draft mode), which is
both faster and lighter than decoding a 4K snapshot only to shrink it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from bridge.errors import FrameError
from bridge.protocol import decode_base64

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "MPO"})
PREVIEW_LONGEST_SIDE = 1280
#: JPEG draft decoding may stop at this fraction of the model's input side (see decode_image).
DRAFT_SLACK = 0.9
#: The EXIF tag saying how a picture must be turned to stand upright (1: as stored).
ORIENTATION_TAG = 0x0112
#: Most scans a JPEG may have, and most scans times pixels: each scan walks every block of the
#: image, so thousands of empty ones in a few KB take seconds to decode.  A camera's progressive
#: JPEG has about ten scans, an optimised one up to ~20; a 40 MP photo may have 107.
MAX_JPEG_SCANS = 256
MAX_JPEG_SCAN_PIXELS = 2**32
JPEG_SCAN = b"\xff\xda"


@dataclass(frozen=True)
class Payload:
    """What a frame payload carries: image bytes, or a URL still to be fetched."""

    kind: Literal["bytes", "url"]
    data: bytes = b""
    url: str = ""


def frame_id_of(data: bytes) -> str:
    """The frame's id: hex SHA-256 of its image bytes (same picture, same id)."""
    return hashlib.sha256(data).hexdigest()


def unpack_payload(payload: bytes, max_bytes: int) -> Payload:
    """Tell raw image bytes from the JSON forms ``{"image": b64}`` and ``{"url": ...}``."""
    if not payload:
        raise FrameError("empty_payload", "the frame has no bytes")
    if len(payload) > max_bytes * 4 // 3 + 1024:
        raise FrameError(
            "too_large", f"the frame has {len(payload)} bytes, over the limit of {max_bytes}"
        )
    head = payload[:64].lstrip()
    if not head.startswith(b"{"):
        return _checked_bytes(payload, max_bytes)
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FrameError("bad_json", f"the frame looks like JSON but is not ({err})") from err
    if not isinstance(data, dict):
        raise FrameError("bad_json", "a JSON frame must be an object with 'image' or 'url'")
    if isinstance(data.get("image"), str):
        return _checked_bytes(decode_base64(data["image"]), max_bytes)
    if isinstance(data.get("url"), str):
        return Payload(kind="url", url=data["url"])
    raise FrameError("bad_json", "a JSON frame needs 'image' (base64) or 'url'")


def _checked_bytes(data: bytes, max_bytes: int) -> Payload:
    if not data:
        raise FrameError("empty_payload", "the frame has no image bytes")
    if len(data) > max_bytes:
        raise FrameError(
            "too_large", f"the image has {len(data)} bytes, over the limit of {max_bytes}"
        )
    return Payload(kind="bytes", data=data)


#: Segments with a length that may come between a JPEG's start and its first scan: Huffman and
#: arithmetic tables, quantisation tables, the restart interval, APPn (EXIF...), comments.
_HEADER_SEGMENTS = frozenset({0xC4, 0xCC, 0xDB, 0xDD, 0xFE, *range(0xE0, 0xF0)})


def sequential_jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a one-scan sequential JPEG in grey or colour, from its header.

    ``None`` for anything else: not a JPEG, progressive, lossless, arithmetic-coded, CMYK, a
    first scan that leaves out some colours (more scans follow, each over every block), a
    marker a header does not hold, or a header it cannot follow.  Only such a JPEG's decode
    time is bounded by its bytes and pixels: a few KB of other scans can take seconds.
    """
    if not data.startswith(b"\xff\xd8"):
        return None
    at, frame = 2, None  # frame: width, height, colour components
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if length < 2 or at + 2 + length > len(data):
            break
        if marker in (0xC0, 0xC1) and frame is None and length >= 8:  # the frame header
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            frame = (width, height, data[at + 9])
        elif marker == 0xDA:  # the first scan: it must cover every component
            if frame is None or length < 3 or frame[2] not in (1, 3) or data[at + 4] != frame[2]:
                return None
            return frame[0], frame[1]
        elif marker not in _HEADER_SEGMENTS:
            break
        at += 2 + length
    return None


def decode_image(data: bytes, max_pixels: int, target_size: int | None = None) -> Image.Image:
    """Decode image bytes into an upright RGB image, refusing anything unsafe or unreadable.

    ``target_size`` is the side the model works at; JPEGs are then decoded at the smallest
    power-of-two scale that still covers ``DRAFT_SLACK`` of it, which skips most of the IDCT
    work.  The slack matters for the most common frame: 1280x720 halves to 640x360, a little
    under BLIP's 384, and the model resizes every frame to its square input anyway, so a 7%
    stretch of one side costs nothing while the half-size decode halves the time.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise FrameError(
            "too_many_pixels", f"the image is too large to decode safely ({err})"
        ) from err
    except (OSError, ValueError, SyntaxError) as err:
        raise FrameError(
            "decode_failed", f"the payload is not an image Pillow can read ({err})"
        ) from err
    if image.format not in ACCEPTED_FORMATS:
        raise FrameError(
            "unsupported_format",
            f"{image.format} images are not accepted; send JPEG, PNG, WebP or GIF",
        )
    width, height = image.size
    if width * height > max_pixels:
        raise FrameError(
            "too_many_pixels",
            f"the image is {width}x{height} ({width * height} pixels), "
            f"over the limit of {max_pixels}",
        )
    if image.format in ("JPEG", "MPO"):
        _check_scans(data, width * height)
    if width < 1 or height < 1:
        raise FrameError("decode_failed", "the image has no pixels")
    try:
        if image.format in ("JPEG", "MPO") and target_size:
            side = max(1, math.ceil(target_size * DRAFT_SLACK))
            image.draft("RGB", (side, side))
        image.seek(0)
        image.load()
        # In place: an upright frame (nearly all of them) is then not copied for nothing.
        ImageOps.exif_transpose(image, in_place=True)
        return to_rgb(image)
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise FrameError("decode_failed", f"the image is truncated or corrupt ({err})") from err


def _check_scans(data: bytes, pixels: int) -> None:
    """Refuse a JPEG of more scans than any encoder writes for its size (a crafted file)."""
    # Entropy-coded data escapes every 0xFF, so each FF DA is a marker.  Counted with numpy:
    # bytes.count takes six times as long over a two-byte pattern.
    raw = np.frombuffer(data, dtype=np.uint8)
    scans = int(np.count_nonzero((raw[:-1] == JPEG_SCAN[0]) & (raw[1:] == JPEG_SCAN[1])))
    limit = max(1, min(MAX_JPEG_SCANS, MAX_JPEG_SCAN_PIXELS // max(pixels, 1)))
    if scans > limit:
        raise FrameError(
            "decode_failed",
            f"the JPEG has {scans} scans, over the limit of {limit} for its {pixels} pixels "
            "(a crafted file)",
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode to 8-bit RGB: 16-bit scaled (not clipped), alpha flattened onto white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(array.max()), 1.0)
        if mode in ("I", "F") and array.max() <= 255:
            top = 255.0
        scaled = np.clip(array * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def preview_of(original: bytes, image: Image.Image) -> bytes:
    """The preview for ``<camera>/<task>/image``: the camera's own JPEG when it is small enough.

    Re-encoding a 1280x720 frame costs ~6 ms of CPU that the next batch wants; a camera's
    snapshot that is already a JPEG within ``PREVIEW_LONGEST_SIDE`` and carries no EXIF
    rotation is sent as it came.  Anything else is encoded from the decoded frame.
    """
    if original[:3] == b"\xff\xd8\xff":
        try:
            with Image.open(io.BytesIO(original)) as head:
                upright = head.getexif().get(ORIENTATION_TAG, 1) == 1
                if upright and max(head.size) <= PREVIEW_LONGEST_SIDE:
                    return original
        except (OSError, ValueError, SyntaxError):
            pass
    return encode_preview(image)


def encode_preview(image: Image.Image, quality: int = 85) -> bytes:
    """The analysed frame as JPEG for ``<base>/<camera>/<task>/image`` (bounded in size)."""
    preview = image
    if max(image.size) > PREVIEW_LONGEST_SIDE:
        preview = image.copy()
        preview.thumbnail((PREVIEW_LONGEST_SIDE, PREVIEW_LONGEST_SIDE))
    out = io.BytesIO()
    preview.save(out, format="JPEG", quality=quality)
    return out.getvalue()

"""Frames: what cameras really send, and what hostile or broken payloads get back."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from bridge.errors import FrameError
from bridge.frames import (
    decode_image,
    encode_preview,
    frame_id_of,
    preview_of,
    sequential_jpeg_size,
    unpack_payload,
)
from tests.bridge.conftest import (
    crafted_jpeg_header,
    jpeg,
    jpeg_of_empty_scans,
    jpeg_segment,
    photo,
    png,
)

LIMIT = 10_000_000


def encoded(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_every_format_cameras_send_decodes_to_rgb(fmt: str) -> None:
    image = decode_image(encoded(photo(1, (120, 80)), fmt), LIMIT)
    assert image.mode == "RGB"
    assert image.size == (120, 80)


def test_raw_bytes_base64_json_and_url_payloads_are_told_apart() -> None:
    raw = jpeg(photo())
    assert unpack_payload(raw, LIMIT).data == raw
    wrapped = json.dumps({"image": base64.b64encode(raw).decode()}).encode()
    assert unpack_payload(wrapped, LIMIT).data == raw
    data_url = json.dumps({"image": "data:image/jpeg;base64," + base64.b64encode(raw).decode()})
    assert unpack_payload(data_url.encode(), LIMIT).data == raw
    url = unpack_payload(b'{"url": "http://frigate.local/api/front/latest.jpg"}', LIMIT)
    assert (url.kind, url.url) == ("url", "http://frigate.local/api/front/latest.jpg")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", "empty_payload"),
        (b'{"image": ', "bad_json"),
        (b'{"picture": "abc"}', "bad_json"),
        (b'{"image": "@@@"}', "bad_base64"),
        (b'{"image": ""}', "empty_payload"),
        (b"x" * (LIMIT * 2), "too_large"),
    ],
)
def test_bad_payloads_are_refused_with_a_code(payload: bytes, code: str) -> None:
    with pytest.raises(FrameError) as caught:
        unpack_payload(payload, LIMIT)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"hello, not an image", "decode_failed"),
        (jpeg(photo())[:2000], "decode_failed"),  # truncated in transit
        (encoded(photo(0, (32, 32)), "BMP"), "unsupported_format"),
        (encoded(photo(0, (32, 32)), "TIFF"), "unsupported_format"),
    ],
)
def test_unreadable_images_are_refused_with_a_code(data: bytes, code: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode_image(data, LIMIT)
    assert caught.value.code == code


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = encoded(Image.new("L", (20_000, 20_000)), "PNG")  # tiny file, 400 megapixels
    assert len(bomb) < 1_000_000
    with pytest.raises(FrameError) as caught:
        decode_image(bomb, LIMIT)
    assert caught.value.code == "too_many_pixels"


def test_a_jpeg_of_thousands_of_scans_is_refused_before_decoding() -> None:
    crafted = jpeg_of_empty_scans(5000)
    assert len(crafted) < 60_000  # each empty scan walks all 32,400 blocks: seconds in all
    with pytest.raises(FrameError) as caught:
        decode_image(crafted, LIMIT, 384)
    assert caught.value.code == "decode_failed"
    assert "5000 scans" in caught.value.detail
    # fewer scans, but over a photo of 40 megapixels: as slow, so refused too
    with pytest.raises(FrameError) as caught:
        decode_image(jpeg_of_empty_scans(200, (8000, 5000)), 40_000_000, 384)
    assert "over the limit of 107" in caught.value.detail
    progressive = encoded(photo(size=(640, 480)), "JPEG", progressive=True)
    assert decode_image(progressive, LIMIT).size == (640, 480)  # an honest one: about ten


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (60, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when shown
    decoded = decode_image(encoded(image, "JPEG", exif=exif), LIMIT)
    assert decoded.size == (20, 60)


def test_cmyk_16_bit_palette_alpha_and_1x1_all_become_rgb() -> None:
    cmyk = decode_image(encoded(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG"), LIMIT)
    assert cmyk.getpixel((4, 4))[0] > 200  # red stays red
    sixteen = Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16))
    grey = decode_image(encoded(sixteen, "PNG"), LIMIT).getpixel((0, 0))
    assert 150 < grey[0] < 160  # scaled from 16 bits, not clipped to white
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert decode_image(encoded(rgba, "PNG"), LIMIT).getpixel((0, 0)) == (255, 255, 255)
    palette = Image.new("P", (8, 8), 3)
    palette.putpalette([0, 0, 0, 10, 10, 10, 20, 20, 20, 200, 0, 0])
    assert decode_image(encoded(palette, "PNG"), LIMIT).getpixel((1, 1)) == (200, 0, 0)
    clear = decode_image(encoded(palette, "PNG", transparency=3), LIMIT)
    assert clear.getpixel((1, 1)) == (255, 255, 255)
    grey_alpha = Image.new("LA", (8, 8), (0, 0))
    assert decode_image(encoded(grey_alpha, "PNG"), LIMIT).getpixel((1, 1)) == (255, 255, 255)
    assert decode_image(encoded(Image.new("RGB", (1, 1)), "PNG"), LIMIT).size == (1, 1)


def test_jpeg_draft_mode_decodes_near_the_model_size() -> None:
    big = jpeg(photo(0, (2048, 1536)))
    small = decode_image(big, LIMIT * 10, target_size=384)
    assert small.size == (512, 384)  # 1/4 scale still covers 384 on both sides
    assert decode_image(big, LIMIT * 10).size == (2048, 1536)


def test_a_720p_frame_decodes_at_half_size_for_a_384_pixel_model() -> None:
    frame = jpeg(photo(0, (1280, 720)))
    assert decode_image(frame, LIMIT, target_size=384).size == (640, 360)
    # A model that needs more than the slack allows gets the full frame.
    assert decode_image(frame, LIMIT, target_size=448).size == (1280, 720)


def test_frame_id_is_the_sha256_of_the_image_bytes() -> None:
    assert frame_id_of(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_the_preview_is_a_bounded_jpeg() -> None:
    preview = encode_preview(photo(0, (3000, 2000)))
    image = Image.open(io.BytesIO(preview))
    assert image.format == "JPEG"
    assert max(image.size) == 1280
    assert png(photo())[:4] == b"\x89PNG"


def test_a_small_upright_camera_jpeg_is_its_own_preview() -> None:
    snapshot = jpeg(photo(0, (640, 360)))
    decoded = decode_image(snapshot, LIMIT)
    assert preview_of(snapshot, decoded) is snapshot


def test_a_large_png_or_rotated_snapshot_gets_a_fresh_preview() -> None:
    large = jpeg(photo(0, (2000, 1000)))
    preview = preview_of(large, decode_image(large, LIMIT))
    assert preview != large
    assert max(Image.open(io.BytesIO(preview)).size) == 1280
    lossless = png(photo(0, (64, 48)))
    assert preview_of(lossless, decode_image(lossless, LIMIT))[:3] == b"\xff\xd8\xff"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side
    turned = encoded(photo(0, (80, 40)), "JPEG", exif=exif.tobytes())
    upright = decode_image(turned, LIMIT)
    assert upright.size == (40, 80)
    assert Image.open(io.BytesIO(preview_of(turned, upright))).size == (40, 80)


def test_a_sequential_jpeg_tells_its_size_from_its_header_and_nothing_else_does() -> None:
    street = photo(size=(1280, 720))
    exif = Image.Exif()
    exif[0x010F] = "Doorbell maker"
    with_exif = io.BytesIO()
    street.save(with_exif, format="JPEG", exif=exif.tobytes())
    progressive = io.BytesIO()
    street.save(progressive, format="JPEG", progressive=True)
    assert sequential_jpeg_size(jpeg(street)) == (1280, 720)
    assert sequential_jpeg_size(with_exif.getvalue()) == (1280, 720)
    assert sequential_jpeg_size(progressive.getvalue()) is None  # its scans are unbounded
    assert sequential_jpeg_size(png(street)) is None
    assert sequential_jpeg_size(jpeg(street)[:40]) is None  # cut before its frame header
    assert sequential_jpeg_size(b"\xff\xd8\xff\xda\x00\x08") is None  # data, no header
    assert sequential_jpeg_size(jpeg(street.convert("CMYK"))) is None


def test_a_jpeg_header_built_to_hide_a_slow_decode_tells_no_size() -> None:
    every_colour = jpeg_segment(0xDA, bytes([3, 1, 0, 2, 0, 3, 0, 0, 63, 0]))
    assert sequential_jpeg_size(crafted_jpeg_header() + every_colour) == (1920, 1080)
    # a first scan over one colour lets thousands of empty scans follow, each over every block
    assert sequential_jpeg_size(jpeg_of_empty_scans(1000)) is None
    street = jpeg(photo(size=(1280, 720)))
    # a byte pair that is no segment (libjpeg skips it and reads on: a progressive image after)
    assert sequential_jpeg_size(b"\xff\xd8\xff\x00\x00\x10" + street[2:]) is None
    assert sequential_jpeg_size(b"\xff\xd8\xff\xe0\x00\x01" + street[2:]) is None  # length < 2

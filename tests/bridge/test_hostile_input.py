"""Hostile and odd input: every payload is answered, none crashes or stalls the bridge.

One bridge serves a whole gallery of bad and odd frames on one camera; each must come back as an
error event with its code (or as a result, for images that are odd but valid), and a good frame
sent after all of them is still answered. A property-based test then throws arbitrary bytes and
JSON at the frame parser and decoder, which may refuse them only with a ``FrameError``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bridge.errors import FrameError
from bridge.frames import decode_image, unpack_payload
from tests.bridge.conftest import BridgeProcess, Watcher, jpeg, jpeg_of_empty_scans, photo, png

LIMIT = 2 * 1024 * 1024


def encoded(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kwargs)
    return out.getvalue()


def bomb() -> bytes:
    """A small PNG that claims 20000 x 20000 pixels: refused before it is decoded."""
    return encoded(Image.new("1", (20000, 20000)), "PNG", optimize=True)


def rotated_by_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    return encoded(photo(4, (200, 100)), "JPEG", exif=exif)


class Hits(BaseHTTPRequestHandler):
    """A web server that counts requests: the bridge must never call a host not allowed."""

    count = 0

    def do_GET(self) -> None:
        type(self).count += 1
        body = jpeg(photo(5, (64, 64)))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def web_server() -> Iterator[ThreadingHTTPServer]:
    Hits.count = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hits)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_hostile_or_odd_payload_is_answered_and_the_bridge_keeps_serving(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    watcher: Watcher,
    web_server: ThreadingHTTPServer,
) -> None:
    port = web_server.server_address[1]
    config = bridge_config(
        cameras={"gate": {"topic": "cam/gate", "tasks": ["caption"], "dedup": False}},
        models={"caption": {"engine": "faulty", "batch_size": 1}},
        frames={
            "max_bytes": LIMIT,
            "max_pixels": 50_000_000,
            "url_allowed_hosts": ["cams.example"],
        },
    )
    bridge = run_bridge(config, faulty=True)
    watcher.wait_ready(timeout=60)
    truncated = jpeg(photo(1))[:3000]
    refused: list[tuple[str, bytes, str]] = [
        ("empty", b"", "empty_payload"),
        ("text", b"hello camera", "decode_failed"),
        ("truncated jpeg", truncated, "decode_failed"),
        ("decompression bomb", bomb(), "too_many_pixels"),
        ("jpeg of 5000 empty scans", jpeg_of_empty_scans(5000), "decode_failed"),
        ("over the size limit", b"\xff\xd8" + b"\0" * (LIMIT + 10), "too_large"),
        ("malformed json", b'{"image": "abc', "bad_json"),
        ("bad base64", b'{"image": "***not base64***"}', "bad_base64"),
        (
            "url to a host not allowed",
            f'{{"url": "http://127.0.0.1:{port}/x.jpg"}}'.encode(),
            "url_not_allowed",
        ),
        ("file url", b'{"url": "file:///etc/passwd"}', "url_not_allowed"),
    ]
    for what, payload, code in refused:
        watcher.publish("cam/gate", payload)
        error = watcher.wait_json("itt/gate/error", timeout=30)
        assert error["error"] == code, f"{what}: {error}"
        assert error["detail"], what
        assert error["camera"] == "gate"
    assert Hits.count == 0, "the bridge contacted a host that is not allowed"

    odd_but_valid: list[tuple[str, bytes, str]] = [
        ("gif", encoded(photo(2, (120, 80)), "GIF"), "120x80"),
        ("webp", encoded(photo(2, (120, 80)), "WEBP"), "120x80"),
        ("cmyk jpeg", encoded(photo(2, (120, 80)).convert("CMYK"), "JPEG"), "120x80"),
        ("16-bit png", png(Image.new("I;16", (50, 40), 40000)), "50x40"),
        ("alpha png", png(Image.new("RGBA", (50, 40), (0, 200, 0, 10))), "50x40"),
        ("1x1", png(Image.new("RGB", (1, 1), (128, 128, 128))), "1x1"),
        ("exif rotated", rotated_by_exif(), "100x200"),
        (
            "base64 json",
            json.dumps({"image": base64.b64encode(png(photo(3, (64, 48)))).decode()}).encode(),
            "64x48",
        ),
    ]
    for what, payload, size in odd_but_valid:
        watcher.publish("cam/gate", payload)
        result = watcher.wait_json("itt/gate/caption", timeout=30)
        assert result["text"].startswith(f"seen {size} "), f"{what}: {result['text']}"

    good = jpeg(photo(9))
    watcher.publish("cam/gate", good)
    assert watcher.wait_json("itt/gate/caption", frame_id=sha(good))["camera"] == "gate"
    assert bridge.process is not None
    assert bridge.process.poll() is None


def test_the_same_picture_in_other_encodings_is_answered_every_time_with_dedup_on(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    watcher: Watcher,
) -> None:
    """Deduplication (on by default) saves model time, never an answer."""
    config = bridge_config(
        cameras={"gate": {"topic": "cam/gate", "tasks": ["caption"]}},
        models={"caption": {"engine": "faulty", "batch_size": 1}},
    )
    run_bridge(config, faulty=True)
    watcher.wait_ready(timeout=60)
    picture = photo(2, (120, 80))
    versions = [
        encoded(picture, "PNG"),
        encoded(picture, "WEBP", lossless=True),
        encoded(picture.convert("CMYK"), "JPEG", quality=95),
        encoded(picture, "PNG"),  # the very same bytes as the first
        encoded(picture, "GIF"),  # a 256-colour palette: may or may not count as the same scene
    ]
    answers = []
    for payload in versions:
        watcher.publish("cam/gate", payload)
        answers.append(watcher.wait_json("itt/gate/caption", frame_id=sha(payload), timeout=30))
    assert "unchanged" not in answers[0]
    assert answers[0]["text"].startswith("seen 120x80 ")
    for answer in answers[1:4]:
        assert answer["unchanged"] is True
        assert answer["unchanged_since"] == sha(versions[0])
        assert answer["text"] == answers[0]["text"]
    assert answers[4]["text"].startswith("seen 120x80 ")

    def counted(payload: bytes) -> bool:
        gate = json.loads(payload)["counters"]["gate"]
        return bool(gate["received"] == 5 and gate["results"] == 5)

    info = json.loads(watcher.wait_for("itt/bridge/info", counted, timeout=30))
    assert info["counters"]["gate"]["duplicates"] >= 3


payloads = st.one_of(
    st.binary(max_size=4096),
    st.builds(
        lambda head, tail: head + tail,
        st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF"]),
        st.binary(max_size=2048),
    ),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=50),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(["image", "url", "x"]), inner, max_size=3)
        ),
        max_leaves=10,
    ).map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=1024).map(
        lambda b: json.dumps({"image": base64.b64encode(b).decode()}).encode()
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads)
def test_any_payload_becomes_an_image_or_a_frame_error(payload: bytes) -> None:
    refusal: FrameError | None = None
    try:
        unpacked = unpack_payload(payload, LIMIT)
        if unpacked.kind == "bytes":
            image = decode_image(unpacked.data, 10_000_000)
            assert image.mode == "RGB"
            assert image.width >= 1
            assert image.height >= 1
    except FrameError as err:
        refusal = err
    if refusal is not None:
        assert refusal.code
        assert refusal.detail

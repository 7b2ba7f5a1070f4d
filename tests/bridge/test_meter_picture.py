"""The meter picture a user checks the set-up with: decoded from the JPEG actually published.

A meter camera's ``<base>/<camera>/meter/image`` shows the region in green, each cell with the
digit read in it, a cell read with low confidence outlined in red, and each dial circled with its
pointer line; these tests decode the JPEG and look for those colours where they must be.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from bridge.meter.annotate import LONGEST_MAX, LONGEST_MIN, DialMark, draw_reading, encode
from bridge.meter.dials import DialReading
from tests.bridge.conftest import BridgeProcess, Watcher, jpeg
from tests.bridge.test_meter_dials import water_meter


def colour_share(
    picture: np.ndarray, points: list[tuple[float, float]], test: Callable[[np.ndarray], bool]
) -> float:
    """Share of ``points`` with a pixel passing ``test`` within 2 pixels."""
    hits = 0
    for x, y in points:
        xi, yi = round(x), round(y)
        patch = picture[max(0, yi - 2) : yi + 3, max(0, xi - 2) : xi + 3].reshape(-1, 3)
        hits += any(test(p) for p in patch)
    return hits / len(points)


def green(p: np.ndarray) -> bool:
    return bool(p[1] > 140 and p[1] - p[0] > 70 and p[1] - p[2] > 70)


def red(p: np.ndarray) -> bool:
    return bool(p[0] > 150 and p[0] - p[1] > 90 and p[0] - p[2] > 90)


def magenta(p: np.ndarray) -> bool:
    return bool(p[0] > 150 and p[2] > 150 and p[0] - p[1] > 80)


def along(a: tuple[float, float], b: tuple[float, float], n: int = 20) -> list[tuple[float, float]]:
    """Points on the segment a-b, ends left out (corners are shared with other lines)."""
    return [(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t) for t in np.linspace(0.1, 0.9, n)]


def decoded(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return np.asarray(image.convert("RGB")).astype(int)


def test_a_low_confidence_cell_is_outlined_in_red_and_the_others_are_not() -> None:
    frame = Image.new("RGB", (640, 360), (200, 200, 200))
    x, y, w, h = 100, 150, 400, 60
    quad = ((x, y), (x + w, y), (x + w, y + h), (x, y + h))
    confidence = [0.99, 0.98, 0.31, 0.97]
    picture = decoded(encode(draw_reading(frame, quad, [1, 2, 3, 4], confidence)))
    scale = picture.shape[1] / frame.width
    assert LONGEST_MIN <= max(picture.shape[:2]) <= LONGEST_MAX  # enlarged to be readable

    def s(px: float, py: float) -> tuple[float, float]:
        return (px * scale, py * scale)

    top, bottom = y, y + h
    # the region's outline: green along the edges no red cell touches
    assert colour_share(picture, along(s(x, top), s(x, bottom)), green) > 0.9
    assert colour_share(picture, along(s(x + w, top), s(x + w, bottom)), green) > 0.9
    assert colour_share(picture, along(s(x, top), s(x + w / 2, top)), green) > 0.9
    # the third cell (x + 200 .. x + 300) is outlined in red, all round
    for a, b in [((x + 200, top), (x + 200, bottom)), ((x + 300, top), (x + 300, bottom))]:
        assert colour_share(picture, along(s(*a), s(*b)), red) > 0.9
    assert colour_share(picture, along(s(x + 200, top), s(x + 300, top)), red) > 0.9
    # the confident cells are not
    assert colour_share(picture, along(s(x + 100, top), s(x + 100, bottom)), red) == 0


def test_each_dial_is_circled_with_its_pointer_line() -> None:
    frame = Image.new("RGB", (800, 600), (200, 200, 200))
    reading = DialReading(value=2.5, angle=90.0, confidence=0.9, centre=(200, 300), radius=60)
    missing = DialMark((500, 300), 60, 0.01, None, "no pointer found")
    picture = decoded(
        encode(draw_reading(frame, None, [], [], [DialMark((200, 300), 60, 0.1, reading), missing]))
    )
    scale = picture.shape[1] / frame.width
    # pointing at 3 o'clock: a magenta line from the centre to the right
    assert (
        colour_share(
            picture, along((200 * scale, 300 * scale), (250 * scale, 300 * scale)), magenta
        )
        > 0.9
    )
    # the dial with no pointer found is circled in red
    assert colour_share(picture, [(500 * scale, 240 * scale), (560 * scale, 300 * scale)], red) == 1


@pytest.mark.e2e
def test_the_published_meter_image_shows_the_region_and_the_dials(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[[Path], BridgeProcess],
    watcher: Watcher,
) -> None:
    photo, meter = water_meter([3.86, 8.55, 5.24, 2.4])
    config = bridge_config(
        cameras={
            "water_meter": {
                "topic": "cameras/water/snapshot",
                "tasks": ["meter"],
                "dedup": False,
                "meter": json.loads(meter.model_dump_json(exclude_none=True)),
            }
        },
        models={"meter": {"engine": "meter", "threads": 1}},
    )
    bridge = run_bridge(config)
    watcher.wait_for("itt/bridge/state", lambda p: p == b"online", 60)

    watcher.publish("cameras/water/snapshot", jpeg(photo, quality=95))
    result = watcher.wait_json("itt/water_meter/meter")
    assert (result["value"], [d["digit"] for d in result["dials"]]) == (417.3852, [3, 8, 5, 2])
    picture = decoded(watcher.wait_for("itt/water_meter/meter/image"))
    scale = picture.shape[1] / photo.width
    assert meter.roi is not None
    x, y, w, h = meter.roi
    left_edge = along((x * scale, y * scale), (x * scale, (y + h) * scale))
    assert colour_share(picture, left_edge, green) > 0.8
    for dial, value in zip(meter.dials, [3.86, 8.55, 5.24, 2.4], strict=True):
        assert dial.roi is not None
        dx, dy, dw, dh = dial.roi
        cx, cy = dx + dw / 2, dy + dh / 2
        angle = np.radians(value * 36)
        tip = (cx + np.sin(angle) * dw * 0.4, cy - np.cos(angle) * dh * 0.4)
        line = along((cx * scale, cy * scale), (tip[0] * scale, tip[1] * scale), 10)
        assert colour_share(picture, line, magenta) > 0.7, (value, dial.roi)

    # Glare over the second dial: the reading is held back, and the picture says which dial.
    covered = photo.copy()
    assert meter.dials[1].roi is not None
    dx, dy, dw, dh = meter.dials[1].roi
    ImageDraw.Draw(covered).ellipse((dx, dy, dx + dw, dy + dh), fill=(235, 232, 225))
    watcher.publish("cameras/water/snapshot", jpeg(covered, quality=95))
    error = watcher.wait_json("itt/water_meter/error")
    assert error["error"] == "meter_unreadable"
    assert "dial 2" in error["detail"]
    picture = decoded(watcher.wait_for("itt/water_meter/meter/image"))  # the second picture
    cx, cy, r = dx + dw / 2, dy + dh / 2, min(dw, dh) / 2
    rim = [(cx + r * np.sin(a), cy - r * np.cos(a)) for a in np.linspace(0, 2 * np.pi, 12)[:-1]]
    assert colour_share(picture, [(px * scale, py * scale) for px, py in rim], red) > 0.8

    # Glare over most of the third drum: that digit is uncertain, and outlined in red.
    glared = photo.copy()
    cell = w / 5
    ImageDraw.Draw(glared).rectangle(
        (x + 2 * cell, y, x + 3 * cell, y + 0.7 * h), fill=(245, 245, 240)
    )
    watcher.publish("cameras/water/snapshot", jpeg(glared, quality=95))
    error = watcher.wait_json("itt/water_meter/error")
    assert error["error"] == "meter_low_confidence"
    assert "digit 3" in error["detail"]
    picture = decoded(watcher.wait_for("itt/water_meter/meter/image"))
    # The cells are drawn where the reader cut them: in the region it kept, which may be one
    # fitted to the ink (``bridge.meter.refine``) and stand a little off the configured one.

    def red_edge_near(edge_x: float) -> float:
        """The reddest vertical line within a quarter cell of ``edge_x``, over the middle rows."""
        top, bottom = (y + h / 4) * scale, (y + 3 * h / 4) * scale
        return max(
            colour_share(
                picture, along(((edge_x + dx) * scale, top), ((edge_x + dx) * scale, bottom)), red
            )
            for dx in np.linspace(-cell / 4, cell / 4, 11)
        )

    for edge_x in (x + 2 * cell, x + 3 * cell):
        assert red_edge_near(edge_x) > 0.8
    assert red_edge_near(x + cell) == 0
    assert bridge.terminate() == 0

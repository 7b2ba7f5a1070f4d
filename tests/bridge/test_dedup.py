"""A static camera costs no model time; a real change in its view is always analysed."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from bridge.config import parse_config
from bridge.dedup import (
    DEFAULT_THRESHOLD,
    SceneMemory,
    Signed,
    change_score,
    scene_signature,
    signed,
    threshold_for,
)
from bridge.errors import ConfigError
from bridge.frames import decode_image
from tests.bridge.conftest import BridgeProcess, Watcher, jpeg

SIZE = (1280, 720)


def doorstep(seed: int = 3) -> Image.Image:
    """A smooth scene with a few objects, as a fixed camera sees it."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(30, 220, (9, 16, 3), dtype=np.uint8)
    image = Image.fromarray(coarse).resize(SIZE, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    draw.rectangle((100, 100, 300, 400), fill=(90, 90, 100))
    draw.rectangle((900, 80, 1150, 300), fill=(200, 190, 160))
    return image.filter(ImageFilter.GaussianBlur(1.5))


def seen_again(image: Image.Image, seed: int, quality: int = 85, sigma: float = 4.0) -> Image.Image:
    """The same view in a later frame: fresh sensor noise, re-encoded as JPEG, decoded."""
    rng = np.random.default_rng(seed)
    array = np.asarray(image, dtype=np.float32) + rng.normal(0, sigma, (SIZE[1], SIZE[0], 3))
    noisy = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    return decode_image(jpeg(noisy, quality=quality), 40_000_000, 384)


def with_parcel(image: Image.Image, share: float = 0.05) -> Image.Image:
    """A parcel left on the doorstep, covering ``share`` of the frame."""
    side = int((SIZE[0] * SIZE[1] * share) ** 0.5)
    changed = image.copy()
    ImageDraw.Draw(changed).rectangle((640, 420, 640 + side, 420 + side), fill=(150, 110, 70))
    return changed


def test_sensor_noise_and_jpeg_re_encoding_are_the_same_scene() -> None:
    memory = SceneMemory()
    scene = doorstep()
    memory.remember("door", scene_signature(seen_again(scene, seed=0)))
    for i, quality in enumerate((55, 70, 85, 95), start=1):
        frame = seen_again(scene, seed=i, quality=quality)
        assert not memory.is_new_scene("door", scene_signature(frame)), quality


def test_a_parcel_covering_five_percent_of_the_view_is_a_new_scene() -> None:
    memory = SceneMemory()
    scene = doorstep()
    memory.remember("door", scene_signature(seen_again(scene, seed=0)))
    frame = seen_again(with_parcel(scene, 0.05), seed=1, quality=60)
    assert memory.is_new_scene("door", scene_signature(frame))


def test_a_parcel_covering_one_percent_still_scores_well_above_the_noise() -> None:
    scene = doorstep()
    reference = scene_signature(seen_again(scene, seed=0))
    noise = max(change_score(reference, scene_signature(seen_again(scene, seed=s))) for s in (1, 2))
    parcel = change_score(reference, scene_signature(seen_again(with_parcel(scene, 0.01), 3)))
    assert noise < DEFAULT_THRESHOLD < parcel


def test_each_camera_is_compared_with_its_own_last_analysed_frame() -> None:
    memory = SceneMemory()
    door, yard = doorstep(3), doorstep(4)
    first_door = scene_signature(seen_again(door, seed=0))
    assert memory.is_new_scene("door", first_door)  # nothing analysed yet
    memory.remember("door", first_door)
    assert memory.is_new_scene("yard", scene_signature(seen_again(door, seed=1)))
    assert not memory.is_new_scene("door", scene_signature(seen_again(door, seed=2)))
    assert memory.is_new_scene("door", scene_signature(seen_again(yard, seed=3)))


def test_a_frame_scored_while_decoding_is_judged_against_the_scene_of_the_moment() -> None:
    memory = SceneMemory()
    door, yard = doorstep(3), doorstep(4)
    memory.remember("door", scene_signature(seen_again(door, seed=0)))
    # scored in the decode thread against the door...
    frame = signed(seen_again(door, seed=1), memory.last("door"))
    assert frame.scored_against is not None
    assert frame.score == change_score(frame.scored_against, frame.signature)
    assert not memory.is_new("door", frame, DEFAULT_THRESHOLD)
    # ...while another frame, of the yard, became the camera's scene: scored again, it is new
    memory.remember("door", scene_signature(seen_again(yard, seed=2)))
    assert memory.is_new("door", frame, DEFAULT_THRESHOLD)


def test_the_decode_threads_score_is_the_one_used_while_the_scene_stands() -> None:
    memory = SceneMemory()
    door = scene_signature(seen_again(doorstep(3), seed=0))
    memory.remember("door", door)
    assert memory.is_new("door", Signed(door, scored_against=door, score=0.5))
    assert not memory.is_new("door", Signed(door, scored_against=None, score=0.5))  # scored here
    assert memory.is_new("yard", signed(seen_again(doorstep(3), seed=1), None))  # nothing yet


def test_a_slow_drift_is_caught_once_it_adds_up_since_the_last_analysed_frame() -> None:
    memory = SceneMemory()
    scene = doorstep()
    memory.remember("door", scene_signature(scene))
    new_at = None
    for step in range(1, 30):
        darker = ImageEnhance.Brightness(scene).enhance(1 - 0.01 * step)  # 1% darker each time
        if memory.is_new_scene("door", scene_signature(darker)):
            new_at = step
            break
    assert new_at is not None  # caught once the steps add up...
    assert new_at > 1  # ...not at the first small step


def cell_means(image: Image.Image, shape: tuple[int, int]) -> np.ndarray:
    """The thumbnail by definition: each pixel the plain mean of its block of the frame."""
    array = np.asarray(image, dtype=np.float64)
    rows, columns = shape
    block_rows, block_columns = array.shape[0] // rows, array.shape[1] // columns
    blocks = array.reshape(rows, block_rows, columns, block_columns, 3)
    return blocks.mean(axis=(1, 3)) / 255.0


@pytest.mark.parametrize("size", [(640, 360), (1280, 720), (192, 108)])
def test_a_sixteen_by_nine_frame_signs_as_the_mean_of_each_block(size: tuple[int, int]) -> None:
    frame = doorstep().resize(size, Image.Resampling.BILINEAR)
    signature = scene_signature(frame)
    assert signature.shape == (36, 64, 3)
    assert np.abs(signature - cell_means(frame, (36, 64))).max() <= 1 / 255


def test_a_frame_of_any_size_signs_close_to_the_block_means() -> None:
    frame = doorstep().resize((1000, 560), Image.Resampling.BILINEAR)  # 15.6 frame pixels a cell
    signature = scene_signature(frame)
    assert signature.shape == (36, 64, 3)
    exact_areas = frame.resize((64, 36), Image.Resampling.BOX)
    reference = np.asarray(exact_areas, dtype=np.float32) / 255.0
    assert np.abs(signature - reference).mean() < 0.01  # a frame edge may fall mid-cell


def test_the_change_score_is_the_largest_cell_and_colour_mean_difference() -> None:
    rng = np.random.default_rng(7)
    previous = rng.random((38, 66, 3), dtype=np.float32)  # edges left over past whole cells
    current = previous.copy()
    current[8:12, 20:24, 1] += 0.25  # one cell, one colour
    current[0:2, 0:4] += 0.5  # half a cell in every colour: a mean of 0.25 over the cell
    assert change_score(previous, current) == pytest.approx(0.25, abs=1e-6)
    current[37, 65] += 1.0  # outside every whole cell: not compared
    assert change_score(previous, current) == pytest.approx(0.25, abs=1e-6)
    current[8:12, 20:24, 1] += 0.25
    assert change_score(previous, current) == pytest.approx(0.5, abs=1e-6)


def test_a_camera_that_changes_resolution_is_a_new_scene() -> None:
    memory = SceneMemory()
    memory.remember("door", scene_signature(doorstep()))
    assert memory.is_new_scene("door", scene_signature(doorstep().resize((640, 640))))


def test_caption_cameras_use_the_default_threshold_and_text_cameras_only_identical_bytes() -> None:
    assert threshold_for(("caption",), None) == DEFAULT_THRESHOLD
    assert threshold_for(("caption", "meter"), None) is None  # a changed digit is tiny
    assert threshold_for(("ocr",), None) is None
    assert threshold_for(("meter",), 0.01) == 0.01  # unless the user sets one


def test_dedup_is_configured_per_camera() -> None:
    config = parse_config(
        {
            "cameras": {
                "door": {"topic": "a"},
                "yard": {"topic": "b", "dedup": False},
                "road": {"topic": "c", "dedup": {"threshold": 0.1}},
                "shed": {"topic": "d", "dedup": True},
            }
        }
    )
    cams = config.cameras
    assert (cams["door"].dedup, cams["door"].dedup_threshold) == (True, None)
    assert cams["yard"].dedup is False
    assert (cams["road"].dedup, cams["road"].dedup_threshold) == (True, 0.1)
    assert cams["shed"].dedup is True


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"threshold": 2}, r"cameras\.door\.dedup\.threshold: expected a number from 0 to 1"),
        ({"treshold": 0.1}, r"cameras\.door\.dedup\.treshold: unknown key"),
        ("often", r"cameras\.door\.dedup: expected true or false"),
    ],
)
def test_a_bad_dedup_setting_is_named(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config({"cameras": {"door": {"topic": "a", "dedup": value}}})


@pytest.mark.e2e
def test_a_static_camera_is_captioned_once_answered_unchanged_and_a_parcel_is_captioned_again(
    bridge_config: Callable[..., Path],
    tiny_blip: Path,
    run_bridge: Callable[[Path], BridgeProcess],
    watcher: Watcher,
) -> None:
    config = bridge_config(
        cameras={
            "door": {"topic": "cam/door", "tasks": ["caption"]},
            "always": {"topic": "cam/always", "tasks": ["caption"], "dedup": False},
        },
        models={"caption": {"model": str(tiny_blip), "max_new_tokens": 4}},
    )
    run_bridge(config)
    watcher.wait_for("itt/bridge/state", lambda p: p == b"online", 60)
    watcher.wait_ready()
    scene = doorstep()

    def frame(image: Image.Image, seed: int) -> bytes:
        out = io.BytesIO()
        seen_again(image, seed).save(out, format="JPEG", quality=80 + seed % 10)
        return out.getvalue()

    first = frame(scene, 0)
    watcher.publish("cam/door", first)
    caption = watcher.wait_json("itt/door/caption", frame_id=_id(first))
    assert "unchanged" not in caption
    same_view = [frame(scene, seed) for seed in (1, 2, 3)]
    for data in same_view:
        watcher.publish("cam/door", data)  # the same view: no model time, but answered
    for data in same_view:
        repeat = watcher.wait_json("itt/door/caption", frame_id=_id(data))
        assert repeat["unchanged"] is True
        assert repeat["unchanged_since"] == _id(first)
        assert repeat["text"] == caption["text"]
    parcel = frame(with_parcel(scene), 4)
    watcher.publish("cam/door", parcel)
    assert "unchanged" not in watcher.wait_json("itt/door/caption", frame_id=_id(parcel))

    again = [frame(scene, 5), frame(scene, 6)]
    for data in again:
        watcher.publish("cam/always", data)  # dedup off: every frame is captioned
    ids = {watcher.wait_json("itt/always/caption")["frame_id"][:16] for _ in again}
    assert ids == {_id(d)[:16] for d in again}

    def counted(payload: bytes) -> bool:
        counters = json.loads(payload).get("counters", {}).get("door", {})
        return bool(counters.get("received") == 5 and counters.get("duplicates") == 3)

    info = json.loads(watcher.wait_for("itt/bridge/info", counted, timeout=30))
    assert info["counters"]["door"]["results"] == 5  # two analysed, three repeated


def _id(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_after_an_error_the_same_snapshot_is_answered_again(
    bridge_config: Callable[..., Path],
    tiny_blip: Path,
    run_bridge: Callable[[Path], BridgeProcess],
    watcher: Watcher,
) -> None:
    config = bridge_config(
        cameras={"door": {"topic": "cam/door", "tasks": ["caption"]}},
        models={"caption": {"model": str(tiny_blip), "max_new_tokens": 4}},
    )
    run_bridge(config)
    watcher.wait_for("itt/bridge/state", lambda p: p == b"online", 60)
    watcher.wait_ready()
    out = io.BytesIO()
    doorstep().save(out, format="JPEG", quality=85)
    snapshot = out.getvalue()

    watcher.publish("cam/door", snapshot)
    assert watcher.wait_json("itt/door/caption", frame_id=_id(snapshot), unchanged=None)
    watcher.publish("cam/door", snapshot)  # the very same bytes: a duplicate, no model time
    assert watcher.wait_json("itt/door/caption", frame_id=_id(snapshot), unchanged=True)
    watcher.publish("cam/door", b"not an image")
    assert watcher.wait_json("itt/door/error")["error"] == "decode_failed"
    watcher.publish("cam/door", snapshot)  # the camera's news was an error: analyse it again
    assert watcher.wait_json("itt/door/caption", frame_id=_id(snapshot), unchanged=None)

    def counted(payload: bytes) -> bool:
        counters = json.loads(payload).get("counters", {}).get("door", {})
        return bool(counters.get("received") == 4)

    info = json.loads(watcher.wait_for("itt/bridge/info", counted, timeout=30))
    door = info["counters"]["door"]
    assert (door["results"], door["duplicates"], door["errors"]) == (3, 1, 1)

"""Contract: what the bridge publishes has the shape of the example payloads HA is tested with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import FrameError
from bridge.protocol import Topics, build_error, build_info, build_result, parse_request
from tests.bridge.conftest import FIXTURES

PROTOCOL = FIXTURES / "protocol"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PROTOCOL / name).read_text(encoding="utf-8"))
    return data


def same_shape(ours: Any, example: Any, where: str = "") -> None:
    """Every key of the example is there with the same JSON type (numbers are numbers)."""
    if isinstance(example, dict):
        assert isinstance(ours, dict), where
        assert set(ours) == set(example), f"{where}: {sorted(set(ours) ^ set(example))}"
        for key in example:
            same_shape(ours[key], example[key], f"{where}.{key}")
    elif isinstance(example, list):
        assert isinstance(ours, list), where
        if example and ours:
            same_shape(ours[0], example[0], f"{where}[0]")
    elif isinstance(example, bool) or example is None:
        assert ours is None or isinstance(ours, type(example)) or example is None, where
    elif isinstance(example, int | float):
        assert isinstance(ours, int | float), where
        assert not isinstance(ours, bool), where
    else:
        assert isinstance(ours, type(example)), f"{where}: {type(ours)} vs {type(example)}"


def result_like(example: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
    base = {
        "v",
        "camera",
        "task",
        "text",
        "frame_id",
        "model",
        "latency_ms",
        "captured_at",
        "published_at",
        "id",
    }
    return build_result(
        camera=example["camera"],
        task=example["task"],
        text=example["text"],
        frame_id=example["frame_id"],
        model=example["model"],
        latency_ms=example["latency_ms"],
        captured_at=example["captured_at"],
        extra={k: v for k, v in example.items() if k not in base},
        request_id=request_id,
    )


@pytest.mark.parametrize(
    "name",
    ["caption_result.json", "ocr_result.json", "meter_result.json", "meter_dials_result.json"],
)
def test_results_match_the_example_payloads(name: str) -> None:
    example = load(name)
    ours = result_like(example)
    same_shape(ours, example)
    assert ours["v"] == 1
    assert len(ours["frame_id"]) == 64


def test_a_reply_is_a_result_with_the_request_id() -> None:
    example = load("reply.json")
    same_shape(result_like(example, request_id=example["id"]), example)


@pytest.mark.parametrize("name", ["error.json", "meter_error.json", "reply_error.json"])
def test_errors_match_the_example_payloads(name: str) -> None:
    example = load(name)
    extra = {k: example[k] for k in ("raw", "value") if k in example}
    ours = build_error(
        camera=example["camera"],
        frame_id=example["frame_id"],
        code=example["error"],
        detail=example["detail"],
        task=example.get("task"),
        model=example.get("model"),
        extra=extra or None,
        request_id=example.get("id"),
    )
    same_shape(ours, example)


def test_info_matches_the_example_payload() -> None:
    example = load("info.json")
    ours = build_info(
        version="0.1.0",
        bridge_id=example["bridge_id"],
        base_topic=example["base_topic"],
        cameras=example["cameras"],
        models=example["models"],
        counters=example["counters"],
        started_at=example["started_at"],
    )
    same_shape(ours, example)


def test_the_example_request_parses() -> None:
    text = (PROTOCOL / "request.json").read_text().replace("<base64 of a JPEG>", "aGVsbG8=")
    request = parse_request(text.encode())
    assert (request.id, request.task, request.camera, request.prompt) == (
        "4b7f1c2e-9a3d-4e5f-8a6b-7c8d9e0f1a2b",
        "caption",
        "front_door",
        "a picture of",
    )
    assert request.image == b"hello"


@pytest.mark.parametrize(
    "payload",
    [
        b"nope",
        b"[]",
        b'{"id": "1", "task": "caption"}',
        b'{"id":"1","reply_to":"a/#","task":"ocr","image":"aGk="}',
        b'{"id":"1","reply_to":"r","task":"ocr"}',
    ],
)
def test_malformed_requests_are_refused(payload: bytes) -> None:
    with pytest.raises(FrameError) as caught:
        parse_request(payload)
    assert caught.value.code in ("bad_request", "bad_base64")


def test_topics_follow_the_documented_layout() -> None:
    topics = Topics("image_to_text")
    assert topics.state == "image_to_text/bridge/state"
    assert topics.result("front_door", "caption") == "image_to_text/front_door/caption"
    assert topics.image("front_door", "ocr") == "image_to_text/front_door/ocr/image"
    assert topics.error("front_door") == "image_to_text/front_door/error"
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    for topic in ("<base>/bridge/state", "<base>/<camera>/<task>/image", "<base>/request"):
        assert topic in doc

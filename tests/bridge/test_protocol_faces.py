"""Contract for the ``faces`` task: what the bridge sends has the shape of the example payloads.

The examples (tests/fixtures/protocol/faces_*.json) are what Home Assistant's side is written
against; here the real engine and the real command handler produce the payloads compared.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bridge.config import FacesConfig, ModelConfig
from bridge.engines.base import EngineOutput, JobOptions
from bridge.engines.faces_engine import FacesEngine
from bridge.faces.commands import parse_command, run_command, topic_action
from tests.bridge.conftest import FIXTURES, REPO
from tests.bridge.test_protocol import load, result_like, same_shape

FACES = FIXTURES / "faces"


@pytest.fixture
def engine(tmp_path: Path) -> FacesEngine:
    loaded = FacesEngine(ModelConfig(engine="dlib", faces=FacesConfig(db=str(tmp_path / "f.json"))))
    loaded.load()
    return loaded


def command(name: str, **values: Any) -> dict[str, Any]:
    text = (FIXTURES / "protocol" / name).read_text()
    data = parse_command(text.encode())
    data.update(values)
    return data


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_a_faces_result_has_the_example_s_shape(engine: FacesEngine) -> None:
    photos = [b64(FACES / "anna_1.jpg"), b64(FACES / "anna_2.jpg")]
    assert run_command(engine, "add", command("faces_add.json", images=photos), 10**7)["ok"]
    (output,) = engine.run_batch([Image.open(FACES / "couple.jpg")], [JobOptions()])
    assert isinstance(output, EngineOutput)
    example = load("faces_result.json")
    ours = result_like({**example, "text": output.text, **output.extra})
    same_shape(ours, example)
    assert ours["names"] == example["names"]
    assert ours["text"] == example["text"]


def test_enrolment_replies_have_the_examples_shapes(engine: FacesEngine) -> None:
    photos = [b64(FACES / "anna_1.jpg"), b64(FACES / "anna_2.jpg"), b64(FACES / "group.jpg")]
    added = run_command(engine, "add", command("faces_add.json", images=photos), 10**7)
    assert added == load("faces_add_reply.json")
    listed = run_command(engine, "list", {"id": "list-1", "reply_to": "r"}, 10**7)
    assert listed == load("faces_list_reply.json")
    refused = run_command(engine, "remove", {"id": "remove-1", "reply_to": "r", "name": "Bob"}, 1)
    assert refused == load("faces_reply_error.json")


def test_the_enrolment_topic_is_reserved_and_documented() -> None:
    assert topic_action("image_to_text", "image_to_text/faces/add") == "add"
    assert topic_action("image_to_text", "image_to_text/front_door/faces") is None
    names = json.loads((FIXTURES / "protocol" / "camera_names.json").read_text())
    assert "faces" in names["reserved"]
    doc = (REPO / "docs" / "protocol.md").read_text()
    for text in ("<base>/faces/add", "faces_result.json", "faces_add_reply.json", "`names`"):
        assert text in doc


@pytest.mark.parametrize(
    "payload",
    [b"nope", b"[]", b'{"id": "1"}', b'{"id": "1", "reply_to": "a/+"}'],
)
def test_malformed_enrolment_commands_are_refused(payload: bytes) -> None:
    from bridge.errors import FrameError

    with pytest.raises(FrameError, match=r"command|reply_to"):
        parse_command(payload)

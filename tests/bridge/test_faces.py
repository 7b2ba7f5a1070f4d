"""Who is at the door: people enrolled from real photos are named in other photos, strangers not.

Photos: tests/fixtures/faces (serengil/deepface, MIT; see SOURCE.md).  Real dlib models, real
JPEG decoding, the real ``image-to-text`` command line.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFilter

from bridge.config import FacesConfig, ModelConfig, json_schema, parse_config
from bridge.engines.base import EngineOutput, JobOptions, create_engine
from bridge.errors import ConfigError, ModelError
from bridge.faces.db import FaceDb, FaceDbError
from bridge.faces.describer import FaceDescriber
from bridge.faces.recognizer import NamedFace, Recognizer, describe_people
from tests.bridge.conftest import FIXTURES, REPO

FACES = FIXTURES / "faces"
SAMPLES = REPO / "config" / "samples"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


@pytest.fixture(scope="module")
def describer() -> FaceDescriber:
    return FaceDescriber()


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Anna from two photos and Jess from one, enrolled with the real command."""
    db = tmp_path_factory.mktemp("faces") / "faces.json"
    for name, photos in (("Anna", ["anna_1.jpg", "anna_2.jpg"]), ("Jess", ["jess_1.jpg"])):
        done = cli("faces", "add", name, *(str(FACES / p) for p in photos), "--db", str(db))
        assert done.returncode == 0, done.stderr
    return db


def analyze(db: Path, *images: Path) -> list[dict[str, Any]]:
    done = cli("analyze", "--task", "faces", "--faces-db", str(db), *map(str, images))
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def doorbell_frame(photo: Path, face_px: int, quality: int = 60) -> Image.Image:
    """A 1280x720 frame: the photo scaled so its face is ``face_px`` wide, on a porch, blurred."""
    frame = Image.open(SAMPLES / "cat_on_porch.jpg").convert("RGB").resize((1280, 720))
    person = Image.open(photo).convert("RGB")
    (face,) = FaceDescriber().find(person)
    scale = face_px / face.box[2]
    person = person.resize((round(person.width * scale), round(person.height * scale)))
    frame.paste(person.crop((0, 0, min(person.width, 600), min(person.height, 700))), (500, 10))
    frame = frame.filter(ImageFilter.GaussianBlur(0.8))
    buffer = io.BytesIO()
    frame.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def test_enrolled_people_are_named_in_other_photos_and_strangers_are_not(enrolled: Path) -> None:
    lines = analyze(
        enrolled,
        FACES / "anna_3.jpg",
        FACES / "anna_4.jpg",
        FACES / "jess_2.jpg",
        FACES / "stranger_1.jpg",
        FACES / "kim_1.jpg",
    )
    assert [line["names"] for line in lines] == [
        ["Anna"],
        ["Anna"],
        ["Jess"],
        ["unknown"],
        ["unknown"],
    ]
    assert [line["text"] for line in lines] == ["Anna", "Anna", "Jess", "someone", "someone"]
    for line in lines:
        (face,) = line["faces"]
        assert set(face) == {"name", "distance", "box"}
        x, y, w, h = face["box"]
        assert min(w, h) > 50
        assert min(x, y) >= 0
        assert (face["distance"] <= 0.55) == (face["name"] != "unknown")
    assert lines[0]["file"].endswith("anna_3.jpg")


def test_two_people_in_one_photo_are_anna_and_someone(enrolled: Path) -> None:
    (line,) = analyze(enrolled, FACES / "couple.jpg")
    assert line["names"] == ["Anna", "unknown"]
    assert line["text"] == "Anna and someone"


def test_a_photo_without_anyone_is_nobody(enrolled: Path) -> None:
    (line,) = analyze(enrolled, SAMPLES / "coffee_cup.jpg")
    assert line["names"] == []
    assert line["faces"] == []
    assert line["text"] == "nobody"


def test_a_small_blurred_face_in_a_doorbell_frame_is_still_named(
    enrolled: Path, describer: FaceDescriber
) -> None:
    recognizer = Recognizer(describer, FaceDb(enrolled))
    faces, small = recognizer.recognise(doorbell_frame(FACES / "anna_3.jpg", face_px=70))
    assert [f.name for f in faces] == ["Anna"]
    assert small == 0


def test_faces_below_the_minimum_size_are_ignored_not_guessed(
    enrolled: Path, describer: FaceDescriber
) -> None:
    frame = doorbell_frame(FACES / "anna_3.jpg", face_px=70)
    strict = Recognizer(describer, FaceDb(enrolled), min_face=100)
    faces, small = strict.recognise(frame)
    assert faces == []
    assert small == 1


def test_a_person_s_own_threshold_overrides_the_default(tmp_path: Path) -> None:
    db = tmp_path / "faces.json"
    added = cli(
        "faces", "add", "Anna", str(FACES / "anna_1.jpg"), "--db", str(db), "--threshold", "0.2"
    )
    assert added.returncode == 0, added.stderr
    (line,) = analyze(db, FACES / "anna_3.jpg")
    assert line["names"] == ["unknown"]  # a true match (~0.3), but above Anna's own 0.2
    assert line["faces"][0]["distance"] > 0.2

    assert cli("faces", "threshold", "anna", "default", "--db", str(db)).returncode == 0
    (line,) = analyze(db, FACES / "anna_3.jpg")
    assert line["names"] == ["Anna"]
    refused = cli("faces", "threshold", "Anna", "1.5", "--db", str(db))
    assert refused.returncode == 1
    assert "a threshold is between 0 and 1, got 1.5" in refused.stderr


def test_enrolment_refuses_photos_with_no_face_several_faces_or_a_small_face(
    tmp_path: Path,
) -> None:
    db = tmp_path / "faces.json"
    tiny = tmp_path / "tiny.jpg"
    Image.open(FACES / "anna_3.jpg").resize((114, 160)).save(tiny)  # the face is ~60 px
    done = cli(
        "faces",
        "add",
        "Anna",
        str(SAMPLES / "coffee_cup.jpg"),
        str(FACES / "group.jpg"),
        str(tiny),
        "--db",
        str(db),
    )
    assert done.returncode == 1
    assert "coffee_cup.jpg: no face found" in done.stderr
    assert "group.jpg: 3 faces found; use a photo of this person alone" in done.stderr
    assert "tiny.jpg: the face is" in done.stderr
    assert "at least 80 px" in done.stderr
    assert not db.exists() or FaceDb(db).people == {}


def test_list_rename_and_remove_change_only_what_they_name(enrolled: Path, tmp_path: Path) -> None:
    db = tmp_path / "copy.json"
    db.write_bytes(enrolled.read_bytes())
    listed = cli("faces", "list", "--db", str(db))
    assert listed.stdout.splitlines() == ["Anna: 2 photo(s)", "Jess: 1 photo(s)"]
    assert cli("faces", "rename", "Jess", "Jessica", "--db", str(db)).returncode == 0
    taken = cli("faces", "rename", "Anna", "jessica", "--db", str(db))
    assert taken.returncode == 1
    assert "'Jessica' is already enrolled" in taken.stderr
    assert cli("faces", "remove", "Anna", "--db", str(db)).returncode == 0
    missing = cli("faces", "remove", "Anna", "--db", str(db))
    assert missing.returncode == 1
    assert "'Anna' is not enrolled (Jessica)" in missing.stderr
    assert cli("faces", "list", "--db", str(db)).stdout.splitlines() == ["Jessica: 1 photo(s)"]
    (line,) = analyze(db, FACES / "jess_2.jpg")
    assert line["names"] == ["Jessica"]


def test_only_descriptors_are_stored_never_photos_or_strangers(enrolled: Path) -> None:
    before = enrolled.read_bytes()
    analyze(enrolled, FACES / "stranger_1.jpg", FACES / "couple.jpg")
    assert enrolled.read_bytes() == before  # recognising never writes
    data = json.loads(before)
    assert set(data["people"]) == {"Anna", "Jess"}
    for person in data["people"].values():
        for vector in person["descriptors"]:
            assert len(vector) == 128
            assert all(isinstance(x, float) for x in vector)
    assert enrolled.stat().st_mode & 0o077 == 0  # owner only: biometric data


def test_names_that_would_be_confusing_are_refused(tmp_path: Path) -> None:
    db = FaceDb(tmp_path / "faces.json")
    for bad in ("unknown", "Unknown", "", "a\nb", "x" * 65):
        with pytest.raises(FaceDbError):
            db.add(bad, [])


def test_the_text_names_everyone_once_and_counts_strangers() -> None:
    def face(name: str) -> NamedFace:
        return NamedFace(name, 0.3, (0, 0, 80, 80))

    assert describe_people([]) == "nobody"
    assert describe_people([face("Anna"), face("unknown")]) == "Anna and someone"
    assert describe_people([face("unknown"), face("unknown")]) == "2 people I don't know"
    assert describe_people([face("Anna"), face("Ben"), face("Anna")]) == "Anna and Ben"


def test_the_engine_names_frames_and_reports_a_broken_database(tmp_path: Path) -> None:
    db = tmp_path / "faces.json"
    assert cli("faces", "add", "Anna", str(FACES / "anna_1.jpg"), "--db", str(db)).returncode == 0
    engine = create_engine(ModelConfig(engine="dlib", faces=FacesConfig(db=str(db))))
    engine.load()
    frames = [Image.open(FACES / "anna_4.jpg"), Image.open(FACES / "stranger_2.jpg")]
    outputs = engine.run_batch(frames, [JobOptions(), JobOptions()])
    assert all(isinstance(o, EngineOutput) for o in outputs)
    texts = [o.text for o in outputs if isinstance(o, EngineOutput)]
    assert texts == ["Anna", "someone"]
    db.write_text("not json")
    (broken,) = engine.run_batch([frames[0]], [JobOptions()])
    assert isinstance(broken, ModelError)
    assert broken.code == "face_db"


def test_missing_model_files_are_a_clear_load_error(tmp_path: Path) -> None:
    engine = create_engine(
        ModelConfig(engine="dlib", faces=FacesConfig(model_dir=str(tmp_path), db=None))
    )
    with pytest.raises(ModelError, match="face model files missing") as err:
        engine.load()
    assert "install_face_models.py" in err.value.detail


def test_the_68_point_landmark_model_is_not_installed() -> None:
    from bridge.faces.describer import default_model_dir

    files = {p.name for p in default_model_dir().iterdir()}
    assert files == {
        "dlib_face_recognition_resnet_model_v1.dat",
        "shape_predictor_5_face_landmarks.dat",
    }


def test_faces_settings_are_read_from_the_configuration(tmp_path: Path) -> None:
    source = str(tmp_path / "bridge.yaml")
    data = {
        "cameras": {"door": {"topic": "door/snap", "tasks": ["faces", "caption"]}},
        "models": {"faces": {"threshold": 0.5, "min_face": 48}},
    }
    config = parse_config(data, source)
    faces = config.models["faces"].faces
    assert faces is not None
    assert faces.threshold == 0.5
    assert faces.min_face == 48
    assert faces.db == str(tmp_path / "faces.json")  # next to the configuration
    assert config.models["faces"].engine == "dlib"
    data["models"] = {"faces": {"threshold": 1.5}}
    with pytest.raises(ConfigError, match=r"models\.faces\.threshold: expected a number between"):
        parse_config(data, source)
    data["models"] = {}
    data["cameras"] = {"faces": {"topic": "x", "tasks": ["faces"]}}
    with pytest.raises(ConfigError, match="'faces' is reserved"):
        parse_config(data, source)


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ({"faces": {"min_face": 0}}, r"models\.faces\.min_face: expected a positive number"),
        ({"faces": {"threshold": "near"}}, r"models\.faces\.threshold: expected a number"),
        ({"faces": {"faces": {"threshold": 0.5}}}, r"models\.faces\.faces: unknown key"),
        ({"faces": {"treshold": 0.5}}, r"models\.faces\.treshold: unknown key"),
        ({"caption": {"threshold": 0.5}}, r"models\.caption\.threshold: unknown key"),
        ({"caption": {"faces": {}}}, r"models\.caption\.faces: unknown key"),
    ],
)
def test_faces_settings_are_refused_in_the_usual_style(
    tmp_path: Path, models: dict[str, Any], message: str
) -> None:
    data = {
        "cameras": {"door": {"topic": "door/snap", "tasks": ["faces", "caption"]}},
        "models": models,
    }
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(tmp_path))}/bridge\.yaml: {message}"):
        parse_config(data, str(tmp_path / "bridge.yaml"))


def test_a_relative_database_is_relative_to_the_configuration_and_the_schema_names_the_keys(
    tmp_path: Path,
) -> None:
    data = {
        "cameras": {"door": {"topic": "door/snap", "tasks": ["faces"]}},
        "models": {"faces": {"db": "people/faces.json"}},
    }
    config = parse_config(data, str(tmp_path / "bridge.yaml"))
    assert config.models["faces"].faces == FacesConfig(db=str(tmp_path / "people" / "faces.json"))
    assert parse_config(data).models["faces"].faces == FacesConfig(db="people/faces.json")
    schema = json_schema()
    models = schema["properties"]["models"]["properties"]
    assert models["faces"] == {"$ref": "#/$defs/FacesModelConfig"}
    assert models["caption"] == {"$ref": "#/$defs/ModelConfig"}
    faces_keys = set(schema["$defs"]["FacesModelConfig"]["properties"])
    assert faces_keys == {*FacesConfig.model_fields, *schema["$defs"]["ModelConfig"]["properties"]}


def test_recognition_is_off_unless_a_camera_lists_the_faces_task() -> None:
    data = {"cameras": {"door": {"topic": "door/snap", "tasks": ["caption"]}}}
    assert "faces" not in parse_config(data).models

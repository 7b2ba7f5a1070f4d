"""Configuration: what a user writes in bridge.yaml, and what they are told when it is wrong."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.config import host_id, load_config, parse_config
from bridge.errors import ConfigError
from bridge.protocol import CAMERA_NAME, RESERVED_CAMERA_NAMES
from tests.bridge.conftest import REPO

README_CONFIG = """
mqtt:
  host: localhost
  port: 1883
  username: !env MQTT_USER
  password: !env MQTT_PASSWORD
  base_topic: image_to_text
models:
  caption: {model: Salesforce/blip-image-captioning-base, max_new_tokens: 30}
  ocr: {engine: rapidocr}
cameras:
  front_door:
    topic: frigate/front_door/person/snapshot
    tasks: [caption]
  gas_meter:
    topic: cameras/gas_meter/snapshot
    tasks: [meter]
    meter: {roi: [412, 230, 380, 96], digits: 8, decimals: 3, unit: "m³", device_class: gas}
"""


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQTT_USER", "bridge")
    monkeypatch.setenv("MQTT_PASSWORD", "s3cret-pw")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_readme_configuration_loads_into_typed_objects(tmp_path: Path, secrets: None) -> None:
    config = load_config(write(tmp_path, README_CONFIG))
    assert config.mqtt.username == "bridge"
    assert config.mqtt.secret == "s3cret-pw"
    assert config.models["caption"].model == "Salesforce/blip-image-captioning-base"
    assert config.models["caption"].max_new_tokens == 30
    assert config.models["ocr"].engine == "rapidocr"
    assert config.cameras["front_door"].tasks == ("caption",)
    meter = config.cameras["gas_meter"].meter
    assert meter is not None
    assert meter.roi == (412, 230, 380, 96)
    assert (meter.digits, meter.decimals, meter.unit, meter.device_class) == (8, 3, "m³", "gas")
    # Home Assistant unique ids come from the site id: unchanged for a single bridge.
    assert config.site_id == "image_to_text"
    assert config.bridge_id == host_id()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("[412, 230, 380, 96]", "[412, 230, 380]"),
            "cameras.gas_meter.meter.roi: expected 4 integers, got 3",
        ),
        (("port: 1883", "port: many"), "mqtt.port: expected an integer, got str 'many'"),
        (
            ("tasks: [caption]", "tasks: [captions]"),
            "cameras.front_door.tasks: unknown task 'captions'",
        ),
        (("max_new_tokens: 30", "max_new_token: 30"), "models.caption.max_new_token: unknown key"),
        (
            ("device_class: gas", "device_class: steam"),
            "cameras.gas_meter.meter.device_class: expected gas, water or energy",
        ),
        (("decimals: 3", "decimals: 9"), "cameras.gas_meter.meter.decimals: expected 0 to 7"),
        (("  front_door:", "  front door:"), "cameras.front door: a camera name is one MQTT"),
        (("  front_door:", "  request:"), "cameras.request: 'request' is reserved"),
        (("  gas_meter:", "  Front-Door:"), "cameras.Front-Door: its id 'front_door' is the same"),
    ],
)
def test_a_mistake_names_the_file_the_key_and_what_was_expected(
    tmp_path: Path, secrets: None, change: tuple[str, str], message: str
) -> None:
    path = write(tmp_path, README_CONFIG.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: {message}")


CAMERA_NAMES = json.loads((REPO / "tests/fixtures/protocol/camera_names.json").read_text())


def camera_config(name: str) -> dict[str, object]:
    return {"cameras": {name: {"topic": "cam/x", "tasks": ["caption"]}}}


def test_the_bridge_checks_camera_names_with_the_protocols_one_rule() -> None:
    """The fixture is the rule both suites check; the bridge's constants are that rule."""
    assert CAMERA_NAME.pattern == CAMERA_NAMES["pattern"]
    assert set(RESERVED_CAMERA_NAMES) == set(CAMERA_NAMES["reserved"])


@pytest.mark.parametrize("name", CAMERA_NAMES["valid"])
def test_every_valid_example_camera_name_is_accepted(name: str) -> None:
    assert list(parse_config(camera_config(name)).cameras) == [name]


@pytest.mark.parametrize("name", CAMERA_NAMES["invalid"])
def test_every_invalid_example_camera_name_is_refused_naming_the_camera(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(camera_config(name), "bridge.yaml")
    assert str(caught.value).startswith(f"bridge.yaml: cameras.{name}: ")


def test_an_unset_secret_means_no_credentials_with_a_warning_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The README's configuration as written runs against a broker without accounts."""
    monkeypatch.delenv("MQTT_USER", raising=False)
    monkeypatch.delenv("MQTT_PASSWORD", raising=False)
    config = load_config(write(tmp_path, README_CONFIG))
    assert config.mqtt.username is None
    assert config.mqtt.secret is None
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("mqtt.username" in m and "MQTT_USER is not set" in m for m in warned)
    assert any("mqtt.password" in m and "MQTT_PASSWORD is not set" in m for m in warned)


def test_an_unset_variable_for_a_required_key_is_refused_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ITT_NO_SUCH_TOPIC", raising=False)
    text = README_CONFIG.replace(
        "topic: frigate/front_door/person/snapshot", "topic: !env ITT_NO_SUCH_TOPIC"
    )
    with pytest.raises(ConfigError, match=r"cameras\.front_door\.topic: required"):
        load_config(write(tmp_path, text))


def test_a_number_from_the_environment_is_a_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secrets: None
) -> None:
    monkeypatch.setenv("ITT_PORT", "1884")
    config = load_config(
        write(tmp_path, README_CONFIG.replace("port: 1883", "port: !env ITT_PORT"))
    )
    assert config.mqtt.port == 1884
    monkeypatch.setenv("MQTT_PASSWORD", "123456")  # a password of digits stays text
    assert load_config(write(tmp_path, README_CONFIG)).mqtt.secret == "123456"


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"line 3: not valid YAML"):
        load_config(write(tmp_path, "mqtt:\n  host: a\n   port: [1\n"))


def test_the_meter_task_needs_meter_settings() -> None:
    data = {"cameras": {"m": {"topic": "t", "tasks": ["meter"]}}}
    with pytest.raises(ConfigError, match=r"cameras\.m\.meter: required for the meter task"):
        parse_config(data, "x.yaml")


def test_defaults_give_blip_for_captions_and_rapidocr_for_ocr() -> None:
    config = parse_config({"cameras": {"a": {"topic": "t", "tasks": ["caption", "ocr"]}}})
    assert config.models["caption"].model == "Salesforce/blip-image-captioning-base"
    assert config.models["ocr"].engine == "rapidocr"
    assert config.mqtt.discovery is True
    assert config.cameras["a"].dedup is True


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_check_config_explains_the_file_with_secrets_masked(tmp_path: Path, secrets: None) -> None:
    result = run_cli("check-config", str(write(tmp_path, README_CONFIG)))
    assert result.returncode == 0, result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "password: '***'" in result.stdout
    assert "gas_meter (meter on cameras/gas_meter/snapshot)" in result.stdout


def test_check_config_refuses_a_bad_file_with_exit_code_2(tmp_path: Path, secrets: None) -> None:
    path = write(tmp_path, README_CONFIG.replace("[412, 230, 380, 96]", "[412, 230, 380]"))
    result = run_cli("check-config", str(path))
    assert result.returncode == 2
    assert f"{path}: cameras.gas_meter.meter.roi: expected 4 integers, got 3" in result.stderr


def test_run_refuses_a_bad_file_before_connecting(tmp_path: Path) -> None:
    result = run_cli("run", "-c", str(write(tmp_path, "cameras: {}\n")))
    assert result.returncode == 2
    assert "cameras: expected at least one camera" in result.stderr


def test_models_default_to_auto_precision_and_dedup_takes_a_threshold() -> None:
    config = parse_config(
        {
            "models": {"caption": {"precision": "int8"}},
            "cameras": {
                "a": {"topic": "t", "tasks": ["caption", "ocr"]},
                "b": {"topic": "u", "dedup": {"threshold": 0.05}},
            },
        }
    )
    assert config.models["caption"].precision == "int8"
    assert config.models["ocr"].precision == "auto"  # the fastest form that keeps the output
    assert config.cameras["a"].dedup_threshold is None
    assert config.cameras["b"].dedup_threshold == 0.05
    with pytest.raises(ConfigError, match=r"models\.caption\.precision: expected fp32"):
        parse_config(
            {"models": {"caption": {"precision": "int4"}}, "cameras": {"a": {"topic": "t"}}}
        )

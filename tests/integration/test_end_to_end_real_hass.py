"""The whole product, nothing mocked: a camera frame becomes Home Assistant sensor states.

A real Mosquitto, the bridge as users run it (``image-to-text run``: RapidOCR with its real
weights, and a tiny BLIP captioner built from a config), and a real Home Assistant process with the
integration installed as HACS installs it.  The test speaks to them only as their users do: it
publishes a frame on the camera's topic and reads Home Assistant's states over its REST API (and
the entity registry over its WebSocket API, to find entities by their unique ids).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import (
    BRIDGE_COMMAND,
    INTEGRATION,
    MOSQUITTO,
    Bridge,
    HomeAssistant,
    Mosquitto,
    MqttRecorder,
    build_tiny_blip,
    collect_logs,
    mqtt_publish,
    prepare_bridge_assets,
    wait_until,
)

BASE = "e2e_itt"
CAMERA = "front_door"
CAMERA_TOPIC = "cameras/front_door/snapshot"
SIGN = ["NO PARKING"]

#: Unique ids from the integration's contract (HA-CONTRACT.md, docs/home-assistant.md).
OCR_TEXT = f"{BASE}/{CAMERA}/ocr/text"
CAPTION_TEXT = f"{BASE}/{CAMERA}/caption/text"
CAPTION_IMAGE = f"{BASE}/{CAMERA}/caption/image"
CAPTION_EVENT = f"{BASE}/{CAMERA}/caption/event"
CONNECTIVITY = f"{BASE}/bridge/connectivity"

# Bounds, not expectations: on a busy 2-core machine the bridge's model loading dominates.
HA_START_S = 60
BRIDGE_READY_S = 90
RESULT_S = 60
GONE_S = 30

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sign's picture and the tiny captioner, made once with the bridge's Python."""
    if not BRIDGE_COMMAND.exists():
        pytest.skip(f"the bridge's environment is missing ({BRIDGE_COMMAND}); run `make env`")
    if not Path(MOSQUITTO).exists():
        pytest.skip(f"Mosquitto is not installed ({MOSQUITTO}); `apt-get install mosquitto`")
    if not (INTEGRATION / "manifest.json").exists():
        pytest.skip(f"the integration is not there yet ({INTEGRATION}/manifest.json)")
    folder = tmp_path_factory.mktemp("e2e-assets")
    return {
        "sign": prepare_bridge_assets(folder, SIGN),
        "blip": build_tiny_blip(folder / "tiny-blip"),
    }


@contextlib.contextmanager
def running(
    workdir: Path,
    base: str,
    cameras: dict[str, Any],
    models: dict[str, Any],
    *,
    seed_integration: bool = True,
) -> Iterator[tuple[Mosquitto, Bridge, HomeAssistant]]:
    """Mosquitto, the bridge and Home Assistant, started in that order and always stopped."""
    broker = Mosquitto(workdir)
    bridge = Bridge(workdir, broker.port, base, cameras=cameras, models=models)
    hass = HomeAssistant(
        workdir / "ha-config", broker.port, base, seed_integration=seed_integration
    )
    processes = (hass, bridge, broker)
    try:
        broker.start()
        bridge.start()
        hass.prepare()
        hass.start()
        yield broker, bridge, hass
    finally:
        # printed in the teardown section, which pytest shows only when the test failed
        print(collect_logs(*processes))
        for process in processes:
            process.stop()


@pytest.fixture
def stack(
    tmp_path: Path, assets: dict[str, Path], socket_enabled: None
) -> Iterator[dict[str, Any]]:
    """The door camera reads (OCR) and describes (caption); the integration entry is seeded.

    ``socket_enabled``: the Home Assistant test plugin blocks sockets for in-process tests; this
    one talks to real processes over loopback on purpose.
    """
    with running(
        tmp_path,
        BASE,
        cameras={CAMERA: {"topic": CAMERA_TOPIC, "tasks": ["ocr", "caption"]}},
        models={
            "ocr": {"engine": "rapidocr", "threads": 1},
            # fp32: `auto` would time its candidates at load (an OpenVINO conversion on a cold
            # cache), which is not what this test is about.
            "caption": {
                "model": str(assets["blip"]),
                "max_new_tokens": 8,
                "threads": 1,
                "precision": "fp32",
            },
        },
    ) as (broker, bridge, hass):
        yield {"broker": broker, "bridge": bridge, "hass": hass, "sign": assets["sign"]}


def test_a_sign_at_the_door_becomes_sensor_states_until_the_bridge_dies(
    stack: dict[str, Any],
) -> None:
    hass: HomeAssistant = stack["hass"]
    bridge: Bridge = stack["bridge"]
    broker: Mosquitto = stack["broker"]

    ids = _home_assistant_knows_the_bridge(hass)
    assert ids[OCR_TEXT] == "sensor.front_door_ocr"
    assert ids[CAPTION_TEXT] == "sensor.front_door_caption"
    assert ids[CAPTION_IMAGE] == "image.front_door_caption"
    assert ids[CAPTION_EVENT] == "event.front_door_caption"
    connectivity = ids[CONNECTIVITY]
    wait_until(
        lambda: _state(hass, connectivity) == "on",
        BRIDGE_READY_S,
        f"{connectivity} turning on once the bridge says online",
    )

    with MqttRecorder(broker.port, f"{BASE}/{CAMERA}/#") as said:
        # A camera publishes a snapshot of the sign; the bridge reads and describes it.
        mqtt_publish(broker.port, CAMERA_TOPIC, stack["sign"].read_bytes())

        ocr = wait_until(
            lambda: _state_if(hass, ids[OCR_TEXT], lambda s: s["state"] == "NO PARKING"),
            RESULT_S,
            f"{ids[OCR_TEXT]} showing the sign's text",
        )
        assert ocr["attributes"]["friendly_name"] == "Front door OCR"
        assert ocr["attributes"]["model"] == "rapidocr"

        caption = wait_until(
            lambda: said.last_json(f"{BASE}/{CAMERA}/caption"),
            RESULT_S,
            "the bridge publishing the frame's caption",
        )
        assert caption["text"], "random weights say random words, but they say something"
        shown = wait_until(
            lambda: _state_if(hass, ids[CAPTION_TEXT], lambda s: s["state"] == caption["text"]),
            RESULT_S,
            f"{ids[CAPTION_TEXT]} showing the bridge's caption {caption['text']!r}",
        )
        assert shown["attributes"]["frame_id"] == ocr["attributes"]["frame_id"]

        # The image entity serves the very frame the caption was made from.
        frame = wait_until(
            lambda: said.last(f"{BASE}/{CAMERA}/caption/image"),
            RESULT_S,
            "the bridge publishing the analysed frame",
        )
        assert wait_until(
            lambda: hass.image(ids[CAPTION_IMAGE]) == frame,
            RESULT_S,
            f"{ids[CAPTION_IMAGE]} serving the analysed frame",
        )

        # The event entity fired for the new caption (a retained, replayed result would not fire).
        event = wait_until(
            lambda: _state_if(
                hass, ids[CAPTION_EVENT], lambda s: s["state"] not in ("unknown", "unavailable")
            ),
            RESULT_S,
            f"{ids[CAPTION_EVENT]} firing for the new caption",
        )
        assert event["attributes"]["event_type"] == "result", json.dumps(event)
        assert event["attributes"]["text"] == caption["text"]
        assert event["attributes"]["frame_id"] == caption["frame_id"]

    # The bridge dies without a goodbye: the broker's last will marks everything unavailable.
    bridge.kill()
    wait_until(
        lambda: _state(hass, connectivity) == "off",
        GONE_S,
        f"{connectivity} turning off after the bridge was killed",
    )
    for unique_id in (OCR_TEXT, CAPTION_TEXT, CAPTION_IMAGE, CAPTION_EVENT):
        wait_until(
            lambda entity_id=ids[unique_id]: _state(hass, entity_id) == "unavailable",
            GONE_S,
            f"{ids[unique_id]} becoming unavailable after the bridge was killed",
        )


def test_after_a_home_assistant_restart_the_sensors_show_the_last_text_at_once(
    stack: dict[str, Any],
) -> None:
    hass: HomeAssistant = stack["hass"]
    broker: Mosquitto = stack["broker"]

    ids = _home_assistant_knows_the_bridge(hass)
    ocr_sensor, event_entity = ids[OCR_TEXT], ids[CAPTION_EVENT]
    mqtt_publish(broker.port, CAMERA_TOPIC, stack["sign"].read_bytes())
    wait_until(
        lambda: _state(hass, ocr_sensor) == "NO PARKING",
        RESULT_S,
        f"{ocr_sensor} showing the sign's text",
    )
    fired = wait_until(
        lambda: _state_if(
            hass, event_entity, lambda s: s["state"] not in ("unknown", "unavailable")
        ),
        RESULT_S,
        f"{event_entity} firing for the new caption",
    )

    hass.stop()
    hass.start()
    hass.wait_ready(HA_START_S)

    # No new frame: the results retained on the broker bring the text back...
    wait_until(
        lambda: _state(hass, ocr_sensor) == "NO PARKING",
        RESULT_S,
        f"{ocr_sensor} showing the retained text after the restart",
    )
    # ...but a replayed result is not news: the event entity keeps the moment it last fired.
    after = hass.state(event_entity)
    assert after is not None
    assert after["state"] == fired["state"]


def test_the_analyze_action_asks_the_bridge_and_answers_with_what_it_read(
    stack: dict[str, Any],
) -> None:
    hass: HomeAssistant = stack["hass"]
    ids = _home_assistant_knows_the_bridge(hass)
    wait_until(
        lambda: _state(hass, ids[CONNECTIVITY]) == "on",
        BRIDGE_READY_S,
        "the bridge coming online",
    )
    picture = base64.b64encode(stack["sign"].read_bytes()).decode()

    reply = hass.call_action(
        "image_to_text", "analyze", {"image": picture, "task": "ocr", "timeout": 60}
    )
    assert reply["success"], reply
    response = reply["result"]["response"]
    assert response["task"] == "ocr"
    assert response["text"] == "NO PARKING"
    assert response["lines"], response
    assert all(line["text"] in response["text"] for line in response["lines"])
    # an on-demand question is not a camera's news: the camera's sensor never saw this frame
    assert _state(hass, ids[OCR_TEXT]) == "unknown"

    # Not a picture: the bridge's error comes back as the action's error, naming its code.
    garbage = base64.b64encode(b"this is not an image").decode()
    refused = hass.call_action(
        "image_to_text", "analyze", {"image": garbage, "task": "ocr", "timeout": 30}
    )
    assert not refused["success"], refused
    assert "decode_failed" in refused["error"]["message"], refused


def test_a_bridge_on_the_default_topic_is_discovered_and_added_by_confirming(
    tmp_path: Path, assets: dict[str, Path], socket_enabled: None
) -> None:
    with running(
        tmp_path,
        "image_to_text",  # the topic the integration's manifest listens to for discovery
        cameras={CAMERA: {"topic": CAMERA_TOPIC, "tasks": ["ocr"]}},
        models={"ocr": {"engine": "rapidocr", "threads": 1}},
        seed_integration=False,
    ) as (_broker, _bridge, hass):
        hass.wait_ready(HA_START_S)

        # The bridge's retained info is enough: Home Assistant offers it under "Discovered".
        flows = wait_until(
            lambda: hass.flows_in_progress("image_to_text"),
            BRIDGE_READY_S,
            "Home Assistant discovering the bridge from its retained info",
        )
        assert len(flows) == 1, flows
        assert flows[0]["context"]["source"] == "mqtt"

        created = hass.flow_step(flows[0]["flow_id"], {})
        assert created["type"] == "create_entry", created
        assert created["result"]["title"] == "Image to text (image_to_text)"
        assert hass.config_entry("image_to_text")["state"] == "loaded"

        ocr_text, connectivity = (
            "image_to_text/front_door/ocr/text",
            "image_to_text/bridge/connectivity",
        )
        ids = wait_until(
            lambda: _entity_ids(hass, {ocr_text, connectivity}),
            BRIDGE_READY_S,
            "the new entry's entities",
        )
        assert ids[ocr_text] == "sensor.front_door_ocr"
        assert ids[connectivity] == "binary_sensor.image_to_text_bridge_connectivity"
        wait_until(
            lambda: _state(hass, ids[connectivity]) == "on",
            BRIDGE_READY_S,
            "the bridge's connectivity turning on",
        )


def _home_assistant_knows_the_bridge(hass: HomeAssistant) -> dict[str, str]:
    """Wait for Home Assistant, its entries, and the entities the bridge's info calls for."""
    hass.wait_ready(HA_START_S)
    assert hass.config_entry("mqtt")["state"] == "loaded"
    assert hass.config_entry("image_to_text")["state"] == "loaded"
    # The bridge announces its cameras (retained info); the integration makes their entities.
    ids: dict[str, str] = wait_until(
        lambda: _entity_ids(
            hass, {OCR_TEXT, CAPTION_TEXT, CAPTION_IMAGE, CAPTION_EVENT, CONNECTIVITY}
        ),
        BRIDGE_READY_S,
        "the integration registering the camera's entities and the bridge's connectivity",
    )
    return ids


def _entity_ids(hass: HomeAssistant, unique_ids: set[str]) -> dict[str, str] | None:
    """Entity ids by unique id, once every one of ``unique_ids`` is registered."""
    found = {
        entry["unique_id"]: entry["entity_id"]
        for entry in hass.entity_registry()
        if entry.get("platform") == "image_to_text" and entry["unique_id"] in unique_ids
    }
    return found if set(found) == unique_ids else None


def _state(hass: HomeAssistant, entity_id: str) -> str | None:
    state = hass.state(entity_id)
    return None if state is None else str(state["state"])


def _state_if(hass: HomeAssistant, entity_id: str, ok: Any) -> dict[str, Any] | None:
    state = hass.state(entity_id)
    return state if state is not None and ok(state) else None

"""Real processes for the end-to-end story: Mosquitto, the bridge, and a Home Assistant of its own.

The broker, free ports, waiting with a deadline and the fonts come from the shared test kit
(``tests/support/``).

Nothing here is mocked.  Each piece is a small class that starts a real program on a free loopback
port, waits until it answers, keeps its log in a file (so a failing test can show it) and stops
it again.  The bridge runs in the bridge's own virtual environment (``.venv``); Home Assistant
runs from the environment this test runs in (``.venv-ha``): the same split users have.

Home Assistant is started on a throw-away configuration directory that is seeded the way a user's
would be after onboarding: an owner with a long-lived access token (``.storage/auth``) and two
config entries (``.storage/core.config_entries``): MQTT pointing at the test's broker and
``image_to_text`` for the bridge's base topic.  The access token is the HS256 JWT that Home
Assistant itself would hand out for that refresh token, so the REST API is used exactly as a user's
script would use it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

REPO = Path(__file__).resolve().parents[2]
# The shared test kit (standard library only, so this environment can import it).
sys.path.insert(0, str(REPO))

from tests.support.fonts import font  # noqa: E402
from tests.support.inbox import Inbox  # noqa: E402
from tests.support.mosquitto import MOSQUITTO, Mosquitto  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.waiting import wait_until  # noqa: E402

__all__ = ["MOSQUITTO", "Mosquitto", "free_port", "wait_until"]

BRIDGE_PYTHON = REPO / ".venv" / "bin" / "python"
BRIDGE_COMMAND = REPO / ".venv" / "bin" / "image-to-text"
INTEGRATION = REPO / "custom_components" / "image_to_text"
FONT = str(font("DejaVuSans-Bold.ttf"))


def tail(path: Path, lines: int = 60) -> str:
    """The end of a log file, for failure messages."""
    if not path.exists():
        return f"<{path.name}: no log>"
    text = path.read_text(errors="replace").splitlines()
    return f"--- {path.name} (last {lines} lines) ---\n" + "\n".join(text[-lines:])


class _Process:
    """A child process with its log file; ``stop`` is safe to call twice."""

    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def _spawn(
        self, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> None:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,  # our signals only, never the test runner's terminal
            )
        finally:
            log.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no goodbye, as when the machine loses power (the broker sends the last will)."""
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait(10)

    def stop(self, grace: float = 15) -> None:
        """SIGTERM, then SIGKILL if the process is still there after ``grace`` seconds."""
        if not self.running:
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    @property
    def log(self) -> str:
        return tail(self.log_path)


def prepare_bridge_assets(workdir: Path, sign_lines: list[str]) -> Path:
    """Render a sign as a camera would see it, with the bridge's Python (it has Pillow).

    Home Assistant's environment has no Pillow; the bridge's has, and it is the environment that
    decodes the frame anyway.  Returns the PNG's path.
    """
    sign = workdir / "sign.png"
    script = (
        "import sys\n"
        "from PIL import Image, ImageDraw, ImageFont\n"
        "lines = sys.argv[2:]\n"
        "image = Image.new('RGB', (900, 160 * len(lines) + 80), (255, 255, 255))\n"
        "draw = ImageDraw.Draw(image)\n"
        f"font = ImageFont.truetype({FONT!r}, 110)\n"
        "for i, line in enumerate(lines):\n"
        "    draw.text((450, 120 + 160 * i), line, fill=(0, 0, 0), font=font, anchor='mm')\n"
        "image.save(sys.argv[1])\n"
    )
    subprocess.run(
        [str(BRIDGE_PYTHON), "-c", script, str(sign), *sign_lines],
        check=True,
        timeout=60,
        capture_output=True,
    )
    return sign


#: A BLIP captioner with random weights and a ten-word vocabulary, built from configs (no model
#: hub here or in CI).  It says nonsense, but real nonsense: the bridge runs the real transformers
#: engine on it, so a caption travels the same way a real model's would.
TINY_BLIP_SCRIPT = """
import sys
from pathlib import Path

import torch
from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipProcessor
from transformers.models.blip import BlipImageProcessor

folder = Path(sys.argv[1])
folder.mkdir(parents=True, exist_ok=True)
words = ["a", "photo", "of", "the", "cat", "door", "man", "parcel", "at", "on"]
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", *words]
(folder / "vocab.txt").write_text("\\n".join(vocab))
tokenizer = BertTokenizer(str(folder / "vocab.txt"), bos_token="[DEC]")
small = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
         "intermediate_size": 64}
text = {**small, "vocab_size": len(vocab), "max_position_embeddings": 64, "bos_token_id": 5,
        "sep_token_id": 3, "pad_token_id": 0}
vision = {**small, "image_size": 64, "patch_size": 16}
torch.manual_seed(0)
config = BlipConfig(text_config=text, vision_config=vision, projection_dim=32)
BlipForConditionalGeneration(config).save_pretrained(folder)
processor = BlipImageProcessor(size={"height": 64, "width": 64})
BlipProcessor(image_processor=processor, tokenizer=tokenizer).save_pretrained(folder)
"""


def build_tiny_blip(folder: Path) -> Path:
    """Build the tiny captioner with the bridge's Python (torch and transformers live there)."""
    done = subprocess.run(
        [str(BRIDGE_PYTHON), "-c", TINY_BLIP_SCRIPT, str(folder)],
        timeout=120,
        capture_output=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1"),
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"building the tiny BLIP failed:\n{done.stderr.decode()[-3000:]}")
    return folder


@dataclass
class Bridge(_Process):
    """``image-to-text run -c bridge.yaml`` from the bridge's environment, as users run it."""

    workdir: Path
    broker_port: int
    base_topic: str
    cameras: dict[str, dict[str, Any]]
    models: dict[str, dict[str, Any]]

    def __post_init__(self) -> None:
        self.log_path = self.workdir / "bridge.log"
        self.config_path = self.workdir / "bridge.yaml"

    def write_config(self) -> None:
        config = {
            "mqtt": {
                "host": "127.0.0.1",
                "port": self.broker_port,
                "base_topic": self.base_topic,
                "client_id": f"bridge-{uuid.uuid4().hex[:8]}",
                # the integration makes the entities: the bridge's own discovery stays off
                "discovery": False,
                "reconnect_max_delay": 2,
            },
            "models": self.models,
            "cameras": self.cameras,
        }
        # JSON is YAML: no PyYAML needed in Home Assistant's environment for this.
        self.config_path.write_text(json.dumps(config, indent=2))

    def start(self) -> None:
        self.write_config()
        env = dict(
            os.environ,
            HF_HUB_OFFLINE="1",
            PYTHONUNBUFFERED="1",
            OMP_NUM_THREADS="1",
            TOKENIZERS_PARALLELISM="false",
        )
        self._spawn([str(BRIDGE_COMMAND), "run", "-c", str(self.config_path)], env=env, cwd=REPO)


# --- Home Assistant ---


#: Built-ins that Home Assistant sets up on every start but that need packages a full install has
#: and this test environment (pytest-homeassistant-custom-component's) does not: the web UI
#: (``home-assistant-frontend``), ``person`` (Pillow, via image_upload), ``backup`` (securetar),
#: ``hardware`` (psutil-home-assistant).  None of them is part of this story.
NOT_INSTALLED_HERE = ("frontend", "person", "backup", "hardware")

#: Starts the real ``hass`` command line (``homeassistant.__main__.main``), minus the built-ins
#: above, and without the recovery mode that a missing frontend would otherwise trigger.
#: ``hass_nabucasa`` (Home Assistant Cloud) is installed here but cannot be imported (its ``acme``
#: wants an older ``josepy``), and the HTTP server imports it on every request to spot Cloud
#: requests; marking it absent gives the "no Cloud installed" path that HA handles.
HASS_LAUNCHER = (
    "import sys\n"
    "sys.modules['hass_nabucasa'] = None\n"
    "from homeassistant import bootstrap\n"
    "from homeassistant.__main__ import main\n"
    f"bootstrap.DEFAULT_INTEGRATIONS.difference_update({NOT_INSTALLED_HERE!r})\n"
    "bootstrap.CRITICAL_INTEGRATIONS.clear()\n"
    "sys.exit(main())\n"
)


def _storage(key: str, data: dict[str, Any], version: int = 1, minor: int = 1) -> str:
    return json.dumps({"version": version, "minor_version": minor, "key": key, "data": data})


@dataclass
class HomeAssistant(_Process):
    """A real ``hass`` on a throw-away configuration directory, reachable over REST."""

    config_dir: Path
    broker_port: int
    base_topic: str
    port: int = field(default_factory=free_port)
    token: str = ""
    #: False: only MQTT is set up, and the integration is added the user's way (a config flow).
    seed_integration: bool = True
    entry_ids: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.log_path = self.config_dir / "hass.log"

    # setting the directory up

    def prepare(self) -> None:
        """Write configuration.yaml, install the integration and seed ``.storage``."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "configuration.yaml").write_text(
            "homeassistant:\n"
            "  name: End to end\n"
            "  latitude: 52.37\n"
            "  longitude: 4.89\n"
            "  elevation: 0\n"
            "  unit_system: metric\n"
            "  time_zone: UTC\n"
            "  currency: EUR\n"
            "  country: NL\n"
            "http:\n"
            "  server_host: 127.0.0.1\n"
            f"  server_port: {self.port}\n"
            "api:\n"
            # config entries and the entity registry over HTTP/WebSocket, as the UI reads them
            "config:\n"
            "logger:\n"
            "  default: warning\n"
            "  logs:\n"
            "    custom_components.image_to_text: debug\n"
            "    homeassistant.components.mqtt: info\n"
        )
        custom = self.config_dir / "custom_components"
        custom.mkdir(exist_ok=True)
        # a copy, as HACS would make; __pycache__ left behind
        shutil.copytree(
            INTEGRATION, custom / "image_to_text", ignore=shutil.ignore_patterns("__pycache__")
        )
        storage = self.config_dir / ".storage"
        storage.mkdir(exist_ok=True)
        (storage / "auth").write_text(_storage("auth", self._seed_auth()))
        (storage / "core.config_entries").write_text(
            _storage("core.config_entries", {"entries": self._seed_entries()})
        )

    def _seed_auth(self) -> dict[str, Any]:
        user_id = uuid.uuid4().hex
        token_id = uuid.uuid4().hex
        jwt_key = secrets.token_hex(64)
        now = time.time()
        created = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(now))
        refresh_token = {
            "id": token_id,
            "user_id": user_id,
            "client_id": None,
            "client_name": "end-to-end test",
            "client_icon": None,
            "token_type": "long_lived_access_token",
            "created_at": created,
            "access_token_expiration": 3600.0,
            "token": secrets.token_hex(64),
            "jwt_key": jwt_key,
            "last_used_at": None,
            "last_used_ip": None,
            "expire_at": None,
            "credential_id": None,
            "version": None,
        }
        # what Home Assistant's auth manager signs for this refresh token
        self.token = jwt.encode(
            {"iss": token_id, "iat": int(now) - 5, "exp": int(now) + 3600},
            jwt_key,
            algorithm="HS256",
        )
        return {
            "users": [
                {
                    "id": user_id,
                    "group_ids": ["system-admin"],
                    "is_owner": True,
                    "is_active": True,
                    "name": "Tester",
                    "system_generated": False,
                    "local_only": False,
                }
            ],
            "groups": [
                {"id": "system-admin", "name": "Administrators"},
                {"id": "system-users", "name": "Users"},
                {"id": "system-read-only", "name": "Read Only"},
            ],
            "credentials": [],
            "refresh_tokens": [refresh_token],
        }

    def _seed_entries(self) -> list[dict[str, Any]]:
        def entry(
            domain: str, title: str, data: dict[str, Any], unique_id: str | None
        ) -> dict[str, Any]:
            entry_id = uuid.uuid4().hex
            self.entry_ids[domain] = entry_id
            return {
                "entry_id": entry_id,
                "version": 1,
                "minor_version": 1,
                "domain": domain,
                "title": title,
                "data": data,
                "options": {},
                "pref_disable_new_entities": False,
                "pref_disable_polling": False,
                "source": "user",
                "unique_id": unique_id,
                "disabled_by": None,
            }

        entries = [
            entry(
                "mqtt",
                "127.0.0.1",
                {"broker": "127.0.0.1", "port": self.broker_port, "discovery": True},
                None,
            )
        ]
        if self.seed_integration:
            entries.append(
                entry(
                    "image_to_text",
                    f"Image to text ({self.base_topic})",
                    {"base_topic": self.base_topic},
                    self.base_topic,
                )
            )
        return entries

    # running

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # Home Assistant is started with the interpreter running the tests (its environment).
        self._spawn(
            [
                sys.executable,
                "-c",
                HASS_LAUNCHER,
                "--config",
                str(self.config_dir),
                "--skip-pip",
                "--log-file",
                str(self.config_dir / "home-assistant.log"),
            ],
            env=env,
            cwd=self.config_dir,
        )

    def wait_ready(self, timeout: float) -> None:
        """Wait until the REST API answers with our token and Home Assistant says it is running."""

        def running() -> bool:
            if not self.running:
                raise AssertionError(
                    f"hass exited with {self.process and self.process.returncode}\n{self.log}"
                )
            return self.get("/api/config").get("state") == "RUNNING"

        wait_until(running, timeout, "Home Assistant answering on its REST API")

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def state(self, entity_id: str) -> dict[str, Any] | None:
        try:
            return dict(self.get(f"/api/states/{entity_id}"))
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise

    def image(self, entity_id: str) -> bytes:
        """The picture an image entity serves, as the dashboard fetches it."""
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/image_proxy/{entity_id}",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=10) as response:
            return bytes(response.read())

    def config_entry(self, domain: str) -> dict[str, Any]:
        """The config entry of ``domain`` as the UI sees it (``state`` included)."""
        entries = self.get("/api/config/config_entries/entry")
        if domain in self.entry_ids:
            return next(e for e in entries if e["entry_id"] == self.entry_ids[domain])
        return next(e for e in entries if e["domain"] == domain)

    def flows_in_progress(self, handler: str) -> list[dict[str, Any]]:
        """Config flows waiting for the user, e.g. a discovered device under *Discovered*."""
        flows = self.websocket({"type": "config_entries/flow/progress"})
        return [flow for flow in flows if flow["handler"] == handler]

    def flow_step(self, flow_id: str, user_input: dict[str, Any]) -> dict[str, Any]:
        """Answer one step of a config flow, as the UI's dialog does."""
        return dict(self.request("POST", f"/api/config/config_entries/flow/{flow_id}", user_input))

    def entity_registry(self) -> list[dict[str, Any]]:
        """The entity registry (unique ids to entity ids), over the WebSocket API."""
        return list(self.websocket({"type": "config/entity_registry/list"}))

    def websocket(self, command: dict[str, Any]) -> Any:
        """Send one WebSocket command after the auth handshake and return its result."""
        reply = self.websocket_reply(command)
        if not reply.get("success"):
            raise AssertionError(f"{command['type']} failed: {reply}")
        return reply["result"]

    def call_action(self, domain: str, action: str, data: dict[str, Any]) -> dict[str, Any]:
        """Call an action (service) with ``return_response``, as the UI's *Actions* tool does.

        Returns the whole WebSocket reply: ``success`` with ``result.response``, or ``error``.
        """
        return self.websocket_reply(
            {
                "type": "call_service",
                "domain": domain,
                "service": action,
                "service_data": data,
                "return_response": True,
            }
        )

    def websocket_reply(self, command: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """Send one WebSocket command after the auth handshake and return the reply message."""
        import asyncio

        import aiohttp

        async def exchange() -> dict[str, Any]:
            url = f"ws://127.0.0.1:{self.port}/api/websocket"
            client_timeout = aiohttp.ClientTimeout(total=timeout)
            async with (
                aiohttp.ClientSession(timeout=client_timeout) as session,
                session.ws_connect(url) as ws,
            ):
                assert (await ws.receive_json())["type"] == "auth_required"
                await ws.send_json({"type": "auth", "access_token": self.token})
                answer = await ws.receive_json()
                if answer["type"] != "auth_ok":
                    raise AssertionError(f"WebSocket auth refused: {answer}")
                await ws.send_json({"id": 1, **command})
                return dict(await ws.receive_json())

        return asyncio.run(exchange())

    @property
    def log(self) -> str:
        # home-assistant.log has everything once logging is set up; the console output adds what
        # came before that (an import error, a crash of the launcher)
        return tail(self.config_dir / "home-assistant.log", 80) + "\n" + tail(self.log_path, 10)


def mqtt_publish(port: int, topic: str, payload: bytes, retain: bool = False) -> None:
    """Publish one message at QoS 1 and wait for the broker's acknowledgement (paho 1.6)."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(client_id=f"e2e-camera-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        if not info.is_published():
            raise AssertionError(f"broker did not acknowledge the frame on {topic}")
    finally:
        client.disconnect()
        client.loop_stop()


class MqttRecorder:
    """Remembers the last message of every topic under ``pattern``, as a curious user's client.

    Used to compare what the bridge said with what Home Assistant shows, without guessing what
    a model with random weights will say.  Use it as a context manager: its network thread must
    be gone when the test ends.
    """

    def __init__(self, port: int, pattern: str) -> None:
        import paho.mqtt.client as mqtt

        self.inbox = Inbox()  # the shared test kit's watcher of MQTT messages
        self._client = mqtt.Client(client_id=f"e2e-recorder-{uuid.uuid4().hex[:8]}")
        self._client.on_message = self._on_message
        self._client.on_connect = lambda client, *_: client.subscribe(pattern, qos=1)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        self.inbox.put(message.topic, bytes(message.payload))

    def last(self, topic: str) -> bytes | None:
        return self.inbox.latest(topic)

    def last_json(self, topic: str) -> dict[str, Any] | None:
        payload = self.last(topic)
        return None if payload is None else dict(json.loads(payload))

    def __enter__(self) -> MqttRecorder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def collect_logs(*processes: _Process | Mosquitto) -> str:
    """Every process's log tail, for a failing test's report."""
    parts = []
    for process in processes:
        with contextlib.suppress(OSError):
            parts.append(process.log)
    return "\n\n".join(parts)

"""Security: credentials and TLS against a real Mosquitto, and secrets kept secret.

The tests make their own certificate authority and server certificate with ``openssl`` and a
password file with ``mosquitto_passwd``, then configure a Mosquitto that only accepts TLS
connections with the right user name and password.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.bridge.conftest import BridgeProcess, Mosquitto, Watcher, png, render_sign

USER = "camera-bridge"
PASSWORD = "s3cret-Pa55word-never-logged"
OPENSSL = shutil.which("openssl")
PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"

pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl is needed to make certificates")


@dataclass
class Pki:
    ca: Path
    other_ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True)


def _make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.crt"
    _openssl("genrsa", "-out", str(key), "2048", cwd=folder)
    _openssl(
        "req", "-x509", "-new", "-key", str(key), "-days", "2", "-subj", f"/CN={name}",
        "-out", str(cert), cwd=folder,
    )  # fmt: skip
    return key, cert


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _make_ca(folder, "test-ca")
    _, other_ca = _make_ca(folder, "someone-elses-ca")
    key, csr, cert = folder / "server.key", folder / "server.csr", folder / "server.crt"
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("genrsa", "-out", str(key), "2048", cwd=folder)
    _openssl(
        "req", "-new", "-key", str(key), "-subj", "/CN=127.0.0.1", "-out", str(csr), cwd=folder
    )
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
        "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", str(cert), cwd=folder,
    )  # fmt: skip
    key.chmod(0o644)  # mosquitto may run as another user
    return Pki(ca=ca_cert, other_ca=other_ca, cert=cert, key=key)


@pytest.fixture
def secure_broker(mosquitto: Mosquitto, pki: Pki) -> Mosquitto:
    """The test's broker, restarted to require TLS and a user name and password."""
    passwords = mosquitto.workdir / "passwords"
    subprocess.run([PASSWD, "-b", "-c", str(passwords), USER, PASSWORD], check=True)
    passwords.chmod(0o644)
    mosquitto.stop()
    mosquitto.listener_conf = (
        "allow_anonymous false\n"
        f"password_file {passwords}\n"
        f"cafile {pki.ca}\ncertfile {pki.cert}\nkeyfile {pki.key}"
    )
    mosquitto.start()
    return mosquitto


@pytest.fixture
def secure_watcher(secure_broker: Mosquitto, pki: Pki) -> Iterator[Watcher]:
    watcher = Watcher(secure_broker.port, ["#"], credentials=(USER, PASSWORD), ca_certs=pki.ca)
    yield watcher
    watcher.close()


def secure_config(
    bridge_config: Callable[..., Path], ca: Path, password_variable: str = "TEST_MQTT_PASSWORD"
) -> Path:
    path = bridge_config(
        cameras={"gate": {"topic": "cam/gate", "tasks": ["ocr"]}},
        models={"ocr": {"engine": "rapidocr"}},
        mqtt={"username": USER, "password": "PLACEHOLDER", "tls": {"ca_certs": str(ca)}},
    )
    # the password comes from the environment through ``!env``, as the docs tell users to do
    text = path.read_text().replace("password: PLACEHOLDER", f"password: !env {password_variable}")
    path.write_text(text)
    return path


def test_the_right_credentials_over_tls_connect_and_serve(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    secure_watcher: Watcher,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", PASSWORD)
    bridge = run_bridge(secure_config(bridge_config, pki.ca))
    secure_watcher.wait_for("itt/bridge/state", lambda p: p == b"online", timeout=60)
    secure_watcher.publish("cam/gate", png(render_sign(["TLS OK"])))
    assert secure_watcher.wait_json("itt/gate/ocr", timeout=60)["text"] == "TLS OK"
    info = secure_watcher.wait_for("itt/bridge/info")
    assert PASSWORD.encode() not in info
    assert PASSWORD not in bridge.log


@pytest.mark.parametrize(
    ("password", "trusted_ca", "expected"),
    [
        ("not-the-Password-42", "ca", ("not authori", "bad user name or password")),
        (PASSWORD, "other_ca", ("certificate verify failed",)),
    ],
    ids=["wrong password", "broker certificate from another ca"],
)
def test_a_refused_connection_ends_the_bridge_with_a_clear_message_and_no_secret(
    bridge_config: Callable[..., Path],
    run_bridge: Callable[..., BridgeProcess],
    secure_broker: Mosquitto,
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
    password: str,
    trusted_ca: str,
    expected: tuple[str, ...],
) -> None:
    monkeypatch.setenv("TEST_MQTT_PASSWORD", password)
    bridge = run_bridge(secure_config(bridge_config, getattr(pki, trusted_ca)))
    assert bridge.process is not None
    assert bridge.process.wait(60) == 1, "retrying cannot fix this: the bridge must say so and stop"
    log = bridge.log.lower()
    assert any(words in log for words in expected), bridge.log
    assert password.lower() not in log
    assert PASSWORD.lower() not in log

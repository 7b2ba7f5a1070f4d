"""A Mosquitto of the test's own, on a free loopback port, never the one on 1883."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.net import free_port, port_open
from tests.support.waiting import wait_until

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
#: The one command that gives a Debian/Ubuntu machine what the tests need from the system.
INSTALL_HINT = "apt-get install mosquitto"


def mosquitto_installed() -> bool:
    """True when the broker program exists here."""
    return Path(MOSQUITTO).exists()


@dataclass
class Mosquitto:
    """A broker the test may stop and restart; its log stays in ``workdir`` for failures."""

    workdir: Path
    port: int = field(default_factory=free_port)
    extra_conf: str = ""
    #: Keep sessions, queued frames and retained messages across a restart (as a real one does).
    persistent: bool = False
    listener_conf: str = "allow_anonymous true"
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """Where the broker writes its log."""
        return self.workdir / "mosquitto.log"

    def start(self, timeout: float = 10) -> None:
        """Start the broker and return once it accepts connections."""
        if not mosquitto_installed():
            raise RuntimeError(f"mosquitto is not installed ({MOSQUITTO}): {INSTALL_HINT}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        persistence = (
            f"persistence true\npersistence_location {self.workdir}/\n"
            if self.persistent
            else "persistence false\n"
        )
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{self.listener_conf}\n"
            f"{persistence}"
            "max_queued_messages 10000\n"
            # as root, mosquitto would drop to its own user, which cannot read the test's files
            "user root\n"
            f"{self.extra_conf}\n"
        )
        # In the test runner's own session on purpose: a session of its own would give the
        # broker its own scheduler autogroup, i.e. a CPU share as large as the bridge's and the
        # test's together, and a burst would reach the bridge faster than a real broker sharing
        # the machine delivers it (the QoS 0 burst test's memory bound then fails).
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(conf)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(self._up, timeout, f"mosquitto on port {self.port} accepting")
        except AssertionError as err:
            raise RuntimeError(f"{err}\n{self.log}") from None

    def _up(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"mosquitto exited at start-up:\n{self.log}")
        return port_open(self.port)

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no goodbye, as when the machine loses power."""
        if self.process is not None and self.running:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        """SIGTERM and wait; safe to call twice."""
        if self.process is not None and self.running:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    @property
    def log(self) -> str:
        """The broker's log so far, for failure messages."""
        if not self.log_path.exists():
            return "<no mosquitto log>"
        return self.log_path.read_text(errors="replace")

"""The shipped systemd unit: systemd's own checker accepts it, and its command line is ours."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli import build_parser
from tests.bridge.conftest import REPO

UNIT = REPO / "config" / "systemd" / "image-to-text.service"
INSTALLED_AT = "/opt/image-to-text/bin/image-to-text"


def service_section() -> dict[str, list[str]]:
    """The ``[Service]`` keys, each with every value it is given."""
    section: dict[str, list[str]] = {}
    current = None
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            current = line
        elif current == "[Service]" and line and not line.startswith("#"):
            key, _, value = line.partition("=")
            section.setdefault(key, []).append(value)
    return section


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed; installing systemd in a container is not "
    "something `make system-deps` does on its own",
)
def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    # The unit names where the command is installed; here it is this checkout's environment.
    command = Path(sys.executable).with_name("image-to-text")
    assert command.exists()
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALLED_AT, str(command)))
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
    )
    # Unknown keys and bad values are only warnings (exit 0): any output at all fails.
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


def test_the_unit_runs_the_service_as_systemd_expects_it() -> None:
    service = service_section()
    assert service["Type"] == ["notify"]
    assert service["ExecReload"] == ["kill -HUP $MAINPID"]
    assert service["Restart"] == ["always"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["StateDirectory"] == ["image-to-text"]
    (start,) = service["ExecStart"]
    program, *arguments = shlex.split(start.replace("${STATE_DIRECTORY}", "/var/lib/x"))
    assert program == INSTALLED_AT
    args = build_parser().parse_args(arguments)
    assert (args.command, args.config, args.log_format) == ("run", "/var/lib/x/bridge.yaml", "json")

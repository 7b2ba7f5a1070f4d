"""Thread policy is set by the command at start-up; importing the bridge changes no environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bridge.cli import SPIN_COUNT, set_thread_policy
from tests.bridge.conftest import REPO

BARE_ENV = {
    key: value
    for key, value in os.environ.items()
    if key not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
}


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=BARE_ENV,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_importing_every_engine_and_the_service_leaves_the_environment_as_it_was() -> None:
    code = (
        "import os\n"
        "before = dict(os.environ)\n"
        "import bridge.engines, bridge.engines.transformers_engine, bridge.engines.precision\n"
        "import bridge.engines.blip_attention, bridge.service, bridge.cli\n"
        "print(sorted(set(os.environ.items()) ^ set(before.items())))\n"
    )
    assert run_python(code) == "[]"


def test_the_command_sets_a_short_spin_at_start_up(tmp_path: Path) -> None:
    config = tmp_path / "bridge.yaml"
    config.write_text("cameras: {door: {topic: cam/door}}\n")
    code = (
        "import contextlib, io, os\n"
        "from bridge.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['check-config', {str(config)!r}])\n"
        "print(os.environ.get('GOMP_SPINCOUNT'))\n"
    )
    assert run_python(code) == SPIN_COUNT


def test_a_wait_policy_the_user_chose_wins() -> None:
    passive = {"OMP_WAIT_POLICY": "PASSIVE"}
    set_thread_policy(passive)
    assert passive == {"OMP_WAIT_POLICY": "PASSIVE"}
    own = {"GOMP_SPINCOUNT": "0"}
    set_thread_policy(own)
    assert own == {"GOMP_SPINCOUNT": "0"}
    bare: dict[str, str] = {}
    set_thread_policy(bare)
    assert bare == {"GOMP_SPINCOUNT": SPIN_COUNT}

"""``image-to-text`` with the test-only faulty engine registered (see ``fault_engines.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import tests.bridge.fault_engines  # noqa: F401 - registers ``engine: faulty``
from bridge.cli import main

if __name__ == "__main__":
    sys.exit(main())

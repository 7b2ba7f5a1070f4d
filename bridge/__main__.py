"""``python -m bridge`` is the ``image-to-text`` command."""

import sys

from bridge.cli import main

sys.exit(main())

"""The log: plain lines for a person at a terminal, or one JSON object per line for a collector.

``image-to-text run --log-format json`` is for journald/Loki/Elasticsearch: every line is a JSON
object with ``time`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``, plus ``camera`` and
``frame_id`` where the line is about a camera's frame (``extra={"camera": ..., "frame_id": ...}``
at the logging call) and ``exception`` with the traceback when there is one.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

FORMATS = ("plain", "json")
PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Keys a logging call may add with ``extra=`` that the JSON line carries.
CONTEXT_KEYS = ("camera", "frame_id", "task", "file", "key")
#: Libraries that say too much at INFO.
NOISY = ("transformers", "httpx", "huggingface_hub", "RapidOCR", "amqtt", "transitions")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = record.__dict__.get(key)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def setup_logging(level: str, log_format: str = "plain") -> None:
    """Log to stderr at ``level`` in ``log_format`` (``plain`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(PLAIN))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)

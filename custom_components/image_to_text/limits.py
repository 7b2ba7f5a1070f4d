"""What the recorder keeps: per-frame attributes are not recorded, and nothing is too big to record.

Home Assistant's recorder drops state attributes over 16 KiB and event data over 32 KiB (with a
warning each time). OCR of a busy sign passes that at about 170 lines, so attributes and event
payloads are fitted to a budget under those limits: ``lines`` (and a crowd's ``faces``) first keep
only the items that fit, then long strings are cut, and ``truncated`` says it happened. The whole
text stays reachable: the ``image_to_text_result`` bus event carries up to ~30 KB of it, and
``analyze`` returns all.
"""

from __future__ import annotations

import json
from typing import Any, Final

#: Result fields that change with every frame: kept as attributes, never written to the recorder.
PER_FRAME_ATTRIBUTES: Final = frozenset(
    {"frame_id", "captured_at", "published_at", "latency_ms", "received_at", "bridge_id"}
)
#: Under the recorder's 16 KiB for state attributes, with room for Home Assistant's own.
MAX_ATTRIBUTES_BYTES: Final = 12 * 1024
#: Under the recorder's 32 KiB for event data, with room for the event's own fields.
MAX_EVENT_BYTES: Final = 30 * 1024
TRUNCATED: Final = "truncated"
_LONG_STRINGS: Final = ("full_text", "text", "raw", "caption", "detail", "error")
#: Lists cut to the items that fit, in this order: OCR's lines, a crowd's faces and their names.
_LISTS: Final = ("lines", "faces", "names")


def json_size(data: Any) -> int:
    """Bytes ``data`` takes as the recorder stores it (JSON, UTF-8)."""
    return len(json.dumps(data, default=str, ensure_ascii=False).encode())


def _cut(value: str, max_bytes: int) -> str:
    """``value`` cut to at most ``max_bytes`` of UTF-8, on a character boundary."""
    return value.encode()[: max(0, max_bytes)].decode(errors="ignore")


def fit(data: dict[str, Any], budget: int, *, whole_text: bool = False) -> dict[str, Any]:
    """``data`` unchanged when it fits ``budget`` bytes; else trimmed to fit, ``truncated`` set.

    For attributes a long string gets at most a third of the budget and the lines what is left,
    so both stay useful; ``whole_text`` (events) drops lines before it cuts any text.
    """
    if json_size(data) <= budget:
        return data
    out = {**data, TRUNCATED: True}
    if not whole_text:
        for key in _LONG_STRINGS:
            value = out.get(key)
            if isinstance(value, str):
                out[key] = _cut(value, budget // 3)
    for key in _LISTS:
        items = out.get(key)
        if isinstance(items, list):
            keep = len(items)
            while keep and json_size({**out, key: items[:keep]}) > budget:
                keep = keep * 3 // 4
            out[key] = items[:keep]
    for key in _LONG_STRINGS:
        while (overflow := json_size(out) - budget) > 0:
            value = out.get(key)
            if not isinstance(value, str) or not value:
                break
            # each byte cut takes at least one byte of JSON with it
            out[key] = _cut(value, len(value.encode()) - overflow)
    return out

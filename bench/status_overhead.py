"""What health, metrics and the status page cost the bridge (issue 15).

Recording: ``Telemetry.result`` per published result (what the frame path pays), against the
time a result takes anyway.  Reading: one ``/metrics`` text and one ``/api/status`` payload for
many cameras with a full hour of latencies (what a scrape or the page's poll costs the loop).
Prints numbers only; no pass/fail.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from bridge.config import parse_config
from bridge.metrics import HISTORY_POINTS, exposition
from bridge.work import Accounts

CAMERAS = 50
TASKS = ("caption", "ocr")


def per_call_us(fn: Any, calls: int) -> float:
    started = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    cameras = {f"cam{i}": {"topic": f"cam/{i}", "tasks": list(TASKS)} for i in range(CAMERAS)}
    config = parse_config({"cameras": cameras})
    accounts = Accounts(dict(config.cameras))
    telemetry = accounts.telemetry
    jpeg = b"\xff\xd8\xff" + bytes(60_000)
    payload = {"frame_id": "ab" * 32, "text": "a person at the door", "latency_ms": 400.0}

    def record(i: int) -> None:
        camera = f"cam{i % CAMERAS}"
        telemetry.result(camera, TASKS[i % 2], payload, 400.0 + i % 97, jpeg=jpeg, size=(1280, 720))

    record_us = per_call_us(record, 200_000)  # also fills every history to its cap
    error_us = per_call_us(
        lambda i: telemetry.error(f"cam{i % CAMERAS}", "decode_failed", {}), 50_000
    )
    for state in accounts.cameras.values():
        state.counters.received = state.counters.results = 4000

    def scrape(_i: int) -> None:
        exposition(accounts.cameras, telemetry, {}, connected=True, info={"version": "x"})

    def status(_i: int) -> None:
        json.dumps(telemetry.history_since(time.time() - 3600))

    text = exposition(accounts.cameras, telemetry, {}, connected=True, info={"version": "x"})
    print(
        f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}"
    )
    print(f"Telemetry.result per result: {record_us:.2f} us   Telemetry.error: {error_us:.2f} us")
    print(
        f"/metrics for {CAMERAS} cameras: {per_call_us(scrape, 200) / 1000:.2f} ms, "
        f"{len(text) / 1024:.0f} KiB"
    )
    print(
        f"/api/status latency history ({CAMERAS * len(TASKS)} series x {HISTORY_POINTS} points): "
        f"{per_call_us(status, 20) / 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()

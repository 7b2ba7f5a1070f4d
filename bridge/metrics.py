"""What the bridge has done, for ``/metrics`` and the status page: recorded in O(1) per frame.

The frame counters stay where they always were (``work.Counters``, published in the bridge
info); this module keeps what the info does not: latencies by task, errors by code, the last
analysed frame of each camera (the JPEG already published, never encoded again) and the last
hour of latencies.  ``exposition`` writes all of it, counters included, in Prometheus' text
format (version 0.0.4), read at scrape time: nothing is computed on the frame path.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.scheduler import ModelWorker
    from bridge.work import CameraState

#: Upper bounds of the latency buckets, in seconds (frame received -> result published).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Upper bounds of the batch-size buckets (frames per model call).
BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
#: The status page's chart covers this much time.
HISTORY_SECONDS = 3600.0
#: At most this many points per camera and task in that hour (a busy camera keeps the newest).
HISTORY_POINTS = 1200
#: The status page's chart gets at most this many points per camera and task.
CHART_POINTS = 120
#: The status page lists this many of the latest errors.
RECENT_ERRORS = 20
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """Cumulative buckets as Prometheus has them; ``observe`` is one bisection of ~10 bounds."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """One value."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs, the last one ``+Inf``."""
        pairs, running = [], 0
        for bound, count in zip((*map(_number, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            pairs.append((bound, running))
        return pairs


@dataclass
class LastFrame:
    """A camera's last analysed frame, as the status page shows it."""

    frame_id: str
    at: float
    #: The analysed image's size (boxes in results are in its coordinates), if known.
    size: tuple[int, int] | None = None
    #: The JPEG the bridge published for it (``<camera>/<task>/image``), if it publishes images.
    jpeg: bytes | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


class Telemetry:
    """Latencies, errors and last frames, kept beside the counters (``work.Accounts``)."""

    def __init__(self) -> None:
        self.latency: dict[str, Histogram] = {}
        self.errors: Counter[tuple[str, str]] = Counter()
        self.history: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self.recent_errors: deque[dict[str, Any]] = deque(maxlen=RECENT_ERRORS)
        self.last: dict[str, LastFrame] = {}

    def result(
        self,
        camera: str,
        task: str,
        payload: dict[str, Any],
        latency_ms: float,
        *,
        jpeg: bytes | None = None,
        size: tuple[int, int] | None = None,
    ) -> None:
        """A result was published for a camera's frame."""
        now = time.time()
        self.latency.setdefault(task, Histogram(LATENCY_BUCKETS)).observe(latency_ms / 1000)
        points = self.history.setdefault((camera, task), deque(maxlen=HISTORY_POINTS))
        points.append((now, round(latency_ms, 1)))
        frame_id = str(payload.get("frame_id", ""))
        last = self.last.get(camera)
        if last is None or (last.frame_id != frame_id and payload.get("unchanged") is not True):
            last = self.last[camera] = LastFrame(frame_id, now)
        last.at = now
        last.size = size or last.size
        last.jpeg = jpeg or last.jpeg
        last.results[task] = payload

    def error(self, camera: str, code: str, payload: dict[str, Any]) -> None:
        """An error event was published for a camera's frame."""
        self.errors[(camera, code)] += 1
        self.recent_errors.append({**payload, "at": time.time()})

    def history_since(
        self, since: float, most: int = CHART_POINTS
    ) -> dict[str, list[tuple[int, float]]]:
        """Each ``camera/task``'s latencies (epoch seconds, ms) since ``since``.

        At most ``most`` of them, evenly picked: a chart needs no more, and the page's poll
        stays cheap for the loop (bench/status_overhead.py).
        """
        chart: dict[str, list[tuple[int, float]]] = {}
        for (camera, task), points in self.history.items():
            step = max(1, -(-len(points) // most))  # ceiling division
            start = (len(points) - 1) % step  # the newest point is always in
            picked = itertools.islice(points, start, None, step)
            chart[f"{camera}/{task}"] = [(int(t), ms) for t, ms in picked if t >= since]
        return chart


# --- the text format ---


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else f"{value:.1f}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items()) + "}"


class _Writer:
    """Families in order, each with its HELP and TYPE lines once."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, kind: str, doc: str, samples: Iterable[tuple[Mapping[str, str], float]]
    ) -> None:
        # Counters are named with ``_total`` in the TYPE line too, as the 0.0.4 format has it.
        name += "_total" if kind == "counter" else ""
        self.lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def histograms(self, name: str, doc: str, by_task: Mapping[str, Histogram]) -> None:
        self.lines += [f"# HELP {name} {doc}", f"# TYPE {name} histogram"]
        for task, histogram in sorted(by_task.items()):
            for bound, count in histogram.cumulative():
                self.lines.append(f"{name}_bucket{_labels({'task': task, 'le': bound})} {count}")
            self.lines.append(f"{name}_sum{_labels({'task': task})} {_number(histogram.total)}")
            self.lines.append(f"{name}_count{_labels({'task': task})} {histogram.count}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def exposition(
    cameras: Mapping[str, CameraState],
    telemetry: Telemetry,
    workers: Mapping[str, ModelWorker],
    *,
    connected: bool,
    info: Mapping[str, str],
) -> str:
    """Everything as Prometheus text; cameras' counters straight from ``work.Counters``."""
    out = _Writer()
    out.family("image_to_text_bridge_info", "gauge", "The bridge's version and id.", [(info, 1)])
    out.family(
        "image_to_text_broker_connected",
        "gauge",
        "1 while the bridge is connected to the MQTT broker.",
        [({}, 1 if connected else 0)],
    )
    counters = {name: state.counters for name, state in cameras.items()}
    out.family(
        "image_to_text_frames_received",
        "counter",
        "Frames received per camera.",
        [({"camera": name}, c.received) for name, c in counters.items()],
    )
    out.family(
        "image_to_text_frames",
        "counter",
        "Frames ended per camera, by outcome (answered: result or error; superseded).",
        [
            ({"camera": name, "outcome": outcome}, value)
            for name, c in counters.items()
            for outcome, value in (
                ("result", c.results),
                ("error", c.errors),
                ("superseded", c.superseded),
            )
        ],
    )
    out.family(
        "image_to_text_frames_unchanged",
        "counter",
        "Results answered from the last analysis (same scene), per camera.",
        [({"camera": name}, c.duplicates) for name, c in counters.items()],
    )
    out.family(
        "image_to_text_errors",
        "counter",
        "Error events per camera and error code.",
        [({"camera": cam, "code": code}, n) for (cam, code), n in sorted(telemetry.errors.items())],
    )
    out.family(
        "image_to_text_frames_decoding",
        "gauge",
        "Frames of the camera being fetched or decoded now.",
        [({"camera": name}, state.undecoded) for name, state in cameras.items()],
    )
    out.histograms(
        "image_to_text_latency_seconds",
        "Frame received to result published, per task.",
        telemetry.latency,
    )
    _model_families(out, workers)
    return out.text()


def _model_families(out: _Writer, workers: Mapping[str, ModelWorker]) -> None:
    out.family(
        "image_to_text_queue_depth",
        "gauge",
        "Frames waiting for the task's model (at most one per camera).",
        [({"task": task}, w.waiting) for task, w in workers.items()],
    )
    out.family(
        "image_to_text_model_ready",
        "gauge",
        "1 once the task's model has loaded; 0 while loading or after it failed.",
        [({"task": task}, 1 if str(w.status) == "ready" else 0) for task, w in workers.items()],
    )
    out.family(
        "image_to_text_model_load_seconds",
        "gauge",
        "Seconds the task's model took to load.",
        [({"task": t}, w.load_seconds) for t, w in workers.items() if w.load_seconds is not None],
    )
    out.histograms(
        "image_to_text_batch_size",
        "Frames per model call, per task.",
        {task: w.batch_sizes for task, w in workers.items()},
    )
    out.histograms(
        "image_to_text_model_seconds",
        "Seconds per model call (one batch), per task.",
        {task: w.call_seconds for task, w in workers.items()},
    )

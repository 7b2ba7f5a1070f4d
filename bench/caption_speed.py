"""Captioning speed, in one run: the seed's way against frames through the bridge over MQTT.

(a) The seed's way: what a naive project does, one frame at a time in fp32 -- the JPEG decoded
    at full size with PIL, ``BlipProcessor``, ``BlipForConditionalGeneration.generate``
    (12 new tokens), default torch threads (transformers 5 has no image-to-text pipeline left
    to call; this is what that pipeline did).
(b) The bridge: ``image-to-text run`` as users run it (with a timestamping launcher, see
    ``_bridge_proc.py``) against a real Mosquitto; 1 and 4 cameras, each publishing its next
    frame as soon as its previous result arrives.  Latency is frame published -> result
    received, measured by the publishing client; the bridge's overhead is its own
    receive -> publish time minus the model's time and the wait for the model.

The caption model is BLIP with blip-image-captioning-base's configuration and random weights:
the real model's compute, words that are noise.  The RSS run also loads RapidOCR, as a
deployment with captions and OCR would.

    .venv/bin/python bench/caption_speed.py            # ~3-5 minutes on 2 cores
    .venv/bin/python bench/caption_speed.py --quick    # ~1-2 minutes
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _support
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.mosquitto import Mosquitto

HERE = Path(__file__).resolve().parent
BASE_TOPIC = "bench"
NEW_TOKENS = 12


# --- (a) the seed's way, in a process of its own (its memory is not the bridge's) ---


def seed_worker(model: str, frames_dir: str, count: int, device: str = "cpu") -> dict[str, Any]:
    """Caption ``count`` frames the naive way; runs in a child process."""
    import io

    import torch
    from PIL import Image
    from transformers import BlipForConditionalGeneration, BlipProcessor

    processor = BlipProcessor.from_pretrained(model)
    blip = BlipForConditionalGeneration.from_pretrained(model).to(device)
    files = sorted(Path(frames_dir).glob("*.jpg"))

    def caption(path: Path) -> str:
        image = Image.open(io.BytesIO(path.read_bytes())).convert("RGB")
        inputs = processor(images=image, return_tensors="pt").to(device)
        with torch.no_grad():
            out = blip.generate(**inputs, max_new_tokens=NEW_TOKENS)
        return str(processor.decode(out[0], skip_special_tokens=True))

    caption(files[0])  # the first call pays one-off costs; the bridge warms up too
    latencies = []
    started = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        caption(files[i % len(files)])
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return {
        "fps": count / elapsed,
        "latencies": latencies,
        "rss_mb": _proc_status(os.getpid())["VmHWM"],
        "threads": torch.get_num_threads(),
    }


def run_seed(model: Path, frames_dir: Path, count: int, device: str = "cpu") -> dict[str, Any]:
    """Run the seed's way in a child process and return its figures."""
    worker = [sys.executable, __file__, "--seed-worker", str(model), str(frames_dir), str(count)]
    out = subprocess.run(
        [*worker, device],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error"),
    )
    if out.returncode != 0:
        raise RuntimeError(f"the seed's way failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# --- (b) the bridge over a real broker ---


def _proc_status(pid: int) -> dict[str, float]:
    """VmRSS / VmHWM (peak) of a process, in MB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


@dataclass
class BridgeRun:
    """The bridge, its broker and a client publishing frames as cameras would."""

    workdir: Path
    model: Path
    cameras: int
    precision: str
    batch_size: int
    threads: int | None
    ocr: bool = True
    device: str = "cpu"
    broker: Mosquitto = field(init=False)
    process: subprocess.Popen[bytes] | None = None
    client: mqtt.Client | None = None
    sent: dict[str, float] = field(default_factory=dict)
    received: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        self.broker = Mosquitto(self.workdir / "broker")

    @property
    def trace_path(self) -> Path:
        return self.workdir / "trace.jsonl"

    def start(self, timeout: float = 300) -> float:
        """Start broker and bridge; return seconds until the caption model was ready."""
        self.broker.start()
        models: dict[str, Any] = {
            "caption": {
                "engine": "transformers",
                "model": str(self.model),
                "max_new_tokens": NEW_TOKENS,
                "precision": self.precision,
                "batch_size": self.batch_size,
                "device": self.device,
            }
        }
        if self.threads:
            models["caption"]["threads"] = self.threads
        if self.ocr:
            models["ocr"] = {"engine": "rapidocr"}
        config = {
            "mqtt": {
                "host": "127.0.0.1",
                "port": self.broker.port,
                "base_topic": BASE_TOPIC,
                "discovery": False,
                "client_id": "bench-bridge",
            },
            "models": models,
            "cameras": {
                f"cam{i}": {"topic": f"bench_cam/{i}", "tasks": ["caption"]}
                for i in range(self.cameras)
            },
        }
        config_path = self.workdir / "bridge.yaml"
        config_path.write_text(yaml.safe_dump(config))
        self.trace_path.unlink(missing_ok=True)
        env = dict(
            os.environ,
            HF_HUB_OFFLINE="1",
            PYTHONUNBUFFERED="1",
            BENCH_TRACE=str(self.trace_path),
        )
        log = (self.workdir / "bridge.log").open("ab")
        started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "_bridge_proc.py"), "run", "-c", str(config_path)],
            stdout=log,
            stderr=log,
            env=env,
            cwd=_support.REPO,
        )
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{time.time_ns()}")
        client.on_message = self._on_message
        client.connect("127.0.0.1", self.broker.port)
        # A camera's 100 KB frame otherwise waits ~40 ms in its own socket on some hosts (Nagle
        # against the broker's delayed ACK): the camera's TCP stack, not the bridge's time.
        client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe(f"{BASE_TOPIC}/+/caption", qos=1)
        client.subscribe(f"{BASE_TOPIC}/bridge/info", qos=1)
        client.loop_start()
        self.client = client
        deadline = started + timeout
        with self.arrived:
            while not self._ready():
                if self.process.poll() is not None:
                    raise RuntimeError("the bridge exited:\n" + self.log[-3000:])
                if time.monotonic() > deadline:
                    raise RuntimeError("the bridge did not get ready:\n" + self.log[-3000:])
                self.arrived.wait(0.2)
        return time.monotonic() - started

    def _ready(self) -> bool:
        models = self.info.get("models", {})
        wanted = ["caption", "ocr"] if self.ocr else ["caption"]
        return all(models.get(task, {}).get("status") == "ready" for task in wanted)

    @property
    def log(self) -> str:
        return (self.workdir / "bridge.log").read_text(errors="replace")

    def _on_message(self, _client: Any, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        data = json.loads(message.payload)
        with self.arrived:
            if message.topic.endswith("/bridge/info"):
                self.info = data
            else:
                self.received[data["frame_id"]] = (now, data)
            self.arrived.notify_all()

    def drive(self, frames: list[bytes], per_camera: int) -> float:
        """Each camera publishes its next frame when its last result is in; seconds taken."""
        from bridge.frames import frame_id_of

        assert self.client is not None
        queues = [
            [frames[(cam + i * self.cameras) % len(frames)] for i in range(per_camera)]
            for cam in range(self.cameras)
        ]
        waiting: dict[int, str] = {}
        started = time.monotonic()

        def send(cam: int) -> None:
            payload = queues[cam].pop(0)
            frame_id = frame_id_of(payload)
            self.sent[frame_id] = time.monotonic()
            waiting[cam] = frame_id
            assert self.client is not None
            self.client.publish(f"bench_cam/{cam}", payload, qos=1)

        for cam in range(self.cameras):
            send(cam)
        with self.arrived:
            while waiting:
                for cam, frame_id in list(waiting.items()):
                    if frame_id in self.received:
                        del waiting[cam]
                        if queues[cam]:
                            send(cam)
                if waiting and not self.arrived.wait(120):
                    raise RuntimeError("no result within 120 s:\n" + self.log[-3000:])
        return time.monotonic() - started

    def latencies(self) -> list[float]:
        """Frame published -> result received, for every frame of the measured run."""
        return [self.received[f][0] - t for f, t in self.sent.items() if f in self.received]

    def trace(self) -> list[dict[str, Any]]:
        if not self.trace_path.exists():
            return []
        records = [json.loads(line) for line in self.trace_path.read_text().splitlines()]
        return [r for r in records if r["frame_id"] in self.sent and "published" in r]

    def stop(self) -> None:
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.broker.stop()


IDLE_WAIT_S = 3.0


class RssSampler(threading.Thread):
    """The largest VmRSS of a process while frames flow (sampled every 0.2 s)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(0.2):
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, _proc_status(self.pid).get("VmRSS", 0.0))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def bridge_case(
    workdir: Path, model: Path, frames: list[bytes], cameras: int, per_camera: int, args: Any
) -> dict[str, Any]:
    """Frames through the bridge with ``cameras`` cameras; figures as a dict."""
    run = BridgeRun(
        workdir,
        model,
        cameras,
        args.precision,
        args.batch_size,
        args.threads,
        ocr=not args.no_ocr,
        device=args.device,
    )
    try:
        load_s = run.start()
        # warm-up: one round of frames never used again, not counted (first calls pay
        # allocator and cache set-up)
        run.drive(warm_up_frames(cameras), 1)
        run.sent.clear()
        run.received.clear()
        assert run.process is not None
        sampler = RssSampler(run.process.pid)
        sampler.start()
        elapsed = run.drive(frames, per_camera)
        sampler.stop()
        time.sleep(IDLE_WAIT_S)  # the engine gives freed heap back after 2 s idle
        memory = _proc_status(run.process.pid)
        trace = run.trace()
        latencies = run.latencies()
        sent, answered = dict(run.sent), dict(run.received)
        precision = next(iter(run.received.values()))[1].get("model", "")
        chosen = dict(run.info.get("models", {}).get("caption", {}))
    finally:
        run.stop()
    overhead, pre, post, model_ms, queue_ms, batches = [], [], [], [], [], []
    # the broker's legs (monotonic clocks are one clock across processes): published by the
    # camera -> received by the bridge, published by the bridge -> received by the camera
    inbound, outbound = [], []
    stages: dict[str, list[float]] = {
        "before_decode": [],
        "decode_and_sign": [],
        "back_on_loop": [],
        "to_model_queue": [],
    }
    for r in trace:
        if r.get("decode_start") is not None:
            stages["before_decode"].append((r["decode_start"] - r["received"]) * 1000)
            stages["decode_and_sign"].append((r["decode_end"] - r["decode_start"]) * 1000)
            stages["back_on_loop"].append((r["decoded"] - r["decode_end"]) * 1000)
            stages["to_model_queue"].append((r["submitted"] - r["decoded"]) * 1000)
        total = (r["published"] - r["received"]) * 1000
        wait = (r["model_start"] - r["submitted"]) * 1000
        overhead.append(total - r["model_ms"] - wait)
        pre.append((r["submitted"] - r["received"]) * 1000)
        post.append((r["published"] - r["done"]) * 1000)
        model_ms.append(r["model_ms"])
        queue_ms.append(wait)
        batches.append(r["batch"])
        inbound.append((r["received"] - sent[r["frame_id"]]) * 1000)
        outbound.append((answered[r["frame_id"]][0] - r["published"]) * 1000)
    count = len(latencies)
    return {
        "cameras": cameras,
        "frames": count,
        "fps": count / elapsed,
        "p50_s": _support.percentile(latencies, 50),
        "p95_s": _support.percentile(latencies, 95),
        "overhead_p50_ms": _support.percentile(overhead, 50),
        "overhead_p95_ms": _support.percentile(overhead, 95),
        "pre_model_p50_ms": _support.percentile(pre, 50),
        "post_model_p50_ms": _support.percentile(post, 50),
        "stages_p50_ms": {
            name: round(_support.percentile(times, 50), 3)
            for name, times in stages.items()
            if times
        },
        "model_p50_ms": _support.percentile(model_ms, 50),
        "queue_p50_ms": _support.percentile(queue_ms, 50),
        "inbound_p50_ms": _support.percentile(inbound, 50),
        "outbound_p50_ms": _support.percentile(outbound, 50),
        "mean_batch": sum(batches) / len(batches) if batches else float("nan"),
        "rss_busy_mb": sampler.peak,
        "rss_mb": memory.get("VmRSS", float("nan")),
        "peak_rss_mb": memory.get("VmHWM", float("nan")),
        "load_s": load_s,
        "model": precision,
        "probe": chosen.get("probe"),
        "precision": (
            _precision_from_log(workdir / "bridge.log")
            if args.precision == "auto"
            else args.precision
        ),
    }


def _precision_from_log(log: Path) -> str:
    """What ``precision: auto`` chose, from the engine's log line."""
    text = log.read_text(errors="replace")
    for word in ("mixed", "openvino", "int8", "fp16", "bf16"):
        if f" runs {word}:" in text:
            return f"auto: {word}"
        if f" runs {word} as recorded" in text:
            return f"auto: {word} (recorded)"
    return "auto: fp32" if "stays fp32" in text else "auto: ?"


# --- the engine alone, for each precision and batch size ---


def engine_matrix(
    model: Path,
    frames: list[bytes],
    precisions: list[str],
    batches: list[int],
    repeats: int,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """Seconds per frame of the bridge's engine alone, per precision and batch size."""
    import gc

    from bridge.config import ModelConfig
    from bridge.engines.base import JobOptions
    from bridge.engines.transformers_engine import TransformersEngine
    from bridge.frames import decode_image

    rows = []
    for precision in precisions:
        engine = TransformersEngine(
            ModelConfig(
                engine="transformers",
                model=str(model),
                precision=precision,  # type: ignore[arg-type]
                device=device,
                max_new_tokens=NEW_TOKENS,
            )
        )
        engine.load()
        images = [decode_image(f, 40_000_000, engine.input_size) for f in frames[: max(batches)]]
        for batch in batches:
            options = [JobOptions()] * batch
            engine.run_batch(images[:batch], options)  # warm-up at this shape
            timings = []
            for _ in range(repeats):
                started = time.perf_counter()
                engine.run_batch(images[:batch], options)
                timings.append(time.perf_counter() - started)
            best = min(timings)
            rows.append(
                {
                    "precision": engine.precision,
                    "batch": batch,
                    "best_s": best,
                    "median_s": _support.percentile(timings, 50),
                    "s_per_frame": best / batch,
                    "load_average": _support.load_average(),
                }
            )
            print(
                f"engine {engine.precision:5} batch {batch}: best {best:.3f} s "
                f"({best / batch:.3f} s a frame), median {rows[-1]['median_s']:.3f} s "
                f"[load {rows[-1]['load_average']}]",
                flush=True,
            )
        del engine
        gc.collect()
    return rows


# --- the run ---


def warm_up_frames(count: int) -> list[bytes]:
    """Scenes unlike any of ``make_frames``'s (other seeds), for the warm-up round."""
    return [_support.jpeg(_support.scene(500 + i)) for i in range(count)]


def make_frames(count: int, folder: Path) -> list[bytes]:
    """``count`` different 1280x720 JPEG scenes (no two alike, so dedup never skips one)."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for i in range(count):
        data = _support.jpeg(_support.scene(1000 + i))
        (folder / f"{i:04d}.jpg").write_bytes(data)
        frames.append(data)
    return frames


def main(argv: list[str] | None = None) -> int:
    """Run every case and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="frames per case (default 40)")
    parser.add_argument("--cameras", default="1,4", help="camera counts, e.g. 1,4")
    parser.add_argument("--quick", action="store_true", help="fewer frames, small-model parity")
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "int8", "mixed", "fp16", "openvino"),
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--size", default="base", choices=_support.SIZES)
    parser.add_argument(
        "--device", default="cpu", help="cpu or cuda[:N], for the seed's way and the bridge alike"
    )
    parser.add_argument("--no-seed", action="store_true", help="skip the seed's way")
    parser.add_argument("--no-parity", action="store_true", help="skip the precision check")
    parser.add_argument("--no-ocr", action="store_true", help="do not load RapidOCR beside")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--gather-ms",
        type=float,
        default=0.0,
        help="experiment: the model waits this long for more frames before a partial batch",
    )
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE for the seed and the bridge alike: fair on a "
        "busy CPU, see RESULTS.md",
    )
    parser.add_argument(
        "--no-side", action="store_true", help="skip the meter and faces engines' timings"
    )
    parser.add_argument(
        "--matrix",
        action="store_true",
        help="also time the engine alone at fp32/bf16/int8/mixed and batch 1/4",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.frames = min(args.frames, 8)
    cameras = [int(c) for c in args.cameras.split(",")]

    if args.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # before anything here loads torch's OpenMP
    if args.gather_ms:
        os.environ["BENCH_GATHER_MS"] = str(args.gather_ms)
    model = _support.blip_model(args.size)
    print(f"# caption speed: {_support.cpu_name()} ({platform.machine()})")
    if args.device != "cpu":
        print(f"# device: {args.device}, {_support.gpu_name(args.device)}")
    print(f"# model: BlipConfig() random weights ({args.size}), {NEW_TOKENS} new tokens")
    policy = os.environ.get("OMP_WAIT_POLICY")
    print(
        f"# OMP_WAIT_POLICY: seed's way {policy or '(default: active)'}, "
        f"bridge {policy or 'GOMP_SPINCOUNT=10000 (its default)'}"
    )
    print(f"# load average before: {_support.load_average()}")
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        print(
            "# WARNING: the CPU is busy with other work; figures will not be representative"
            + ("" if args.omp_passive else " (--omp-passive limits the damage, see RESULTS.md)")
        )
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="caption-bench-") as tmp:
        work = Path(tmp)
        frames = make_frames(max(args.frames, 8), work / "frames")
        seed: dict[str, Any] | None = None
        if not args.no_seed:
            seed_count = max(4, args.frames // 2)
            seed = run_seed(model, work / "frames", seed_count, args.device)
            lat = seed["latencies"]
            print(
                f"seed's way (fp32, 1 frame/call, {seed['threads']} threads): "
                f"{seed['fps']:.2f} frames/s, p50 {_support.percentile(lat, 50):.3f} s, "
                f"p95 {_support.percentile(lat, 95):.3f} s, peak RSS {seed['rss_mb']:.0f} MB "
                f"[load {_support.load_average()}]",
                flush=True,
            )
            results["seed"] = seed
        cases = []
        for count in cameras:
            per_camera = max(2, args.frames // count)
            case_dir = work / f"bridge-{count}"
            case_dir.mkdir()
            case = bridge_case(case_dir, model, frames, count, per_camera, args)
            case["load_average"] = _support.load_average()
            cases.append(case)
            ratio = f", {case['fps'] / seed['fps']:.2f}x the seed's" if seed else ""
            print(
                f"bridge, {count} camera(s), {case['precision']}, batch<={args.batch_size}: "
                f"{case['fps']:.2f} frames/s{ratio}; latency p50 {case['p50_s']:.3f} s "
                f"p95 {case['p95_s']:.3f} s; overhead p50 {case['overhead_p50_ms']:.2f} ms "
                f"p95 {case['overhead_p95_ms']:.2f} ms (before model {case['pre_model_p50_ms']:.1f}"
                f", after {case['post_model_p50_ms']:.1f}; stages {case['stages_p50_ms']}); "
                f"model {case['model_p50_ms']:.0f} ms "
                f"(broker legs p50: in {case['inbound_p50_ms']:.1f} ms, "
                f"out {case['outbound_p50_ms']:.1f} ms) "
                f"per batch of {case['mean_batch']:.1f}; RSS {case['rss_busy_mb']:.0f} MB busy, "
                f"{case['rss_mb']:.0f} MB idle, {case['peak_rss_mb']:.0f} MB peak (load time); "
                f"ready {case['load_s']:.1f} s after start; probe {case['probe']}; "
                f"[load {case['load_average']}]",
                flush=True,
            )
        results["bridge"] = cases
        if args.matrix:
            forms = ["fp32", "bf16", "int8", "mixed", "openvino"]
            if args.device != "cpu":
                forms = ["fp32", "bf16", "fp16"]
            results["matrix"] = engine_matrix(
                model, frames, forms, [1, args.batch_size], 2 if args.quick else 3, args.device
            )
    if not args.no_side:
        results["side"] = _side_engines(model, args.precision, args.device)
    parity_rows = []
    if not args.no_parity:
        import precision_check

        sizes = ("small",) if args.quick else ("small", "base")
        forms = ("int8", "mixed", "bf16", "openvino") if args.device == "cpu" else ("fp16", "bf16")
        parity_rows = precision_check.check(sizes, forms, device=args.device)
        print(precision_check.format_rows(parity_rows))
        results["parity"] = [vars(r) for r in parity_rows]
    _summary(seed, cases)
    _targets(seed, cases)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


def _side_engines(model: Path, precision: str, device: str) -> list[dict[str, Any]]:
    """The meter and faces engines' time a frame, alone and beside caption batches."""
    import gc

    import side_engines

    from bridge.config import ModelConfig
    from bridge.engines.transformers_engine import TransformersEngine

    caption = TransformersEngine(
        ModelConfig(
            engine="transformers",
            model=str(model),
            precision=precision,  # type: ignore[arg-type]
            device=device,
            max_new_tokens=NEW_TOKENS,
        )
    )
    caption.load()
    rows = side_engines.measure(caption)
    print(f"\nmeter and faces engines, beside the caption model ({caption.precision}):")
    print(side_engines.format_rows(rows), flush=True)
    del caption
    gc.collect()
    return rows


#: Issue 14's targets on a 2-core CPU: x seed (4 cameras), p50 s (1 camera), overhead ms, RSS MB.
TARGETS = {"ratio": 5.0, "p50_s": 0.35, "overhead_ms": 2.0, "rss_mb": 1200.0}


def _targets(seed: dict[str, Any] | None, cases: list[dict[str, Any]]) -> None:
    """Each target against what this run measured."""
    one = next((c for c in cases if c["cameras"] == 1), None)
    four = next((c for c in cases if c["cameras"] == 4), None)
    rows = []
    if seed is not None and four is not None:
        ratio = four["fps"] / seed["fps"]
        rows.append(("≥ 5x the seed, 4 cameras", f"{ratio:.2f}x", ratio >= TARGETS["ratio"]))
    if one is not None:
        rows.append(
            ("one frame ≤ 0.35 s p50", f"{one['p50_s']:.3f} s", one["p50_s"] <= TARGETS["p50_s"])
        )
    for case in cases:
        overhead = case["overhead_p50_ms"]
        rows.append(
            (
                f"overhead ≤ 2 ms p50, {case['cameras']} camera(s)",
                f"{overhead:.2f} ms",
                overhead <= TARGETS["overhead_ms"],
            )
        )
        busy = case["rss_busy_mb"]
        rows.append(
            (
                f"RSS busy ≤ 1.2 GB, {case['cameras']} camera(s)",
                f"{busy:.0f} MB",
                busy <= TARGETS["rss_mb"],
            )
        )
    print("\n| target | measured | met |\n|---|---|---|")
    for name, value, met in rows:
        print(f"| {name} | {value} | {'yes' if met else '**no**'} |")


def _summary(seed: dict[str, Any] | None, cases: list[dict[str, Any]]) -> None:
    print()
    print(
        "| case | frames/s | x seed | p50 s | p95 s | overhead p50 ms | RSS MB busy / idle / peak |"
    )
    print("|---|---|---|---|---|---|---|")
    if seed is not None:
        lat = seed["latencies"]
        print(
            f"| seed's way, fp32, 1 frame/call | {seed['fps']:.2f} | 1.00 | "
            f"{_support.percentile(lat, 50):.3f} | {_support.percentile(lat, 95):.3f} | - | "
            f"- / - / {seed['rss_mb']:.0f} |"
        )
    for case in cases:
        ratio = f"{case['fps'] / seed['fps']:.2f}" if seed else "-"
        print(
            f"| bridge, {case['cameras']} camera(s), {case['precision']} | {case['fps']:.2f} | "
            f"{ratio} | {case['p50_s']:.3f} | {case['p95_s']:.3f} | "
            f"{case['overhead_p50_ms']:.2f} | {case['rss_busy_mb']:.0f} / {case['rss_mb']:.0f} / "
            f"{case['peak_rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--seed-worker":
        with contextlib.redirect_stdout(sys.stderr):
            figures = seed_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
        print(json.dumps(figures))
        sys.exit(0)
    sys.exit(main())

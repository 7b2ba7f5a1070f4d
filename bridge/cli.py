"""The ``image-to-text`` command: ``run``, ``demo``, ``analyze``, ``check-config``, ``meter-setup``.

Exit codes: 0 done, 1 a runtime failure (broker refused us, an image could not be analysed),
2 a configuration or usage error (the message names the file and the key).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bridge import __version__
from bridge.config import (
    DEFAULT_CAPTION_MODEL,
    DEFAULT_MODELS,
    TASKS,
    BridgeConfig,
    DialConfig,
    FacesConfig,
    MeterConfig,
    ModelConfig,
    explain,
    json_schema,
    load_config,
)
from bridge.engines.base import Engine, EngineOutput, JobOptions, create_engine, known_engines
from bridge.errors import BridgeError, ConfigError, FrameError, ModelError
from bridge.faces import cli as faces_cli
from bridge.frames import decode_image, frame_id_of
from bridge.logs import FORMATS, setup_logging
from bridge.memory import limit_malloc_arenas
from bridge.meter import setup_cli as meter_setup_cli
from bridge.protocol import Topics
from bridge.scheduler import MODEL_THREAD_PREFIX

if TYPE_CHECKING:
    from bridge.service import BridgeService

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
DEFAULT_ENGINES = {task: model["engine"] for task, model in DEFAULT_MODELS.items()}


#: How long torch's OpenMP threads spin at a barrier before they sleep (see ``set_thread_policy``).
SPIN_COUNT = "10000"


def set_thread_policy(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Let OpenMP threads spin briefly, not 300,000 turns, unless the user chose otherwise.

    torch's OpenMP threads spin at every barrier before they sleep (libgomp's default is long).
    On a CPU shared with other busy processes (a home server running Frigate) a spinning thread
    waits for a sibling the kernel has parked, and a model of many small operations ran 100x
    slower in bench/RESULTS.md; never spinning (``OMP_WAIT_POLICY=PASSIVE``) cures that but
    costs an idle machine 40-60% on BLIP's token-by-token decoding.  A short spin keeps most of
    the idle speed.  OpenMP reads this once, when torch is first imported, so the command sets
    it at start-up, before any engine loads; importing the bridge's modules changes nothing.
    """
    if "OMP_WAIT_POLICY" not in environ and "GOMP_SPINCOUNT" not in environ:
        environ["GOMP_SPINCOUNT"] = SPIN_COUNT


# run


async def serve(config: BridgeConfig, path: str | None = None) -> int:
    """Run the bridge until SIGTERM or SIGINT (exit code as for the command).

    SIGHUP reloads ``path``.  systemd (``Type=notify``) hears READY once connected,
    RELOADING/READY around a reload, STOPPING on the way out.
    """
    from bridge import systemd
    from bridge.broker import EmbeddedBroker
    from bridge.service import BridgeService

    broker = None
    protocol = 5
    if config.mqtt.embedded:
        broker = EmbeddedBroker(config.mqtt.port)
        await broker.start()
        protocol = 4
        config = _with_host(config, "127.0.0.1")
    service = BridgeService(config, protocol=protocol)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if path is not None:
        loop.add_signal_handler(signal.SIGHUP, _reload, service, path)
    try:
        await service.start(connect_wait=None)
        assert service.transport is not None
        first = asyncio.ensure_future(service.transport.wait_first_connect())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({first, stopped}, return_when=asyncio.FIRST_COMPLETED)
        refused = first.exception() if first.done() else None
        if refused is not None:
            logging.getLogger(__name__).error("%s", refused)
            return EXIT_FAILED
        if first.done():
            systemd.notify("READY=1")
        await stopped
        logging.getLogger(__name__).info("stopping")
        return EXIT_OK
    finally:
        systemd.notify("STOPPING=1")
        await service.stop()
        if broker is not None:
            await broker.stop()


def _reload(service: BridgeService, path: str) -> None:
    """SIGHUP: read ``path`` again and run its cameras; a bad file changes nothing."""
    from bridge import systemd

    log = logging.getLogger(__name__)
    systemd.reloading()
    try:
        new = load_config(path)
        if new.mqtt.embedded:  # running as 127.0.0.1 (``serve``): the same broker, no change
            new = _with_host(new, "127.0.0.1")
        plan = service.reload(new)
    except ConfigError as err:
        log.error(  # noqa: TRY400 - the message is the whole story; no traceback wanted
            "reload refused, still running the previous configuration: %s",
            err,
            extra={"file": err.source, "key": err.path},
        )
    else:
        log.info("reloaded %s: %s", path, plan.summary(), extra={"file": path})
        for section in plan.restart:
            log.warning(
                "%s: %s changed: takes effect at the next restart (still running the old one)",
                path,
                section,
                extra={"file": path, "key": section},
            )
    finally:
        systemd.notify("READY=1")


def _with_host(config: BridgeConfig, host: str) -> BridgeConfig:
    return config.model_copy(update={"mqtt": config.mqtt.model_copy(update={"host": host})})


def cmd_run(args: argparse.Namespace) -> int:
    """``run -c FILE``: the service."""
    config = load_config(args.config)
    limit_malloc_arenas()  # before any worker thread allocates: see bridge/memory.py
    code = asyncio.run(serve(config, args.config))
    if any(thread.name.startswith(MODEL_THREAD_PREFIX) for thread in threading.enumerate()):
        # A model call outlasted the stop's grace period.  Its frames were never acknowledged
        # (the broker hands them over again); finalising the interpreter under a running native
        # model call can abort the process, so leave at once with the right exit code.
        logging.getLogger(__name__).warning("a model call was still running; not waiting for it")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


# check-config


def cmd_check_config(args: argparse.Namespace) -> int:
    """``check-config FILE``: validate, then print the effective configuration.

    ``check-config --schema``: print the configuration file's JSON Schema instead.
    """
    if args.schema:
        print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
        return EXIT_OK
    if args.file is None:
        print("error: check-config needs FILE (or --schema)", file=sys.stderr)
        return EXIT_CONFIG
    config = load_config(args.file)
    unknown = [
        f"models.{task}.engine: unknown engine {m.engine!r} (known: {', '.join(known_engines())})"
        for task, m in config.models.items()
        if m.engine not in known_engines()
    ]
    if unknown:
        for line in unknown:
            print(f"{args.file}: {line}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"# {args.file} is valid. Effective configuration (secrets masked):")
    print(yaml.safe_dump(explain(config), sort_keys=False, allow_unicode=True), end="")
    cams = ", ".join(
        f"{c.name} ({'+'.join(c.tasks)} on {c.topic})" for c in config.cameras.values()
    )
    print(f"# cameras: {cams}")
    topics = Topics(config.mqtt.base_topic, config.mqtt.discovery_prefix)
    print(f"# results on {topics.result('<camera>', '<task>')}; state on {topics.state}")
    return EXIT_OK


# analyze


def _parse_roi(text: str) -> tuple[int, int, int, int]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    if len(parts) != 4 or not all(p.lstrip("-").isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"--roi expects x,y,w,h (4 integers), got {text!r}")
    x, y, w, h = (int(p) for p in parts)
    return (x, y, w, h)


def _analyze_items(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.manifest:
        manifest = Path(args.manifest)
        try:
            entries = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(str(manifest), "", f"cannot read the manifest ({err})") from err
        if not isinstance(entries, list):
            raise ConfigError(str(manifest), "", "expected a JSON list of {file, roi, ...}")
        items = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
                raise ConfigError(str(manifest), f"[{index}].file", "expected a file name")
            item = dict(entry)
            item["path"] = str(manifest.parent / entry["file"])
            items.append(item)
        return items
    return [{"file": f, "path": f} for f in args.images]


def _meter_settings(args: argparse.Namespace, item: dict[str, Any]) -> MeterConfig | None:
    """The meter settings for one image: its manifest entry first, the command line second."""
    if args.task != "meter":
        return None
    where = args.manifest or "command line"
    roi = item.get("roi", args.roi)
    digits = item.get("digits", args.digits)
    corners = item.get("corners")
    if digits is None or (roi is None and corners is None):
        raise ConfigError(where, "roi/digits", "the meter task needs --roi and --digits")
    try:
        return MeterConfig(
            digits=int(digits),
            decimals=int(item.get("decimals", args.decimals or 0)),
            roi=_region(roi) if roi is not None else None,
            corners=tuple(_point(p) for p in corners) if corners else None,
            rotation=float(item.get("rotation", args.rotation or 0.0)),
            dials=tuple(DialConfig.model_validate(d) for d in item.get("dials") or ()),
        )
    except (TypeError, ValueError, argparse.ArgumentTypeError) as err:
        raise ConfigError(where, str(item.get("file", "")), f"bad meter settings: {err}") from err


def _region(roi: Any) -> tuple[int, int, int, int]:
    """A manifest's ``roi``: ``[x, y, w, h]`` (numbers) or ``"x,y,w,h"``."""
    if isinstance(roi, str):
        return _parse_roi(roi)
    values = [round(float(v)) for v in roi]
    if len(values) != 4:
        raise ValueError(f"roi: expected 4 numbers (x, y, w, h), got {len(values)}")
    x, y, w, h = values
    return (x, y, w, h)


def _point(point: Any) -> tuple[int, int]:
    x, y = (round(float(v)) for v in point)
    return (x, y)


def _load_engine(args: argparse.Namespace) -> Engine:
    engine_name = args.engine or DEFAULT_ENGINES[args.task]
    model = args.model
    if args.task == "caption" and model is None and engine_name == "transformers":
        model = DEFAULT_CAPTION_MODEL
    config = ModelConfig(
        engine=engine_name,
        model=model,
        max_new_tokens=args.max_new_tokens,
        prompt=args.prompt,
        precision=args.precision,
        batch_size=1,
        faces=_faces_settings(args) if args.task == "faces" else None,
    )
    engine = create_engine(config)
    engine.load()
    return engine


def _faces_settings(args: argparse.Namespace) -> FacesConfig:
    """``analyze --task faces``: the database to name from, and optionally another threshold."""
    db = args.faces_db or faces_cli.DEFAULT_DB
    if not Path(db).is_file():
        raise ConfigError(db, "", "no face database here; enrol people with `faces add` first")
    if args.threshold is None:
        return FacesConfig(db=db)
    if not 0 < args.threshold < 1:
        raise ConfigError("command line", "--threshold", "expected a number between 0 and 1")
    return FacesConfig(db=db, threshold=args.threshold)


def cmd_analyze(args: argparse.Namespace) -> int:
    """``analyze``: one JSON line per image on stdout, no broker involved."""
    items = _analyze_items(args)
    try:
        engine = _load_engine(args)
    except ModelError as err:
        print(f"error: {err.detail}", file=sys.stderr)
        return EXIT_FAILED
    failed = 0
    for item in items:
        line: dict[str, Any] = {"file": item["file"], "task": args.task}
        try:
            data = Path(item["path"]).read_bytes()
            line["frame_id"] = frame_id_of(data)
            size = None if args.task == "meter" else engine.input_size
            image = decode_image(data, 100_000_000, size)
            options = JobOptions(prompt=args.prompt, meter=_meter_settings(args, item))
            output = engine.run_batch([image], [options])[0]
        except OSError as err:
            output = ModelError("unreadable_file", f"cannot read {item['path']}: {err.strerror}")
        except FrameError as err:
            output = ModelError(err.code, err.detail)
        except ConfigError as err:  # one entry's bad settings: report it, read the others
            output = ModelError("bad_settings", str(err))
        if isinstance(output, EngineOutput):
            line.update(text=output.text, model=engine.label, **output.extra)
            line.setdefault("value", None)
        else:
            failed += 1
            line.update(value=None, error=output.code, detail=output.detail)
            line.update(output.extra)
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return EXIT_FAILED if failed and failed == len(items) else EXIT_OK


# demo


def cmd_demo(args: argparse.Namespace) -> int:
    """``demo``: embedded broker, bridge and sample frames in one process."""
    from bridge.demo import run_demo

    if args.log_level == "info":
        # The demo prints what a user wants to see; the bridge's own log stays for problems.
        logging.getLogger().setLevel(logging.CRITICAL)

    return asyncio.run(run_demo(Path(args.config), Path(args.samples), args.caption_model))


def build_parser() -> argparse.ArgumentParser:
    """The command line, one sub-command per job."""
    parser = argparse.ArgumentParser(prog="image-to-text", description=__doc__)
    parser.add_argument("--version", action="version", version=f"image-to-text {__version__}")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the bridge service")
    run.add_argument("-c", "--config", required=True, help="configuration YAML file")
    run.add_argument(
        "--log-format", choices=FORMATS, default="plain", help="plain lines, or one JSON per line"
    )
    run.set_defaults(func=cmd_run)

    root = Path(__file__).resolve().parent.parent
    demo = sub.add_parser("demo", help="embedded broker + bridge + sample frames, results printed")
    demo.add_argument("-c", "--config", default=str(root / "config" / "demo.yaml"))
    demo.add_argument("--samples", default=str(root / "config" / "samples"))
    demo.add_argument("--caption-model", help="caption model id or local folder to use instead")
    demo.set_defaults(func=cmd_demo)

    check = sub.add_parser("check-config", help="validate a configuration file and explain it")
    check.add_argument("file", nargs="?")
    check.add_argument(
        "--schema", action="store_true", help="print the configuration's JSON Schema and exit"
    )
    check.set_defaults(func=cmd_check_config)

    faces_cli.add_parser(sub)
    meter_setup_cli.add_parser(sub)

    analyze = sub.add_parser("analyze", help="analyse image files; one JSON line per image")
    analyze.add_argument("--task", choices=TASKS, required=True)
    analyze.add_argument("--engine", help="engine name (default: per task)")
    analyze.add_argument("--model", help="model id or local folder")
    analyze.add_argument("--prompt", help="caption prompt (BLIP conditional captioning)")
    analyze.add_argument("--max-new-tokens", type=int, default=30)
    analyze.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "int8", "fp16"))
    analyze.add_argument("--roi", type=_parse_roi, help="meter region x,y,w,h")
    analyze.add_argument("--digits", type=int, help="meter: number of digits")
    analyze.add_argument("--decimals", type=int, default=0, help="meter: digits after the point")
    analyze.add_argument("--rotation", type=float, default=0.0, help="meter: degrees")
    analyze.add_argument("--faces-db", help="faces: the enrolled people (default: faces.json)")
    analyze.add_argument("--threshold", type=float, help="faces: distance threshold")
    analyze.add_argument("--manifest", help="JSON list of {file, roi, digits, decimals, dials?}")
    analyze.add_argument("images", nargs="*")
    analyze.set_defaults(func=cmd_analyze)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``image-to-text`` console script."""
    set_thread_policy()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "analyze" and not args.images and not args.manifest:
        parser.error("analyze needs IMAGE files or --manifest")
    setup_logging(args.log_level, getattr(args, "log_format", "plain"))
    try:
        code: int = args.func(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except BridgeError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
    return code


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())

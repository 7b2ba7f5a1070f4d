"""``image-to-text faces add|list|remove|rename``: manage the enrolled people from a shell.

The database is ``--db FILE``, else the one the configuration (``-c FILE``) uses, else
``faces.json`` in the current folder.  Every command says which file it used, on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bridge.config import load_config
from bridge.errors import ModelError
from bridge.faces.db import FaceDb, FaceDbError
from bridge.faces.describer import FaceDescriber
from bridge.faces.enrol import enrol_photos
from bridge.faces.recognizer import Recognizer

EXIT_OK, EXIT_FAILED = 0, 1
DEFAULT_DB = "faces.json"


def db_path(args: argparse.Namespace) -> Path:
    """The database file a command works on (``--db``, the configuration's, or the default)."""
    if args.db:
        return Path(args.db)
    if args.config:
        faces = load_config(args.config).models.get("faces")
        if faces is not None and faces.faces is not None and faces.faces.db:
            return Path(faces.faces.db)
        return Path(args.config).parent / DEFAULT_DB
    return Path(DEFAULT_DB)


def cmd_faces(args: argparse.Namespace) -> int:
    """Run one ``faces`` sub-command; refusals are printed with their reason."""
    path = db_path(args)
    print(f"face database: {path}", file=sys.stderr)
    try:
        db = FaceDb(path)
        if args.faces_command == "add":
            return _add(db, args)
        if args.faces_command == "list":
            for person in sorted(db.people.values(), key=lambda p: p.name.casefold()):
                own = f", threshold {person.threshold}" if person.threshold is not None else ""
                print(f"{person.name}: {len(person.descriptors)} photo(s){own}")
            if not db.people:
                print("nobody is enrolled")
        elif args.faces_command == "remove":
            db.remove(args.name)
            print(f"removed {args.name} and every descriptor of theirs")
        elif args.faces_command == "rename":
            db.rename(args.old, args.new)
            print(f"renamed {args.old} to {args.new}")
        elif args.faces_command == "threshold":
            value = None if args.value == "default" else _number(args.value)
            person = db.set_threshold(args.name, value)
            shown = "the default" if value is None else str(value)
            print(f"{person.name} is now named at a distance up to {shown}")
    except FaceDbError as err:
        print(f"error: {err.detail}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        detail = f"expected a number or 'default', got {text!r}"
        raise FaceDbError("bad_threshold", detail) from None


def _add(db: FaceDb, args: argparse.Namespace) -> int:
    try:
        recognizer = Recognizer(FaceDescriber(), db)
    except ModelError as err:
        print(f"error: {err.detail}", file=sys.stderr)
        return EXIT_FAILED
    photos: list[tuple[str, bytes]] = []
    unreadable = []
    for name in args.photos:
        try:
            photos.append((name, Path(name).read_bytes()))
        except OSError as err:
            unreadable.append(f"refused {name}: cannot read it ({err.strerror})")
    report = enrol_photos(recognizer, args.name, photos, args.threshold)
    for line in unreadable:
        print(line, file=sys.stderr)
    for refusal in report.refused:
        print(f"refused {refusal['photo']}: {refusal['reason']}", file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if not report.ok:
        print(f"error: no photo of {report.name} was added", file=sys.stderr)
        return EXIT_FAILED
    print(f"added {report.added} photo(s) of {report.name} ({report.photos_total} in all)")
    if report.photos_total < 2:
        print("tip: 2-5 varied photos a person (light, angle, glasses) name them more reliably")
    return EXIT_OK


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``faces`` and its sub-commands on the main command line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help=f"face database file (default: the config's, or {DEFAULT_DB})")
    common.add_argument("-c", "--config", help="bridge configuration whose database to use")
    faces = sub.add_parser("faces", help="enrol, list, remove or rename known people")
    actions = faces.add_subparsers(dest="faces_command", required=True)
    add = actions.add_parser("add", parents=[common], help="enrol a person from photos")
    add.add_argument("name")
    add.add_argument("photos", nargs="+", metavar="PHOTO")
    add.add_argument("--threshold", type=float, help="this person's own distance threshold")
    actions.add_parser("list", parents=[common], help="who is enrolled, with how many photos")
    remove = actions.add_parser("remove", parents=[common], help="forget a person")
    remove.add_argument("name")
    rename = actions.add_parser("rename", parents=[common], help="rename an enrolled person")
    rename.add_argument("old")
    rename.add_argument("new")
    threshold = actions.add_parser(
        "threshold", parents=[common], help="set a person's own threshold (or 'default')"
    )
    threshold.add_argument("name")
    threshold.add_argument("value", help="a distance between 0 and 1, or 'default'")
    faces.set_defaults(func=cmd_faces)

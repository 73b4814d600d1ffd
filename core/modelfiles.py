"""Shipped model files: locate them and verify their sha256 against MANIFEST.json."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from core import MODELS_DIR
from core.errors import ModelFileError

BUILTIN_DIR = MODELS_DIR / "builtin"
MODEL_SUFFIXES = (".dfm", ".onnx")  # what a user's model file is named (registry, presets)
DETECTOR_SHORT = "face_detection_short_range.onnx"
DETECTOR_FULL = "face_detection_full_range.onnx"
FACE_MESH = "face_landmark.onnx"
PALM_DETECTOR = "palm_detection_lite.onnx"
HAND_LANDMARKS = "hand_landmark_lite.onnx"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_version(path: Path) -> tuple[str, int, int]:
    """(resolved path, mtime ns, size): a cache key that changes when a file is replaced.
    Raises OSError when the file cannot be stat'ed."""
    stat = path.stat()
    return str(path.resolve()), stat.st_mtime_ns, stat.st_size


@functools.cache
def _manifest(folder: Path) -> dict[str, str]:
    path = folder / "MANIFEST.json"
    try:
        return {e["file"]: e["sha256"] for e in json.loads(path.read_text())}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFileError(f"cannot read model manifest {path}: {exc}") from None


@functools.cache
def builtin_model(name: str, folder: Path = BUILTIN_DIR) -> Path:
    """Path of a shipped model after checking it against the manifest (once per process)."""
    expected = _manifest(folder).get(name)
    path = folder / name
    if expected is None:
        raise ModelFileError(f"{name} is not listed in {folder / 'MANIFEST.json'}")
    if not path.is_file():
        raise ModelFileError(f"shipped model missing: {path} (reinstall or run git checkout)")
    actual = file_sha256(path)
    if actual != expected:
        raise ModelFileError(
            f"shipped model corrupt: {path} has sha256 {actual[:12]}..., "
            f"MANIFEST.json expects {expected[:12]}..."
        )
    return path


MEAN_FACE_FILE = "face_mesh_uv.json"


@functools.cache
def face_mesh_uv() -> np.ndarray:
    """(468, 2) MediaPipe's canonical face mesh in its texture layout (u, v), a shipped file
    (install/build_mean_face.py): the .dfm framing's mean face, and exactly symmetric."""
    data = json.loads(builtin_model(MEAN_FACE_FILE).read_text(encoding="utf-8"))
    return np.asarray(data["uv"], np.float64)

"""Extract MediaPipe's canonical face-mesh texture coordinates: the mean face .dfm framing fits.

DeepFaceLive frames a .dfm's crop by fitting the live FaceMesh points to a mean face; that mean
face is MediaPipe's canonical mesh in its texture (UV) layout, one (u, v) per FaceMesh point
(core/swap/framing.py). MediaPipe publishes those coordinates (Apache-2.0) in
geometry_pipeline_metadata_landmarks.binarypb, which the npm package @mediapipe/face_mesh
carries inside its packed assets. This script downloads that package from the npm registry,
reads the file's vertex buffer (x, y, z, u, v per vertex, in landmark order) and writes
models/builtin/face_mesh_uv.json; `--check` rebuilds it and compares with MANIFEST.json.

    .venv/bin/python install/build_mean_face.py [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "models" / "builtin" / "face_mesh_uv.json"
PACKAGE, VERSION = "@mediapipe/face_mesh", "0.4.1657299874"
TARBALL = f"https://registry.npmjs.org/{PACKAGE}/-/face_mesh-{VERSION}.tgz"
ASSETS = "package/face_mesh_solution_packed_assets.data"
LOADER = "package/face_mesh_solution_packed_assets_loader.js"
METADATA = "geometry_pipeline_metadata_landmarks.binarypb"
LICENCE = "Apache-2.0 (Google MediaPipe; see models/builtin/LICENSE-MediaPipe.txt)"
POINTS = 468


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """(field number, value) of one protobuf message, wire format only (no schema needed)."""
    out, i = [], 0
    while i < len(data):
        key, i = _varint(data, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            value, i = data[i:i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = data[i:i + size], i + size
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
        out.append((key >> 3, value))
    return out


def uv_from_metadata(blob: bytes) -> np.ndarray:
    """(468, 2) u, v of the canonical mesh: FaceGeometry metadata field 1 (the mesh), its
    field 3 (the vertex buffer: x, y, z, u, v per vertex)."""
    meshes = [v for f, v in _fields(blob) if f == 1 and isinstance(v, bytes)]
    if len(meshes) != 1:
        raise ValueError(f"{METADATA}: expected one mesh, found {len(meshes)}")
    buffers = [v for f, v in _fields(meshes[0]) if f == 3]
    if len(buffers) == 1 and isinstance(buffers[0], bytes):  # packed floats
        floats = np.frombuffer(buffers[0], "<f4")
    else:
        floats = np.array([np.frombuffer(v, "<f4")[0] for v in buffers], np.float32)
    vertices = floats.reshape(-1, 5)
    if len(vertices) != POINTS:
        raise ValueError(f"{METADATA}: {len(vertices)} vertices, expected {POINTS}")
    return vertices[:, 3:5].astype(np.float64)


def build() -> tuple[bytes, str]:
    """The JSON file's bytes and the tarball's sha256."""
    with urllib.request.urlopen(TARBALL, timeout=120) as response:
        tarball = response.read()
    with tarfile.open(fileobj=io.BytesIO(tarball)) as tar:
        loader = tar.extractfile(LOADER).read().decode()
        assets = tar.extractfile(ASSETS).read()
    found = re.search(re.escape(METADATA) + r'",\s*"start":\s*(\d+),\s*"end":\s*(\d+)', loader)
    if found is None:
        raise ValueError(f"{LOADER} does not list {METADATA}")
    start, end = int(found.group(1)), int(found.group(2))
    uv = uv_from_metadata(assets[start:end])
    digest = hashlib.sha256(tarball).hexdigest()
    data = {"source": {"npm": f"{PACKAGE}@{VERSION}", "tarball_sha256": digest,
                       "file": METADATA, "licence": LICENCE},
            "uv": [[round(float(u), 6), round(float(v), 6)] for u, v in uv]}
    return (json.dumps(data, indent=0) + "\n").encode(), digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="rebuild and compare with MANIFEST.json instead of writing")
    args = parser.parse_args(argv)
    data, digest = build()
    sha = hashlib.sha256(data).hexdigest()
    manifest_path = OUT.parent / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text())
    listed = next((e for e in manifest if e["file"] == OUT.name), None)
    if args.check:
        ok = listed is not None and listed["sha256"] == sha
        print(f"{OUT.name}: {'ok' if ok else 'differs from MANIFEST.json'} ({sha[:12]})")
        return 0 if ok else 1
    OUT.write_bytes(data)
    entry = {"file": OUT.name, "sha256": sha,
             "origin": {"package": f"npm {PACKAGE}", "version": VERSION,
                        "path": f"{ASSETS} ({METADATA}: vertex u, v)",
                        "sha256": digest},
             "converter": "install/build_mean_face.py (protobuf wire format, 6 decimals)",
             "licence": LICENCE}
    manifest = [e for e in manifest if e["file"] != OUT.name] + [entry]
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {OUT} ({sha[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One models/builtin/MANIFEST.json entry: the shipped file, where it came from and under
which licence, so every builder writes the same fields (install/build_models.py,
install/build_recogniser.py; tests/test_modelfiles.py reads them)."""

from __future__ import annotations

import hashlib


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(file: str, data: bytes, package: str, version: str, path: str, source: bytes,
          converter: str, licence: str) -> dict:
    """The entry of `file` (its bytes `data`), converted from `path` (bytes `source`) of
    the PyPI or npm package `package`==`version`."""
    return {"file": file, "sha256": sha256(data),
            "origin": {"package": package, "version": version, "path": path,
                       "sha256": sha256(source)},
            "converter": converter, "licence": licence}

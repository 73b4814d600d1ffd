"""onnxruntime sessions: one cache per process, keyed by (model file, device, threads)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import onnxruntime as ort

from core.errors import ModelFileError

_cache: dict[tuple[str, str, int], ort.InferenceSession] = {}
_lock = threading.Lock()


def default_threads() -> int:
    """Half the cores (at least 1): the rest stay free for OBS's encoder and render."""
    return max(1, (os.cpu_count() or 2) // 2)


def get_session(path: str | Path, device: str = "cpu", threads: int = 0) -> ort.InferenceSession:
    """A shared InferenceSession for `path` on `device`; raises ModelFileError if unloadable."""
    path = str(Path(path).resolve())
    threads = threads or default_threads()
    key = (path, device, threads)
    with _lock:
        session = _cache.get(key)
        if session is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            try:
                session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises several unrelated types
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ModelFileError(f"cannot load model {path}: {first}") from None
            _cache[key] = session
        return session

"""A filter's engine health, read by the status thread from the engine's status (never per
frame): why it cannot swap now (`problem`, shown in the panel while the source passes
through or is covered), when a failed frame is retried, and the model file watched for a
replacement."""

from __future__ import annotations

import os
import time
from pathlib import Path

from core.modelfiles import file_version
from core.service import SwapService
from core.worker import Result

# After a frame failed (a server gone, a model error) one frame a second still goes to the
# engine, so a failure that ends (the server back) clears by itself
RETRY_S = 1.0
# A frame running STALL_FACTOR times the engine's usual (p95) ones, and at least
# STALL_MIN_MS, means a stalled engine; FACE_SWAP_STALL_MS in OBS's environment sets a fixed
# limit instead (troubleshooting, tests).
STALL_FACTOR = 4.0
STALL_MIN_MS = 3000.0
STALL_ENV = "FACE_SWAP_STALL_MS"


def stall_limit_ms(process_p95_ms: float) -> float:
    """How long one frame may run before the engine counts as stalled."""
    fixed = os.environ.get(STALL_ENV)
    return float(fixed) if fixed else max(STALL_MIN_MS, STALL_FACTOR * process_p95_ms)


def problem_of(status: dict, latest: Result | None, settings_error: str) -> tuple[str, bool]:
    """Why the engine cannot swap now ("" when it can), from its status and newest result,
    and whether that is a failed frame (the newest result)."""
    path = status["model_file"]  # what the engine loaded: no registry lookup here
    if settings_error:
        return settings_error, False
    if status["state"] == "error":
        return status["last_error"] or "engine error", False
    if path and not os.path.exists(path):
        return f"model file removed while running: {path}", False
    if latest is not None and not latest.ok:
        return status["last_error"] or "engine error", True  # e.g. a model giving NaN
    if status["busy_ms"] > stall_limit_ms(status["process_ms"]["p95"]):
        return f"engine stalled: one frame has run for {status['busy_ms'] / 1000:.1f} s", False
    return "", False


class EngineHealth:
    """What the last poll found (written by the status thread, read by the graphics one)."""

    def __init__(self) -> None:
        self.problem = ""  # pass through and show this instead of swapping
        self.frame_failed = False  # the problem is a failed frame (retried, see RETRY_S)
        self.has_pipeline = False  # a model is loaded (results are swaps)
        self.status: dict | None = None  # the last poll's status, for the panel
        self._retried_at = {"render": 0.0, "async": 0.0}  # time.monotonic() per frame path

    def update(self, status: dict, latest: Result | None, settings_error: str) -> bool:
        """Take a new status; True when a problem has just cleared."""
        problem, self.frame_failed = problem_of(status, latest, settings_error)
        cleared = bool(self.problem) and not problem
        self.problem = problem
        self.has_pipeline = bool(status["model"])
        return cleared

    def blocks(self, path: str) -> bool:
        """Whether the problem keeps a frame of this path ("render", "async") from the
        engine now: always, except one frame a second after a failed frame."""
        if not self.problem:
            return False
        now = time.monotonic()
        if not self.frame_failed or now - self._retried_at[path] < RETRY_S:
            return True
        self._retried_at[path] = now
        return False


class ModelFileWatch:
    """A model file replaced in place (its size or time changes) is loaded again; a broken
    replacement keeps the running model (SwapService.reload's warning)."""

    def __init__(self) -> None:
        self._watched: tuple[str, tuple | None] = ("", None)  # model file and its version

    def check(self, path: str, service: SwapService) -> None:
        try:
            version = file_version(Path(path)) if path else None
        except OSError:
            return  # removed: the health check reports it
        if path != self._watched[0]:
            self._watched = (path, version)
        elif version != self._watched[1]:
            self._watched = (path, version)
            service.reload()

"""Status of every Face Swap filter, polled off the graphics thread and written to a file.

One small thread per loaded script polls each filter (which also decides pass-through on
engine errors), writes the whole status as JSON - so a test, a dock or a shell script can
read fps, latency, the active provider and the render-thread cost - and logs a summary
line now and then. It is stopped and joined on script unload.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from obs_script import libobs as L

ENV_VAR = "FACE_SWAP_STATUS_FILE"
PERIOD_S = 0.5
LOG_EVERY_S = 30.0
MAX_LOGGED = 50  # distinct poll errors logged (a bound, should messages keep changing)


def default_path() -> Path:
    """$FACE_SWAP_STATUS_FILE, else face_swap_status.json in OBS's config folder."""
    return Path(os.environ.get(ENV_VAR) or L.config_path("obs-studio/face_swap_status.json"))


class StatusWriter:
    """Polls `collect()` every PERIOD_S seconds and writes the result to `path`."""

    def __init__(self, collect: Callable[[], dict], path: Path) -> None:
        self.collect = collect
        self.path = path
        self._stop = threading.Event()
        self.failures = 0  # polls or writes that failed
        self.logged: set[str] = set()  # errors already in the log: each is logged once
        self._thread = threading.Thread(target=self._run, name="face-swap-status", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last_log = time.monotonic()
        while not self._stop.wait(PERIOD_S):
            try:
                status = self.collect()
                self._write(status)
            except Exception as exc:  # a status hiccup must never kill the poller
                self.failures += 1
                message = f"status poll failed: {type(exc).__name__}: {exc}"
                if message not in self.logged and len(self.logged) < MAX_LOGGED:
                    # e.g. an unwritable file fails every poll: once in the log is enough
                    self.logged.add(message)
                    L.log(L.LOG_WARNING, message + " (logged once)")
                continue
            if time.monotonic() - last_log >= LOG_EVERY_S:
                last_log = time.monotonic()
                for f in status.get("filters", []):
                    L.log(L.LOG_INFO, summary(f))

    def _write(self, status: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, self.path)  # readers never see half a file

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


def summary(f: dict) -> str:
    """One log line per filter: state, provider, speed and the render-thread cost."""
    render, parent = f["render_ms"], f["parent_render_ms"]
    return (f"{f['source']}/{f['filter']}: {f['state']} {f['model']} on {f['provider'] or '-'}, "
            f"{f['fps']} fps, latency p50 {f['latency_ms']['p50']} ms, dropped {f['dropped']}, "
            f"video_render p50 {render['p50']} / p95 {render['p95']} ms over {render['n']} "
            f"frames (parent alone p50 {parent['p50']} / p95 {parent['p95']} ms)"
            + (f", problem: {f['problem']}" if f["problem"] else ""))

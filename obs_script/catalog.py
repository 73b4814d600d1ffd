"""The model list the UI shows, scanned off the UI thread.

core.registry.scan() identifies every new model file by loading it with onnx, which takes
seconds for a folder of large models: run on OBS's UI thread (the script description, each
properties panel, a hotkey) it would freeze the whole window. So one background thread
scans, the UI reads the last result, and a finished scan asks OBS to rebuild open property
panels (obs_properties cannot be changed from another thread; OBS rebuilds them itself).
The same thread asks the script's inference servers for their models (network).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from core import registry
from obs_script.servers import SERVERS

ScanResult = list[registry.ModelEntry]


def scan_models() -> ScanResult:
    """The registry's scan of the model folders; the servers' lists on the way."""
    SERVERS.list_models()
    return registry.scan()


class ModelCatalog:
    """The last registry scan, and a background rescan on request."""

    def __init__(self, scan: Callable[[], ScanResult] = scan_models) -> None:
        self._scan = scan
        self._lock = threading.Lock()
        self._entries: ScanResult | None = None  # None until the first scan finishes
        self._thread: threading.Thread | None = None
        self._again = False  # a refresh came in while a scan ran: scan once more after it
        self._done_callbacks: list[Callable[[], None]] = []
        self.error = ""  # the last scan's failure ("" when it worked)
        self.scans = 0  # finished scans

    def entries(self) -> ScanResult | None:
        """The last scan's entries; None while the first scan is still running."""
        return self._entries

    def swapper_names(self) -> list[str] | None:
        """Names of the usable swap models, in scan order; None while the first scan runs."""
        entries = self._entries
        return None if entries is None else [e.name for e in entries if e.is_swapper]

    def refresh(self, then: Callable[[], None] | None = None) -> None:
        """Scan again in the background (never blocks); `then()` runs on the scan thread
        once a scan that started after this call has finished."""
        with self._lock:
            if then is not None:
                self._done_callbacks.append(then)
            if self._thread is not None and self._thread.is_alive():
                self._again = True
                return
            self._thread = threading.Thread(target=self._run, name="face-swap-scan",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._again = False
                callbacks, self._done_callbacks = self._done_callbacks, []
            try:
                self._entries = self._scan()
                self.error = ""
            except Exception as exc:  # an unreadable folder: keep the last list, say why
                self.error = f"{type(exc).__name__}: {exc}"
            self.scans += 1
            for fn in callbacks:
                try:
                    fn()
                except Exception as exc:
                    self.error = f"after scan: {type(exc).__name__}: {exc}"
            with self._lock:
                if not self._again:
                    self._thread = None
                    return

    def wait(self, timeout: float) -> bool:
        """Wait for a running scan (script unload, tests); True when none is running."""
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True


CATALOG = ModelCatalog()  # one per script load (this module is re-imported on reload)

"""Models loaded into the engine's caches ahead of use (scene mapping, studio mode): one
background thread, so a scene switch finds its model's sessions and portraits ready."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from core.errors import FaceSwapError, one_line
from core.settings import REBUILD_FIELDS, SwapSettings
from obs_script import libobs as L


def _build_swapper(settings: SwapSettings) -> object:
    from core.pipeline import build_swapper  # warms core.runtime's session cache

    return build_swapper(settings)


def prepare_key(settings: SwapSettings) -> tuple:
    """What build_swapper loads by (and the engine caches sessions and portraits by)."""
    return tuple(getattr(settings, name) for name in REBUILD_FIELDS)


class Preparer:
    """One background thread that loads models into the engine's caches ahead of use.

    `build` (build_swapper by default) is what warms the caches; any exception it raises is
    recorded per model and logged once, and the thread goes on with the next request."""

    def __init__(self, build: Callable[[SwapSettings], object] = _build_swapper) -> None:
        self._build = build
        self._queue: queue.Queue[SwapSettings | None] = queue.Queue()
        self._done: set[tuple] = set()
        self.errors: dict[str, str] = {}
        self.prepared: list[SwapSettings] = []  # what was built, in order
        self._thread = threading.Thread(target=self._run, name="face-swap-prepare", daemon=True)
        self._thread.start()

    def prepare(self, settings: SwapSettings) -> None:
        self._queue.put(settings)

    def _run(self) -> None:
        while (settings := self._queue.get()) is not None:
            try:
                self._prepare(settings)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _prepare(self, settings: SwapSettings) -> None:
        key = prepare_key(settings)
        if key in self._done:
            return
        try:
            self._build(settings)
        except FaceSwapError as exc:  # the user's model: shown in the status, not logged
            self.errors[settings.model] = str(exc)
            return
        except Exception as exc:  # a bug or a broken install: keep preparing the rest
            message = one_line(exc)
            if self.errors.get(settings.model) != message:
                L.log(L.LOG_WARNING, f"preparing {settings.model} failed: {message}")
            self.errors[settings.model] = message
            return
        self._done.add(key)
        self.prepared.append(settings)
        self.errors.pop(settings.model, None)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> None:
        """End the thread once the requests before this one are handled (waiting up to
        `timeout` seconds)."""
        self._queue.put(None)
        self._thread.join(timeout)

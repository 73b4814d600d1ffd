"""A job on a thread of its own, one at a time: how the engine's recogniser checks (the
identity guard, the identity lock) stay off the frame's path.

A re-check's verdict may arrive a few frames late; the frame does not wait for it (only a
face's first check runs on the frame's own thread, `wait=True`, and may overlap a
background job: onnxruntime sessions take concurrent runs). The thread lives for one job (a
few a second at most): an idle checker holds none, so a stopped engine leaves no thread
behind (`wait` before dropping it). A process that ends with a job still running waits for
it (atexit, JOIN_AT_EXIT_S): a daemon thread inside onnxruntime when Python finalises
aborts the process ("terminate called without an active exception", seen on a CLI video
swap ending while a hand search ran).
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Callable

JOIN_AT_EXIT_S = 10.0  # at most this long at exit for the jobs still running
_started: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


@atexit.register
def _join_at_exit() -> None:
    for thread in list(_started):
        thread.join(JOIN_AT_EXIT_S)


class OneAtATime:
    """Runs jobs now (`wait=True`) or on a thread of their own, never two of those at once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pending: threading.Thread | None = None

    def busy(self) -> bool:
        """Whether a job started earlier is still running."""
        return self._pending is not None and self._pending.is_alive()

    def run(self, job: Callable[[], None], wait: bool) -> None:
        """`job` on this thread (wait) or on its own thread; the caller checks `busy` first."""
        if wait:
            job()
            return
        thread = threading.Thread(target=job, name=self.name, daemon=True)
        thread.start()  # before it is seen: `wait` on another thread (an engine stopping)
        # joined a thread not started yet ("cannot join thread before it is started": OBS
        # unloading the script while the identity guard began a check)
        _started.add(thread)
        self._pending = thread

    def wait(self, timeout: float | None = None) -> None:
        """Until the job in flight (if any) is done, or `timeout` s."""
        if self._pending is not None:
            self._pending.join(timeout)

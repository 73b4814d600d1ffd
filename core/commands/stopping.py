"""Ctrl-C and SIGTERM as a request to stop between two frames, for commands that write a
video: the loop finishes the frame in hand, closes the file (a playable video of the frames
so far) and then stops as the signal asks (exit 130 / 143 via core.cli)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import Terminated

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Which stop signal arrived (None: none yet)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    def raise_it(self) -> None:
        """Stop as the signal asks: KeyboardInterrupt for SIGINT, Terminated for SIGTERM."""
        if self.signal == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signal is not None:
            raise Terminated(self.signal)


@contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """While inside, SIGINT and SIGTERM only set the request (main thread; elsewhere the
    signals keep their handlers and the request never fires)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def note(signum, _frame) -> None:
        request.signal = signum

    previous = {sig: signal.signal(sig, note) for sig in _SIGNALS}
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

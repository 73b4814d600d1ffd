"""Optional output pacing: show each result a fixed delay after its input was captured.

Without pacing a result is shown as soon as it is ready, so frames that took longer to
swap arrive later than their neighbours and motion judders. With a target delay D every
result is released at capture time + D: output spacing equals input spacing, and the video
lags by exactly D, which can be matched by the same audio delay. A result that is already
later than D is released at once and counted as late. Off (D = 0) for the lowest latency.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Pacer(Generic[T]):
    """A small time-ordered buffer: push(item, t_in) as results arrive, pop() when drawing."""

    def __init__(self, delay_ms: float = 0.0, max_items: int = 240) -> None:
        if delay_ms < 0:
            raise ValueError(f"pacing delay must be >= 0 ms, got {delay_ms}")
        self.delay_s = delay_ms / 1000.0
        self._items: deque[tuple[float, T]] = deque(maxlen=max_items)
        self.late = 0  # results that arrived after their due time

    @property
    def enabled(self) -> bool:
        return self.delay_s > 0

    def push(self, item: T, t_in: float, now: float | None = None) -> None:
        """Queue a result whose input was captured at `t_in` (time.perf_counter())."""
        due = t_in + self.delay_s
        now = time.perf_counter() if now is None else now
        if self.delay_s and now > due:
            self.late += 1
        self._items.append((due, item))

    def pop(self, now: float | None = None) -> T | None:
        """The newest item that is due (older due ones are skipped); None if none is due."""
        now = time.perf_counter() if now is None else now
        found = None
        while self._items and self._items[0][0] <= now:
            found = self._items.popleft()[1]
        return found

    def next_due(self) -> float | None:
        """perf_counter time when the next item becomes due, for a consumer that sleeps."""
        return self._items[0][0] if self._items else None

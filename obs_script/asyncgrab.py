"""Raw frames of an async parent (webcam, capture card, media file): whether this filter
may use them, and what it last took. Copying and converting them is obs_script.render's
and obs_script.asyncframe's job; this keeps the per-filter state of that path."""

from __future__ import annotations

import os
from collections import deque

from obs_script import libobs as L

ASYNC_ENV = "FACE_SWAP_ASYNC_FRAMES"  # "0": always use the texrender path (troubleshooting)
FILTER_CHECK_FRAMES = 30  # raw frames between re-checks of the parent's other filters


def takes_async_frames(target: int, parent: int) -> bool:
    """Whether the parent's raw async frames are what this filter sees: the parent is an
    async video source, nothing renders between it and us, and libobs shows its frames as
    they are (deinterlacing would change them)."""
    flags = L.obs_source_get_output_flags(parent) if parent else 0
    return (target == parent and flags & L.OBS_SOURCE_ASYNC_VIDEO == L.OBS_SOURCE_ASYNC_VIDEO
            and L.obs_source_get_deinterlace_mode(parent) == L.OBS_DEINTERLACE_MODE_DISABLE)


def other_async_filter(parent: int, ours: int) -> bool:
    """Whether another enabled async video filter (e.g. Video Delay) is on the parent: it
    may act on the raw frames after we copied them, so the texrender path is the safe one."""
    return any(f != ours and L.obs_source_enabled(f)
               and L.obs_source_get_output_flags(f) & L.OBS_SOURCE_ASYNC
               for f in L.source_filters(parent))


class AsyncGrab:
    """One filter's raw-frame path: the last frame taken (graphics thread only)."""

    def __init__(self, history: int) -> None:
        self.enabled = os.environ.get(ASYNC_ENV, "1") != "0"
        self.size: tuple[int, int] | None = None  # last raw frame copied, if usable
        self.stamp = -1  # its timestamp: the same frame is never handed over twice
        self.format = ""  # its format, or why raw frames are not used
        self.copy_ms: deque[float] = deque(maxlen=history)  # filter_video's copies
        self._checked = 0  # raw frames until the parent's filter list is checked again
        self._filters = -1  # the parent's filter count at the last check
        self._blocked = False  # that check found another async filter

    def blocked(self, parent: int, ours: int) -> bool:
        """other_async_filter(), re-checked every FILTER_CHECK_FRAMES raw frames or when the
        parent's filter count changes: enumerating filters calls back into Python per filter."""
        count = L.obs_source_filter_count(parent)
        self._checked -= 1
        if self._checked <= 0 or count != self._filters:
            self._blocked = other_async_filter(parent, ours)
            self._checked, self._filters = FILTER_CHECK_FRAMES, count
        return self._blocked

    def refuse(self, why: str) -> None:
        """Raw frames are not used now, for this reason (shown in the status)."""
        self.size, self.format = None, why

"""What one filter's graphics-thread work cost and did, for its status (p50/p95 over the
last HISTORY frames, counters since it was created)."""

from __future__ import annotations

from collections import deque

from core.worker import percentile

HISTORY = 600  # render timings kept for the p50/p95 (about 10-20 s of frames)


def percentiles(values: deque[float]) -> dict[str, float]:
    """p50/p95 of recent values and how many there were (zeros when none)."""
    data = list(values)  # one atomic copy: the graphics thread keeps appending
    return {"p50": round(percentile(data, 50), 3), "p95": round(percentile(data, 95), 3),
            "n": len(data)}


class RenderStats:
    """Written by the graphics thread, read by the status thread."""

    def __init__(self) -> None:
        self.render_ms: deque[float] = deque(maxlen=HISTORY)  # whole video_render
        self.parent_ms: deque[float] = deque(maxlen=HISTORY)  # the parent's own render
        self.stage_ms: deque[float] = deque(maxlen=HISTORY)  # gs_stage_texture
        self.renders = 0  # video_render calls that drew or passed through a frame
        self.frames_not_grabbed = 0  # frames left alone: the busy worker would not take them
        self.skipped = 0  # renders that had a result but did not draw it (failed or stale)
        self.views: dict[str, int] = {}  # renders without a swap, per lost_view view
        self.grab_path = ""  # "async <format>" or "texrender": how the last frame came in

    def viewed(self, view: str) -> None:
        self.views[view] = self.views.get(view, 0) + 1

    def report(self) -> dict:
        """The status fields these make."""
        return {"render_ms": percentiles(self.render_ms),
                "parent_render_ms": percentiles(self.parent_ms),
                "stage_ms": percentiles(self.stage_ms),
                "renders": self.renders, "skipped_results": self.skipped,
                "no_swap_views": dict(self.views),
                "frames_not_grabbed": self.frames_not_grabbed, "grab": self.grab_path}

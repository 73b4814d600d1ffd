"""One "Face Swap" filter instance: settings -> SwapService, and the per-frame render.

video_render (graphics thread) only grabs, hands over and draws; the SwapService's worker
does everything else. An async parent (webcam, capture card, media file) is grabbed
cheaper: filter_video copies its raw frame's planes as libobs hands them over, a
FrameFeed thread converts them to RGBA with the frame's own colour matrix and submits
that; other parents (and unsupported raw formats) go through the texrender copy-back.

Where the engine has no swap to show - no result of the current size yet, a model
loading, its engine in error (bad model, unusable device, model file gone, reference
unreadable), a frame that failed, a stalled worker - the filter shows what
core.privacy.lost_view says for `on_lost` with no face position known: the parent as it is
("original"), the last swap drawn (within "hold"'s time), or the whole source as a mosaic
(obs_script.cover). Engine state is checked by `poll()` from the status thread, never per
frame. While a new model loads the old one keeps swapping (SwapService swaps atomically).
A result is drawn only if it is a swap (a worker error publishes the input unchanged) of a
frame submitted since the filter last resumed (re-enabled, shown again, or its problem
cleared). A filter `covered` by a hotkey (obs_script.hotkeys: the toggle in a privacy
mode, "privacy now") draws the mosaic over the whole source and hands nothing to the engine.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import deque
from pathlib import Path

from core import privacy
from core.label import label_rect, size_for_output
from core.modelfiles import file_version
from core.presets import PRESET_FIELDS
from core.service import SwapService
from core.settings import SwapSettings
from core.worker import percentile
from obs_script import cover, enrolment, obsdata, properties, registration
from obs_script import libobs as L
from obs_script.asyncframe import YUV_FORMATS, FrameFeed, format_name
from obs_script.render import FrameExchange, copy_async_frame, frame_info, render_directly

HISTORY = 600  # render timings kept for the p50/p95 (about 10-20 s of frames)
ASYNC_ENV = "FACE_SWAP_ASYNC_FRAMES"  # "0": always use the texrender path (troubleshooting)
FILTER_CHECK_FRAMES = 30  # raw frames between re-checks of the parent's other filters
RESUME_GAP_NS = 500_000_000  # no render for this long: the filter was off, or not shown
# After a frame failed (a server gone, a model error) one frame a second still goes to the
# engine, so a failure that ends (the server back) clears by itself
RETRY_S = 1.0
# Frames ahead of the worker's expected finish at which grabbing resumes: a texrender grab
# reaches the worker two OBS frames after it starts (stage, then map); a raw frame after its
# conversion, well within one of the source's frames, which may come slower than OBS's.
TEXRENDER_LEAD_FRAMES = 2.5
ASYNC_LEAD_FRAMES = 1.5
STOP_TIMEOUT_S = 1.0  # per thread a closed filter's reaper waits for
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

_reapers: set[threading.Thread] = set()  # threads joining closed filters' threads
_reapers_lock = threading.Lock()


def join_reapers(timeout: float = 2 * STOP_TIMEOUT_S + 1.0) -> bool:
    """Wait (at most `timeout` s in all) for the reapers of closed filters; True when none is
    left. Script unload calls it, so a reload leaves no thread of the old code behind."""
    deadline = time.monotonic() + timeout
    with _reapers_lock:
        pending = list(_reapers)
    for thread in pending:
        thread.join(max(0.0, deadline - time.monotonic()))
    with _reapers_lock:
        return not _reapers


def _reap(feed: FrameFeed, service: SwapService) -> None:
    try:
        feed.stop(timeout=STOP_TIMEOUT_S)
        if not service.stop(timeout=STOP_TIMEOUT_S):
            L.log(L.LOG_WARNING, f"a closed filter's worker still ran after {STOP_TIMEOUT_S} s")
    finally:
        with _reapers_lock:
            _reapers.discard(threading.current_thread())


def percentiles(values: deque[float]) -> dict[str, float]:
    """p50/p95 of recent values and how many there were (zeros when none)."""
    data = list(values)  # one atomic copy: the graphics thread keeps appending
    return {"p50": round(percentile(data, 50), 3), "p95": round(percentile(data, 95), 3),
            "n": len(data)}


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


class FaceSwapFilter:
    """Per-source state: the frame exchange, the swap service and render statistics."""

    def __init__(self, key: int, source: int, data: int) -> None:
        self.key = key
        self.source = source
        self.exchange = FrameExchange()
        self.render_ms: deque[float] = deque(maxlen=HISTORY)  # whole video_render
        self.renders = 0  # video_render calls that drew or passed through a frame
        self.frames_not_grabbed = 0  # frames left alone: the busy worker would not take them
        self.obs_frame_ns = L.obs_get_frame_interval_ns()  # refreshed by poll(), not per frame
        self.parent_ms: deque[float] = deque(maxlen=HISTORY)  # the parent's own render
        self.stage_ms: deque[float] = deque(maxlen=HISTORY)  # gs_stage_texture
        self.copy_ms: deque[float] = deque(maxlen=HISTORY)  # filter_video (async parents)
        self.async_size: tuple[int, int] | None = None  # last raw frame copied, if usable
        self.async_stamp = -1  # its timestamp: the same frame is never handed over twice
        self.async_format = ""  # its format, or why raw frames are not used
        self.async_checked = 0  # raw frames until the parent's filter list is checked again
        self.async_filters = -1  # the parent's filter count at the last check
        self.async_blocked = False  # that check found another async filter
        self.grab_path = ""  # "async <format>" or "texrender": how the last frame came in
        self.async_enabled = os.environ.get(ASYNC_ENV, "1") != "0"
        self.problem = ""  # set by poll(): pass through and show this instead of swapping
        self.frame_failed = False  # the problem is a failed frame (retried, see RETRY_S)
        self.retried_at = {"render": 0.0, "async": 0.0}  # time.monotonic() of the last retry
        self.has_pipeline = False  # set by poll(): a model is loaded (results are swaps)
        self.last_status: dict | None = None  # the last poll()'s status, for the panel
        self.grabbed_at = -1  # obs_get_video_frame_time() of the last grab
        self.rendered_at = -1  # obs_get_video_frame_time() of the last render call
        self.first_seq = 1  # results of older inputs are never drawn (set on a resume)
        self.skipped = 0  # renders that had a result but did not draw it (failed or stale)
        self.swap_drawn_at: float | None = None  # time.monotonic() a swap was last drawn
        self.views: dict[str, int] = {}  # renders without a swap, per lost_view view
        self.push = properties.StatusPush()  # when the status line goes to an open panel
        self.edited_at = float("-inf")  # time.monotonic() of the user's last settings change
        self._watched: tuple[str, tuple | None] = ("", None)  # model file and its version
        self.settings_error = ""
        self.enrolment = enrolment.Enrolment()  # faces=enrolled: enrolling from the panel
        self.covered = False  # a hotkey asked for the privacy view: the whole source covered
        obsdata.migrate(data)
        read = self._read(data)
        self.settings = self._with_presets(data, read, None) if read else \
            obsdata.FILTER_DEFAULTS
        self.canvas_size = (0, 0)  # OBS's canvas, read by poll()
        self.shown_scale = 1.0  # the smallest scene-item scale the source is shown at (set
        # on the UI thread: obs_script.script.measure_scales)
        self.engine_label_size = 0.0  # the label size the engine draws with (% of the source)
        self.service = SwapService(self._engine_settings(), fmt="rgba")
        self.feed = FrameFeed(self.service.submit)

    # --- UI thread -----------------------------------------------------------------------
    def _read(self, data: int) -> SwapSettings | None:
        try:
            settings = obsdata.read(data)
        except ValueError as exc:
            self.settings_error = f"bad setting: {exc}"
            return None
        self.settings_error = ""
        return settings

    def update(self, data: int) -> None:
        self.edited_at = time.monotonic()
        settings = self._read(data)
        if settings is None:
            return
        settings = self._with_presets(data, settings, self.settings.model)
        self.settings = settings
        enrolment.on_update(self, data)
        # `problem` stays until poll() (every 0.5 s) sees the new engine state: clearing it
        # here would draw the old model again until a failing build reports its error.
        self.service.apply(self._engine_settings())

    def _engine_settings(self) -> SwapSettings:
        """The settings the engine swaps with: the filter's, the label sized for the canvas
        the source is shown in, at its scene item's scale (core.label.size_for_output)."""
        size = size_for_output(self.settings.label_size, self.exchange.size, self.canvas_size,
                               self.shown_scale)
        self.engine_label_size = size
        return self.settings if size == self.settings.label_size else \
            self.settings.with_changes(label_size=size)

    @staticmethod
    def _with_presets(data: int, settings: SwapSettings, before: str | None) -> SwapSettings:
        """A model chosen (in the panel, by a hotkey or a scene) brings its preset, which
        is written into `data` so the panel shows it; otherwise the values set are kept as
        the model's preset (core.presets; saved with the filter's settings)."""
        presets = obsdata.read_presets(data)
        if before is not None and settings.model != before:
            settings = presets.recall(settings)
            obsdata.write(data, settings, PRESET_FIELDS)
        if presets.remember(settings):
            obsdata.write_presets(data, presets)
        return settings

    def properties(self) -> int:
        return properties.build(self)

    def on_property(self, name: str, props: int, prop: int, settings: int | None) -> bool:
        return properties.on_property(self, name, props, prop, settings)

    @property
    def name(self) -> str:
        return L.text(L.obs_source_get_name(self.source))

    @property
    def parent_name(self) -> str:
        parent = L.obs_filter_get_parent(self.source)
        return L.text(L.obs_source_get_name(parent)) if parent else ""

    # --- frames to the engine (graphics thread, or the feed's thread) ---------------------
    def _engine_wants_frame(self, frames: float, frame_ns: int = 0) -> bool:
        """Whether the worker takes a frame made now within `frames` frame intervals (OBS's,
        or the source's `frame_ns` when longer). With a model slower than the source, every
        frame the worker will not take would be grabbed (or converted) only to be replaced
        in its mailbox: that costs the graphics thread and the CPU the model needs. Until a
        model is loaded, every frame goes."""
        if not self.has_pipeline:
            return True
        interval_ns = max(self.obs_frame_ns, frame_ns)
        return self.service.wants_frame(frames * interval_ns / 1e9)

    # --- graphics thread -----------------------------------------------------------------
    def _blocked_by_other_filter(self, parent: int) -> bool:
        """other_async_filter(), re-checked every FILTER_CHECK_FRAMES raw frames or when the
        parent's filter count changes: enumerating filters calls back into Python per filter."""
        count = L.obs_source_filter_count(parent)
        self.async_checked -= 1
        if self.async_checked <= 0 or count != self.async_filters:
            self.async_blocked = other_async_filter(parent, self.source)
            self.async_checked, self.async_filters = FILTER_CHECK_FRAMES, count
        return self.async_blocked

    def filter_video(self, frame_ptr: int) -> None:
        """A new raw frame of an async parent: copy its planes and hand them over. libobs
        calls this before the parent draws (on the graphics thread) and keeps the frame."""
        if self.problem and not self._retry_due("async") or not frame_ptr \
                or not self.async_enabled:
            return
        frame = frame_info(frame_ptr)
        size = (frame.width, frame.height)
        if frame.timestamp == self.async_stamp and size == self.async_size:
            return  # the same frame again (libobs calls this per render): the cheap check first
        start = time.perf_counter()
        target = L.obs_filter_get_target(self.source)
        parent = L.obs_filter_get_parent(self.source)
        if not target or not takes_async_frames(target, parent):
            self.async_size, self.async_format = None, "not first filter, or deinterlaced"
            return
        if self._blocked_by_other_filter(parent):
            self.async_size, self.async_format = None, "another async filter on the source"
            return
        gap = frame.timestamp - self.async_stamp  # the source's frame interval, if steady
        source_ns = gap if self.async_size == size and 0 < gap < 1_000_000_000 else 0
        if self.async_size == size and not self._engine_wants_frame(ASYNC_LEAD_FRAMES,
                                                                    source_ns):
            self.async_stamp = frame.timestamp  # seen, and left alone
            self.frames_not_grabbed += 1
            return
        raw = copy_async_frame(frame, self.feed)
        if raw is None:
            self.async_size = None
            self.async_format = f"{format_name(frame.format)} {size[0]}x{size[1]} unsupported"
            return
        self.feed.put(raw)
        self.async_size, self.async_stamp = size, frame.timestamp
        full = raw.full_range and raw.fmt in YUV_FORMATS
        self.async_format = format_name(frame.format) + (" full range" if full else "")
        self.copy_ms.append((time.perf_counter() - start) * 1000.0)

    def drawable(self, result) -> bool:
        """Whether a worker Result may be drawn: a swap (not the input passed through after a
        processing error or while no model was loaded) of an input submitted since the last
        resume. Results are not
        dropped for lagging the newest input by N frames: a slow engine always lags by several
        inputs, and that would flicker between swapped and original frames."""
        return (result is not None and result.ok and result.processed
                and result.seq >= self.first_seq)

    def render(self) -> None:
        start = time.perf_counter()
        target = L.obs_filter_get_target(self.source)
        width = L.obs_source_get_base_width(target) if target else 0
        height = L.obs_source_get_base_height(target) if target else 0
        frame_time = L.obs_get_video_frame_time()
        if self.rendered_at >= 0 and frame_time - self.rendered_at > RESUME_GAP_NS:
            self.first_seq = self.service.last_seq() + 1  # re-enabled or shown again: no old swaps
            self.exchange.forget_staged()  # nor a frame staged before the gap
        self.rendered_at = frame_time
        if not width or not height:
            L.obs_source_skip_video_filter(self.source)
            return
        if self.covered:
            self.views["covered"] = self.views.get("covered", 0) + 1
            cover.draw(self.source, width, height)
            return
        if self.problem and not self._retry_due("render"):
            self._no_swap(width, height)
            return
        parent = L.obs_filter_get_parent(self.source)
        if self.async_size == (width, height) and takes_async_frames(target, parent):
            self.exchange.prepare(width, height)  # frames come in through filter_video
            self.grab_path = f"async {self.async_format}"
        elif frame_time != self.grabbed_at:  # once per OBS frame, however often it is drawn
            self.grabbed_at, self.grab_path = frame_time, "texrender"
            if ((width, height) == self.exchange.size
                    and not self._engine_wants_frame(TEXRENDER_LEAD_FRAMES)):
                self.exchange.forget_staged()  # a later grab must not hand over this frame
                self.frames_not_grabbed += 1
            else:
                frame = self.exchange.grab(target, render_directly(target, parent), width,
                                           height)
                self.parent_ms.append(self.exchange.parent_ms)
                self.stage_ms.append(self.exchange.stage_ms)
                if frame is not None:
                    self.service.submit(frame)
        result = self.service.latest_result() if self.has_pipeline else None
        drawable = self.drawable(result)
        if result is not None and not drawable:
            self.skipped += 1
        if drawable and self.exchange.draw(result.frame):
            self.swap_drawn_at = time.monotonic()
        else:
            self._no_swap(width, height)
        self.render_ms.append((time.perf_counter() - start) * 1000.0)
        self.renders += 1

    def _retry_due(self, path: str) -> bool:
        """With a failed frame as the problem: whether this frame path sends one now."""
        now = time.monotonic()
        if not self.frame_failed or now - self.retried_at[path] < RETRY_S:
            return False
        self.retried_at[path] = now
        return True

    def _no_swap(self, width: int, height: int) -> None:
        """The engine has no swap to draw now: what on_lost shows with no face position
        known (core.privacy): the parent (with the "not swapping" badge when something failed:
        obs_script.cover), the last swap drawn, or the covered source."""
        settings = self.settings
        held_ms = None if self.swap_drawn_at is None else \
            (time.monotonic() - self.swap_drawn_at) * 1000.0
        view = privacy.lost_view(settings.on_lost, held_ms, settings.hold_ms, face_known=False)
        self.views[view] = self.views.get(view, 0) + 1
        if view == privacy.ORIGINAL:
            if not (self.problem and cover.badge(self.source, width, height,
                                                 self._badge_rect(width, height))):
                L.obs_source_skip_video_filter(self.source)
        elif not (view == privacy.HOLD and self.exchange.uploaded is not None
                  and self.exchange.draw(self.exchange.uploaded)):
            cover.draw(self.source, width, height)

    def _badge_rect(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Where the "not swapping" badge goes (obs_script.cover): a square as tall as the
        label, in the label's corner."""
        x0, y0, x1, y1 = label_rect(width, height, "rgba", self.settings.label_corner,
                                    size=self.engine_label_size or self.settings.label_size)
        side = y1 - y0
        left = x0 if self.settings.label_corner.endswith("left") else x1 - side
        return left, y0, left + side, y1

    # --- status thread -------------------------------------------------------------------
    def poll(self) -> dict:
        """Refresh `problem` and return this filter's status (engine + render timings)."""
        status = self.service.status()
        self.obs_frame_ns = L.obs_get_frame_interval_ns()  # changes only on a video reset
        self.canvas_size = L.canvas_size()
        if size_for_output(self.settings.label_size, self.exchange.size, self.canvas_size,
                           self.shown_scale) != self.engine_label_size:
            self.service.apply(self._engine_settings())  # a new source, canvas or scale
        path = status["model_file"]  # what the engine loaded: no registry lookup here
        self._watch(path)
        latest = None
        if self.settings_error:
            problem = self.settings_error
        elif status["state"] == "error":
            problem = status["last_error"] or "engine error"
        elif path and not os.path.exists(path):
            problem = f"model file removed while running: {path}"
        elif (latest := self.service.latest_result()) is not None and not latest.ok:
            problem = status["last_error"] or "engine error"  # e.g. a model giving NaN
        elif status["busy_ms"] > stall_limit_ms(status["process_ms"]["p95"]):
            problem = f"engine stalled: one frame has run for {status['busy_ms'] / 1000:.1f} s"
        else:
            problem = ""
        if self.problem and not problem:
            self.first_seq = self.service.last_seq() + 1  # swaps from before it stay unseen
        if problem and problem != self.problem:  # the panel wraps it; the log keeps it whole
            L.log(L.LOG_WARNING, f"{self.parent_name}/{self.name}: not swapping: {problem}")
        self.frame_failed = bool(problem) and latest is not None and not latest.ok
        self.problem = problem
        self.has_pipeline = bool(status["model"])
        status.update(filter=self.name, source=self.parent_name, problem=problem,
                      swapping=not problem and status["state"] == "ready",
                      size=list(self.exchange.size),
                      render_ms=percentiles(self.render_ms),
                      parent_render_ms=percentiles(self.parent_ms),
                      stage_ms=percentiles(self.stage_ms),
                      renders=self.renders, skipped_results=self.skipped,
                      no_swap_views=dict(self.views),
                      frames_not_grabbed=self.frames_not_grabbed,
                      grab=self.grab_path,
                      async_format=self.async_format,
                      copy_ms=percentiles(self.copy_ms),
                      convert_ms=percentiles(self.feed.convert_ms),
                      convert_errors=self.feed.errors, convert_error=self.feed.last_error,
                      callback_errors=registration.callback_errors(self.key),
                      on_lost=self.settings.on_lost, covered=self.covered,
                      label_size_drawn=self.engine_label_size, canvas_size=self.canvas_size,
                      shown_scale=round(self.shown_scale, 4),
                      panel_pushes=self.push.pushes,
                      settings=dataclasses.asdict(self.settings))
        self.last_status = status
        line, kind = properties.status_line(status)
        rebuild = self.push.due(line, kind, edited_at=self.edited_at)
        if rebuild or line != self.push.written:
            self.push.written = line
            registration.queue_ui(lambda: properties.push_status(self, rebuild))
        return status

    def _watch(self, path: str) -> None:
        """A model file replaced in place (its size or time changes) is loaded again; a
        broken replacement keeps the running model (SwapService.reload's warning)."""
        try:
            version = file_version(Path(path)) if path else None
        except OSError:
            return  # removed: poll() reports it
        if path != self._watched[0]:
            self._watched = (path, version)
        elif version != self._watched[1]:
            self._watched = (path, version)
            self.service.reload()

    def close(self) -> None:
        """Free GPU resources and stop the threads (UI thread, or libobs' destroy).

        Never waits for the threads: the frame in flight can take a while, and the caller
        (often the thread destroying the source) must not stall. The stop is signalled here
        and a daemon reaper joins the threads (bounded); join_reapers() waits for it."""
        L.obs_enter_graphics()
        try:
            self.exchange.free()
        finally:
            L.obs_leave_graphics()
        self.feed.stop(timeout=0.0)  # stop taking frames now; joined by the reaper
        self.service.stop(timeout=0.0)
        reaper = threading.Thread(target=_reap, args=(self.feed, self.service),
                                  name="face-swap-reaper", daemon=True)
        with _reapers_lock:
            _reapers.add(reaper)
        reaper.start()

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
import threading
import time

from core import privacy
from core.label import label_rect, size_for_output
from core.service import SwapService
from core.settings import SwapSettings
from obs_script import cover, enrolment, obsdata, properties, registration
from obs_script import libobs as L
from obs_script.asyncframe import YUV_FORMATS, FrameFeed, format_name
from obs_script.asyncgrab import AsyncGrab, takes_async_frames
from obs_script.health import EngineHealth, ModelFileWatch
from obs_script.render import FrameExchange, copy_async_frame, frame_info, render_directly
from obs_script.renderstats import HISTORY, RenderStats, percentiles

RESUME_GAP_NS = 500_000_000  # no render for this long: the filter was off, or not shown
# Frames ahead of the worker's expected finish at which grabbing resumes: a texrender grab
# reaches the worker two OBS frames after it starts (stage, then map); a raw frame after its
# conversion, well within one of the source's frames, which may come slower than OBS's.
TEXRENDER_LEAD_FRAMES = 2.5
ASYNC_LEAD_FRAMES = 1.5
STOP_TIMEOUT_S = 1.0  # per thread a closed filter's reaper waits for
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


class FaceSwapFilter:
    """One filter instance: its settings, the frame exchange with the swap service, and the
    parts it composes (raw-frame path, render statistics, engine health, model file watch,
    label sizing, panel status pushes)."""

    def __init__(self, key: int, source: int, data: int) -> None:
        self.key = key
        self.source = source
        self.exchange = FrameExchange()
        self.stats = RenderStats()
        self.raw = AsyncGrab(HISTORY)  # an async parent's raw frames (filter_video)
        self.health = EngineHealth()  # set by poll(): why it cannot swap now, if it cannot
        self.watch = ModelFileWatch()
        self.obs_frame_ns = L.obs_get_frame_interval_ns()  # refreshed by poll(), not per frame
        self.grabbed_at = -1  # obs_get_video_frame_time() of the last grab
        self.rendered_at = -1  # obs_get_video_frame_time() of the last render call
        self.first_seq = 1  # results of older inputs are never drawn (set on a resume)
        self.swap_drawn_at: float | None = None  # time.monotonic() a swap was last drawn
        self.push = properties.StatusPush()  # when the status line goes to an open panel
        self.settings_error = ""
        self.enrolment = enrolment.Enrolment()  # faces=enrolled: enrolling from the panel
        self.covered = False  # a hotkey asked for the privacy view: the whole source covered
        obsdata.migrate(data)
        read = self._read(data)
        self.settings = obsdata.with_presets(data, read, None) if read else \
            obsdata.FILTER_DEFAULTS
        self.label = LabelSizing()
        self.service = SwapService(self._engine_settings(), fmt="rgba")
        self.feed = FrameFeed(self.service.submit)

    @property
    def last_status(self) -> dict | None:
        """The last poll()'s status, for the panel."""
        return self.health.status

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
        self.push.edited_at = time.monotonic()
        settings = self._read(data)
        if settings is None:
            return
        settings = obsdata.with_presets(data, settings, self.settings.model)
        self.settings = settings
        enrolment.on_update(self, data)
        # `problem` stays until poll() (every 0.5 s) sees the new engine state: clearing it
        # here would draw the old model again until a failing build reports its error.
        self.service.apply(self._engine_settings())

    def _engine_settings(self) -> SwapSettings:
        """The settings the engine swaps with: the filter's, the label sized for the canvas
        the source is shown in, at its scene item's scale (core.label.size_for_output)."""
        size = self.label.engine_size(self.settings.label_size, self.exchange.size)
        return self.settings if size == self.settings.label_size else \
            self.settings.with_changes(label_size=size)

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
        if not self.health.has_pipeline:
            return True
        interval_ns = max(self.obs_frame_ns, frame_ns)
        return self.service.wants_frame(frames * interval_ns / 1e9)

    # --- graphics thread -----------------------------------------------------------------
    def filter_video(self, frame_ptr: int) -> None:
        """A new raw frame of an async parent: copy its planes and hand them over. libobs
        calls this before the parent draws (on the graphics thread) and keeps the frame."""
        raw = self.raw
        if self.health.blocks("async") or not frame_ptr or not raw.enabled:
            return
        frame = frame_info(frame_ptr)
        size = (frame.width, frame.height)
        if frame.timestamp == raw.stamp and size == raw.size:
            return  # the same frame again (libobs calls this per render): the cheap check first
        start = time.perf_counter()
        target = L.obs_filter_get_target(self.source)
        parent = L.obs_filter_get_parent(self.source)
        if not target or not takes_async_frames(target, parent):
            raw.refuse("not first filter, or deinterlaced")
            return
        if raw.blocked(parent, self.source):
            raw.refuse("another async filter on the source")
            return
        gap = frame.timestamp - raw.stamp  # the source's frame interval, if steady
        source_ns = gap if raw.size == size and 0 < gap < 1_000_000_000 else 0
        if raw.size == size and not self._engine_wants_frame(ASYNC_LEAD_FRAMES, source_ns):
            raw.stamp = frame.timestamp  # seen, and left alone
            self.stats.frames_not_grabbed += 1
            return
        copied = copy_async_frame(frame, self.feed)
        if copied is None:
            raw.refuse(f"{format_name(frame.format)} {size[0]}x{size[1]} unsupported")
            return
        self.feed.put(copied)
        raw.size, raw.stamp = size, frame.timestamp
        full = copied.full_range and copied.fmt in YUV_FORMATS
        raw.format = format_name(frame.format) + (" full range" if full else "")
        raw.copy_ms.append((time.perf_counter() - start) * 1000.0)

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
        stats = self.stats
        if self.covered:
            stats.viewed("covered")
            cover.draw(self.source, width, height)
            return
        if self.health.blocks("render"):
            self._no_swap(width, height)
            return
        parent = L.obs_filter_get_parent(self.source)
        if self.raw.size == (width, height) and takes_async_frames(target, parent):
            self.exchange.prepare(width, height)  # frames come in through filter_video
            stats.grab_path = f"async {self.raw.format}"
        elif frame_time != self.grabbed_at:  # once per OBS frame, however often it is drawn
            self.grabbed_at, stats.grab_path = frame_time, "texrender"
            if ((width, height) == self.exchange.size
                    and not self._engine_wants_frame(TEXRENDER_LEAD_FRAMES)):
                self.exchange.forget_staged()  # a later grab must not hand over this frame
                stats.frames_not_grabbed += 1
            else:
                frame = self.exchange.grab(target, render_directly(target, parent), width,
                                           height)
                stats.parent_ms.append(self.exchange.parent_ms)
                stats.stage_ms.append(self.exchange.stage_ms)
                if frame is not None:
                    self.service.submit(frame)
        result = self.service.latest_result() if self.health.has_pipeline else None
        drawable = self.drawable(result)
        if result is not None and not drawable:
            stats.skipped += 1
        if drawable and self.exchange.draw(result.frame):
            self.swap_drawn_at = time.monotonic()
        else:
            self._no_swap(width, height)
        stats.render_ms.append((time.perf_counter() - start) * 1000.0)
        stats.renders += 1

    def _no_swap(self, width: int, height: int) -> None:
        """The engine has no swap to draw now: what on_lost shows with no face position
        known (core.privacy): the parent (with the "not swapping" badge when something failed:
        obs_script.cover), the last swap drawn, or the covered source."""
        settings = self.settings
        held_ms = None if self.swap_drawn_at is None else \
            (time.monotonic() - self.swap_drawn_at) * 1000.0
        view = privacy.lost_view(settings.on_lost, held_ms, settings.hold_ms, face_known=False)
        self.stats.viewed(view)
        if view == privacy.ORIGINAL:
            if not (self.health.problem and cover.badge(self.source, width, height,
                                                 self._badge_rect(width, height))):
                L.obs_source_skip_video_filter(self.source)
        elif not (view == privacy.HOLD and self.exchange.uploaded is not None
                  and self.exchange.draw(self.exchange.uploaded)):
            cover.draw(self.source, width, height)

    def _badge_rect(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Where the "not swapping" badge goes (obs_script.cover): a square as tall as the
        label, in the label's corner."""
        x0, y0, x1, y1 = label_rect(width, height, "rgba", self.settings.label_corner,
                                    size=self.label.drawn or self.settings.label_size)
        side = y1 - y0
        left = x0 if self.settings.label_corner.endswith("left") else x1 - side
        return left, y0, left + side, y1

    # --- status thread -------------------------------------------------------------------
    def poll(self) -> dict:
        """Refresh the engine health and return this filter's status (engine + render)."""
        status = self.service.status()
        self.obs_frame_ns = L.obs_get_frame_interval_ns()  # changes only on a video reset
        if self.label.moved(self.settings.label_size, self.exchange.size):
            self.service.apply(self._engine_settings())  # a new source, canvas or scale
        self.watch.check(status["model_file"], self.service)
        before = self.health.problem
        if self.health.update(status, self.service.latest_result(), self.settings_error):
            self.first_seq = self.service.last_seq() + 1  # swaps from before it stay unseen
        problem = self.health.problem
        if problem and problem != before:  # the panel wraps it; the log keeps it whole
            L.log(L.LOG_WARNING, f"{self.parent_name}/{self.name}: not swapping: {problem}")
        raw = self.raw
        status.update(filter=self.name, source=self.parent_name, problem=problem,
                      swapping=not problem and status["state"] == "ready",
                      size=list(self.exchange.size), **self.stats.report(),
                      async_format=raw.format, copy_ms=percentiles(raw.copy_ms),
                      convert_ms=percentiles(self.feed.convert_ms),
                      convert_errors=self.feed.errors, convert_error=self.feed.last_error,
                      callback_errors=registration.callback_errors(self.key),
                      on_lost=self.settings.on_lost, covered=self.covered,
                      label_size_drawn=self.label.drawn, canvas_size=self.label.canvas,
                      shown_scale=round(self.label.shown_scale, 4),
                      panel_pushes=self.push.pushes,
                      settings=dataclasses.asdict(self.settings))
        self.health.status = status
        line, kind = properties.status_line(status)
        rebuild = self.push.due(line, kind)
        if rebuild or line != self.push.written:
            self.push.written = line
            registration.queue_ui(lambda: properties.push_status(self, rebuild))
        return status

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


class LabelSizing:
    """The disclosure label's size for the engine: the filter's setting, sized for the canvas
    the source is shown in at its scene item's scale (core.label.size_for_output)."""

    def __init__(self) -> None:
        self.canvas = (0, 0)  # OBS's canvas, read by moved() (status thread)
        self.shown_scale = 1.0  # the smallest scene-item scale the source is shown at (set
        # on the UI thread: obs_script.script.measure_scales)
        self.drawn = 0.0  # the label size the engine draws with (% of the source)

    def engine_size(self, setting: float, source: tuple[int, int]) -> float:
        """The size to draw with now (remembered as `drawn`)."""
        self.drawn = size_for_output(setting, source, self.canvas, self.shown_scale)
        return self.drawn

    def moved(self, setting: float, source: tuple[int, int]) -> bool:
        """Whether a new canvas, source size or scale asks for another size than `drawn`."""
        self.canvas = L.canvas_size()
        return size_for_output(setting, source, self.canvas, self.shown_scale) != self.drawn

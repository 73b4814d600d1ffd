"""Graphics-thread frame exchange: grab the parent into numpy, draw the newest result.

Everything here runs on the graphics thread and does only what must happen there. Two
ways in: for an async parent (webcam, capture card, media) `copy_async_frame` copies the
planes of its raw frame as libobs hands it to filter_video (conversion happens on the
feed's thread, see asyncframe.py); for every other parent `FrameExchange.grab` renders
the filter's target into a texrender, stages it into one of two stage surfaces while
mapping the one staged a frame earlier (mapping the surface just staged would stall on the
GPU), and copies the mapped rows once into a numpy frame. One way out: upload/draw a
finished result. No colour conversion, no inference.
"""

from __future__ import annotations

import ctypes as C
import sys
import time

import numpy as np

from obs_script import asyncframe
from obs_script import libobs as L

_CLEAR = (C.c_float * 8)()  # vec4 zero; gs_clear reads 16 bytes, aligned inside this buffer
_CLEAR_PTR = (C.addressof(_CLEAR) + 15) & ~15


POOL_SIZE = 4  # grab buffers kept: enough for the frames the engine can hold at once (below)


def _references(pool: list[np.ndarray], index: int) -> int:
    return sys.getrefcount(pool[index])


# What _references reports for a buffer that only its pool list holds (the list + the call's
# argument; measured rather than assumed, so a different interpreter cannot fool it).
_UNSHARED = _references([np.empty(1, np.uint8)], 0)


class FramePool:
    """Reusable grab buffers: one full frame is ~3.6 MB at 720p, allocated per grab otherwise.

    Invariant: a buffer is handed out again only when nothing but this pool references it -
    no mailbox slot, no frame the worker is processing, no `Result` holding an input that
    failed, no service "last input", no numpy view of it (a view holds its base). CPython's
    reference count says exactly that; a buffer that only the pool references cannot be
    picked up by another thread afterwards, so reusing it cannot race. With the engine
    holding at most three frames (mailbox + in process + a failed result), POOL_SIZE = 4
    means a free buffer normally exists; when none is, a new frame is allocated (the pool
    never waits and never hands out a buffer in use).
    """

    def __init__(self, size: int = POOL_SIZE) -> None:
        if size < 1:
            raise ValueError(f"pool size must be at least 1, got {size}")
        self.size = size
        self._buffers: list[np.ndarray] = []
        self.allocations = 0  # buffers made (pooled or not): stays flat once warm

    def take(self, shape: tuple[int, ...]) -> np.ndarray:
        """A uint8 array of `shape` that nobody else holds (contents undefined)."""
        buffers = self._buffers
        if buffers and buffers[0].shape != shape:
            buffers.clear()  # size change: the old buffers go when their holders drop them
        for i in range(len(buffers)):
            if _references(buffers, i) <= _UNSHARED:
                return buffers[i]
        frame = np.empty(shape, np.uint8)
        self.allocations += 1
        if len(buffers) < self.size:
            buffers.append(frame)
        return frame


def render_directly(target: int, parent: int) -> bool:
    """Whether to draw the parent itself inside the default effect, as libobs' own
    obs_source_process_filter_begin does: a parent with filters is otherwise handed no
    effect and draws nothing (image sources, for one). Other targets render normally."""
    flags = L.obs_source_get_output_flags(target)
    return target == parent and not flags & (L.OBS_SOURCE_CUSTOM_DRAW | L.OBS_SOURCE_ASYNC)


class FrameExchange:
    """GPU resources of one filter instance and the two per-frame operations on them."""

    def __init__(self) -> None:
        self.size = (0, 0)  # (width, height) the resources below were made for
        self.texrender = None
        self.stages = [None, None]
        self.staged = [False, False]
        self.current = 0  # stage surface written this frame
        self.texture = None
        self.uploaded = None  # the result array now in `texture` (identity, not a copy)
        self.effect = None
        self.image_param = None
        self.parent_ms = 0.0  # CPU time of the parent's own render in the last grab
        self.stage_ms = 0.0  # ... and of staging it (where a software GPU does its work)
        self.pool = FramePool()  # the numpy frames grab() returns

    def prepare(self, width: int, height: int) -> None:
        """Size the result texture for results of width x height (the async path's only
        GPU resource); forget staged frames, which are stale once this path is used."""
        if (width, height) != self.size:
            self._free_sized()
            self.texture = L.gs_texture_create(width, height, L.GS_RGBA, 1, None,
                                               L.GS_DYNAMIC)
            self.size = (width, height)
        self.staged = [False, False]

    def forget_staged(self) -> None:
        """Drop what is staged (after a pause: those frames are old)."""
        self.staged = [False, False]

    def _free_sized(self) -> None:
        for stage in self.stages:
            if stage:
                L.gs_stagesurface_destroy(stage)
        if self.texture:
            L.gs_texture_destroy(self.texture)
        self.stages, self.staged = [None, None], [False, False]
        self.texture, self.uploaded, self.size = None, None, (0, 0)

    def grab(self, target: int, direct: bool, width: int, height: int) -> np.ndarray | None:
        """Render `target`, stage it, and return the frame staged one call earlier (RGBA).

        `direct`: target is the parent and draws with the default effect (see
        `render_directly`). None on the first call after a size change and when the GPU
        refuses a step.
        """
        if (width, height) != self.size:
            self.prepare(width, height)
        if self.stages[0] is None:
            self.stages = [L.gs_stagesurface_create(width, height, L.GS_RGBA)
                           for _ in range(2)]
            self.staged = [False, False]
        if self.texrender is None:
            self.texrender = L.gs_texrender_create(L.GS_RGBA, L.GS_ZS_NONE)
        L.gs_texrender_reset(self.texrender)
        if not L.gs_texrender_begin(self.texrender, width, height):
            return None
        L.gs_clear(L.GS_CLEAR_COLOR, _CLEAR_PTR, 0.0, 0)
        L.gs_ortho(0.0, float(width), 0.0, float(height), -100.0, 100.0)
        L.gs_blend_state_push()
        L.gs_blend_function(L.GS_BLEND_ONE, L.GS_BLEND_ZERO)
        start = time.perf_counter()
        if direct:
            L.obs_source_default_render(target)
        else:
            L.obs_source_video_render(target)
        self.parent_ms = (time.perf_counter() - start) * 1000.0
        L.gs_blend_state_pop()
        L.gs_texrender_end(self.texrender)

        now, previous = self.current, 1 - self.current
        start = time.perf_counter()
        L.gs_stage_texture(self.stages[now], L.gs_texrender_get_texture(self.texrender))
        self.stage_ms = (time.perf_counter() - start) * 1000.0
        self.staged[now] = True
        self.current = previous
        if not self.staged[previous]:
            return None
        self.staged[previous] = False
        return self._read(self.stages[previous], width, height)

    def _read(self, stage: int, width: int, height: int) -> np.ndarray | None:
        data, linesize = C.c_void_p(), C.c_uint32()
        if not L.gs_stagesurface_map(stage, C.byref(data), C.byref(linesize)):
            return None
        try:
            pitch = linesize.value
            rows = np.frombuffer((C.c_uint8 * (pitch * height)).from_address(data.value),
                                 np.uint8).reshape(height, pitch)
            frame = self.pool.take((height, width, 4))
            np.copyto(frame.reshape(height, width * 4), rows[:, : width * 4])
            return frame
        finally:
            L.gs_stagesurface_unmap(stage)

    def draw(self, result: np.ndarray) -> bool:
        """Draw `result` (HxWx4 RGBA, the current size); upload it only if it is new."""
        width, height = self.size
        if self.texture is None or result.shape != (height, width, 4):
            return False
        if result is not self.uploaded:
            pixels = np.ascontiguousarray(result)
            L.gs_texture_set_image(self.texture, pixels.ctypes.data, width * 4, False)
            self.uploaded = result
        if self.effect is None:
            self.effect = L.obs_get_base_effect(L.OBS_EFFECT_DEFAULT)
            self.image_param = L.gs_effect_get_param_by_name(self.effect, b"image")
        L.gs_effect_set_texture(self.image_param, self.texture)
        while L.gs_effect_loop(self.effect, b"Draw"):
            L.gs_draw_sprite(self.texture, 0, width, height)
        return True

    def free(self) -> None:
        """Release all GPU resources; the caller holds the graphics context."""
        self._free_sized()
        if self.texrender:
            L.gs_texrender_destroy(self.texrender)
            self.texrender = None


def frame_info(frame_ptr: int) -> L.SourceFrame:
    """The obs_source_frame at `frame_ptr` (read in place: valid during the callback only)."""
    return L.SourceFrame.from_address(frame_ptr)


def copy_async_frame(frame: L.SourceFrame, feed: asyncframe.FrameFeed
                     ) -> asyncframe.RawFrame | None:
    """Copy the planes of `frame` into pooled buffers of `feed` (one memcpy per plane row
    block); None when the format or size is one asyncframe does not convert."""
    width, height, fmt = frame.width, frame.height, frame.format
    layout = asyncframe.plane_layout(fmt, width, height)
    if layout is None:
        return None
    planes = feed.planes(layout)
    for i, (rows, row_bytes) in enumerate(layout):
        pitch, address = frame.linesize[i], frame.data[i]
        if not address or pitch < row_bytes:
            return None
        size = pitch * (rows - 1) + row_bytes  # the last row may end right after its pixels
        source = np.ndarray((rows, row_bytes), np.uint8,
                            (C.c_uint8 * size).from_address(address), strides=(pitch, 1))
        np.copyto(planes[i], source)
    matrix = np.frombuffer(frame.color_matrix, np.float32).copy()
    return asyncframe.RawFrame(
        fmt, width, height, planes, matrix,
        np.frombuffer(frame.color_range_min, np.float32).copy(),
        np.frombuffer(frame.color_range_max, np.float32).copy(),
        full_range=bool(frame.full_range), flip=bool(frame.flip), timestamp=frame.timestamp)

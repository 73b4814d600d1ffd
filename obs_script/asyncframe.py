"""Raw frames of asynchronous OBS sources (webcams, capture cards, media) -> RGBA.

An async source hands libobs CPU-side frames (struct obs_source_frame) in YUV or RGB
layouts; libobs converts them to RGB on the GPU with the frame's own 3x4 colour matrix
and range (libobs/data/format_conversion.effect, YUV_to_RGB). Reading those frames
before upload spares the filter the GPU->CPU copy-back that costs ~10 ms per 720p frame
on software OpenGL. The graphics thread only copies the planes (`FrameFeed.planes` +
`FrameFeed.put`); this module's thread does the conversion, the same way the shader does:
clamp YUV to the frame's range, chroma upsampled bilinearly (left-sited horizontally,
centred vertically, as libobs' *Left_Reverse vertex shaders sample it), then the matrix.
Pure numpy/cv2, no OBS needed: unit-tested against cv2.cvtColor.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

# enum video_format (libobs/media-io/video-io.h; unchanged from OBS 26 to 32)
VIDEO_FORMAT_I420 = 1
VIDEO_FORMAT_NV12 = 2
VIDEO_FORMAT_YVYU = 3
VIDEO_FORMAT_YUY2 = 4
VIDEO_FORMAT_UYVY = 5
VIDEO_FORMAT_RGBA = 6
VIDEO_FORMAT_BGRA = 7
VIDEO_FORMAT_BGRX = 8

FORMAT_NAMES = {VIDEO_FORMAT_I420: "I420", VIDEO_FORMAT_NV12: "NV12",
                VIDEO_FORMAT_YVYU: "YVYU", VIDEO_FORMAT_YUY2: "YUY2",
                VIDEO_FORMAT_UYVY: "UYVY", VIDEO_FORMAT_RGBA: "RGBA",
                VIDEO_FORMAT_BGRA: "BGRA", VIDEO_FORMAT_BGRX: "BGRX"}
YUV_FORMATS = {VIDEO_FORMAT_I420, VIDEO_FORMAT_NV12, VIDEO_FORMAT_YVYU, VIDEO_FORMAT_YUY2,
               VIDEO_FORMAT_UYVY}
# byte offsets of (Y0, U, Y1, V) inside one 4-byte macropixel of the packed 4:2:2 formats
PACKED_422 = {VIDEO_FORMAT_YUY2: (0, 1, 2, 3), VIDEO_FORMAT_UYVY: (1, 0, 3, 2),
              VIDEO_FORMAT_YVYU: (0, 3, 2, 1)}
# chroma sample position -> source coordinates for cv2.warpAffine(WARP_INVERSE_MAP):
# left-sited horizontally (x / 2), centred vertically for 4:2:0 ((y + 0.5) / 2 - 0.5)
CHROMA_420 = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, -0.25]])
CHROMA_422 = np.array([[0.5, 0.0, 0.0], [0.0, 1.0, 0.0]])
POOL = 3  # plane sets per feed: one being written, one waiting, one being converted


def format_name(fmt: int) -> str:
    return FORMAT_NAMES.get(fmt, f"format {fmt}")


def plane_layout(fmt: int, width: int, height: int) -> tuple[tuple[int, int], ...] | None:
    """(rows, bytes per row) of each plane of a `fmt` frame; None for formats not handled
    here (the caller then uses the texrender path) and for sizes they cannot have."""
    if width < 2 or height < 2:
        return None
    if fmt in (VIDEO_FORMAT_I420, VIDEO_FORMAT_NV12):
        if width % 2 or height % 2:
            return None
        if fmt == VIDEO_FORMAT_NV12:
            return (height, width), (height // 2, width)
        return (height, width), (height // 2, width // 2), (height // 2, width // 2)
    if fmt in PACKED_422:
        return None if width % 2 else ((height, width * 2),)
    if fmt in (VIDEO_FORMAT_RGBA, VIDEO_FORMAT_BGRA, VIDEO_FORMAT_BGRX):
        return ((height, width * 4),)
    return None


@dataclass
class RawFrame:
    """A copy of one obs_source_frame: planes plus what the GPU conversion would use.

    matrix: the frame's color_matrix as 4x4 (rows r, g, b, unused) acting on (y, u, v, 1)
    in [0, 1]; range_min / range_max: the YUV clamp (ignored when full_range, as libobs
    does). Only used for YUV formats.
    """

    fmt: int
    width: int
    height: int
    planes: list[np.ndarray]
    matrix: np.ndarray
    range_min: np.ndarray
    range_max: np.ndarray
    full_range: bool = False
    flip: bool = False
    timestamp: int = 0

    def __post_init__(self) -> None:
        layout = plane_layout(self.fmt, self.width, self.height)
        if layout is None:
            raise ValueError(f"unsupported frame: {format_name(self.fmt)} "
                             f"{self.width}x{self.height}")
        shapes = tuple(p.shape for p in self.planes)
        if shapes != layout or any(p.dtype != np.uint8 for p in self.planes):
            raise ValueError(f"{format_name(self.fmt)} {self.width}x{self.height} needs uint8 "
                             f"planes {layout}, got {shapes}")


def _yuv_to_rgba(y: np.ndarray, chroma: np.ndarray, frame: RawFrame) -> np.ndarray:
    """Full-size luma (H, W) + subsampled interleaved (U, V) -> RGBA, like YUV_to_RGB."""
    height, width = y.shape
    siting = CHROMA_420 if chroma.shape[0] * 2 == height else CHROMA_422
    uv = cv2.warpAffine(chroma.astype(np.float32), siting, (width, height),
                        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                        borderMode=cv2.BORDER_REPLICATE)
    yuv = cv2.merge([y.astype(np.float32), uv])
    if not frame.full_range:
        lo = np.asarray(frame.range_min, np.float64)[:3] * 255.0
        hi = np.asarray(frame.range_max, np.float64)[:3] * 255.0
        yuv = cv2.min(cv2.max(yuv, (*lo, 0.0)), (*hi, 0.0))
    m = np.asarray(frame.matrix, np.float64).reshape(4, 4)
    transform = np.empty((3, 4), np.float32)  # 0..255 in and out: the offset scales by 255
    transform[:, :3] = m[:3, :3]
    transform[:, 3] = m[:3, 3] * 255.0
    rgb = cv2.max(cv2.transform(yuv, transform), 0.0)
    rgb = cv2.convertScaleAbs(rgb)  # rounds to nearest and saturates at 255
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)  # opaque alpha, as the shader returns


def to_rgba(frame: RawFrame) -> np.ndarray:
    """The frame as HxWx4 RGBA uint8, upright (frame.flip undone)."""
    fmt, width, height = frame.fmt, frame.width, frame.height
    planes = frame.planes
    if fmt == VIDEO_FORMAT_NV12:
        rgba = _yuv_to_rgba(planes[0], planes[1].reshape(height // 2, width // 2, 2), frame)
    elif fmt == VIDEO_FORMAT_I420:
        rgba = _yuv_to_rgba(planes[0], cv2.merge([planes[1], planes[2]]), frame)
    elif fmt in PACKED_422:
        y0, u, y1, v = PACKED_422[fmt]
        quads = planes[0].reshape(height, width // 2, 4)
        luma = quads[..., [y0, y1]].reshape(height, width)
        rgba = _yuv_to_rgba(luma, quads[..., [u, v]], frame)
    elif fmt == VIDEO_FORMAT_RGBA:
        rgba = planes[0].reshape(height, width, 4).copy()
    else:  # BGRA, BGRX
        rgba = cv2.cvtColor(planes[0].reshape(height, width, 4), cv2.COLOR_BGRA2RGBA)
        if fmt == VIDEO_FORMAT_BGRX:
            rgba[..., 3] = 255
    if frame.flip:
        rgba = np.ascontiguousarray(rgba[::-1])
    return rgba


class FrameFeed:
    """Graphics thread -> conversion thread hand-over of raw frames, newest wins.

    The graphics thread asks for a set of planes (`planes`), copies a frame into them and
    `put`s it; it never waits and never allocates once the pool is warm. A thread started
    on the first frame converts the newest frame with `to_rgba` and passes the result to
    `sink` (the swap service's submit). Older unconverted frames are dropped.
    """

    def __init__(self, sink: Callable[[np.ndarray], None],
                 name: str = "face-swap-convert") -> None:
        if not callable(sink):
            raise ValueError(f"sink must be callable, got {type(sink).__name__}")
        self._sink = sink
        self._name = name
        self._cond = threading.Condition()
        self._pending: RawFrame | None = None
        self._layout: tuple[tuple[int, int], ...] | None = None
        self._free: list[list[np.ndarray]] = []
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.frames_in = self.frames_out = self.dropped = self.errors = 0
        self.last_error = ""
        self.convert_ms: deque[float] = deque(maxlen=600)

    def planes(self, layout: tuple[tuple[int, int], ...]) -> list[np.ndarray]:
        """A free set of planes of `layout` for the next frame (pooled; new on a change)."""
        with self._cond:
            if layout != self._layout:
                self._layout, self._free = layout, []
            if self._free:
                return self._free.pop()
        return [np.empty(shape, np.uint8) for shape in layout]

    def put(self, frame: RawFrame) -> None:
        """Hand over a filled frame; never blocks. Ignored after stop()."""
        with self._cond:
            if self._stopped:
                return
            self.frames_in += 1
            if self._pending is not None:
                self.dropped += 1
                self._recycle(self._pending.planes)
            self._pending = frame
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name,
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _recycle(self, planes: list[np.ndarray]) -> None:  # caller holds the lock
        if self._layout == tuple(p.shape for p in planes) and len(self._free) < POOL:
            self._free.append(planes)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                frame, self._pending = self._pending, None
            start = time.perf_counter()
            try:
                rgba = to_rgba(frame)
                self.convert_ms.append((time.perf_counter() - start) * 1000.0)
                self._sink(rgba)
                self.frames_out += 1
            except Exception as exc:  # one bad frame must not end the stream
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                with self._cond:
                    self._recycle(frame.planes)

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop the thread (True once it has ended); later frames are ignored."""
        with self._cond:
            self._stopped = True
            self._pending = None
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

"""Raw frames of asynchronous OBS sources (webcams, capture cards, media) -> RGBA.

An async source hands libobs CPU-side frames (struct obs_source_frame) in YUV or RGB
layouts; libobs converts them to RGB on the GPU with the frame's own 3x4 colour matrix
and range (libobs/data/format_conversion.effect, YUV_to_RGB). Reading those frames
before upload spares the filter the GPU->CPU copy-back that costs ~10 ms per 720p frame
on software OpenGL. The graphics thread only copies the planes (`FrameFeed.planes` +
`FrameFeed.put`); this module's thread does the conversion, the same way the shader does:
chroma upsampled bilinearly (left-sited horizontally, centred vertically, as libobs'
*Left_Reverse vertex shaders sample it), YUV clamped to the frame's range, then the matrix.
That thread shares two cores with the face swap, so the YUV paths run in int16 fixed point
(1/8 level for 4:2:0, 1/2 for 4:2:2: the bilinear weights are multiples of those, so the
upsampled chroma is exact and only the matrix product is rounded) with cv2 calls on reused
buffers: ~3 ms per 720p frame where float32 took ~13 ms. Pure numpy/cv2, no OBS needed:
unit-tested against cv2.cvtColor and a float64 model of the shader.
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


class _Scratch(threading.local):
    """Per-thread intermediate buffers, kept while format and size stay: fresh arrays of
    several MB cost more in page faults than the conversion itself (~3400 faults, ~4 ms
    per 720p frame here). Never used for the returned frame, which the engine keeps."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.key: tuple[int, int, int] | None = None

    def begin(self, frame: RawFrame) -> None:
        """Drop the buffers of another format or size (only one set is ever held)."""
        key = (frame.fmt, frame.width, frame.height)
        if key != self.key:
            self.arrays, self.key = {}, key

    def get(self, name: str, shape: tuple[int, ...], dtype: type = np.int16) -> np.ndarray:
        array = self.arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = self.arrays[name] = np.empty(shape, dtype)
        return array


_SCRATCH = _Scratch()


def _bounds(frame: RawFrame, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """The (y, u, v) clamp in 1/scale levels, rounded to that grid: the frame's range, or
    none when full_range (libobs does not clamp full-range YUV)."""
    if frame.full_range:
        return np.zeros(3), np.full(3, 255.0 * scale)
    lo = np.asarray(frame.range_min, np.float64)[:3] * (255.0 * scale)
    hi = np.asarray(frame.range_max, np.float64)[:3] * (255.0 * scale)
    return np.rint(lo), np.rint(hi)


def _lut(scale: int, lo: float = 0.0, hi: float = 32767.0) -> np.ndarray:
    """uint8 level -> int16 in 1/scale levels, clamped to [lo, hi] (1/scale levels)."""
    return np.clip(np.arange(256.0) * scale, lo, hi).astype(np.int16)


def _yuv_to_rgba(yuv: np.ndarray, scale: int, clamp: tuple[np.ndarray, np.ndarray] | None,
                 frame: RawFrame) -> np.ndarray:
    """(H, W, 3) int16 YUV in 1/scale levels -> RGBA, like YUV_to_RGB.

    Clamped in place to `clamp` (lo, hi per channel) unless None, then multiplied by the
    matrix. int16 because cv2.transform rounds it exactly (its uint16 path loses ~1/256
    level to an offset trick and misrounds ~0.1% of values). Intermediates: _SCRATCH.
    """
    if clamp is not None:
        yuv = cv2.max(yuv, (*clamp[0], 0.0), yuv)
        yuv = cv2.min(yuv, (*clamp[1], 0.0), yuv)
    m = np.asarray(frame.matrix, np.float64).reshape(4, 4)
    transform = np.empty((3, 4), np.float32)  # 1/scale levels in, 0..255 out
    transform[:, :3] = m[:3, :3] / scale
    transform[:, 3] = m[:3, 3] * 255.0
    rgb = cv2.transform(yuv, transform, _SCRATCH.get("rgb", yuv.shape))  # rounds to nearest
    rgb = cv2.max(rgb, (0.0, 0.0, 0.0, 0.0), rgb)
    rgb8 = cv2.convertScaleAbs(rgb, _SCRATCH.get("rgb8", yuv.shape, np.uint8))  # <= 255
    if frame.flip:
        rgb8 = cv2.flip(rgb8, 0, rgb8)
    return cv2.cvtColor(rgb8, cv2.COLOR_RGB2RGBA)  # opaque alpha, as the shader returns


def _planar_420(luma: np.ndarray, chroma: np.ndarray, frame: RawFrame) -> np.ndarray:
    """Luma (H, W) + interleaved 4:2:0 chroma (H/2, W/2, 2) -> RGBA.

    In 1/8 levels, where the upsampled chroma is exact: across, left-sited (even columns
    take a sample, odd ones the mean of two: done at chroma resolution), then down,
    centred (cv2.resize's linear siting: 3/4 + 1/4 of the two nearest rows, edges
    repeated), as libobs' VS420Left_Reverse samples it.
    """
    height, width = luma.shape
    rows, half = chroma.shape[:2]
    lo, hi = _bounds(frame, 8)
    y = cv2.LUT(luma, _lut(8, lo[0], hi[0]), _SCRATCH.get("y", luma.shape))  # clamped
    padded = cv2.copyMakeBorder(chroma, 0, 0, 0, 1, cv2.BORDER_REPLICATE,
                                _SCRATCH.get("pad", (rows, half + 1, 2), np.uint8))
    quarter = cv2.LUT(padded, _lut(4), _SCRATCH.get("quarter", (rows, half + 1, 2)))
    even = cv2.add(quarter[:, :-1], quarter[:, :-1], _SCRATCH.get("even", chroma.shape))
    odd = cv2.add(quarter[:, :-1], quarter[:, 1:], _SCRATCH.get("odd", chroma.shape))
    across = [_SCRATCH.get("u", (rows, width)), _SCRATCH.get("v", (rows, width))]
    cv2.mixChannels([even, odd], [a.reshape(rows, half, 2) for a in across],
                    [0, 0, 2, 1, 1, 2, 3, 3])  # (even u, odd u), (even v, odd v)
    planes = [y] + [cv2.resize(a, (width, height), _SCRATCH.get(name, luma.shape),
                               interpolation=cv2.INTER_LINEAR)
                    for name, a in zip(("u_full", "v_full"), across, strict=True)]
    yuv = cv2.merge(planes, _SCRATCH.get("yuv", (height, width, 3)))
    # upsampled values lie between the samples: no clamp needed when those are inside
    low, high = cv2.minMaxLoc(chroma.reshape(rows, -1))[:2]
    inside = low * 8 >= max(lo[1], lo[2]) and high * 8 <= min(hi[1], hi[2])
    clamp = None if inside else ((0.0, lo[1], lo[2]), (32767.0, hi[1], hi[2]))
    return _yuv_to_rgba(yuv, 8, clamp, frame)


def _packed_422(plane: np.ndarray, frame: RawFrame) -> np.ndarray:
    """One packed 4:2:2 plane (H, 2W) in frame.fmt's byte order -> RGBA.

    In 1/2 levels, where the left-sited chroma is exact: each macropixel doubled (luma,
    chroma of the even column) and each plus the next (chroma of the odd column; the last
    macropixel doubled, the edge repeated as the shader's clamped sampler does).
    """
    height, half = plane.shape[0], plane.shape[1] // 4
    y0, u, y1, v = PACKED_422[frame.fmt]
    quads = _SCRATCH.get("quads", (height, half, 4))
    np.copyto(quads, plane.reshape(height, half, 4), casting="unsafe")  # uint8 -> int16
    doubled = cv2.add(quads, quads, _SCRATCH.get("doubled", quads.shape))
    sums = _SCRATCH.get("sums", quads.shape)
    cv2.add(quads[:, :-1], quads[:, 1:], sums[:, :-1])  # writes into the view
    sums[:, -1] = doubled[:, -1]
    yuv = _SCRATCH.get("yuv", (height, half * 2, 3))
    cv2.mixChannels([doubled, sums], [yuv.reshape(height, half, 6)],
                    [y0, 0, u, 1, v, 2, y1, 3, 4 + u, 4, 4 + v, 5])  # even, odd column
    return _yuv_to_rgba(yuv, 2, None if frame.full_range else _bounds(frame, 2), frame)


def to_rgba(frame: RawFrame) -> np.ndarray:
    """The frame as HxWx4 RGBA uint8, upright (frame.flip undone)."""
    fmt, width, height = frame.fmt, frame.width, frame.height
    planes = frame.planes
    _SCRATCH.begin(frame)
    if fmt == VIDEO_FORMAT_NV12:
        return _planar_420(planes[0], planes[1].reshape(height // 2, width // 2, 2), frame)
    if fmt == VIDEO_FORMAT_I420:
        chroma = _SCRATCH.get("uv", (height // 2, width // 2, 2), np.uint8)
        return _planar_420(planes[0], cv2.merge([planes[1], planes[2]], chroma), frame)
    if fmt in PACKED_422:
        return _packed_422(planes[0], frame)
    if fmt == VIDEO_FORMAT_RGBA:
        rgba = planes[0].reshape(height, width, 4).copy()
    else:  # BGRA, BGRX
        rgba = cv2.cvtColor(planes[0].reshape(height, width, 4), cv2.COLOR_BGRA2RGBA)
        if fmt == VIDEO_FORMAT_BGRX:
            rgba[..., 3] = 255
    if frame.flip:
        rgba = cv2.flip(rgba, 0)
    return rgba


class FrameFeed:
    """Graphics thread -> conversion thread hand-over of raw frames, newest wins.

    The graphics thread asks for a set of planes (`planes`), copies a frame into them and
    `put`s it; it never waits and never allocates once the pool is warm. A thread started
    on the first frame converts the newest frame with `to_rgba` and passes the result to
    `sink` (the swap service's submit). Older unconverted frames are dropped.
    """

    def __init__(self, sink: Callable[[np.ndarray], object],
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

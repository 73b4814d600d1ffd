"""obs_script.asyncframe: raw async-source frames -> RGBA, checked against real cv2.

Matrices are built the way libobs builds them (video_format_get_parameters; cross-checked
against the installed libobs when there is one): rows r, g, b acting on (y, u, v, 1) in
[0, 1]. References: cv2.cvtColor (BT.601 limited for NV12/I420/YUY2/UYVY, BT.601 full
for YCrCb) and, for BT.709, the original RGB image the YUV was made from.
"""

from __future__ import annotations

import ctypes as C
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import read_rgb

from obs_script import asyncframe as A

LIMITED = (np.array([16, 16, 16]) / 255.0, np.array([235, 240, 240]) / 255.0)
FULL = (np.zeros(3), np.ones(3))
KR_KB = {"601": (0.299, 0.114), "709": (0.2126, 0.0722)}


def obs_matrix(space: str, full: bool) -> np.ndarray:
    """YUV -> RGB as libobs' color_matrix (4x4, row-major, last row 0 0 0 1)."""
    kr, kb = KR_KB[space]
    kg = 1.0 - kr - kb
    m = np.array([[1.0, 0.0, 2 * (1 - kr)],
                  [1.0, -2 * (1 - kb) * kb / kg, -2 * (1 - kr) * kr / kg],
                  [1.0, 2 * (1 - kb), 0.0]])
    if full:
        black, scale = np.array([0.0, 128 / 255, 128 / 255]), np.ones(3)
    else:
        black, scale = np.array([16, 128, 128]) / 255, np.array([255 / 219, 255 / 224,
                                                                 255 / 224])
    m = m * scale
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = m, -m @ black
    return out


def rgb_to_yuv(rgb: np.ndarray, space: str, full: bool) -> np.ndarray:
    """Float64 (y, u, v) in 0..255 of an RGB image: the inverse of obs_matrix."""
    m = obs_matrix(space, full)
    inverse = np.linalg.inv(m)
    flat = np.concatenate([rgb.reshape(-1, 3) / 255.0, np.ones((rgb.size // 3, 1))], 1)
    return ((flat @ inverse.T)[:, :3] * 255.0).reshape(rgb.shape)


def frame(fmt: int, planes: list[np.ndarray], width: int, height: int, space: str = "601",
          full: bool = False, flip: bool = False) -> A.RawFrame:
    lo, hi = FULL if full else LIMITED
    return A.RawFrame(fmt, width, height, [np.ascontiguousarray(p) for p in planes],
                      obs_matrix(space, full), lo, hi, full_range=full, flip=flip)


def i420_planes(i420: np.ndarray, width: int, height: int) -> list[np.ndarray]:
    """cv2's I420 layout (H*3/2 x W) -> Y, U, V planes."""
    q = height * width // 4
    flat = i420.reshape(-1)
    y = flat[: width * height].reshape(height, width)
    u = flat[width * height: width * height + q].reshape(height // 2, width // 2)
    v = flat[width * height + q:].reshape(height // 2, width // 2)
    return [y, u, v]


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(read_rgb("astronaut.png")[:480, :320])  # 320x480, a face


@pytest.fixture(scope="module")
def flat_chroma() -> np.ndarray:
    """RGB whose chroma is constant in 16x16 blocks while luma varies per pixel, so
    chroma upsampling cannot matter away from block edges."""
    rng = np.random.default_rng(1)
    h, w = 64, 96  # values inside the limited range: cv2 does not clamp, libobs does
    y = rng.integers(16, 236, (h, w)).astype(np.uint8)
    u = np.kron(rng.integers(16, 241, (h // 16, w // 16)), np.ones((16, 16))).astype(np.uint8)
    v = np.kron(rng.integers(16, 241, (h // 16, w // 16)), np.ones((16, 16))).astype(np.uint8)
    return np.stack([y, u, v], axis=2)


def block_interior(h: int, w: int) -> np.ndarray:
    """Pixels at least 2 px from a 16x16 block edge (where bilinear chroma is flat)."""
    rows = (np.arange(h) % 16 >= 2) & (np.arange(h) % 16 < 14)
    cols = (np.arange(w) % 16 >= 2) & (np.arange(w) % 16 < 14)
    return rows[:, None] & cols[None, :]


def absdiff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16))


# --- YUV formats against cv2.cvtColor (BT.601, limited range) --------------------------
def test_i420_photo_matches_cvtcolor(photo):
    h, w = photo.shape[:2]
    i420 = cv2.cvtColor(photo, cv2.COLOR_RGB2YUV_I420)
    out = A.to_rgba(frame(A.VIDEO_FORMAT_I420, i420_planes(i420, w, h), w, h))
    ref = cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)
    assert out.shape == (h, w, 4) and out.dtype == np.uint8
    assert (out[..., 3] == 255).all()
    # cv2 repeats each chroma sample, libobs interpolates: a little off cv2, nearer the photo
    # (measured with opencv-python-headless 5.0.0.93, which makes both the I420 and `ref`)
    assert absdiff(out[..., :3], ref).mean() < 1.6  # measured 1.38
    assert absdiff(out[..., :3], photo).mean() < absdiff(ref, photo).mean()  # 1.65 < 2.00


def yuv_to_formats(yuv: np.ndarray) -> dict[int, tuple[list[np.ndarray], int]]:
    """One YUV 4:4:4 image (chroma flat per 2x2) packed as every supported YUV layout,
    with the cv2 code that decodes that layout."""
    y, u, v = (yuv[..., i] for i in range(3))
    u2, v2 = u[::2, ::2], v[::2, ::2]
    nv12_uv = np.stack([u2, v2], axis=2).reshape(u2.shape[0], -1)
    h, w = y.shape
    packed = np.empty((h, w // 2, 4), np.uint8)
    packed[..., 0], packed[..., 2] = y[:, 0::2], y[:, 1::2]
    packed[..., 1], packed[..., 3] = u[:, 0::2], v[:, 0::2]
    uyvy = packed[..., [1, 0, 3, 2]]
    yvyu = packed[..., [0, 3, 2, 1]]
    return {A.VIDEO_FORMAT_I420: ([y, u2, v2], cv2.COLOR_YUV2RGB_I420),
            A.VIDEO_FORMAT_NV12: ([y, nv12_uv], cv2.COLOR_YUV2RGB_NV12),
            A.VIDEO_FORMAT_YUY2: ([packed.reshape(h, w * 2)], cv2.COLOR_YUV2RGB_YUY2),
            A.VIDEO_FORMAT_UYVY: ([uyvy.reshape(h, w * 2)], cv2.COLOR_YUV2RGB_UYVY),
            A.VIDEO_FORMAT_YVYU: ([yvyu.reshape(h, w * 2)], cv2.COLOR_YUV2RGB_YVYU)}


def cv2_input(fmt: int, planes: list[np.ndarray], h: int) -> np.ndarray:
    if fmt == A.VIDEO_FORMAT_I420:
        return np.concatenate([planes[0].reshape(-1), planes[1].reshape(-1),
                               planes[2].reshape(-1)]).reshape(h * 3 // 2, -1)
    if fmt == A.VIDEO_FORMAT_NV12:
        return np.concatenate([planes[0], planes[1]])
    return planes[0].reshape(h, -1, 2)


@pytest.mark.parametrize("fmt", sorted(A.YUV_FORMATS))
def test_every_yuv_layout_matches_cvtcolor_where_chroma_is_flat(fmt, flat_chroma):
    h, w = flat_chroma.shape[:2]
    planes, code = yuv_to_formats(flat_chroma)[fmt]
    out = A.to_rgba(frame(fmt, planes, w, h))
    ref = cv2.cvtColor(cv2_input(fmt, planes, h), code)
    inside = block_interior(h, w)
    assert absdiff(out[..., :3], ref)[inside].max() <= 1, A.format_name(fmt)


@pytest.mark.parametrize("fmt", sorted(A.YUV_FORMATS))
def test_every_yuv_layout_on_a_photo(fmt, photo):
    h, w = photo.shape[:2]
    yuv = cv2.cvtColor(photo, cv2.COLOR_RGB2YUV)  # BT.601 limited, 4:4:4
    planes, code = yuv_to_formats(yuv)[fmt]
    out = A.to_rgba(frame(fmt, planes, w, h))
    ref = cv2.cvtColor(cv2_input(fmt, planes, h), code)
    # cv2 repeats each chroma sample, libobs interpolates (exact per pixel where chroma is
    # flat, above): measured 1.45 for the 4:2:0 layouts (I420, NV12), 0.97 for the 4:2:2
    # ones, opencv-python-headless 5.0.0.93; the bound is ~1.3x the worst (was 1.5, 3 % off
    # it). A wrong matrix is off by 4 or more (test_matrix_of_the_frame_is_used).
    assert absdiff(out[..., :3], ref).mean() < 1.9, A.format_name(fmt)


# --- range and matrix -------------------------------------------------------------------
def test_full_range_bt601_matches_cvtcolor_ycrcb(flat_chroma):
    h, w = flat_chroma.shape[:2]
    y, u, v = (flat_chroma[..., i] for i in range(3))
    out = A.to_rgba(frame(A.VIDEO_FORMAT_I420, [y, u[::2, ::2], v[::2, ::2]], w, h,
                          full=True))
    ref = cv2.cvtColor(np.stack([y, v, u], axis=2), cv2.COLOR_YCrCb2RGB)  # full range
    assert absdiff(out[..., :3], ref)[block_interior(h, w)].max() <= 1


def test_limited_range_clamps_like_the_shader():
    """Y below 16 is black and above 235 white, not darker / brighter (libobs clamps)."""
    y = np.array([[0, 8, 16, 235, 250, 255]] * 2, np.uint8)
    u = np.full((1, 3), 128, np.uint8)
    out = A.to_rgba(frame(A.VIDEO_FORMAT_I420, [y, u, u], 6, 2))[0, :, 0]
    assert list(out) == [0, 0, 0, 255, 255, 255]
    full = A.to_rgba(frame(A.VIDEO_FORMAT_I420, [y, u, u], 6, 2, full=True))[0, :, 0]
    assert list(full) == [0, 8, 16, 235, 250, 255]


@pytest.mark.parametrize("space, full", [("709", False), ("709", True), ("601", True)])
def test_matrix_of_the_frame_is_used(photo, space, full):
    """YUV made from the photo with one matrix converts back to the photo with it, up to
    what 4:2:0 loses (and a decode with the other matrix visibly does not)."""
    h, w = photo.shape[:2]
    yuv = np.clip(np.rint(rgb_to_yuv(photo.astype(np.float64), space, full)), 0, 255)
    yuv = yuv.astype(np.uint8)
    planes, _ = yuv_to_formats(yuv)[A.VIDEO_FORMAT_NV12]
    out = A.to_rgba(frame(A.VIDEO_FORMAT_NV12, planes, w, h, space, full))
    assert absdiff(out[..., :3], photo).mean() < 2.0  # measured 1.63-1.67
    other = "601" if space == "709" else "709"
    wrong = A.to_rgba(frame(A.VIDEO_FORMAT_NV12, planes, w, h, other, full))
    assert absdiff(wrong[..., :3], photo).mean() > 3.5  # measured 4.13-4.25


def test_chroma_is_left_sited_and_bilinear():
    """Like libobs' VS420Left_Reverse: even columns take a chroma sample as it is, odd
    columns the mean of two neighbours; luma rows sit 1/4 chroma row off the chroma rows
    (3/4 + 1/4 of the two nearest), clamped at the edges."""
    w, h = 8, 4
    y = np.full((h, w), 128, np.uint8)
    u = np.full((h // 2, w // 2), 128, np.uint8)
    v = np.array([[128, 192, 128, 128], [128, 128, 128, 128]], np.uint8)
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = 0.0, 0.0
    m[0, 2] = 1.0  # red = V, so red shows the upsampled V plane itself
    raw = A.RawFrame(A.VIDEO_FORMAT_I420, w, h, [y, u, v], m, *FULL, full_range=True)
    red = A.to_rgba(raw)[..., 0].astype(int)
    assert list(red[0]) == [128, 160, 192, 160, 128, 128, 128, 128]  # edge: chroma row 0
    assert list(red[1]) == [128, 152, 176, 152, 128, 128, 128, 128]  # 3/4 row 0 + 1/4 row 1
    assert list(red[2]) == [128, 136, 144, 136, 128, 128, 128, 128]  # 1/4 row 0 + 3/4 row 1
    assert list(red[3]) == [128] * 8  # edge: chroma row 1


# --- exactness against a float64 model of the shader ---------------------------------
def shader_model(raw: A.RawFrame) -> np.ndarray:
    """float64 RGB (0..255, unrounded) as format_conversion.effect computes it: chroma
    bilinear at x / 2 (left-sited) and (y + 0.5) / 2 - 0.5 (4:2:0, centred), edges
    clamped; then YUV clamped to the range (unless full range); then the matrix."""
    h, w = raw.height, raw.width
    if raw.fmt in A.PACKED_422:
        y0, u, y1, v = A.PACKED_422[raw.fmt]
        quads = raw.planes[0].reshape(h, w // 2, 4).astype(np.float64)
        luma = quads[..., [y0, y1]].reshape(h, w)
        chroma = quads[..., [u, v]]
    else:
        luma = raw.planes[0].astype(np.float64)
        if raw.fmt == A.VIDEO_FORMAT_NV12:
            chroma = raw.planes[1].reshape(h // 2, w // 2, 2).astype(np.float64)
        else:
            chroma = np.stack(raw.planes[1:], axis=2).astype(np.float64)

    def bilinear(a: np.ndarray, pos: np.ndarray, axis: int) -> np.ndarray:
        pos = np.clip(pos, 0, a.shape[axis] - 1)
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, a.shape[axis] - 1)
        f = (pos - i0).reshape([-1 if d == axis else 1 for d in range(a.ndim)])
        return np.take(a, i0, axis) * (1 - f) + np.take(a, i1, axis) * f

    rows = (np.arange(h) + 0.5) / 2 - 0.5 if chroma.shape[0] != h else np.arange(h) * 1.0
    chroma = bilinear(bilinear(chroma, rows, 0), np.arange(w) / 2, 1)
    yuv = np.concatenate([luma[..., None], chroma], axis=2)
    if not raw.full_range:
        yuv = np.clip(yuv, np.asarray(raw.range_min) * 255, np.asarray(raw.range_max) * 255)
    m = np.asarray(raw.matrix, np.float64)
    return np.clip(yuv @ m[:3, :3].T + m[:3, 3] * 255, 0, 255)


@pytest.mark.parametrize("fmt", sorted(A.YUV_FORMATS))
@pytest.mark.parametrize("space, full", [("601", False), ("709", False), ("709", True)])
def test_yuv_is_the_shader_result_rounded(fmt, space, full):
    """Noise YUV (chroma far outside the limited range, so the clamp order matters; sizes
    down to 2x2 for the edges): every value is the shader's rounded to nearest. A clamp
    before the upsampling, nearest chroma or a coarse fixed point would be levels off."""
    rng = np.random.default_rng(fmt * 10 + full)
    for w, h in ((2, 2), (6, 4), (38, 22), (160, 90)):
        planes = [rng.integers(0, 256, shape, dtype=np.uint8)
                  for shape in A.plane_layout(fmt, w, h)]
        raw = frame(fmt, planes, w, h, space, full)
        out = A.to_rgba(raw)
        assert out.shape == (h, w, 4) and (out[..., 3] == 255).all()
        error = np.abs(out[..., :3] - shader_model(raw))
        assert error.max() <= 0.5 + 1e-3, (A.format_name(fmt), w, h, error.max())


@pytest.mark.parametrize("fmt", [A.VIDEO_FORMAT_NV12, A.VIDEO_FORMAT_YUY2])
def test_yuv_flip_and_reused_buffers(fmt, photo):
    """Conversions reuse per-thread buffers: results stay independent of each other and
    of format/size changes, and a flipped frame (stored bottom-up) comes out upright."""
    h, w = photo.shape[:2]
    planes, _ = yuv_to_formats(cv2.cvtColor(photo, cv2.COLOR_RGB2YUV))[fmt]
    first = A.to_rgba(frame(fmt, planes, w, h))
    kept = first.copy()
    small, _ = yuv_to_formats(cv2.cvtColor(photo[:64, :96], cv2.COLOR_RGB2YUV))[fmt]
    raw_small = frame(fmt, small, 96, 64, "709", True)
    other = A.to_rgba(raw_small)
    flipped = A.to_rgba(frame(fmt, [p[::-1] for p in planes], w, h, flip=True))
    again = A.to_rgba(frame(fmt, planes, w, h))
    assert np.abs(other[..., :3] - shader_model(raw_small)).max() <= 0.5 + 1e-3
    assert np.array_equal(first, kept) and np.array_equal(again, first)
    assert np.array_equal(flipped, first) and flipped.flags.c_contiguous
    assert not any(np.shares_memory(a, b) for a, b in [(first, again), (first, flipped)])


def test_threads_convert_concurrently(photo):
    """Each converter thread has its own buffers: parallel conversions of different sizes
    give exactly the serial results."""
    jobs = []
    for fmt, (w, h) in [(A.VIDEO_FORMAT_NV12, (320, 480)), (A.VIDEO_FORMAT_I420, (96, 64)),
                        (A.VIDEO_FORMAT_UYVY, (320, 480))]:
        planes, _ = yuv_to_formats(cv2.cvtColor(photo[:h, :w], cv2.COLOR_RGB2YUV))[fmt]
        raw = frame(fmt, planes, w, h)
        jobs.append((raw, A.to_rgba(raw)))
    failures: list[str] = []

    def run(raw: A.RawFrame, want: np.ndarray) -> None:
        for _ in range(20):
            if not np.array_equal(A.to_rgba(raw), want):
                failures.append(A.format_name(raw.fmt))

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures


# --- RGB formats, flip ------------------------------------------------------------------
def test_rgb_formats_are_exact(photo):
    h, w = photo.shape[:2]
    rgba = cv2.cvtColor(photo, cv2.COLOR_RGB2RGBA)
    rgba[..., 3] = 77
    bgra = cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)
    m = obs_matrix("601", False)
    out = A.to_rgba(A.RawFrame(A.VIDEO_FORMAT_RGBA, w, h, [rgba.reshape(h, -1)], m, *FULL))
    assert np.array_equal(out, rgba)
    out = A.to_rgba(A.RawFrame(A.VIDEO_FORMAT_BGRA, w, h, [bgra.reshape(h, -1)], m, *FULL))
    assert np.array_equal(out, rgba)
    out = A.to_rgba(A.RawFrame(A.VIDEO_FORMAT_BGRX, w, h, [bgra.reshape(h, -1)], m, *FULL))
    assert np.array_equal(out[..., :3], photo) and (out[..., 3] == 255).all()


def test_flip_turns_the_frame_upright(photo):
    h, w = photo.shape[:2]
    bgra = cv2.cvtColor(photo, cv2.COLOR_RGB2BGRA)
    raw = A.RawFrame(A.VIDEO_FORMAT_BGRA, w, h, [bgra[::-1].reshape(h, -1).copy()],
                     obs_matrix("601", False), *FULL, flip=True)
    out = A.to_rgba(raw)
    assert np.array_equal(out[..., :3], photo) and out.flags.c_contiguous


# --- layouts and validation -----------------------------------------------------------
def test_plane_layouts():
    assert A.plane_layout(A.VIDEO_FORMAT_NV12, 640, 360) == ((360, 640), (180, 640))
    assert A.plane_layout(A.VIDEO_FORMAT_I420, 640, 360) == ((360, 640), (180, 320),
                                                             (180, 320))
    assert A.plane_layout(A.VIDEO_FORMAT_YUY2, 640, 360) == ((360, 1280),)
    assert A.plane_layout(A.VIDEO_FORMAT_BGRX, 640, 360) == ((360, 2560),)
    assert A.plane_layout(A.VIDEO_FORMAT_I420, 641, 360) is None  # odd: no 4:2:0
    assert A.plane_layout(12, 640, 360) is None  # I422: texrender path
    assert A.plane_layout(0, 640, 360) is None


def test_wrong_planes_are_a_clear_error():
    with pytest.raises(ValueError, match="I420 4x4 needs uint8 planes"):
        A.RawFrame(A.VIDEO_FORMAT_I420, 4, 4, [np.zeros((4, 4), np.uint8)], np.eye(4), *FULL)
    with pytest.raises(ValueError, match="unsupported frame: format 12"):
        A.RawFrame(12, 4, 4, [], np.eye(4), *FULL)


@pytest.fixture(scope="module")
def libobs():
    try:
        lib = C.CDLL("libobs.so.0")
    except OSError:
        pytest.skip("libobs not installed")
    fn = lib.video_format_get_parameters
    fn.restype = C.c_bool
    fn.argtypes = [C.c_int, C.c_int, C.c_float * 16, C.c_float * 3, C.c_float * 3]
    return fn


@pytest.mark.libobs
@pytest.mark.parametrize("space, cs, full", [("601", 1, False), ("601", 1, True),
                                             ("709", 2, False), ("709", 2, True)])
def test_matrices_here_are_the_ones_libobs_makes(libobs, space, cs, full):
    matrix, lo, hi = (C.c_float * 16)(), (C.c_float * 3)(), (C.c_float * 3)()
    assert libobs(cs, 2 if full else 1, matrix, lo, hi)
    assert np.allclose(np.array(matrix).reshape(4, 4), obs_matrix(space, full), atol=2e-4)
    want_lo, want_hi = FULL if full else LIMITED
    assert np.allclose(lo, want_lo, atol=1e-5) and np.allclose(hi, want_hi, atol=1e-5)


# --- the feed ---------------------------------------------------------------------------
def bgra_frame(feed: A.FrameFeed, value: int) -> A.RawFrame:
    layout = A.plane_layout(A.VIDEO_FORMAT_BGRA, 8, 4)
    planes = feed.planes(layout)
    planes[0][:] = value
    return A.RawFrame(A.VIDEO_FORMAT_BGRA, 8, 4, planes, np.eye(4), *FULL)


def test_feed_converts_newest_first_and_reuses_buffers():
    received: list[np.ndarray] = []
    inside, gate, both = threading.Event(), threading.Event(), threading.Event()

    def sink(rgba):
        inside.set()
        gate.wait(5)
        received.append(rgba)
        if len(received) == 2:
            both.set()

    feed = A.FrameFeed(sink)
    try:
        first = bgra_frame(feed, 1)
        feed.put(first)
        assert inside.wait(5)  # the thread is now inside sink() with frame 1
        for value in (2, 3, 4):
            feed.put(bgra_frame(feed, value))  # 2 and 3 are replaced unconverted
        gate.set()
        assert both.wait(5)
        assert [int(r[0, 0, 0]) for r in received] == [1, 4]
        assert feed.frames_in == 4 and feed.dropped == 2 and feed.frames_out == 2
        assert len(feed.convert_ms) == 2
    finally:
        assert feed.stop(1.0)


def test_feed_pool_never_hands_out_a_buffer_in_use():
    feed = A.FrameFeed(lambda rgba: None)
    layout = A.plane_layout(A.VIDEO_FORMAT_BGRA, 8, 4)
    try:
        a = feed.planes(layout)
        feed.put(A.RawFrame(A.VIDEO_FORMAT_BGRA, 8, 4, a, np.eye(4), *FULL))
        deadline = time.monotonic() + 5
        while feed.frames_out < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert feed.stop(1.0)  # joined: the converted frame's buffers are back in the pool
        assert feed.planes(layout)[0] is a[0]  # converted, so free again
        assert feed.planes(layout)[0] is not a[0]  # pool empty: a fresh one
        assert feed.planes(((4, 8),))[0].shape == (4, 8)  # new layout: pool dropped
    finally:
        feed.stop()


def test_feed_survives_a_failing_sink_and_stops():
    calls = []

    def sink(rgba):
        calls.append(rgba)
        raise RuntimeError("engine gone")

    feed = A.FrameFeed(sink)
    for value in (1, 2):
        feed.put(bgra_frame(feed, value))
        deadline = time.monotonic() + 5
        while len(calls) < value and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(calls) == 2 and feed.errors == 2 and "engine gone" in feed.last_error
    assert feed.stop(1.0)
    assert not any(t.name == "face-swap-convert" for t in threading.enumerate())
    feed.put(bgra_frame(feed, 3))  # ignored after stop, starts nothing
    assert feed.frames_in == 2


def test_feed_without_frames_has_no_thread():
    feed = A.FrameFeed(lambda rgba: None, name="face-swap-convert-idle")
    assert not any(t.name == "face-swap-convert-idle" for t in threading.enumerate())
    assert feed.stop()
    with pytest.raises(ValueError, match="sink must be callable"):
        A.FrameFeed(None)


def test_copy_from_obs_frame_struct_with_padded_rows(photo):
    """render.copy_async_frame reads a real `struct obs_source_frame` (ctypes) whose rows
    are padded, as capture drivers pad them, and copies only the pixels."""
    render = pytest.importorskip("obs_script.render", exc_type=OSError)  # needs libobs
    h, w = photo.shape[:2]
    yuv = cv2.cvtColor(photo, cv2.COLOR_RGB2YUV)
    (y, uv), _ = yuv_to_formats(yuv)[A.VIDEO_FORMAT_NV12]
    padded_y = np.zeros((h, w + 64), np.uint8)
    padded_y[:, :w] = y
    padded_uv = np.zeros((h // 2, w + 32), np.uint8)
    padded_uv[:, :w] = uv
    info = render.L.SourceFrame()
    info.data[0], info.data[1] = padded_y.ctypes.data, padded_uv.ctypes.data
    info.linesize[0], info.linesize[1] = w + 64, w + 32
    info.width, info.height, info.format, info.timestamp = w, h, A.VIDEO_FORMAT_NV12, 42
    for i, value in enumerate(obs_matrix("601", False).reshape(-1)):
        info.color_matrix[i] = value
    for i in range(3):
        info.color_range_min[i], info.color_range_max[i] = LIMITED[0][i], LIMITED[1][i]
    feed = A.FrameFeed(lambda rgba: None)
    raw = render.copy_async_frame(info, feed)
    assert raw is not None and raw.timestamp == 42 and not raw.full_range
    assert np.array_equal(raw.planes[0], y) and np.array_equal(raw.planes[1], uv)
    direct = A.to_rgba(frame(A.VIDEO_FORMAT_NV12, [y, uv], w, h))
    assert np.array_equal(A.to_rgba(raw), direct)
    info.format = 12  # I422: not copied, the texrender path takes over
    assert render.copy_async_frame(info, feed) is None


def test_source_frame_layout_matches_libobs_29_headers():
    """Offsets of struct obs_source_frame as gcc lays it out from OBS 29.0.2's obs.h
    (checked with offsetof against libobs-dev); the copy reads these fields in place."""
    libobs = pytest.importorskip("obs_script.libobs", exc_type=OSError)
    frame_type = libobs.SourceFrame
    offsets = {name: getattr(frame_type, name).offset for name, _ in frame_type._fields_}
    assert offsets == {"data": 0, "linesize": 64, "width": 96, "height": 100,
                       "timestamp": 104, "format": 112, "color_matrix": 116,
                       "full_range": 180, "max_luminance": 182, "color_range_min": 184,
                       "color_range_max": 196, "flip": 208, "flags": 209, "trc": 210}


def test_conversion_benchmark_prints_every_case():
    """tests/obs/bench_convert.py, the README's conversion figures: runs and prints a line per
    format and size."""
    script = Path(__file__).parent / "obs" / "bench_convert.py"
    done = subprocess.run([sys.executable, str(script), "--frames", "2"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if " ms" in line]
    assert len(lines) == 8 and all("p50" in line and "p95" in line for line in lines), lines

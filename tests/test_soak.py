"""Soak: a SwapService fed thousands of frames while its settings and model keep changing,
as a long stream does. Memory stays flat after warm-up, every frame is accounted for (in =
out + dropped) and no thread is left behind. The CI-sized run (2,000 frames) is part of the
default suite, with a twin that injects a leak and must fail; the long one (20,000 frames)
runs with FACE_SWAP_SOAK=1.

What a leak is, measured (2,000 frames, 2-core machine, both cores also kept busy by two
other processes for "loaded"): resident memory read at arbitrary frames is allocator noise
(the old rule, 10 MB from the middle to the end, failed a loaded machine at 14 MB); so memory
is read as what malloc has handed out (glibc mallinfo2, not moved by free blocks) at quiet
points (last frame out, model loaded) before each settings change, and the settings repeat
in cycles, so each point is compared with the same point of an earlier cycle. Found that
way: Python objects and the engine's caches are flat after the first cycle, and so is the
native heap since onnxruntime's CPU arena is off (core/runtime.py: the arena kept every
session's peak and extended by 4-11 MB per cycle on a busy machine, which failed this test in
CI at +32.6 MB). `growth` still takes the smallest cycle's, so a one-off step does not count.
Clean runs without the arena: idle +0.4, loaded -0.5 (heap flat at 82-88 MB); keeping one
frame in 10 (the injected leak, about 30 MB): idle +28.8, loaded +34.2. The rule: under
GROWTH_MB (20) over the measured cycles. Smaller leaks are the long run's job, which has
ten times the frames per cycle."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from doubles import build_dfm, save

from core.service import SwapService
from core.settings import SwapSettings

CHANGES = 40  # settings changes in a run (a model change every 5th)
CYCLE = 10  # the changes repeat with this period (persona 5 changes, the DFM double 5)
# The leak rule, from measurements (module docstring): memory in use at the quiet points
# (before each settings change, nothing in flight) grows less than this from the second
# settings cycle to the last
GROWTH_MB = 20.0
LEAK_EVERY = 10  # the injected leak: a 320x240 RGBA frame kept every 10 frames


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def heap_mb() -> float:
    """Memory malloc has handed out and not had back (glibc's mallinfo2: small blocks in use
    plus mmapped large ones). Unlike resident memory it does not move with where the
    allocator keeps its free blocks, so it shows a leak, not the allocator settling."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _Mallinfo2
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


def growth(readings: list[float]) -> float:
    """Steady growth per run, from memory read at the quiet points: each point against the
    same point (same model, same settings) one settings cycle earlier, the median of those
    differences per cycle; the smallest cycle's growth times the cycles measured. The first
    cycle fills the caches; a leak grows every cycle, while onnxruntime's arena extending
    once (a one-off step, measured at 10-17 MB) grows one cycle only."""
    cycles = np.array(readings).reshape(-1, CYCLE)[1:]
    per_cycle = np.median(np.diff(cycles, axis=0), axis=1)
    return float(per_cycle.min()) * len(per_cycle)


def _frames(astronaut: np.ndarray) -> list[np.ndarray]:
    """A few RGBA frames with the face drifting, and one with no face."""
    frames = []
    for i in range(6):
        canvas = np.full((240, 320, 4), 80, np.uint8)
        photo = cv2.resize(astronaut, (200, 200))
        canvas[20:220, 40 + 8 * i:240 + 8 * i, :3] = photo
        frames.append(canvas)
    frames.append(np.full((240, 320, 4), 30, np.uint8))
    return frames


def _settings(step: int, dfm: Path) -> SwapSettings:
    """The settings for the step-th change: filters, privacy, colour, and every fifth a
    model switch between the persona and a DFM double."""
    model = str(dfm) if (step // 5) % 2 else "persona:default"
    return SwapSettings(model=model, label=step % 2 == 0,
                        on_lost=("original", "hold", "pixelate")[step % 3],
                        color_transfer=("rct", "hist", "none")[step % 3],
                        smoothing=(step % 4) / 4.0, faces=("largest", "all")[step % 2],
                        fade_ms=(0, 150)[step % 2])


CHECKERS = ("face-swap-hands", "face-swap-guard", "face-swap-identity")  # core.background


def quiet_point(service: SwapService, seq: int, heap: list[float], rss: list[float]) -> None:
    """Wait until the last frame is out, the model loaded and no background job (a hand
    search, a recogniser check: onnxruntime's working memory while it runs) is in flight,
    then read memory."""
    service.wait_result(after_seq=seq - 1, timeout=30)
    service.wait_loaded(timeout=60)
    for thread in threading.enumerate():
        if thread.name in CHECKERS:
            thread.join(10.0)
    heap.append(heap_mb())
    rss.append(rss_mb())


def soak(astronaut: np.ndarray, tmp_path: Path, total: int,
         leak: bool = False) -> dict[str, float]:
    """Run `total` frames through CHANGES settings changes, reading memory at each quiet
    point; `leak` keeps a frame every LEAK_EVERY frames (the leak the rule must catch).
    Returns the growths (see `growth`)."""
    dfm = save(build_dfm(224), tmp_path / "soak.dfm")
    frames = _frames(astronaut)
    threads_before = threading.active_count()
    every = total // CHANGES
    service = SwapService(_settings(0, dfm), fmt="rgba")
    try:
        service.wait_loaded(timeout=60)
        heap, rss, kept = [], [], []
        seq = 0
        for i in range(total):
            if i and i % every == 0:
                quiet_point(service, seq, heap, rss)
                service.apply(_settings((i // every) % CYCLE, dfm))
            frame = frames[i % len(frames)].copy()
            if leak and i % LEAK_EVERY == 0:
                kept.append(np.array(frame))  # a copy nobody frees
            seq = service.submit(frame)
            if i % 3 == 0:  # closed loop now and then, open loop otherwise: drops happen
                service.wait_result(after_seq=seq - 1, timeout=30)
        quiet_point(service, seq, heap, rss)
        status = service.status()
    finally:
        assert service.stop(timeout=5.0)
    assert status["frames_in"] == total
    assert status["frames_in"] == status["frames_out"] + status["dropped"], status
    assert status["errors"] == 0, status["last_error"]
    assert threading.active_count() <= threads_before, threading.enumerate()
    grown = {"heap_mb": growth(heap), "rss_mb": growth(rss)}
    print(f"soak growth from the second settings cycle to the last ({len(heap)} quiet points): "
          + ", ".join(f"{k} {v:+.1f}" for k, v in grown.items()))
    # measured +0.0 to +4.8 MB (three clean runs, other work on the machine), +34.1 leaking
    assert grown["heap_mb"] < GROWTH_MB, \
        f"memory in use grew {grown['heap_mb']:.1f} MB from the second cycle on (a leak)"
    return grown


def _run_child(tmp_path: Path, leak: bool) -> subprocess.CompletedProcess:
    args = [sys.executable, __file__, str(tmp_path), "2000"] + (["--leak"] if leak else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def test_soak_ci_sized(tmp_path):
    done = _run_child(tmp_path, leak=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "soak ok" in done.stdout


def test_soak_catches_a_leak(tmp_path):
    """The same run keeping one frame in 10 (about 30 MB over the measured cycles) fails."""
    done = _run_child(tmp_path, leak=True)
    assert done.returncode != 0 and "(a leak)" in done.stderr, done.stdout + done.stderr[-2000:]


@pytest.mark.soak
@pytest.mark.skipif(os.environ.get("FACE_SWAP_SOAK") != "1",
                    reason="the 20,000-frame soak runs with FACE_SWAP_SOAK=1")
@pytest.mark.timeout(3600)
def test_soak_long(astronaut, tmp_path):
    soak(astronaut, tmp_path, 20_000)


if __name__ == "__main__":  # the CI-sized run, in a process of its own (see the docstring)
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import read_rgb

    soak(read_rgb("astronaut.png"), Path(sys.argv[1]), int(sys.argv[2]), leak="--leak" in sys.argv)
    print("soak ok")

"""Raw-frame conversion alone: what the filter's face-swap-convert thread does per frame of
an async source (obs_script.asyncframe.to_rgba, BT.709 limited range), with nothing else
running. p50 / p95 ms per format at 640x360 and 1280x720. Inside OBS the same thread shares
the cores with the worker, so its `convert_ms` there is higher (see the README).
Run:  .venv/bin/python tests/obs/bench_convert.py [--frames N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS), str(TESTS.parent)]

from test_asyncframe import frame  # noqa: E402

from core.worker import percentile  # noqa: E402
from obs_script import asyncframe as A  # noqa: E402

SIZES = ((640, 360), (1280, 720))
FORMATS = (A.VIDEO_FORMAT_NV12, A.VIDEO_FORMAT_I420, A.VIDEO_FORMAT_YUY2, A.VIDEO_FORMAT_BGRA)


def raw_frame(fmt: int, width: int, height: int, rng: np.random.Generator) -> A.RawFrame:
    planes = [rng.integers(0, 256, shape, np.uint8) for shape in A.plane_layout(fmt, width,
                                                                                height)]
    return frame(fmt, planes, width, height, space="709")


def measure(frame: A.RawFrame, frames: int) -> tuple[float, float]:
    for _ in range(3):
        A.to_rgba(frame)  # scratch buffers and LUTs
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        A.to_rgba(frame)
        times.append((time.perf_counter() - start) * 1000.0)
    return percentile(times, 50), percentile(times, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="timed frames per case")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{os.cpu_count()} cores, cv2 {cv2.__version__} ({cv2.getNumThreads()} threads), "
          f"numpy {np.__version__}")
    for width, height in SIZES:
        for fmt in FORMATS:
            p50, p95 = measure(raw_frame(fmt, width, height, rng), args.frames)
            print(f"{A.format_name(fmt):5} {width}x{height}: p50 {p50:5.2f} ms  p95 {p95:5.2f} ms")


if __name__ == "__main__":
    main()

"""`python -m core detect IMAGE [--json]` and `python -m core detect --bench`."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from core import SAMPLES_DIR
from core.align import align, arcface_template, whole_face_template
from core.commands.options import bounded, frame_sizes, setting
from core.detect import FaceDetector
from core.errors import InputError
from core.imageio import read_bgr
from core.landmarks import FaceMesh, roi_from_landmarks
from core.runtime import default_threads
from core.settings import SwapSettings
from core.smoothing import OneEuroFilter
from core.stills import faces_in_image
from core.track import FaceTracker

HELP = "find faces in an image (box, score, 5 points, pose); --bench times each stage"
BENCH_SIZES = "640x480,1280x720,1920x1080"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", nargs="?", help="image file (any format OpenCV reads)")
    parser.add_argument("--json", action="store_true",
                        help="print JSON with all 468 landmarks per face")
    parser.add_argument("--bench", action="store_true",
                        help="time detect / landmarks / smoothing / align per frame size")
    parser.add_argument("--sizes", type=frame_sizes, default=frame_sizes(BENCH_SIZES),
                        help=f"bench frame sizes WxH,... (default {BENCH_SIZES})")
    parser.add_argument("--repeat", type=bounded(int, 1, 100_000), default=100,
                        help="bench iterations per stage")
    parser.add_argument("--threads", type=setting("threads"), default=0,
                        help="onnxruntime CPU threads (0: half the cores)")


def run(args: argparse.Namespace) -> int:
    if args.bench:
        return bench(args.sizes, args.repeat, args.threads)
    if not args.image:
        raise InputError("detect needs an IMAGE (or --bench)")
    return detect_image(Path(args.image), args.json)


def detect_image(path: Path, as_json: bool) -> int:
    image = read_bgr(path)
    faces = faces_in_image(image, "bgr")
    entries = [{
        "id": f.id,
        "box": [round(float(v), 2) for v in f.box],
        "score": round(f.score, 4),
        "points5": np.round(f.points5.astype(float), 2).tolist(),
        "pose": {"yaw": round(f.pose[0], 2), "pitch": round(f.pose[1], 2),
                 "roll": round(f.pose[2], 2)},
        **({"landmarks": np.round(f.landmarks.astype(float), 2).tolist()} if as_json else {}),
    } for f in faces]
    if as_json:
        print(json.dumps({"image": str(path), "width": image.shape[1],
                          "height": image.shape[0], "faces": entries}))
        return 0
    print(f"{path}: {image.shape[1]}x{image.shape[0]}, {len(faces)} face(s)")
    for e in entries:
        pose = e["pose"]
        print(f"  face {e['id']}: box {e['box']} score {e['score']:.3f} "
              f"yaw {pose['yaw']:+.1f} pitch {pose['pitch']:+.1f} roll {pose['roll']:+.1f} "
              f"points5 {e['points5']}")
    return 0


def bench_frame(width: int, height: int) -> np.ndarray:
    """An RGBA frame (OBS's layout) with the astronaut's face at ~1/5 of the frame height."""
    photo = read_bgr(SAMPLES_DIR / "astronaut.png", "bench image")
    scale = 0.9 * height / photo.shape[0]  # the photo's face is ~1/5 of its height
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), 60, np.uint8)
    y0, x0 = (height - photo.shape[0]) // 2, (width - photo.shape[1]) // 2
    frame[y0:y0 + photo.shape[0], x0:x0 + photo.shape[1]] = photo
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGBA)


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def bench(sizes: list[tuple[int, int]], repeat: int, threads: int) -> int:
    """Per-stage ms (p50 / p95) on an RGBA frame; tracking = landmarks + smooth + align."""
    threads = threads or default_threads()
    print(f"detect bench: RGBA frames, {repeat} runs per stage, {threads} onnxruntime "
          f"thread(s), one face; tracking path = landmarks + smoothing + pose + whole-face "
          f"align (no detection)")
    short = FaceDetector("short", threads=threads)
    full = FaceDetector("full", threads=threads)
    mesh = FaceMesh(threads=threads)
    for w, h in sizes:
        print(_bench_size(w, h, repeat, threads, short, full, mesh), flush=True)
    return 0


def _bench_size(w: int, h: int, repeat: int, threads: int, short: FaceDetector,
                full: FaceDetector, mesh: FaceMesh) -> str:
    """One line of bench figures for a w x h frame."""
    frame = bench_frame(w, h)
    # the longest detect interval (300): the tracking path's rows (--repeat 100) time no
    # detection round
    tracker = FaceTracker(SwapSettings(detect_interval=300), threads=threads)
    faces = tracker.process(frame, "rgba")
    if not faces:
        return f"{w}x{h}: no face found in the bench frame"
    face = faces[0]
    roi = roi_from_landmarks(face.landmarks)
    smoother = OneEuroFilter(0.5)
    clock = iter(np.arange(10 ** 7) / 30.0)
    arc, whole = arcface_template(128), whole_face_template(224)
    p5 = face.points5

    def track_path() -> None:
        tracked = tracker.process(frame, "rgba")[0]
        align(frame, tracked.points5, whole, 224)

    # What the tracker runs on a detection frame: the whole frame plus one tile.
    tiles = tracker.detector.tiles(w, h)
    regions = [(0, 0, w, h)] + tiles[:1]
    rows = [
        ("detect short", lambda: short.detect(frame, "rgba")),
        ("detect full", lambda: full.detect(frame, "rgba")),
        (f"detect round ({len(regions)} pass)",
         lambda: tracker.detector.detect_regions(frame, "rgba", regions)),
        ("landmarks", lambda: mesh.run(frame, "rgba", roi)),
        ("smoothing", lambda: smoother(face.landmarks, next(clock), face.size)),
        ("align arcface128", lambda: align(frame, p5, arc, 128)),
        ("align wholeface224", lambda: align(frame, p5, whole, 224)),
        ("tracking path", track_path),
    ]
    lines = [f"{f'{w}x{h} (face {face.size:.0f} px)':<30}{'p50 ms':>8}{'p95 ms':>8}"]
    for name, fn in rows:
        p50, p95 = _time(fn, repeat)
        lines.append(f"  {name:<28}{p50:>8.2f}{p95:>8.2f}")
    return "\n".join(lines)

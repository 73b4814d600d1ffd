"""Build the built-in demo clip: the public-domain test portraits moving along a smooth path.

The demo needs a video with a real face that anyone may redistribute; a webcam recording
would show a real person. Each portrait (models/samples, public domain) is cut out around its
face with a soft oval, then moves, turns and zooms gently over a plain backdrop: half of
the clip each. Frame size 640x360, 25 fps, 3 s, MPEG-4 Part 2 ("mp4v", what OpenCV's
pip wheels can always write).

    .venv/bin/python install/make_demo_clip.py [-o models/demo/clip.mp4]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.imageio import read_rgb  # noqa: E402
from core.stills import landmarks_for_image  # noqa: E402

SOURCES = ("models/samples/astronaut.png", "models/samples/grace_hopper.jpg")
WIDTH, HEIGHT, FPS, SECONDS = 640, 360, 25, 3.0
FACE_PX = 125.0  # face box side in the clip: a webcam-like framing


def cutout(image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Image, soft head-and-shoulders alpha, face centre and face size (px) in the image."""
    face = landmarks_for_image(image_rgb)
    if face is None:
        raise SystemExit("make_demo_clip: no face found in a source image")
    centre = (face.box[:2] + face.box[2:]) / 2.0
    size = face.size
    alpha = np.zeros(image_rgb.shape[:2], np.float32)
    axes = (int(size * 1.3), int(size * 1.8))
    cv2.ellipse(alpha, (int(centre[0]), int(centre[1] + 0.35 * size)), axes, 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), size * 0.12)
    # Fade out towards the image's own edges too, so no straight photo border shows.
    h, w = alpha.shape
    fade = size * 0.3
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha *= np.clip(np.minimum.reduce([xs, w - 1 - xs, ys, h - 1 - ys]) / fade, 0.0, 1.0)
    return image_rgb.astype(np.float32), alpha, centre, size


def backdrop() -> np.ndarray:
    """A plain vertical gradient: nothing in it looks like a face."""
    ramp = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None, None]
    top, bottom = np.array([70, 95, 130], np.float32), np.array([150, 160, 170], np.float32)
    return np.broadcast_to(top + (bottom - top) * ramp, (HEIGHT, WIDTH, 3)).copy()


def frame_at(t: float, source: tuple, background: np.ndarray) -> np.ndarray:
    """One frame at time t (s): the cutout on a smooth Lissajous path with turn and zoom."""
    image, alpha, centre, size = source
    phase = 2.0 * math.pi * t / SECONDS
    x = WIDTH / 2 + 140 * math.sin(phase)
    y = HEIGHT / 2 + 25 * math.sin(2 * phase)
    angle = 8.0 * math.sin(1.5 * phase)
    scale = FACE_PX / size * (1.0 + 0.12 * math.sin(phase + 1.0))
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    matrix[:, 2] += np.array([x, y]) - centre
    layer = cv2.warpAffine(image, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_AREA)
    weight = cv2.warpAffine(alpha, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)[..., None]
    rgb = background * (1.0 - weight) + layer * weight
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "models" / "demo" / "clip.mp4")
    args = parser.parse_args()
    sources = [cutout(read_rgb(ROOT / name)) for name in SOURCES]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(args.output), cv2.VideoWriter_fourcc(*"mp4v"), FPS,
                             (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise SystemExit(f"make_demo_clip: cannot write {args.output}")
    background = backdrop()
    count = int(round(SECONDS * FPS))
    for i in range(count):
        source = sources[0] if i < count // 2 else sources[1]
        writer.write(np.ascontiguousarray(frame_at(i / FPS, source, background)[..., ::-1]))
    writer.release()
    kib = args.output.stat().st_size / 1024
    print(f"make_demo_clip: wrote {args.output} ({count} frames, {WIDTH}x{HEIGHT}, {kib:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

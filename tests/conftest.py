"""Shared test fixtures: the real sample photos shipped under models/samples."""

from pathlib import Path

import cv2
import numpy as np
import pytest

DATA = Path(__file__).resolve().parent.parent / "models" / "samples"

# (frame, fmt, message): frames every entry point must refuse with a one-line ValueError
BAD_FRAMES = [
    (np.zeros((0, 0, 3), np.uint8), "rgb", "too small"),
    (np.zeros((1, 1, 3), np.uint8), "rgb", "too small"),
    (np.zeros((1, 1, 4), np.uint8), "rgba", "too small"),
    (np.zeros((64, 64, 3), np.float32), "rgb", "dtype"),
    (np.zeros((64, 64, 4), np.uint8), "rgb", "does not match"),
    (np.zeros((64, 64), np.uint8), "bgr", "does not match"),
    (np.zeros((64, 64, 3), np.uint8), "yuv", "unknown pixel format"),
]


def write_face_clip(path: Path, frames: int, fps: float = 10.0, fourcc: str = "mp4v",
                    size: tuple[int, int] = (480, 360), drift: int = 1) -> Path:
    """A video of the astronaut's face (300 px) drifting right `drift` px a frame (and back
    to the start after 120 px)."""
    photo = cv2.resize(cv2.imread(str(DATA / "astronaut.png")), (300, 300))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 90, np.uint8)
        x = 40 + (i * drift) % 120
        frame[30:330, x:x + 300] = photo
        writer.write(frame)
    writer.release()
    return path


def read_rgb(name: str) -> np.ndarray:
    image = cv2.imread(str(DATA / name), cv2.IMREAD_COLOR)
    assert image is not None, f"test image missing: {name}"
    return np.ascontiguousarray(image[..., ::-1])


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut.png (public domain, NASA), 512x512 RGB, one face."""
    return read_rgb("astronaut.png")


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """matplotlib's grace_hopper.jpg (public domain, US Navy), 512x600 RGB, one face."""
    return read_rgb("grace_hopper.jpg")

"""Shared test fixtures: real images committed under tests/data."""

from pathlib import Path

import cv2
import numpy as np
import pytest

DATA = Path(__file__).resolve().parent / "data"

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

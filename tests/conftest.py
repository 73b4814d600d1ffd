"""Shared test fixtures: real images committed under tests/data."""

from pathlib import Path

import cv2
import numpy as np
import pytest

DATA = Path(__file__).resolve().parent / "data"


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

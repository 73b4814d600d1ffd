"""Frame layouts the engine accepts and the few conversions it does on small crops.

A frame is an HxWxC uint8 numpy array in one of four layouts: OBS hands over RGBA,
OpenCV (the CLI) reads BGR. Full frames are never converted; only the small crops a
model sees are reordered to the model's channel order.
"""

from __future__ import annotations

import cv2
import numpy as np

FORMATS = ("rgb", "bgr", "rgba", "bgra")
_CHANNELS = {"rgb": 3, "bgr": 3, "rgba": 4, "bgra": 4}
# Index of R, G, B within a pixel of each layout.
_RGB_INDEX = {"rgb": [0, 1, 2], "bgr": [2, 1, 0], "rgba": [0, 1, 2], "bgra": [2, 1, 0]}
# OpenCV conversions for the crops models see (every frame): contiguous output, several times
# faster than numpy's fancy-indexed channel copies. None: already in that order.
_TO_RGB = {"rgb": None, "bgr": cv2.COLOR_BGR2RGB, "rgba": cv2.COLOR_RGBA2RGB,
           "bgra": cv2.COLOR_BGRA2RGB}
_TO_BGR = {"rgb": cv2.COLOR_RGB2BGR, "bgr": None, "rgba": cv2.COLOR_RGBA2BGR,
           "bgra": cv2.COLOR_BGRA2BGR}


def check_frame(frame: np.ndarray, fmt: str) -> None:
    """Raise ValueError with a one-line reason when `frame` is not a usable `fmt` frame."""
    if fmt not in _CHANNELS:
        raise ValueError(f"unknown pixel format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame dtype must be uint8, got {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != _CHANNELS[fmt]:
        raise ValueError(
            f"frame shape {frame.shape} does not match format {fmt!r} "
            f"(expected HxWx{_CHANNELS[fmt]})"
        )
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        raise ValueError(f"frame too small: {frame.shape[1]}x{frame.shape[0]}")


def _convert(crop: np.ndarray, code: int | None) -> np.ndarray:
    return np.ascontiguousarray(crop) if code is None else cv2.cvtColor(crop, code)


def to_rgb(crop: np.ndarray, fmt: str) -> np.ndarray:
    """Crop in `fmt` layout -> contiguous HxWx3 RGB (drops alpha)."""
    return _convert(crop, _TO_RGB[fmt])


def to_bgr(crop: np.ndarray, fmt: str) -> np.ndarray:
    """Crop in `fmt` layout -> contiguous HxWx3 BGR (drops alpha)."""
    return _convert(crop, _TO_BGR[fmt])


def from_rgb(rgb: np.ndarray, fmt: str) -> np.ndarray:
    """HxWx3 RGB -> the colour channels of `fmt` in its order (no alpha)."""
    return rgb[..., _RGB_INDEX[fmt]]


def color_channels(fmt: str) -> int:
    """Number of channels in `fmt` (3 or 4); colour is always the first three."""
    return _CHANNELS[fmt]

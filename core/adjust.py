"""Pixel adjustments DeepFaceLive users tune per .dfm: pre-sharpening and per-channel gamma of
the crop a model is given, gamma of the face it returns, and colour compression of the face
drawn into the frame. Each works on float32 images in 0..1 (RGB or BGR: gamma takes its
three values in the image's own channel order) and returns a new array; at its neutral
value each returns its input untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

SHARPEN_SIGMA = 1.0  # px of the crop: the detail pre-sharpening brings out


def presharpen(image: np.ndarray, amount: float) -> np.ndarray:
    """Unsharp mask: image + amount x (image - its Gaussian blur), clipped to 0..1. A soft
    webcam picture gets the crisp detail a model saw in training."""
    if amount <= 0.0:
        return image
    blurred = cv2.GaussianBlur(image, (0, 0), SHARPEN_SIGMA)
    return np.clip(cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0.0), 0.0, 1.0)


def gamma(image: np.ndarray, gammas: tuple[float, float, float]) -> np.ndarray:
    """Each channel raised to 1 / its gamma: a gamma above 1 brightens that channel."""
    if all(g == 1.0 for g in gammas):
        return image
    exponents = np.float32(1.0) / np.asarray(gammas, np.float32)
    return np.power(np.clip(image, 0.0, 1.0), exponents)


def compress_colors(image: np.ndarray, amount: float) -> np.ndarray:
    """Fewer colour levels per channel (127 - amount, at least 4), each value put at the
    middle of its step: the banding of a compressed stream, so the face does not look cleaner
    than the picture around it. 0 = off."""
    if amount <= 0.0:
        return image
    levels = np.float32(max(4.0, 127.0 - amount))
    return np.minimum((np.floor(image * levels) + np.float32(0.5)) / levels, np.float32(1.0))

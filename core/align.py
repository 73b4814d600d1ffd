"""Alignment: similarity fit of landmarks to a template, the crop it cuts, and the motion
the user's face scale and offset give the swapped face.

Templates are 5 points in ArcFace order (see core.face.points5) in crop pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from core.face import FACE_OVAL, Face
from core.settings import SwapSettings

# ArcFace reference points for a 112 px crop (insightface convention).
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)
# Mean 5-point face in a unit square spanning brows..mouth and outer eye corners, the inner
# square that DeepFaceLab's "whole face" framing pads around.
_UNIT_FACE = np.array([[0.25, 0.25], [0.75, 0.25], [0.5, 0.56], [0.33, 0.82], [0.67, 0.82]],
                      dtype=np.float32)


def arcface_template(size: int) -> np.ndarray:
    """ArcFace template for a `size` px crop: scaled from 112, or from 128 with +8 px in x."""
    if size % 112 == 0:
        return ARCFACE_112 * (size / 112.0)
    ratio = size / 128.0
    out = ARCFACE_112 * ratio
    out[:, 0] += 8.0 * ratio
    return out


def whole_face_template(size: int, coverage: float = 0.4, offset_x: float = 0.0,
                        offset_y: float = 0.07) -> np.ndarray:
    """DeepFaceLab-style whole-face framing for a `size` px crop.

    `coverage` pads the brows-to-mouth square by that fraction on each side (DFL: 0.4);
    `offset_y` moves the face down in the crop (the window up) to include the forehead.
    """
    centred = (_UNIT_FACE - 0.5) / (1.0 + 2.0 * coverage) + 0.5
    return ((centred + np.array([offset_x, offset_y], np.float32)) * size).astype(np.float32)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) src -> dst, 2x3."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    # Umeyama in complex form: dst ~= a * src with a = scale * e^{i theta}.
    zs, zd = s[:, 0] + 1j * s[:, 1], d[:, 0] + 1j * d[:, 1]
    denom = np.vdot(zs, zs).real
    if denom <= 1e-12:
        raise ValueError("cannot align: landmarks are degenerate (all at one point)")
    a = np.vdot(zs, zd) / denom
    rot = np.array([[a.real, -a.imag], [a.imag, a.real]])
    t = mu_d - rot @ mu_s
    return np.hstack([rot, t[:, None]]).astype(np.float32)


def invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix.astype(np.float64)).astype(np.float32)


@dataclass
class Aligned:
    crop: np.ndarray  # (size, size, C) in the frame's layout
    matrix: np.ndarray  # 2x3 frame px -> crop px


def cut(frame: np.ndarray, matrix: np.ndarray, size: int) -> Aligned:
    """The `size` x `size` crop of `frame` that `matrix` (frame px -> crop px) describes; past
    the frame's edge its border pixels repeat."""
    crop = cv2.warpAffine(frame, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return Aligned(crop=crop, matrix=matrix)


def align(frame: np.ndarray, points: np.ndarray, template: np.ndarray, size: int) -> Aligned:
    """Crop `size` x `size` pixels of `frame` so that `points` land on `template`."""
    return cut(frame, similarity(points, template), size)


def crop_scale(matrix: np.ndarray) -> float:
    """Crop px per frame px of a similarity transform (frame -> crop)."""
    return float(math.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))


def face_motion(face: Face, settings: SwapSettings) -> np.ndarray | None:
    """face_scale and face offset as a frame-space motion (3x3) of the swapped face: scaled
    about the live face's centre, shifted by a fraction of the face size; None for none."""
    scale = float(settings.face_scale)
    if scale == 1.0 and settings.face_offset_x == 0 and settings.face_offset_y == 0:
        return None
    centre = face.landmarks[FACE_OVAL, :2].mean(axis=0).astype(np.float64)
    shift = np.array([settings.face_offset_x, settings.face_offset_y]) * face.size
    motion = np.eye(3)
    motion[:2, :2] *= scale
    motion[:2, 2] = centre + shift - scale * centre
    return motion

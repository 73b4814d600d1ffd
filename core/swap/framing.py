"""The crop a .dfm model receives, framed as DeepFaceLive's face aligner frames it.

A .dfm was trained, and tuned by its users, on DeepFaceLive's crops; a different framing
makes a good model look worse. DeepFaceLive fits the live FaceMesh points, minus the parts
that move with expression, to a mean face by least squares (a similarity: rotation, uniform
scale, translation) and cuts a square around the mean face's unit square: `coverage` times
its side, its centre moved by the x / y offsets (in unit-square sides; y has a built-in
-0.08, towards the forehead). Re-implemented here from that behaviour, not from its code:

- the mean face is MediaPipe's canonical mesh in texture (UV) layout
  (models/builtin/face_mesh_uv.json, Apache-2.0, install/build_mean_face.py), put in
  DeepFaceLive's unit square by UNIT_SCALE / UNIT_ANGLE / UNIT_OFFSET (measured: they map it
  onto DeepFaceLive's mean face to 2e-7 of the square);
- the rigid points are our own choice: those between the lower eyelids and the upper lip
  (mean-face y 0.35-0.70) that lie on no eye or lip contour (the cheeks, the nose, the sides of
  the face oval). On the sample photos, upright and rolled by +-30 degrees, the crop matches
  DeepFaceLive's default within 0.2 % of its side in scale and 0.1 % in centre
  (tests/test_framing.py pins it against its numbers).

Head mode (a wider crop, moved up and towards the back of the head as it turns) and a crop
kept level in the image ("freeze z rotation") are the aligner's other options.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from core.align import invert, similarity
from core.face import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, LIPS_INNER, LIPS_OUTER
from core.modelfiles import face_mesh_uv
from core.settings import SwapSettings

# MediaPipe's texture coordinates -> DeepFaceLive's unit square (a similarity, measured)
UNIT_SCALE = 1.77209994
UNIT_ANGLE = -0.1  # degrees
UNIT_OFFSET = (-0.39736413, -0.44141884)
RIGID_BAND = (0.35, 0.70)  # mean-face y between the lower eyelids and the upper lip
Y_BIAS = -0.08  # added to the y offset: DeepFaceLive's default framing includes it
HEAD_COVERAGE, HEAD_Y_OFFSET = 1.0, -0.5  # what head mode adds


@dataclass(frozen=True)
class Framing:
    """The aligner's options, with DeepFaceLive's defaults and ranges (core.settings)."""

    coverage: float = 2.2  # crop side in unit-square sides
    x_offset: float = 0.0  # crop centre, in unit-square sides (+ = image-right of the face)
    y_offset: float = 0.0  # (+ = towards the chin); Y_BIAS is added
    exclude_moving_parts: bool = True  # fit only the rigid points
    head_mode: bool = False  # coverage +1, y -0.5, centre moved by head yaw
    freeze_z_rotation: bool = False  # crop level in the image, whatever the head's roll

    @classmethod
    def of(cls, settings: SwapSettings) -> Framing:
        return cls(settings.face_coverage, settings.align_x_offset, settings.align_y_offset,
                   settings.exclude_moving_parts, settings.head_mode, settings.freeze_z_rotation)


@functools.cache
def mean_face() -> np.ndarray:
    """(468, 2) the mean face in the unit square."""
    uv = face_mesh_uv()
    angle = math.radians(UNIT_ANGLE)
    rotation = UNIT_SCALE * np.array([[math.cos(angle), -math.sin(angle)],
                                      [math.sin(angle), math.cos(angle)]])
    return uv @ rotation.T + np.asarray(UNIT_OFFSET)


@functools.cache
def rigid_points() -> np.ndarray:
    """Indices of the points that do not move with expression (see the module docstring)."""
    contours = {*EYE_IMAGE_LEFT, *EYE_IMAGE_RIGHT, *LIPS_OUTER, *LIPS_INNER}
    y = mean_face()[:, 1]
    band = (y >= RIGID_BAND[0]) & (y <= RIGID_BAND[1])
    return np.array([i for i in np.flatnonzero(band) if i not in contours])


def head_shift(yaw_deg: float) -> float:
    """Head mode's x offset for a head turned by `yaw_deg` (core.pose: > 0 = nose to
    image-right): the crop follows the skull, behind the face, smoothly from 0."""
    yaw = math.radians(yaw_deg)
    return -0.5 * yaw * abs(math.tanh(2.0 * yaw))


def crop_matrix(landmarks: np.ndarray, size: int, framing: Framing = Framing(),
                yaw_deg: float = 0.0) -> np.ndarray:
    """2x3 float32 matrix: frame px -> the `size` px crop, from 468 FaceMesh points."""
    points = np.asarray(landmarks, np.float64)[:, :2]
    chosen = rigid_points() if framing.exclude_moving_parts else np.arange(len(points))
    to_unit = similarity(points[chosen], mean_face()[chosen]).astype(np.float64)
    coverage, x_off, y_off = framing.coverage, framing.x_offset, framing.y_offset + Y_BIAS
    if framing.head_mode:
        coverage, y_off = coverage + HEAD_COVERAGE, y_off + HEAD_Y_OFFSET
    if framing.head_mode or framing.freeze_z_rotation:
        x_off += head_shift(yaw_deg)
    centre = np.array([0.5 + x_off, 0.5 + y_off])
    if framing.freeze_z_rotation:  # the same square, turned level about its centre
        per_px = math.hypot(to_unit[0, 0], to_unit[1, 0])  # unit-square sides per frame px
        cx, cy = invert(to_unit.astype(np.float32)) @ np.array([*centre, 1.0])
        k = size * per_px / coverage  # crop px per frame px
        return np.array([[k, 0.0, size / 2 - k * cx], [0.0, k, size / 2 - k * cy]], np.float32)
    pixels = size / coverage
    to_crop = np.array([[pixels, 0.0, (coverage / 2 - centre[0]) * pixels],
                        [0.0, pixels, (coverage / 2 - centre[1]) * pixels]])
    linear = to_crop[:, :2] @ to_unit[:, :2]
    shift = to_crop[:, :2] @ to_unit[:, 2] + to_crop[:, 2]
    return np.hstack([linear, shift[:, None]]).astype(np.float32)

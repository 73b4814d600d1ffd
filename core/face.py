"""A tracked face and the named FaceMesh point subsets every stage shares."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from core.modelfiles import face_mesh_uv
from core.pose import face_axes

# MediaPipe FaceMesh (468) topology. "Image-left" means smaller x in an unmirrored frame,
# i.e. the subject's right side.
FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
             400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21,
             54, 103, 67, 109]
EYE_IMAGE_LEFT = [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173]
EYE_IMAGE_RIGHT = [263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384,
                   398]
LIPS_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37,
              39, 40, 185]
LIPS_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82,
              81, 80, 191]
NOSE_TIP = 1
MOUTH_CORNER_IMAGE_LEFT = 61
MOUTH_CORNER_IMAGE_RIGHT = 291


def points5(landmarks: np.ndarray) -> np.ndarray:
    """5 points in ArcFace order (image-left eye, image-right eye, nose, mouth l, mouth r)."""
    lm = landmarks[:, :2]
    return np.stack([
        lm[EYE_IMAGE_LEFT].mean(axis=0),
        lm[EYE_IMAGE_RIGHT].mean(axis=0),
        lm[NOSE_TIP],
        lm[MOUTH_CORNER_IMAGE_LEFT],
        lm[MOUTH_CORNER_IMAGE_RIGHT],
    ]).astype(np.float32)


@functools.cache
def mirror_indices() -> np.ndarray:
    """For each of the 468 points, the index of its mirror image across the face's midline
    (image-left <-> image-right; midline points map to themselves): a fact of FaceMesh's
    topology, read from its canonical mesh in texture layout, which is exactly symmetric.
    (Pairing a face's own points did it for 94 % of them frontal, half at 50 degrees.)"""
    uv = face_mesh_uv()
    reflected = uv.copy()
    reflected[:, 0] = 2.0 * np.median(uv[:, 0]) - reflected[:, 0]
    mirror = np.argmin(np.linalg.norm(reflected[:, None, :] - uv[None, :, :], axis=2), axis=1)
    mirror.flags.writeable = False
    return mirror


def face_shape(landmarks: np.ndarray) -> np.ndarray | None:
    """(468, 3) landmarks in the face's own axes (face_axes), centred, the face oval 1 wide:
    the face's 3D shape, whatever its pose; None for degenerate landmarks."""
    points = np.asarray(landmarks, np.float64)
    axes = face_axes(points)
    if axes is None:
        return None
    shape = (points - points.mean(axis=0)) @ axes.T
    return shape / max(float(np.ptp(shape[FACE_OVAL, 0])), 1e-6)


@dataclass
class Face:
    """One face in one frame, in frame pixel coordinates."""

    landmarks: np.ndarray  # (468, 3) float32: x, y in frame px; z in px, relative depth
    box: np.ndarray  # (4,) float32: x0, y0, x1, y1
    score: float = 1.0  # detector score or landmark presence, 0..1
    id: int = 0  # stable across frames while tracked
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0)  # yaw, pitch, roll in degrees
    extra: dict = field(default_factory=dict)

    @property
    def points5(self) -> np.ndarray:
        return points5(self.landmarks)

    @property
    def size(self) -> float:
        """Face scale in px (box diagonal / sqrt 2): scales erode, blur and label sizes."""
        w, h = self.box[2] - self.box[0], self.box[3] - self.box[1]
        return float(np.hypot(w, h) / np.sqrt(2.0))

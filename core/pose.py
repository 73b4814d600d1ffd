"""Head pose (yaw, pitch, roll in degrees) from FaceMesh's 3D landmarks, and the pose
geometry of a 3D face shape (fit to 2D points, project, turn).

Conventions (frame coordinates: x right, y down, z away from the camera; angles 0 for a
face looking straight into the camera, upright):
- yaw > 0: the nose points towards image-right (larger x),
- pitch > 0: the nose points up (smaller y), the face looks up,
- roll > 0: the face is turned clockwise in the image (its image-right eye is lower).

Geometric, not a fitted model: the face's right axis comes from the eye corners and cheek
silhouette points, its up axis from chin to forehead/brows, and the nose direction is their
cross product. FaceMesh's z shares x's scale, so the angles are metric to a few degrees.
"""

from __future__ import annotations

import numpy as np

# Symmetric pairs (image-left, image-right): outer eye corners, cheeks at the silhouette,
# inner eye corners, mouth corners.
_LEFT = [33, 234, 133, 61]
_RIGHT = [263, 454, 362, 291]
# Top (brow line, forehead) and bottom (chin, below the lip) points on the midline and brows.
_TOP = [10, 151, 9, 107, 336]
_BOTTOM = [152, 175, 199, 17]
# The detector's keypoints (core.detect.KEYPOINT_NAMES): nose tip, ear image-left, -right;
# FaceMesh's nose tip and the face oval's points at ear level (image-left, image-right).
_NOSE_EARS = (2, 4, 5)
_NOSE_TIP = 1
_EAR_LEVEL = (234, 454)
# Chin->forehead direction of a frontal FaceMesh face leans back by this much (degrees):
# measured on frontal portraits so that they read as pitch ~0.
_PITCH_OFFSET = -8.5


def face_axes(landmarks: np.ndarray) -> np.ndarray | None:
    """The face's own axes in frame coordinates as the rows of a rotation: right (eyes and
    cheeks, image-left to image-right), down (forehead to chin) and back (into the head);
    None for degenerate landmarks."""
    p = np.asarray(landmarks, np.float64)
    right = p[_RIGHT].mean(0) - p[_LEFT].mean(0)
    down = p[_BOTTOM].mean(0) - p[_TOP].mean(0)
    norm = np.linalg.norm(right)
    if norm < 1e-9 or np.linalg.norm(down) < 1e-9:
        return None
    right /= norm
    down -= right * (down @ right)
    down /= max(np.linalg.norm(down), 1e-9)
    return np.vstack([right, down, np.cross(right, down)])  # frontal back: (0, 0, 1)


def head_pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from (468, 3) landmarks; see the module docstring."""
    axes = face_axes(landmarks)
    if axes is None:
        return (0.0, 0.0, 0.0)
    right, nose = axes[0], -axes[2]
    yaw = np.degrees(np.arctan2(nose[0], -nose[2]))
    pitch = np.degrees(np.arctan2(-nose[1], np.hypot(nose[0], nose[2]))) - _PITCH_OFFSET
    roll = np.degrees(np.arctan2(right[1], right[0]))
    return (float(yaw), float(pitch), float(roll))


def yaw_from_keypoints(keypoints: np.ndarray, shape: np.ndarray) -> float | None:
    """Yaw in degrees from the face detector's nose tip and ear (tragion) keypoints: the
    nose's offset from the ears' midpoint over the ears' span is k tan(yaw), k being how far
    the nose stands in front of the ears over their width - read from the face's own shape
    (face_shape; 0.73 on both test photos), not a constant. A second
    opinion FaceMesh cannot give: its points drift towards a frontal face as the head turns
    (core.headmodel). None when the ears are too close together to tell."""
    offset, span = nose_offset(keypoints)
    width = float(shape[_EAR_LEVEL[1], 0] - shape[_EAR_LEVEL[0], 0])
    depth = float(shape[list(_EAR_LEVEL), 2].mean() - shape[_NOSE_TIP, 2])
    if width <= 0.0 or depth <= 0.0 or span <= 0.0:
        return None
    return float(np.degrees(np.arctan(offset / span * width / depth)))


def nose_offset(keypoints: np.ndarray) -> tuple[float, float]:
    """The face detector's nose keypoint's offset from its ears' midpoint, and the ears' span
    (image-left to image-right), in px along x: their ratio reads the turn
    (yaw_from_keypoints; core.acquire.turned_detection)."""
    nose, left, right = (float(keypoints[i, 0]) for i in _NOSE_EARS)
    return nose - (left + right) / 2.0, right - left


# a scaled orthographic pose: rotation (3x3, shape -> camera), scale, 2D offset
Pose = tuple[np.ndarray, float, np.ndarray]


def fit_pose(points2d: np.ndarray, shape: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Scaled orthographic pose of `shape` (N, 3) seen at `points2d` (N, 2): rotation R
    (3x3, shape -> camera), scale s and the 2D offset, so that points2d ~ s (shape R^T)[:2] + t.
    Least-squares affine camera, then the nearest scaled rotation (SVD)."""
    shape = np.asarray(shape, np.float64)
    points2d = np.asarray(points2d, np.float64)
    s_mean, p_mean = shape.mean(axis=0), points2d.mean(axis=0)
    affine = np.linalg.lstsq(shape - s_mean, points2d - p_mean, rcond=None)[0].T  # (2, 3)
    u, sigma, vt = np.linalg.svd(affine, full_matrices=False)
    rows = u @ vt
    rotation = np.vstack([rows, np.cross(rows[0], rows[1])])
    scale = float(sigma.mean())
    offset = p_mean - scale * (s_mean @ rows.T)
    return rotation, scale, offset



def project(shape: np.ndarray, pose: Pose) -> np.ndarray:
    """(N, 3) frame px: the shape at a pose (z scaled like x, larger = farther)."""
    rotation, scale, offset = pose
    turned = scale * (np.asarray(shape, np.float64) @ rotation.T)
    turned[:, :2] += offset
    return turned


def turn(pose: Pose, yaw: float, pitch: float) -> Pose:
    """The pose turned further by yaw and pitch degrees (camera axes, core.pose signs)."""
    y, p = np.radians(yaw), np.radians(pitch)
    spin_y = np.array([[np.cos(y), 0.0, -np.sin(y)], [0.0, 1.0, 0.0], [np.sin(y), 0.0, np.cos(y)]])
    spin_p = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(p), np.sin(p)], [0.0, -np.sin(p), np.cos(p)]])
    rotation, scale, offset = pose
    return spin_y @ spin_p @ rotation, scale, offset


def apart(one: Pose, other: Pose) -> float:
    """The angle between two poses' rotations, degrees."""
    relative = one[0] @ other[0].T
    return float(np.degrees(np.arccos(np.clip((np.trace(relative) - 1.0) / 2.0, -1.0, 1.0))))

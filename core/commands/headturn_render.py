"""Synthetic head turns with known truth, for the head-turn benchmark and the tests.

A portrait's own FaceMesh landmarks (x, y and FaceMesh's depth z, from the still-image
path) are a 3D face; two rings around the face oval, set back in depth, carry the hair, ears
and background next to the face as a proxy for the rest of the head. The mesh is turned
about an axis behind the face (yaw about the vertical, pitch about the horizontal) and drawn
triangle by triangle - texture from the portrait, triangles facing away skipped, far ones
first - on a plain background. Each render's truth is exact: the turned landmarks
projected into the frame (orthographic), and the head pose of those exact 3D points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InputError
from core.face import FACE_OVAL
from core.mesh import MeshWarp, triangulate
from core.pose import head_pose
from core.stills import landmarks_for_image

# (scale about the face oval's centre, depth behind the oval in face widths) per ring
RINGS = ((1.25, 0.3), (1.6, 0.75))
PIVOT_DEPTH = 0.5  # the turning axes lie this many face widths behind the face oval
FACE_PX = 160.0  # face size (core.face.Face.size) in the rendered frames
FRAME_SIZE = (640, 480)
BACKGROUND = (96, 96, 96)  # RGB


@dataclass(frozen=True)
class Head:
    """A portrait prepared as a turnable 3D head."""

    warp: MeshWarp  # the portrait as texture, its mesh at the frontal 2D positions
    points: np.ndarray  # (K, 3) mesh vertices in portrait px: 468 landmarks, then the rings
    pivot: np.ndarray  # (3,) the point the head turns about
    face_size: float  # core.face.Face.size of the portrait's face, px


@dataclass(frozen=True)
class Render:
    """One synthetic frame and its truth."""

    frame: np.ndarray  # (H, W, 3) uint8 RGB
    landmarks: np.ndarray  # (468, 3) the true landmarks in frame px (z scaled like x)
    yaw: float  # the head pose of the true landmarks, degrees (core.pose conventions)
    pitch: float
    face_size: float  # the frontal face size in frame px: what errors are measured against


def make_head(portrait_rgb: np.ndarray, source: str = "portrait") -> Head:
    """The portrait's face as a turnable head; InputError when it holds no face."""
    face = landmarks_for_image(portrait_rgb)
    if face is None:
        raise InputError(f"no face found in {source}")
    landmarks = face.landmarks.astype(np.float64)
    oval = landmarks[FACE_OVAL]
    centre = oval.mean(axis=0)
    width = float(np.ptp(oval[:, 0]))
    rings = [np.column_stack([centre[:2] + scale * (oval[:, :2] - centre[:2]),
                              oval[:, 2] + depth * width])
             for scale, depth in RINGS]
    points = np.concatenate([landmarks, *rings]).astype(np.float32)
    pivot = np.array([centre[0], centre[1], oval[:, 2].mean() + PIVOT_DEPTH * width],
                     np.float32)
    warp = MeshWarp(portrait_rgb, points[:, :2], triangulate(points[:, :2]), map_scale=1.0)
    return Head(warp, points, pivot, face.size)


def rotation(yaw: float, pitch: float) -> np.ndarray:
    """3x3 rotation turning a face by pitch (nose up for > 0), then yaw (nose to image-right
    for > 0), in frame coordinates (x right, y down, z away from the camera)."""
    y, p = np.radians(yaw), np.radians(pitch)
    turn = np.array([[np.cos(y), 0.0, -np.sin(y)], [0.0, 1.0, 0.0], [np.sin(y), 0.0, np.cos(y)]])
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(p), np.sin(p)], [0.0, -np.sin(p), np.cos(p)]])
    return turn @ tilt


def render_head(head: Head, yaw: float, pitch: float, frame_size: tuple[int, int] = FRAME_SIZE,
                face_px: float = FACE_PX) -> Render:
    """The head turned by (yaw, pitch) degrees, its face `face_px` big, centred in a frame."""
    width, height = frame_size
    scale = face_px / head.face_size
    turned = (head.points - head.pivot) @ rotation(yaw, pitch).T * scale
    turned[:, 0] += width / 2.0
    turned[:, 1] += height / 2.0
    frame = np.empty((height, width, 3), np.uint8)
    frame[...] = BACKGROUND
    lo = np.floor(turned[:, :2].min(axis=0)).astype(int) - 2
    hi = np.ceil(turned[:, :2].max(axis=0)).astype(int) + 2
    side = int(max(hi - lo))
    image, shown = head.warp.render(turned[:, :2] - lo, side, depth=turned[:, 2])
    drawn = shown >= 0
    # paste the square the head was drawn in, clipped to the frame
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(lo[0] + side, width), min(lo[1] + side, height)
    if x1 > x0 and y1 > y0:
        region = (slice(y0 - lo[1], y1 - lo[1]), slice(x0 - lo[0], x1 - lo[0]))
        target = frame[y0:y1, x0:x1]
        target[drawn[region]] = image[region][drawn[region]]
    truth = turned[:468].astype(np.float32)
    true_yaw, true_pitch, _ = head_pose(truth)
    return Render(frame, truth, true_yaw, true_pitch, face_px)


def sweep(limit: float, step: float) -> list[float]:
    """Angles of a smooth turn 0 -> +limit -> -limit -> 0 in `step`-degree steps."""
    up = np.arange(0.0, limit, step)
    down = np.arange(limit, -limit, -step)
    back = np.arange(-limit, 0.0 + step / 2, step)
    return [float(a) for a in np.concatenate([up, down, back])]


def landmark_error(found: np.ndarray, truth: np.ndarray, face_size: float) -> float:
    """Mean distance of found to true landmarks (x, y), in % of the face size."""
    distance = np.linalg.norm(found[:, :2].astype(np.float64) - truth[:, :2], axis=1)
    return float(distance.mean() / face_size * 100.0)

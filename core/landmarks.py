"""FaceMesh 468 landmarks on an upright, enlarged crop, mapped back to frame pixels.

Only the 192x192 crop is warped out of the frame (in the frame's layout) and reordered to
RGB, so the cost does not grow with the frame size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.detect import Detection
from core.face import Face
from core.frame import check_frame, to_rgb
from core.modelfiles import FACE_MESH, builtin_model
from core.pose import head_pose
from core.runtime import get_session, run

INPUT_SIZE = 192
ROI_SCALE = 1.5  # crop side = 1.5 x face extent, as MediaPipe's face_landmark graph does
PRESENCE_THRESHOLD = 0.5
EYE_CORNER_IMAGE_LEFT = 33  # outer corners: the roll of the next frame's crop
EYE_CORNER_IMAGE_RIGHT = 263

@dataclass
class Roi:
    """A square, rotated crop in frame px: centre, side, rotation (radians, image coords)."""

    cx: float
    cy: float
    size: float
    angle: float  # angle of the image-left -> image-right eye line; the crop undoes it

    def matrix(self, out: int = INPUT_SIZE) -> np.ndarray:
        """2x3 affine frame px -> `out` px crop, face upright."""
        k = out / self.size
        c, s = np.cos(self.angle) * k, np.sin(self.angle) * k
        # u = R(-angle) (p - c) k + out/2
        return np.array([[c, s, out / 2 - c * self.cx - s * self.cy],
                         [-s, c, out / 2 + s * self.cx - c * self.cy]], np.float32)


def roi_from_detection(det: Detection, scale: float = ROI_SCALE) -> Roi:
    """Crop around a detection, rotated upright by its eye keypoints."""
    eyes = det.keypoints[:2]
    angle = float(np.arctan2(eyes[1, 1] - eyes[0, 1], eyes[1, 0] - eyes[0, 0]))
    cx, cy = (det.box[:2] + det.box[2:]) / 2.0
    side = max(det.box[2] - det.box[0], det.box[3] - det.box[1]) * scale
    return Roi(float(cx), float(cy), float(side), angle)


def roi_from_landmarks(landmarks: np.ndarray, scale: float = ROI_SCALE) -> Roi:
    """Crop for the next frame: rotation from the eye corners, extent of all points upright."""
    xy = landmarks[:, :2].astype(np.float64)
    d = xy[EYE_CORNER_IMAGE_RIGHT] - xy[EYE_CORNER_IMAGE_LEFT]
    angle = float(np.arctan2(d[1], d[0]))
    c, s = np.cos(angle), np.sin(angle)
    upright = xy @ np.array([[c, -s], [s, c]])  # rotate by -angle
    lo, hi = upright.min(0), upright.max(0)
    mid = (lo + hi) / 2.0
    centre = np.array([[c, -s], [s, c]]) @ mid  # back to frame coordinates
    side = float(max(hi - lo)) * scale
    return Roi(float(centre[0]), float(centre[1]), side, angle)


def box_of(landmarks: np.ndarray) -> np.ndarray:
    """Axis-aligned x0y0x1y1 box of the landmarks."""
    xy = landmarks[:, :2]
    return np.concatenate([xy.min(0), xy.max(0)]).astype(np.float32)


class FaceMesh:
    """MediaPipe FaceMesh (468 points + presence) on a rotated square crop of a frame."""

    def __init__(self, device: str = "cpu", threads: int = 0) -> None:
        self.session = get_session(builtin_model(FACE_MESH), device, threads)
        self._input = self.session.get_inputs()[0].name

    def run(self, frame: np.ndarray, fmt: str, roi: Roi,
            check: bool = True) -> tuple[np.ndarray, float]:
        """Landmarks (468, 3) in frame px (z scaled like x) and presence 0..1 for `roi`."""
        if check:
            check_frame(frame, fmt)
        if not roi.size > 1.0 or not np.isfinite([roi.cx, roi.cy, roi.size, roi.angle]).all():
            raise ValueError(f"degenerate face crop {roi}")
        m = roi.matrix()
        crop = cv2.warpAffine(frame, m, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        x = to_rgb(crop, fmt).astype(np.float32) * (1.0 / 255.0)
        x = np.ascontiguousarray(x.transpose(2, 0, 1)[None])
        points, logit = run(self.session, {self._input: x})
        pts = points.reshape(468, 3).astype(np.float64)
        inv = cv2.invertAffineTransform(m.astype(np.float64))
        out = np.empty((468, 3), np.float32)
        out[:, :2] = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        out[:, 2] = pts[:, 2] * (roi.size / INPUT_SIZE)
        presence = float(1.0 / (1.0 + np.exp(-np.clip(logit.item(), -60.0, 60.0))))
        return out, presence


def make_face(landmarks: np.ndarray, score: float, face_id: int = 0) -> Face:
    """A Face with box and pose derived from its landmarks."""
    return Face(landmarks=landmarks.astype(np.float32), box=box_of(landmarks), score=score,
                id=face_id, pose=head_pose(landmarks))

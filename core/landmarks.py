"""FaceMesh 468 landmarks on an upright, enlarged crop, mapped back to frame pixels.

Only the 192x192 crop is warped out of the frame (in the frame's layout) and reordered to
RGB, so the cost does not grow with the frame size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core import face as F
from core.detect import Detection, FaceDetector, iou
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

# 468 -> 68 (iBUG 300-W / dlib order), the widely used MediaPipe->dlib correspondence:
# jaw 0-16 (image-left to image-right), brows 17-21 and 22-26, nose bridge 27-30,
# nostrils 31-35, eyes 36-41 and 42-47 (outer corner, upper lid, inner corner, lower lid),
# outer lips 48-59 and inner lips 60-67 (clockwise from the image-left corner).
# An approximation: FaceMesh's jaw points lie on the silhouette, not dlib's jaw contour.
LANDMARKS_68 = [
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,
    71, 63, 105, 66, 107,
    336, 296, 334, 293, 301,
    168, 197, 5, 4,
    75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144,
    362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
]
# Named subsets of the 468 points (indices), for masks and feature pasting.
SUBSETS = {
    "eye_image_left": F.EYE_IMAGE_LEFT,
    "eye_image_right": F.EYE_IMAGE_RIGHT,
    "lips": F.LIPS_OUTER,
    "inner_mouth": F.LIPS_INNER,
    "face_oval": F.FACE_OVAL,
    "68": LANDMARKS_68,
}


def points68(landmarks: np.ndarray) -> np.ndarray:
    """(68, 2) approximation of the dlib/iBUG 68 points from 468 landmarks."""
    return landmarks[LANDMARKS_68, :2].astype(np.float32)


def subset(landmarks: np.ndarray, name: str) -> np.ndarray:
    """(N, 2) points of a named subset: one of SUBSETS, or "5" (ArcFace order)."""
    if name == "5":
        return F.points5(landmarks)
    if name not in SUBSETS:
        raise ValueError(f"unknown landmark subset {name!r}; expected 5 or {', '.join(SUBSETS)}")
    return landmarks[SUBSETS[name], :2].astype(np.float32)


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


def faces_in_image(image: np.ndarray, fmt: str = "rgb", refine: int = 3,
                   scan_size: float = 40.0, max_faces: int = 16) -> list[Face]:
    """All faces of a still image, largest first (ids 0, 1, ... in that order).

    Slower and steadier than the live path: "auto" detection (full range, short range when
    that finds nothing; big images are scanned in tiles down to `scan_size` px faces), then the
    mesh is re-run `refine` times on a crop from its own landmarks: each pass corrects the
    framing of the last, which brings landmark error under changes of position, scale and
    rotation from ~3% to ~1% of the eye distance.
    """
    check_frame(image, fmt)
    mesh = FaceMesh()
    found: list[tuple[np.ndarray, float]] = []
    detector = FaceDetector("auto", min_size=8, scan_size=scan_size, max_faces=max_faces)
    for det in detector.detect(image, fmt):
        landmarks, presence = mesh.run(image, fmt, roi_from_detection(det), check=False)
        for _ in range(refine):
            if presence < PRESENCE_THRESHOLD:
                break
            landmarks, presence = mesh.run(image, fmt, roi_from_landmarks(landmarks),
                                           check=False)
        box = box_of(landmarks)
        if presence >= PRESENCE_THRESHOLD and not any(
                iou(box, box_of(other)[None])[0] > 0.5 for other, _ in found):
            found.append((landmarks, presence))
    found.sort(key=lambda item: -float(np.prod(box_of(item[0])[2:] - box_of(item[0])[:2])))
    return [make_face(lm, presence, i) for i, (lm, presence) in enumerate(found)]


def landmarks_for_image(image_rgb: np.ndarray, refine: int = 3) -> Face | None:
    """The largest face of a still RGB image (portraits), or None; see faces_in_image."""
    faces = faces_in_image(image_rgb, "rgb", refine)
    return faces[0] if faces else None

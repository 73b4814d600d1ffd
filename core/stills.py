"""Faces of a still image: slower and steadier than the live tracker, what `core detect`,
`core swap` on images, reference portraits and the head-turn renderer use.

A turned head: FaceMesh's points drift towards a frontal face as the head turns (3-6 % of
the face size and 10-20 degrees of yaw short at 45-60 degrees, core.headmodel), and a still
has no frontal frame for the live path's learned head model. So the yaw is read a second
way, from the face detector's nose and ear keypoints (core.pose.yaw_from_keypoints), and
where that reads the turn further than FaceMesh does (weighed in from 35 to 50 degrees of
that reading, KEYPOINTS_RAMP), the face's own symmetric 3D shape is turned towards it and
fitted to FaceMesh's points (scale and position, a robust fit that counts
the points FaceMesh drifted furthest least: headmodel._place_robustly); from TRUST_FROM to
TRUST_UNTIL degrees it is blended in, as the live path blends its model.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.acquire import first_landmarks
from core.detect import DUPLICATE_IOU, FaceDetector, iou
from core.face import Face
from core.frame import check_frame
from core.headmodel import TRUST_FROM, TRUST_UNTIL, turned_pose
from core.landmarks import (
    PRESENCE_THRESHOLD,
    FaceMesh,
    Roi,
    box_of,
    make_face,
    roi_from_landmarks,
)
from core.pose import head_pose, project


def faces_in_image(image: np.ndarray, fmt: str = "rgb", refine: int = 3,
                   scan_size: float = 40.0, max_faces: int = 16) -> list[Face]:
    """All faces of a still image, largest first (ids 0, 1, ... in that order).

    Slower and steadier than the live path: "both" detection (full range, and the short
    range's faces it did not find; big images are scanned in tiles down to `scan_size` px
    faces), FaceMesh from each (core.acquire: other crops where the detection's own shows
    no face), then the mesh is re-run `refine` times on a crop from its own landmarks: each
    pass corrects the framing of the last, which brings landmark error under changes of
    position, scale and rotation from ~3% to ~1% of the eye distance. A turned head's
    landmarks are corrected from the detector's reading of the turn (see the module
    docstring).
    """
    check_frame(image, fmt)
    mesh = FaceMesh()
    found: list[tuple[np.ndarray, float, tuple[float, float, float]]] = []
    detector = FaceDetector("both", min_size=8, scan_size=scan_size, max_faces=max_faces)
    for det in detector.detect(image, fmt):
        landmarks, presence = first_landmarks(mesh, image, fmt, det)
        side = 0.0
        for _ in range(refine):
            if presence < PRESENCE_THRESHOLD:
                break
            roi = refine_crop(landmarks, side)
            refined, again = mesh.run(image, fmt, roi, check=False)
            if again < PRESENCE_THRESHOLD:
                break  # lost it (a profile, framed by its own points): keep the last pass
            landmarks, presence, side = refined, again, roi.size
        mesh_pose = head_pose(landmarks)
        landmarks = turned(landmarks, det.keypoints)
        box = box_of(landmarks)
        if presence >= PRESENCE_THRESHOLD and not any(
                iou(box, box_of(other)[None])[0] > DUPLICATE_IOU for other, _, _ in found):
            found.append((landmarks, presence, mesh_pose))
    found.sort(key=lambda item: -float(np.prod(box_of(item[0])[2:] - box_of(item[0])[:2])))
    faces = []
    for i, (landmarks, presence, mesh_pose) in enumerate(found):
        face = make_face(landmarks, presence, i)
        face.extra["mesh_pose"] = mesh_pose  # FaceMesh's own reading, before the correction
        faces.append(face)
    return faces


HOLD_CROP_FROM = 12.0  # degrees of FaceMesh's own yaw: a refining crop no longer shrinks


def refine_crop(landmarks: np.ndarray, last_side: float) -> Roi:
    """The crop of a refining pass, framed by the last pass's landmarks (`last_side`: the
    last refining crop's side, 0 before the first). A turned face's crop never shrinks from
    one refining pass to the next: FaceMesh draws a turned face shorter than it is (its
    points span 0.84-0.93 of the true height at 45-60 degrees on the renders) and each crop
    framed by them is smaller, so the next reads shorter still - on the astronaut at 45-60
    degrees the landmark error grew 2.97 -> 3.81 % over three passes; with the crop held
    3.23. Near frontal the passes correct the framing both ways."""
    roi = roi_from_landmarks(landmarks)
    if abs(head_pose(landmarks)[0]) > HOLD_CROP_FROM:
        return replace(roi, size=max(roi.size, last_side))
    return roi


# The detector's reading of the yaw weighs 0 -> 1 against FaceMesh's over this many degrees
# of that reading (core.headmodel.turned_pose). On real faces FaceMesh reads moderate turns
# well (../shared/data/real_turns, 15-30 / 30-45 degrees: 2.2 / 4.1 degrees of error) and the
# keypoints over-read them (6.5 / 6.5); past 45 FaceMesh lags (8.2; 14.5 at 60-75) and the
# keypoints hold better (4.9; 9.5). Weighed in from the start, the still path read 5.5 /
# 5.7 degrees of error at 15-30 / 30-45; now 2.7 / 4.3. On the renders FaceMesh lags from 30
# degrees on (core.commands.headturn_render draws heads flatter than real ones: README "Head
# turns"), so there the still path reads 30-60 degrees worse than it did (8.6 against 6.4).
KEYPOINTS_RAMP = (35.0, 50.0)


def turned(landmarks: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """FaceMesh's (468, 3) landmarks of a still, corrected for a head turned further than
    they show (see the module docstring); unchanged near frontal."""
    found = turned_pose(landmarks, keypoints, KEYPOINTS_RAMP)
    if found is None:
        return landmarks
    model = project(*found)
    weight = (TRUST_UNTIL - abs(head_pose(model)[0])) / (TRUST_UNTIL - TRUST_FROM)
    weight = float(np.clip(weight, 0.0, 1.0))
    return (weight * np.asarray(landmarks, np.float64) + (1.0 - weight) * model
            ).astype(np.float32)


def landmarks_for_image(image_rgb: np.ndarray, refine: int = 3) -> Face | None:
    """The largest face of a still RGB image (portraits), or None; see faces_in_image."""
    faces = faces_in_image(image_rgb, "rgb", refine)
    return faces[0] if faces else None

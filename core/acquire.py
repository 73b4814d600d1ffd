"""A face's first landmarks from a face detection: FaceMesh on the detection's crop, and
where it sees no face there, other crops - the still path (core.stills) and the live
tracker's detection rounds (core.track) acquire a face the same way.

A turned head is where the detection's own crop fails: a profile's eye keypoints nearly
meet, so the crop's rotation is off, and FaceMesh may take a profile only from a crop moved
a little off the detector's box.
"""

from __future__ import annotations

import numpy as np

from core.detect import Detection
from core.face import NOSE_TIP
from core.landmarks import PRESENCE_THRESHOLD, FaceMesh, Roi, roi_from_detection
from core.pose import NOSE_EARS

# crops tried when FaceMesh finds no face in the detection's own: (size factor, keep the
# rotation); a profile's eye keypoints nearly meet, so their line's angle can be far off
RETRY_CROPS = ((1.3, True), (1.0, False), (1.3, False))
# and where the detector's keypoints read a turned head (its nose TURNED_RATIO or more of
# the ears' span off their middle; 0.1-0.2 on the frontal faces looked at, 1.0-2.6 on
# profiles), crops moved a little either way (FaceMesh takes a profile the detector boxed
# off-centre): (size factor, shift right and down in crop sides), each with and without
# the rotation. On ../shared/data/real_turns, with the short range's faces ("both"), they
# find 8 of the 11 faces turned 60-90 degrees that were not found.
TURNED_RATIO = 0.5
SHIFTED_CROPS = tuple((scale, dx, dy) for scale in (0.85, 1.0) for dy in (0.0, 0.1, -0.1)
                      for dx in (-0.15, 0.15))
# On the faces they found: 0.01-0.10 of the detection's size apart on profiles looked at,
# 0.20 on one placed a little off, 0.49 where a frontal face was read across a profile's
# cheek and ear (image03885 at 80 degrees)
NOSE_AGREES = 0.25


def turned_detection(det: Detection) -> bool:
    """Whether the detector's nose keypoint lies far off its ears' middle (a turned head)."""
    nose, left, right = (float(det.keypoints[i, 0]) for i in NOSE_EARS)
    return abs(nose - (left + right) / 2.0) >= TURNED_RATIO * max(abs(right - left), 1e-6)


def nose_agrees(landmarks: np.ndarray, det: Detection) -> bool:
    """Whether FaceMesh's nose tip lies within NOSE_AGREES x the detection's size of the
    detector's nose keypoint: a crop moved off the detection found that face, not a frontal
    face read into the cheek and ear of a profile."""
    apart = np.linalg.norm(landmarks[NOSE_TIP, :2] - det.keypoints[NOSE_EARS[0]])
    return float(apart) <= NOSE_AGREES * det.size


def other_crops(det: Detection) -> list[tuple[Roi, bool]]:
    """The crops tried after the detection's own, in order, each with whether what FaceMesh
    finds there must have its nose where the detector's is: RETRY_CROPS, then for a turned
    head SHIFTED_CROPS, each rotated as the detection and upright."""
    roi = roi_from_detection(det)
    crops = [(Roi(roi.cx, roi.cy, roi.size * scale, roi.angle if rotated else 0.0), False)
             for scale, rotated in RETRY_CROPS]
    if turned_detection(det):
        crops += [(Roi(roi.cx + dx * roi.size, roi.cy + dy * roi.size, roi.size * scale, angle),
                   True) for scale, dx, dy in SHIFTED_CROPS for angle in (roi.angle, 0.0)]
    return crops


def first_landmarks(mesh: FaceMesh, image: np.ndarray, fmt: str, det: Detection,
                    budget: int | None = None, turn: int = 0) -> tuple[np.ndarray, float]:
    """FaceMesh's first landmarks from a detection and their presence: its own crop, and
    where FaceMesh sees no face there (most often a head turned 60 degrees or more) the
    other_crops until one finds the detection's face. A still tries them all; the live
    tracker `budget` of them a detection round, its `turn`-th round trying the turn-th few
    (so a frame never pays for all of them). On ../shared/data/real_turns the still path's
    retries find 22 of 24 faces at 60-75 degrees against 21, with the moved crops 23."""
    landmarks, presence = mesh.run(image, fmt, roi_from_detection(det), check=False)
    if presence >= PRESENCE_THRESHOLD:
        return landmarks, presence
    crops = other_crops(det)
    if budget is not None:
        first = turn * budget % len(crops)
        crops = crops[first:first + budget]
    for crop, nose in crops:
        found, again = mesh.run(image, fmt, crop, check=False)
        if again >= PRESENCE_THRESHOLD and not (nose and not nose_agrees(found, det)):
            return found, again
        if not nose:  # the last of RETRY_CROPS is what a face not found keeps, as before
            landmarks, presence = found, again
    return landmarks, presence

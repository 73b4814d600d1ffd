"""A face's first landmarks from a face detection: FaceMesh on the detection's crop, and
where it sees no face there, other crops - the still path (core.stills) and the live
tracker's detection rounds (core.track) acquire a face the same way.

A turned head is where the detection's own crop fails: a profile's eye keypoints nearly
meet, so the crop's rotation is off, and FaceMesh may take a profile only from a crop moved
a little off the detector's box.
"""

from __future__ import annotations

import numpy as np

from core.detect import KEYPOINT_NAMES, Detection
from core.face import NOSE_TIP
from core.landmarks import PRESENCE_THRESHOLD, FaceMesh, Roi, roi_from_detection
from core.pose import nose_offset

# crops tried when FaceMesh finds no face in the detection's own: (size factor, keep the
# rotation); a profile's eye keypoints nearly meet, so their line's angle can be far off
RETRY_CROPS = ((1.3, True), (1.0, False), (1.3, False))
# and where the detector's keypoints read a turned head (its nose TURNED_RATIO or more of
# the ears' span off their middle: on ../shared/data/real_turns a median of 0.07 at 0-15
# degrees of yaw (0.31 at most), 0.37 at 15-30, 0.59 at 30-45, 1.0 and more past 60),
# crops moved a little either way (FaceMesh takes a profile the detector boxed off-centre):
# (size factor, shift right and down in crop sides), each rotated as the detection and
# upright. On ../shared/data/real_turns, with the short range's faces ("both"), they find 6
# of the 11 faces turned 60-90 degrees that were not found.
TURNED_RATIO = 0.5
SHIFTED_CROPS = tuple((scale, dx, dy) for scale in (0.85, 1.0) for dy in (0.0, 0.1, -0.1)
                      for dx in (-0.15, 0.15))
# What a moved crop finds must have its nose within this x the detection's size of the
# detector's: 0.01-0.10 on the profiles found, 0.20 on one placed a little off, 0.49 where
# a frontal face was read across a profile's cheek and ear (image03885 at 80 degrees)
NOSE_AGREES = 0.25
NOSE = KEYPOINT_NAMES.index("nose_tip")


def turned_detection(det: Detection) -> bool:
    """Whether the detector's nose keypoint lies far off its ears' middle (a turned head)."""
    offset, span = nose_offset(det.keypoints)
    return abs(offset) >= TURNED_RATIO * max(abs(span), 1e-6)


def nose_agrees(landmarks: np.ndarray, det: Detection) -> bool:
    """Whether FaceMesh's nose tip lies within NOSE_AGREES x the detection's size of the
    detector's nose keypoint: a crop moved off the detection found that face, not a frontal
    face read into the cheek and ear of a profile."""
    apart = np.linalg.norm(landmarks[NOSE_TIP, :2] - det.keypoints[NOSE])
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
                    budget: int | None = None, turn: int = 0, rest: int = 0
                    ) -> tuple[np.ndarray, float]:
    """FaceMesh's first landmarks from a detection and their presence: its own crop, and
    where FaceMesh sees no face there (most often a head turned 60 degrees or more) the
    other_crops until one finds the detection's face; a presence under PRESENCE_THRESHOLD
    when none does. A still tries them all; the live tracker `budget` of them a detection
    round, its `turn`-th round (counted for this detection) the turn-th few, so a frame
    never pays for all of them - and once all have been tried, `rest` rounds none. On
    ../shared/data/real_turns the still path's retries find 22 of 24 faces at 60-75 degrees
    against 21; with the short range's faces and the moved crops, 23."""
    landmarks, presence = mesh.run(image, fmt, roi_from_detection(det), check=False)
    if presence >= PRESENCE_THRESHOLD:
        return landmarks, presence
    crops = other_crops(det)
    if budget is not None:
        rounds = -(-len(crops) // max(budget, 1))  # to try them all
        turn %= rounds + rest
        crops = crops[turn * budget:(turn + 1) * budget] if turn < rounds else []
    for crop, must_agree in crops:
        found, again = mesh.run(image, fmt, crop, check=False)
        if again >= PRESENCE_THRESHOLD and (not must_agree or nose_agrees(found, det)):
            return found, again
    return landmarks, presence

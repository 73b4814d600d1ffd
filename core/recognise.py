"""Who is this face: dlib's face recognition ResNet as a 128-d descriptor, offline.

dlib_face_recognition_resnet_model_v1 (Davis King, public domain / CC0) converted to ONNX by
install/build_recogniser.py. A descriptor says nothing by itself; two descriptors closer than
SAME_PERSON (Euclidean) are the same person, dlib's rule (99.13 % on LFW without jitter).
The network was trained on dlib's face chips, so ours are cut to match them: our 5 landmarks
(core.face.points5) are fitted to TEMPLATE_150 by core.align, and a big face is first halved
with a Gaussian pyramid, as dlib's extract_image_chip does, so it is not aliased.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.align import align, similarity
from core.frame import check_frame, to_rgb
from core.modelfiles import builtin_model
from core.runtime import get_session, run

RECOGNISER = "dlib_face_recognition_resnet_v1.onnx"
CHIP_SIZE = 150
DESCRIPTOR_SIZE = 128
SAME_PERSON = 0.6  # dlib's threshold: the distance the network was trained to separate at

# Where core.face.points5 (eye centres, nose tip, mouth corners, ArcFace order) land in dlib's
# 150 px chip, get_face_chip(img, shape5, 150, 0.25). Fitted by install/build_recogniser.py on
# the single-person photos of ../shared/data/identity: for each face, dlib's own chip mapping
# (measured by cutting chips of coordinate ramps) applied to our landmarks of the same photo
# (core.stills.faces_in_image); the mean over the faces.
# (the core.stills landmarks of 45 faces lie within 3.5 px of it on average after dlib's
# mapping; the same person's descriptors from our chips and from dlib's own differ by 0.125).
TEMPLATE_150 = np.array([[45.9291, 45.5997], [100.1013, 45.1726], [73.5836, 80.3260],
                         [48.8969, 100.9373], [98.0466, 100.5095]], dtype=np.float32)


def face_chip(frame: np.ndarray, points5: np.ndarray, template: np.ndarray = TEMPLATE_150,
              fmt: str = "rgb") -> np.ndarray:
    """The 150x150 RGB chip of one face, framed like dlib's.

    A face bigger than the chip is first reduced by whole octaves (cv2.pyrDown on the face's
    own neighbourhood) until the remaining scale is at least 1/2, so bilinear sampling sees
    every source pixel it stands for: dlib's chips are made this way and the network knows
    them so.
    """
    points = np.asarray(points5, np.float64)
    matrix = similarity(points, template)
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    source = frame
    if scale < 0.5:
        # the chip's footprint in the frame, with room for the pyramid's 5-tap filter
        corners = np.array([[0, 0, 1], [CHIP_SIZE, 0, 1], [0, CHIP_SIZE, 1],
                            [CHIP_SIZE, CHIP_SIZE, 1]], np.float64)
        inverse = cv2.invertAffineTransform(matrix.astype(np.float64))
        footprint = corners @ inverse.T
        margin = 4.0 / scale
        height, width = frame.shape[:2]
        x0 = int(np.clip(np.floor(footprint[:, 0].min() - margin), 0, width - 1))
        y0 = int(np.clip(np.floor(footprint[:, 1].min() - margin), 0, height - 1))
        x1 = int(np.clip(np.ceil(footprint[:, 0].max() + margin), x0 + 1, width))
        y1 = int(np.clip(np.ceil(footprint[:, 1].max() + margin), y0 + 1, height))
        source = frame[y0:y1, x0:x1]
        points = points - (x0, y0)
        while scale < 0.5 and min(source.shape[:2]) >= 4:
            source = cv2.pyrDown(source)  # pixel i of the result is centred on pixel 2i
            points = points * 0.5
            scale *= 2.0
    crop = align(source, points.astype(np.float32), template, CHIP_SIZE).crop
    return to_rgb(crop, fmt)


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Euclidean distance between descriptors (broadcast over leading axes); below
    SAME_PERSON means the same person."""
    d = np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32), axis=-1)
    return float(d) if np.ndim(d) == 0 else d


class Recogniser:
    """dlib's face descriptor for faces of a frame, on any onnxruntime device."""

    def __init__(self, device: str = "cpu", threads: int = 0, path: str | Path | None = None,
                 template: np.ndarray = TEMPLATE_150) -> None:
        self.session = get_session(path or builtin_model(RECOGNISER), device, threads)
        self.template = np.asarray(template, np.float32)

    def chips(self, frame: np.ndarray, points5: list[np.ndarray],
              fmt: str = "rgb") -> np.ndarray:
        """[K, 150, 150, 3] uint8 RGB chips, one per face (each given by its points5)."""
        check_frame(frame, fmt)
        if not points5:
            return np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
        return np.stack([face_chip(frame, p, self.template, fmt) for p in points5])

    def descriptors_of_chips(self, chips: np.ndarray, mirror: bool = False) -> np.ndarray:
        """[K, 128] float32 descriptors of [K, 150, 150, 3] uint8 RGB chips, one batch.
        `mirror`: each the mean of the chip's and its mirror image's (twice the work; on
        ../shared/data/identity it keeps the same person nearer and others farther: the
        95th percentile of a person's distances 0.543 -> 0.526, the nearest other person
        0.543 -> 0.557)."""
        if len(chips) == 0:
            return np.zeros((0, DESCRIPTOR_SIZE), np.float32)
        batch = np.concatenate([chips, chips[:, :, ::-1]]) if mirror else chips
        descriptors = run(self.session, {"image": np.ascontiguousarray(batch, np.uint8)})[0]
        return (descriptors[:len(chips)] + descriptors[len(chips):]) / 2.0 if mirror \
            else descriptors

    def descriptors(self, frame_rgb: np.ndarray, points5: list[np.ndarray],
                    fmt: str = "rgb", mirror: bool = False) -> np.ndarray:
        """[K, 128] descriptors of the K faces given by their points5 (core.face.points5, in
        frame pixels) in one batched run; compare them with distance() and SAME_PERSON."""
        return self.descriptors_of_chips(self.chips(frame_rgb, points5, fmt), mirror)

"""FaceMesh landmarks under known image transforms, subsets, presence and head pose."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.detect import FaceDetector
from core.face import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, FACE_OVAL, mirror_indices
from core.landmarks import FaceMesh, Roi, roi_from_detection, roi_from_landmarks
from core.pose import head_pose
from core.stills import faces_in_image, landmarks_for_image

MAX_ERROR = 0.03  # of the inter-ocular distance (issue 3)


def iod(landmarks: np.ndarray) -> float:
    """Inter-ocular distance: between the eye-contour centres."""
    xy = landmarks[:, :2]
    return float(np.linalg.norm(xy[EYE_IMAGE_LEFT].mean(0) - xy[EYE_IMAGE_RIGHT].mean(0)))


@pytest.fixture(scope="module", params=["astronaut", "grace_hopper"])
def photo(request) -> tuple[np.ndarray, np.ndarray]:
    """(image, reference landmarks) for each test photo."""
    image = request.getfixturevalue(request.param)
    face = landmarks_for_image(image)
    assert face is not None
    return image, face.landmarks


def _rotation(angle: float):
    def make(image, ref):
        centre = tuple(float(v) for v in ref[:, :2].mean(0))
        return cv2.getRotationMatrix2D(centre, angle, 1.0), image.shape[1::-1]
    return make


def _scale(s: float):
    def make(image, ref):
        h, w = image.shape[:2]
        if s < 1:  # cv2.resize's pixel-centre convention (applied with INTER_AREA below)
            t = 0.5 * s - 0.5
            return np.float32([[s, 0, t], [0, s, t]]), (round(w * s), round(h * s))
        c = ref[:, :2].mean(0)  # zoom in around the face, keep the frame size
        return np.float32([[s, 0, w / 2 - s * c[0]], [0, s, h / 2 - s * c[1]]]), (w, h)
    return make


def _translate(image, ref):
    return np.float32([[1, 0, 41], [0, 1, -27]]), image.shape[1::-1]


GEOMETRIC = {
    **{f"rotate{a:+d}": _rotation(a) for a in (-45, -30, -15, 15, 30, 45)},
    **{f"scale{s}": _scale(s) for s in (0.25, 0.5, 2.0)},
    "translate": _translate,
}


def mean_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(got[:, :2] - expected[:, :2], axis=1).mean())


@pytest.mark.parametrize("name", list(GEOMETRIC))
def test_landmarks_follow_geometric_transforms(photo, name):
    image, ref = photo
    matrix, size = GEOMETRIC[name](image, ref)
    if name.startswith("scale0"):  # downscale without aliasing, as a camera would
        moved = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    else:
        moved = cv2.warpAffine(image, matrix, size, borderMode=cv2.BORDER_REPLICATE)
    face = landmarks_for_image(moved)
    assert face is not None, name
    expected = ref[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    scale = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    # Faces under 48 px (the astronaut at 0.25x is 26 px, its eyes 11 px apart) are held
    # to 5%: 3% there would be 0.3 px, below FaceMesh's noise at that size.
    face_px = float(np.ptp(ref[:, 0])) * scale
    limit = MAX_ERROR if face_px >= 48 else 0.05
    # Measured (onnxruntime 1.32.0, opencv-python-headless 5.0.0.93), share of the bound:
    # worst 0.72 (astronaut at 0.25x, under the 5 % rule), otherwise <= 0.50 (Grace Hopper
    # rotated -30: 1.31 px against 2.63).
    assert mean_error(face.landmarks, expected) <= limit * iod(ref) * scale


@pytest.mark.parametrize("name", ["darker40", "brighter40", "jpeg30"])
def test_landmarks_survive_photometric_changes(photo, name):
    image, ref = photo
    if name == "jpeg30":
        ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 30])
        assert ok
        changed = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
    else:
        gain = 0.6 if name == "darker40" else 1.4
        changed = np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    face = landmarks_for_image(changed)
    assert face is not None
    # measured worst 1.66 px against 2.63 (Grace Hopper brighter40), 0.56 against 1.31
    assert mean_error(face.landmarks, ref) <= MAX_ERROR * iod(ref)


def test_horizontal_flip_swaps_left_and_right(photo):
    image, ref = photo
    w = image.shape[1]
    face = landmarks_for_image(np.ascontiguousarray(image[:, ::-1]))
    assert face is not None
    expected = ref[mirror_indices(), :2].copy()  # point i of the flipped face: its mirror
    expected[:, 0] = w - 1 - expected[:, 0]  # pixel centres: x -> w - 1 - x
    got = face.landmarks[:, :2]
    # Brows, nose, eyes and lips. The face oval sits on the silhouette, which FaceMesh
    # places differently in a mirrored face (~6% of the eye distance).
    inner = np.ones(len(got), bool)
    inner[FACE_OVAL] = False
    # measured 1.12 px against 1.31 (astronaut: FaceMesh is not exactly mirror-symmetric),
    # 1.79 against 2.63 (Grace Hopper); the oval 2.22 / 4.36 and 4.29 / 8.75
    assert mean_error(got[inner], expected[inner]) <= MAX_ERROR * iod(ref)
    assert mean_error(got[FACE_OVAL], expected[FACE_OVAL]) <= 0.1 * iod(ref)
    # Unmirrored order is kept: the image-left eye is still the one with smaller x.
    assert face.points5[0, 0] < face.points5[1, 0]


@pytest.mark.parametrize("canvas, sizes", [((640, 480), (48, 64, 96, 160)),
                                           ((1280, 720), (48, 64, 96, 160, 300))])
def test_every_face_of_48_px_or_more_is_found(astronaut, canvas, sizes):
    box = FaceDetector("full").detect(astronaut, "rgb")[0]
    # the face with a margin of 0.4 face sizes each side, so large faces still fit the canvas
    cx, cy = (box.box[:2] + box.box[2:]) / 2
    half = 0.9 * box.size
    x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
    crop = astronaut[y0:int(cy + half), x0:int(cx + half)]
    w, h = canvas
    for target in sizes:
        s = target / box.size
        small = cv2.resize(crop, None, fx=s, fy=s,
                           interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        frame = np.full((h, w, 3), 100, np.uint8)
        x, y = w - small.shape[1] - 7, h - small.shape[0] - 5
        assert x >= 0 and y >= 0, f"{target} px face does not fit {w}x{h}"
        frame[y:y + small.shape[0], x:x + small.shape[1]] = small
        faces = faces_in_image(frame, "rgb")
        assert len(faces) == 1, f"{target} px face in {w}x{h}"
        found = faces[0].box
        assert found[0] > x and found[2] < x + small.shape[1]
        size = max(found[2] - found[0], found[3] - found[1])
        # measured 1.01-1.03x the target at every size
        assert 0.8 * target < size < 1.25 * target, f"{target} px face found as {size:.0f} px"


def test_mesh_crop_in_any_layout_and_z_in_pixels(astronaut):
    mesh = FaceMesh()
    det = FaceDetector("full").detect(astronaut, "rgb")[0]
    roi = roi_from_detection(det)
    ref, presence = mesh.run(astronaut, "rgb", roi)
    assert presence > 0.9  # measured 1.0
    for fmt, code in (("bgr", cv2.COLOR_RGB2BGR), ("rgba", cv2.COLOR_RGB2RGBA),
                      ("bgra", cv2.COLOR_RGB2BGRA)):
        got, p = mesh.run(cv2.cvtColor(astronaut, code), fmt, roi)
        np.testing.assert_allclose(got, ref, atol=1e-3)
    # Twice the image, twice the ROI: x, y and z all double.
    big = cv2.resize(astronaut, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    roi2 = Roi(roi.cx * 2, roi.cy * 2, roi.size * 2, roi.angle)
    twice, _ = mesh.run(big, "rgb", roi2)
    z_ratio = np.ptp(twice[:, 2]) / np.ptp(ref[:, 2])
    assert z_ratio == pytest.approx(2.0, rel=0.1)
    assert np.ptp(ref[:, 2]) > 0.3 * (ref[:, 0].max() - ref[:, 0].min())


def test_presence_is_low_off_the_face(astronaut):
    mesh = FaceMesh()
    _, presence = mesh.run(astronaut, "rgb", Roi(420, 420, 150, 0.0))  # the suit, no face
    assert presence < 0.5  # measured 0.0003
    with pytest.raises(ValueError, match="degenerate"):
        mesh.run(astronaut, "rgb", Roi(100, 100, 0.0, 0.0))


def test_roi_from_landmarks_follows_in_plane_rotation(astronaut):
    lm = landmarks_for_image(astronaut).landmarks
    centre = tuple(float(v) for v in lm[:, :2].mean(0))
    m = cv2.getRotationMatrix2D(centre, 30, 1.0)  # 30 degrees counter-clockwise
    rotated = cv2.warpAffine(astronaut, m, (512, 512))
    lm2 = landmarks_for_image(rotated).landmarks
    delta = np.degrees(roi_from_landmarks(lm2).angle - roi_from_landmarks(lm).angle)
    assert delta == pytest.approx(-30, abs=3)
    roll_change = head_pose(lm2)[2] - head_pose(lm)[2]
    assert roll_change == pytest.approx(-30, abs=4)


def _rotate_3d(landmarks: np.ndarray, yaw: float = 0.0, pitch: float = 0.0) -> np.ndarray:
    """Turn a face in 3D about its centre (yaw about the image's vertical axis)."""
    p = landmarks.astype(np.float64)
    c = p.mean(0)
    a, b = np.radians(yaw), np.radians(pitch)
    # nose (-z) towards +x for yaw > 0; towards -y (up) for pitch > 0
    ry = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), np.sin(b)], [0, -np.sin(b), np.cos(b)]])
    return ((p - c) @ (rx @ ry).T + c).astype(np.float32)


def test_head_pose_signs_and_magnitudes(astronaut, grace_hopper):
    for image in (astronaut, grace_hopper):
        lm = landmarks_for_image(image).landmarks
        yaw0, pitch0, roll0 = head_pose(lm)
        # frontal portraits: measured at most 3.1 / 0.7 / 3.4 degrees
        assert abs(yaw0) < 10 and abs(pitch0) < 10 and abs(roll0) < 10
        # exact 3D turns of the points: measured within 0.05 degrees of the turn, both axes
        yaw, pitch, _ = head_pose(_rotate_3d(lm, yaw=30))
        assert yaw - yaw0 == pytest.approx(30, abs=3) and abs(pitch - pitch0) < 3
        yaw, pitch, _ = head_pose(_rotate_3d(lm, pitch=20))
        assert pitch - pitch0 == pytest.approx(20, abs=3) and abs(yaw - yaw0) < 3
    # The nose of a frontal face in FaceMesh points at the camera (-z): check the mesh's
    # nose tip is nearer the camera than the cheeks, which the yaw/pitch signs rely on.
    assert lm[1, 2] < lm[234, 2] and lm[1, 2] < lm[454, 2]

"""BlazeFace detection on real images with the shipped models."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import BAD_FRAMES

from core import acquire, track
from core.detect import FaceDetector, iou, letterbox, ssd_anchors, weighted_nms
from core.imageio import read_rgb
from core.landmarks import PRESENCE_THRESHOLD, FaceMesh
from core.settings import SwapSettings
from core.stills import landmarks_for_image
from core.track import FaceTracker

REAL_TURNS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_turns"


@pytest.fixture(scope="module")
def full() -> FaceDetector:
    return FaceDetector("full")


@pytest.fixture(scope="module")
def short() -> FaceDetector:
    return FaceDetector("short")


def place(photo: np.ndarray, width: int, height: int, x: int, y: int,
          scale: float = 1.0) -> np.ndarray:
    """`photo` scaled and pasted at (x, y) on a grey width x height canvas."""
    if scale != 1.0:
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 90, np.uint8)
    ph, pw = min(photo.shape[0], height - y), min(photo.shape[1], width - x)
    canvas[y:y + ph, x:x + pw] = photo[:ph, :pw]
    return canvas


def test_anchor_layouts_match_the_models():
    short = ssd_anchors(128, [8, 16], [2, 6])
    full = ssd_anchors(192, [4], [1])
    assert short.shape == (896, 2) and full.shape == (2304, 2)
    # 16x16 grid, 2 anchors per cell, then an 8x8 grid, 6 per cell; centres at cell middles.
    np.testing.assert_allclose(short[0], short[1])
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[2], [1.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[512], [0.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(short[-1], [7.5 / 8, 7.5 / 8])
    np.testing.assert_allclose(full[48], [0.5 / 48, 1.5 / 48])


@pytest.mark.parametrize("kind", ["short", "full", "auto", "both"])
def test_astronaut_has_one_face_with_ordered_points_inside_the_box(astronaut, kind):
    detections = FaceDetector(kind).detect(astronaut, "rgb")
    assert len(detections) == 1
    det = detections[0]
    assert det.score > 0.8  # measured 0.92 (short range), 0.94 (full)
    x0, y0, x1, y1 = det.box
    assert 60 < x1 - x0 < 160 and 60 < y1 - y0 < 160  # the face is ~100 px (measured 94-105)
    face = landmarks_for_image(astronaut)
    for points in (det.keypoints[:4], face.points5):
        assert ((points[:, 0] > x0) & (points[:, 0] < x1)).all()
        assert ((points[:, 1] > y0) & (points[:, 1] < y1)).all()
    left_eye, right_eye, nose, mouth_l, mouth_r = face.points5
    assert left_eye[0] < nose[0] < right_eye[0]
    assert mouth_l[0] < mouth_r[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_l[1], mouth_r[1])
    eye_l, eye_r, kp_nose, kp_mouth = det.keypoints[:4]
    assert eye_l[0] < eye_r[0] and max(eye_l[1], eye_r[1]) < kp_nose[1] < kp_mouth[1]


@pytest.mark.parametrize("fmt", ["rgb", "bgr", "rgba", "bgra"])
def test_every_layout_gives_the_same_detection(astronaut, full, fmt):
    frame = {
        "rgb": astronaut,
        "bgr": astronaut[..., ::-1],
        "rgba": cv2.cvtColor(astronaut, cv2.COLOR_RGB2RGBA),
        "bgra": cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGRA),
    }[fmt]
    reference = full.detect(astronaut, "rgb")[0]
    det = full.detect(np.ascontiguousarray(frame), fmt)[0]
    np.testing.assert_allclose(det.box, reference.box, atol=1e-3)
    assert det.score == pytest.approx(reference.score, abs=1e-5)


def test_channel_order_reaches_the_model(astronaut, full):
    # The same pixels read as BGR are a blue-skinned face: the score must differ.
    right = full.detect(astronaut, "rgb")[0].score
    wrong = full.detect(astronaut, "bgr")
    assert not wrong or abs(wrong[0].score - right) > 1e-3


@pytest.mark.parametrize("size", [(800, 320), (320, 800)])
def test_letterbox_maps_boxes_back_for_any_aspect(astronaut, full, size):
    reference = full.detect(astronaut, "rgb")[0]
    w, h = size
    x, y = (w - 300) // 2, (h - 300) // 2
    frame = place(astronaut[40:340, 60:360], w, h, x, y)
    det = full.detect(frame, "rgb")[0]
    shift = np.array([x - 60, y - 40], np.float32)
    # The model sees the face at another scale, so allow for detector noise (15% of the
    # face); a wrong letterbox offset or scale would be off by tens of percent.
    tolerance = 0.15 * reference.size
    centre = (det.box[:2] + det.box[2:]) / 2 - shift
    np.testing.assert_allclose(centre, (reference.box[:2] + reference.box[2:]) / 2,
                               atol=tolerance)
    np.testing.assert_allclose(det.keypoints[:4] - shift, reference.keypoints[:4],
                               atol=tolerance)
    assert det.size == pytest.approx(reference.size, rel=0.25)


def test_letterbox_keeps_aspect_and_centres():
    frame = np.full((100, 400, 4), 200, np.uint8)
    image, m = letterbox(frame, 128)
    assert image.shape == (128, 128, 4)
    assert m[0, 0] == pytest.approx(m[1, 1], rel=0.02) and m[0, 0] == pytest.approx(0.32)
    assert image[64, 64, 0] == 200 and image[0, 64, 0] == 0 and image[127, 64, 0] == 0


def test_smallest_and_largest_frames(astronaut, full):
    tiny = cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA)[20:140]
    assert len(full.detect(np.ascontiguousarray(tiny), "rgb")) == 1
    uhd = place(astronaut, 3840, 2160, 1500, 200, scale=4.0)
    found = full.detect(cv2.cvtColor(uhd, cv2.COLOR_RGB2BGRA), "bgra")
    assert len(found) == 1 and found[0].size > 250


def test_auto_falls_back_to_short_range_for_a_face_filling_the_frame(astronaut):
    close = np.ascontiguousarray(cv2.resize(astronaut[75:170, 183:272], (640, 660)))
    assert FaceDetector("full").detect(close, "rgb") == []
    found = FaceDetector("auto").detect(close, "rgb")
    assert len(found) == 1 and found[0].size > 400


def test_both_adds_the_short_range_faces_full_range_did_not_find():
    """A man in profile in front of a frontal face (../shared/data/real_turns image01505): full
    range finds only the face behind (the profile scores 0.40), "auto" therefore never asks
    short range, which finds the profile (0.79); "both" keeps the two."""
    image = read_rgb(REAL_TURNS / "images" / "image01505.jpg")
    behind = FaceDetector("auto").detect(image, "rgb")
    both = FaceDetector("both").detect(image, "rgb")
    assert len(behind) == 1 and len(both) == 2
    assert iou(behind[0].box, np.stack([d.box for d in both])).max() > 0.99
    profile = next(d for d in both if iou(d.box, behind[0].box[None])[0] < 0.3)
    assert profile.box[0] < 150 and profile.size > 150  # the man at the left, 183 px


def test_a_turned_face_is_found_by_a_crop_moved_off_the_detection(monkeypatch):
    """A face turned 71 degrees and looking down (image00476): FaceMesh finds no face in the
    detection's crop nor in the RETRY_CROPS (presence 0.02 at best); one of the SHIFTED_CROPS,
    tried because the detector's keypoints read a turned head, finds it."""
    image = read_rgb(REAL_TURNS / "images" / "image00476.jpg")
    det = FaceDetector("both").detect(image, "rgb")[0]
    assert acquire.turned_detection(det)
    mesh = FaceMesh()
    landmarks, presence = acquire.first_landmarks(mesh, image, "rgb", det)
    assert presence >= PRESENCE_THRESHOLD and acquire.nose_agrees(landmarks, det)
    monkeypatch.setattr(acquire, "SHIFTED_CROPS", ())
    assert acquire.first_landmarks(mesh, image, "rgb", det)[1] < PRESENCE_THRESHOLD


def test_the_live_tracker_finds_a_turned_face_a_few_crops_a_round(monkeypatch):
    """The same face on a stream: the tracker tries TRIES_PER_ROUND of the other crops a
    detection round (a frame pays for two more FaceMesh runs, not 27) and has the face within
    the rounds it takes to reach the crop that finds it; without them, never."""
    image = read_rgb(REAL_TURNS / "images" / "image00476.jpg")

    def rounds_to_find(tracker: FaceTracker) -> int | None:
        for index in range(16):
            if tracker.process(image, "rgb", timestamp=index / 30.0):
                return index + 1
        return None

    found = rounds_to_find(FaceTracker(SwapSettings()))
    assert found is not None and found <= 14
    monkeypatch.setattr(track, "TRIES_PER_ROUND", 0)
    assert rounds_to_find(FaceTracker(SwapSettings())) is None


def test_tiles_find_small_faces_in_big_frames(astronaut):
    frame = place(astronaut, 1280, 720, 700, 300, scale=0.5)  # a ~50 px face
    assert FaceDetector("full").detect(frame, "rgb") == []
    tiled = FaceDetector("full", scan_size=48)
    assert len(tiled.tiles(1280, 720)) > 1 and tiled.tiles(480, 270) == []
    found = tiled.detect(frame, "rgb")
    assert len(found) == 1
    # Measured size 48.7 px, left edge 784.4; the face's own detection on the whole photo
    # puts it at 700 + 0.5 * 174.2 = 787.1 (52.6 px). The window was 780-820 (4 px from its
    # low end); now +-20 px around where the face is.
    assert 35 < found[0].size < 75 and 767 < found[0].box[0] < 807


def test_min_size_and_max_faces(astronaut, full):
    half = astronaut[:256, 128:384]
    pair = np.ascontiguousarray(np.concatenate([half, half], axis=1))
    assert len(full.detect(pair, "rgb")) == 2
    assert len(FaceDetector("full", max_faces=1).detect(pair, "rgb")) == 1
    assert FaceDetector("full", min_size=200).detect(pair, "rgb") == []


@pytest.mark.parametrize("name", ["blank", "noise", "pattern"])
def test_frames_without_faces(name, full, short):
    rng = np.random.default_rng(1)
    if name == "blank":
        frame = np.full((480, 640, 3), 127, np.uint8)
    elif name == "noise":
        frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    else:  # checkerboard with coloured discs: edges and blobs, no face
        yy, xx = np.mgrid[0:480, 0:640]
        frame = np.where(((yy // 40 + xx // 40) % 2)[..., None] == 1, 230, 30).astype(np.uint8)
        frame = np.repeat(frame, 3, axis=2)
        for _ in range(12):
            cv2.circle(frame, (int(rng.integers(0, 640)), int(rng.integers(0, 480))),
                       int(rng.integers(10, 60)), [int(v) for v in rng.integers(0, 256, 3)], -1)
    assert full.detect(frame, "rgb") == []
    assert short.detect(frame, "rgb") == []
    assert landmarks_for_image(frame) is None


@pytest.mark.parametrize("frame, fmt, message", BAD_FRAMES)
def test_bad_frames_raise_value_error(full, frame, fmt, message):
    with pytest.raises(ValueError, match=message):
        full.detect(frame, fmt)


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        FaceDetector("medium")
    with pytest.raises(ValueError, match="score_threshold"):
        FaceDetector("full", score_threshold=1.5)


def test_weighted_nms_blends_overlaps_and_keeps_separate_faces():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    kps = np.zeros((3, 6, 2), np.float32)
    kps[1] += 3.0
    scores = np.array([0.9, 0.3, 0.6])
    out = weighted_nms(boxes, kps, scores, 0.3)
    assert len(out) == 2
    box, points, score = out[0]
    np.testing.assert_allclose(box, [0.25, 0, 10.25, 10], atol=1e-5)
    np.testing.assert_allclose(points, 0.75, atol=1e-5)
    assert score == pytest.approx(0.9)
    np.testing.assert_allclose(out[1][0], boxes[2])
    assert iou(boxes[0], boxes[1:2])[0] == pytest.approx(90 / 110)


def test_a_detection_tried_in_vain_rests_on_its_own_crop(monkeypatch):
    """A turned face no crop finds (image00722): each round its own crop and TRIES_PER_ROUND
    more until all have been tried, then REST_ROUNDS rounds on its own crop alone (one
    FaceMesh run a frame, not three), then the other crops again."""
    image = read_rgb(REAL_TURNS / "images" / "image00722.jpg")
    tracker = FaceTracker(SwapSettings())
    runs = []
    real_run = tracker.mesh.run

    def counted(*args, **kwargs):
        runs[-1] += 1
        return real_run(*args, **kwargs)

    monkeypatch.setattr(tracker.mesh, "run", counted)
    cycle = -(-27 // track.TRIES_PER_ROUND)
    for index in range(cycle + track.REST_ROUNDS + 2):
        runs.append(0)
        assert tracker.process(image, "rgb", timestamp=index / 30.0) == []
    assert runs[:cycle] == [1 + track.TRIES_PER_ROUND] * (cycle - 1) + [2]  # 27 = 13 x 2 + 1
    assert runs[cycle:cycle + track.REST_ROUNDS] == [1] * track.REST_ROUNDS
    assert runs[-2:] == [1 + track.TRIES_PER_ROUND] * 2

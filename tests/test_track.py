"""Tracking on synthetic clips made from a real photo: ids, detection rate, smoothing, lag."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.face import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, Face, face_shape
from core.settings import SwapSettings
from core.smoothing import OneEuroFilter, params_for_strength
from core.stills import landmarks_for_image
from core.track import FaceTracker, select_faces

FPS = 30.0
W, H = 640, 480


@pytest.fixture(scope="module")
def stage(astronaut) -> tuple[np.ndarray, np.ndarray]:
    """(640x480 frame with the astronaut centred, its reference landmarks)."""
    frame = np.full((H, W, 3), 80, np.uint8)
    frame[:, 64:576] = astronaut[16:496]
    return frame, landmarks_for_image(frame).landmarks


def noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float = 4.0) -> np.ndarray:
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def iod(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[EYE_IMAGE_LEFT, :2].mean(0)
                                - landmarks[EYE_IMAGE_RIGHT, :2].mean(0)))


def path_matrix(i: int, centre: np.ndarray) -> np.ndarray:
    """Smooth 3 s loop: +-120 px across, +-40 px up/down, +-25 degrees, scale 0.85-1.15."""
    t = i / FPS
    m = cv2.getRotationMatrix2D(tuple(float(v) for v in centre), 25 * np.sin(2 * np.pi * t / 3),
                                1.0 + 0.15 * np.sin(2 * np.pi * t / 2))
    m[0, 2] += 120 * np.sin(2 * np.pi * t / 3)
    m[1, 2] += 40 * np.sin(2 * np.pi * t / 1.5)
    return m


def test_moving_face_keeps_one_id_with_rare_detection(stage):
    frame, ref = stage
    rng = np.random.default_rng(3)
    tracker = FaceTracker(SwapSettings(detect_interval=10))
    centre = ref[:, :2].mean(0)
    errors = []
    for i in range(90):
        m = path_matrix(i, centre)
        moved = cv2.warpAffine(frame, m, (W, H), borderValue=(80, 80, 80))
        rgba = cv2.cvtColor(noisy(moved, rng), cv2.COLOR_RGB2RGBA)
        faces = tracker.process(rgba, "rgba", timestamp=i / FPS)
        assert [f.id for f in faces] == [0], f"frame {i}"
        expected = ref[:, :2] @ m[:, :2].T + m[:, 2]
        errors.append(np.linalg.norm(faces[0].landmarks[:, :2] - expected, axis=1).mean())
    assert tracker.frames == 90
    assert tracker.detections <= 0.2 * tracker.frames  # measured 9 of 90
    # Landmarks follow the path (smoothing lag included) within 6% of the eye distance:
    # measured 3.1 % (1.34 px; onnxruntime 1.32.0, opencv-python-headless 5.0.0.93).
    assert float(np.mean(errors)) < 0.06 * iod(ref)


def test_smoothing_cuts_jitter_on_a_still_face(stage):
    frame, _ = stage
    rng = np.random.default_rng(5)
    clip = [noisy(frame, rng) for _ in range(40)]

    def jitter(strength: float) -> float:
        tracker = FaceTracker(SwapSettings(smoothing=strength))
        track = np.stack([tracker.process(f, "rgb", timestamp=i / FPS)[0].landmarks[:, :2]
                          for i, f in enumerate(clip)])
        return float(np.linalg.norm(np.diff(track[5:], axis=0), axis=2).mean())

    raw, smoothed = jitter(0.0), jitter(SwapSettings().smoothing)
    assert raw > 0.05  # the noise does move the raw landmarks (measured 0.28 px)
    assert smoothed * 3 <= raw  # measured 0.058 px: 4.8x less


def test_smoothing_does_not_lag_fast_motion(stage):
    frame, ref = stage
    smooth = FaceTracker(SwapSettings(smoothing=1.0))
    raw = FaceTracker(SwapSettings(smoothing=0.0))
    lags = []
    for i in range(30):  # 12 px per frame (360 px/s, ~3.5 face widths a second)
        m = np.float32([[1, 0, 12 * i - 180], [0, 1, 0]])
        moved = cv2.warpAffine(frame, m, (W, H), borderValue=(80, 80, 80))
        a = smooth.process(moved, "rgb", timestamp=i / FPS)[0].landmarks
        b = raw.process(moved, "rgb", timestamp=i / FPS)[0].landmarks
        lags.append(np.linalg.norm(a[:, :2] - b[:, :2], axis=1).mean())
    # Even at full strength: at most 15% of the eye distance when motion starts, <5% after.
    # Measured 11.1 % (4.85 px of the first 12 px step: at rest the One Euro filter's speed
    # estimate is near zero, so its cutoff is still the resting one for that frame; the
    # default strength 0.5 lags 10.1 %), then 3.2 % on average from the sixth frame. The
    # first bound was 12 % (7 % off the figure); 15 % is ~1.3x it.
    assert max(lags) < 0.15 * iod(ref)
    assert float(np.mean(lags[5:])) < 0.05 * iod(ref)


def test_lost_face_is_found_again_with_its_id(stage):
    frame, _ = stage
    blank = np.full_like(frame, 80)
    tracker = FaceTracker()
    clip = [frame] * 5 + [blank] * 4 + [frame] * 3
    ids = [[f.id for f in tracker.process(f, "rgb", timestamp=i / FPS)]
           for i, f in enumerate(clip)]
    assert ids == [[0]] * 5 + [[]] * 4 + [[0]] * 3
    tracker.reset()
    assert [f.id for f in tracker.process(frame, "rgb")] == [0]
    # A new face far from where the old one vanished gets a new id.
    tracker.process(blank, "rgb")
    shifted = cv2.warpAffine(frame, np.float32([[0.6, 0, 300], [0, 0.6, 150]]), (W, H),
                             borderValue=(80, 80, 80))
    assert [f.id for f in tracker.process(shifted, "rgb")] == [1]


def test_two_faces_keep_two_ids(astronaut):
    half = cv2.resize(astronaut[:256, 128:384], (200, 200))
    frame = np.full((H, W, 3), 80, np.uint8)
    tracker = FaceTracker(SwapSettings(faces="all", detect_interval=5))
    seen = []
    for i in range(15):
        frame[:] = 80
        frame[100 + i:300 + i, 40:240] = half
        frame[150:350, 380 - i:580 - i] = half
        faces = tracker.process(frame, "bgr", timestamp=i / FPS)
        seen.append(sorted((f.id, round(float(f.box[0]) / 320)) for f in faces))
    assert all(s == [(0, 0), (1, 1)] or s == [(0, 1), (1, 0)] for s in seen)
    assert len({tuple(s) for s in seen}) == 1


def test_single_face_modes_follow_only_the_chosen_face(astronaut):
    """largest/centre: one face is followed between detection rounds (one FaceMesh run a
    frame instead of one per face); the others come back with their ids at each round."""
    face = astronaut[:256, 128:384]
    frame = np.full((H, W, 3), 80, np.uint8)
    frame[120:340, 10:230] = cv2.resize(face, (220, 220))  # big, left
    frame[160:310, 250:400] = cv2.resize(face, (150, 150))  # small, nearest the centre
    tracker = FaceTracker(SwapSettings(detect_interval=5))  # faces="largest"
    chosen = []
    for i in range(12):
        faces = tracker.process(frame, "rgb", timestamp=i / FPS)
        assert len(faces) == 1 and faces[0].box[0] < 120, f"frame {i}: not the big face"
        assert len(tracker._tracks) == 1  # the small face is not followed
        chosen.append(faces[0].id)
    assert len(set(chosen)) == 1
    assert tracker.detections == 3  # frames 0, 5, 10: the small face is seen again there

    # a new selection detects at once, whatever the interval
    tracker.update(SwapSettings(faces="centre", detect_interval=100))
    picks = tracker.process(frame, "rgb", timestamp=12 / FPS)
    assert len(picks) == 1 and picks[0].box[0] > 200 and picks[0].id != chosen[0]

    # parked ids outlive a long interval: they are the ids the faces come back with
    for i in range(40):
        tracker.process(frame, "rgb", timestamp=(13 + i) / FPS)
    tracker.update(SwapSettings(faces="all", detect_interval=100))
    faces = tracker.process(frame, "rgb", timestamp=53 / FPS)
    assert sorted(f.id for f in faces) == [0, 1]  # both followed again, no new ids


def test_no_faces_on_blank_noise_and_pattern():
    rng = np.random.default_rng(7)
    tracker = FaceTracker()
    yy, xx = np.mgrid[0:H, 0:W]
    pattern = np.repeat(((np.sin(xx / 9.0) * np.cos(yy / 13.0) + 1) * 120)
                        .astype(np.uint8)[..., None], 3, axis=2)
    for frame in (np.zeros((H, W, 3), np.uint8), rng.integers(0, 256, (H, W, 3), np.uint8),
                  pattern):
        assert tracker.process(frame, "rgb") == []
    assert tracker.detections == 3  # nothing tracked: detection runs every frame


def test_update_and_bad_frames(stage):
    frame, _ = stage
    tracker = FaceTracker(SwapSettings(detect_interval=300))
    for i in range(4):
        tracker.process(frame, "rgb", timestamp=i / FPS)
    assert tracker.detections == 1
    assert set(tracker.timings) == {"detect", "landmarks", "smooth"}
    assert tracker.timings["detect"] == 0.0 and tracker.timings["landmarks"] > 0.0
    tracker.update(SwapSettings(detect_interval=2, smoothing=0.9))
    for i in range(4, 8):
        tracker.process(frame, "rgb", timestamp=i / FPS)
    assert tracker.detections == 3
    assert tracker._tracks[0].smoother.min_cutoff == params_for_strength(0.9)[0]
    with pytest.raises(ValueError, match="dtype"):
        tracker.process(frame.astype(np.float32), "rgb")
    with pytest.raises(ValueError, match="does not match"):
        tracker.process(frame, "rgba")
    with pytest.raises(ValueError, match="too small"):
        tracker.process(np.zeros((1, 1, 3), np.uint8), "rgb")


def test_one_euro_filter_behaviour():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(0.5)
    # FaceMesh-like jitter: 0.2 px on a 100 px face
    still = [np.full((5, 2), 100.0) + rng.normal(0, 0.2, (5, 2)) for _ in range(60)]
    out = np.stack([f(x, i / FPS, scale=100.0) for i, x in enumerate(still)])
    # measured 3.7x less frame-to-frame change
    assert np.diff(out[10:], axis=0).std() * 3 < np.diff(np.stack(still)[10:], axis=0).std()
    off = OneEuroFilter(0.0)
    x = np.arange(10.0).reshape(5, 2)
    off(x, 0.0)
    np.testing.assert_array_equal(off(x + 5, 1 / FPS), x + 5)
    lo, hi = params_for_strength(0.0), params_for_strength(1.0)
    assert lo[0] > hi[0] > 0  # stronger smoothing, lower resting cutoff


def _face(x0: float, y0: float, size: float, face_id: int) -> Face:
    lm = np.zeros((468, 3), np.float32)
    lm[:, :2] = [x0, y0]
    lm[0, :2] = [x0 + size, y0 + size]
    return Face(landmarks=lm, box=np.array([x0, y0, x0 + size, y0 + size], np.float32),
                id=face_id, extra={"frame_size": (640, 480)})


def test_select_faces():
    faces = [_face(500, 50, 80, 3), _face(10, 300, 150, 7), _face(280, 200, 60, 9)]
    settings = SwapSettings()
    assert [f.id for f in select_faces(faces, settings)] == [7]
    assert [f.id for f in select_faces(faces, settings.with_changes(faces="all"))] == [7, 9, 3]
    assert [f.id for f in select_faces(faces, settings.with_changes(faces="centre"))] == [9]
    assert [f.id for f in select_faces(faces, settings.with_changes(faces="centre"),
                                       frame_size=(1100, 100))] == [3]
    by_id = settings.with_changes(faces="id", face_id=3)
    assert [f.id for f in select_faces(faces, by_id)] == [3]
    assert select_faces(faces, by_id.with_changes(face_id=4)) == []
    assert select_faces([], settings) == []


def test_a_tracked_face_carries_the_shape_learned_while_it_looked_at_the_camera(stage):
    """face.extra["shape"]: the head model's learned 3D shape (core.face.face_shape space),
    which the persona subtracts so that the streamer's expression, not their face, is what
    moves it; the same face a few frames on keeps one shape close to its own."""
    frame, _ = stage
    tracker = FaceTracker(SwapSettings())
    rgba = cv2.cvtColor(frame, cv2.COLOR_RGB2RGBA)
    shapes = [tracker.process(rgba, "rgba", timestamp=i / FPS)[0].extra["shape"]
              for i in range(3)]
    assert all(s.shape == (468, 3) for s in shapes)
    own = face_shape(landmarks_for_image(frame).landmarks)
    # measured 0.002 face widths mean point distance from the still's own shape
    assert np.linalg.norm(shapes[-1] - own, axis=1).mean() < 0.02

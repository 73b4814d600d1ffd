"""Objects in front of a face (core.objects): a real clip's face is learned uncovered, then
real objects cut out of ../shared/data/occlusion are laid over it (bench --occlusion
--clean-clip), and the appearance model on a real frame."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from core import objects
from core.commands import bench_occlusion
from core.face import FACE_OVAL
from core.imageio import read_video_frames
from core.pipeline import Pipeline, keeps_objects
from core.settings import SwapSettings
from core.stills import landmarks_for_image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
OCCLUSION = SHARED / "occlusion"
CLEAN_CLIP = SHARED / "real_turns" / "videos" / "talking_turns.mp4"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return bench_occlusion.run_objects(SwapSettings(), OCCLUSION, CLEAN_CLIP,
                                       tmp_path_factory.mktemp("objects") / "sheet.png")


def test_objects_laid_over_a_real_face_stay_in_front(report):
    """The set's 8 outlined objects (mic, bottle, phones, flute, food) over a real talking
    clip turning to about 40 degrees: measured 80.3 % of their pixels inside the face drawn
    over without keep_objects, 51.5 % with it (the bottle stands beside the face, outside
    what is learned)."""
    assert report["objects"] == 8
    assert report["drawn_over_off_pct"] >= 75.0
    assert report["drawn_over_pct"] <= 60.0
    assert report["by_type"]["mic"][0] <= 55.0  # the headset boom across the cheek


def test_an_uncovered_face_is_not_cut(report):
    """The same clip with nothing over it: measured 0.0 % of the swap taken away."""
    assert report["false_cut_pct"] <= 1.0
    assert Path(report["sheet"]).is_file()


@pytest.fixture(scope="module")
def face_frame():
    frame = read_video_frames(CLEAN_CLIP)[0]
    face = landmarks_for_image(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    assert face is not None
    return frame, face.landmarks


def _noisy(frame, rng):
    return np.clip(frame + rng.normal(0.0, 2.0, frame.shape).round(), 0, 255).astype(np.uint8)


def test_what_covers_a_learned_face_is_kept_until_it_lasts(face_frame, monkeypatch):
    """A block over the mouth of a face learned for LEARN_FRAMES frames is found where it is
    (and nowhere else), is not learned as the face, and once it has stayed ABSORB_FRAMES
    frames it is (a new shadow must not show the real face for ever)."""
    monkeypatch.setattr(objects, "ABSORB_FRAMES", 30)
    frame, landmarks = face_frame
    rng = np.random.default_rng(0)
    look = objects.Appearance()
    for _ in range(objects.LEARN_FRAMES):
        assert look.covered(_noisy(frame, rng), "bgr", landmarks) is None  # judged nothing yet
    assert look.covered(_noisy(frame, rng), "bgr", landmarks) is None  # the face itself
    mouth = landmarks[[61, 291, 0, 17], :2]
    x0, y0 = mouth.min(0).astype(int) - 10
    x1, y1 = mouth.max(0).astype(int) + 10
    blocked = frame.copy()
    blocked[y0:y1, x0:x1] = (40, 200, 40)
    part = look.covered(_noisy(blocked, rng), "bgr", landmarks)
    assert part is not None
    mask = objects.keep_mask(frame.shape, [part], None)
    block = np.zeros(frame.shape[:2], bool)
    block[y0:y1, x0:x1] = True
    oval = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(landmarks[FACE_OVAL, :2]).astype(np.int32)], 1)
    kept = mask > 127
    # (the inner mouth is never judged: it changes with every word)
    assert (kept & block).sum() >= 0.5 * (block & (oval > 0)).sum()
    assert (kept & ~block).sum() <= 0.25 * kept.sum()  # the grown, feathered edge only
    frames_kept = 1
    while look.covered(_noisy(blocked, rng), "bgr", landmarks) is not None:
        frames_kept += 1
        assert frames_kept <= 30 + objects.LEARN_FRAMES  # absorbed, not kept for ever
    assert frames_kept >= 30


def test_objects_are_kept_on_streams_only_and_guarded_in_privacy_modes(face_frame):
    """A still has nothing learned (no objects stage); in a privacy mode objects are kept only
    with the identity guard on, as hands are."""
    frame, _ = face_frame
    pipeline = Pipeline(SwapSettings(label=False))
    pipeline.process_still(frame, "bgr")
    assert pipeline.timings["objects"] == 0.0 and pipeline.looks == {}
    pipeline.process(frame, "bgr", timestamp=0.0)
    assert pipeline.faces and list(pipeline.looks) == [f.id for f in pipeline.faces]
    pipeline.close()
    assert keeps_objects(SwapSettings(on_lost="pixelate", identity_guard=True))
    assert not keeps_objects(SwapSettings(on_lost="pixelate", identity_guard=False))
    assert not keeps_objects(SwapSettings(keep_objects=False))


def _learned(frame, landmarks, rng):
    look = objects.Appearance()
    for _ in range(objects.LEARN_FRAMES + 1):
        look.covered(_noisy(frame, rng), "bgr", landmarks)
    return look


def test_what_has_the_face_own_colour_is_not_kept(face_frame, monkeypatch):
    """A block of the face's own skin colour over its mouth (as a chin uncovered when a mic
    learned as the face is put down) differs from the learned look but stays swapped."""
    frame, landmarks = face_frame
    rng = np.random.default_rng(1)
    look = _learned(frame, landmarks, rng)
    mouth = landmarks[[61, 291, 0, 17], :2]
    x0, y0 = mouth.min(0).astype(int) - 10
    x1, y1 = mouth.max(0).astype(int) + 10
    oval = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(landmarks[FACE_OVAL, :2]).astype(np.int32)], 1)
    lab = np.median(cv2.cvtColor(frame, cv2.COLOR_BGR2LAB)[oval > 0], axis=0)
    lab[0] = min(lab[0] + 80, 250)  # the skin's colour, far brighter: it differs, but is skin
    painted = frame.copy()
    painted[y0:y1, x0:x1] = cv2.cvtColor(lab.astype(np.uint8)[None, None], cv2.COLOR_LAB2BGR)
    assert np.abs(painted.astype(int) - frame).max(axis=2)[y0:y1, x0:x1].mean() > 60
    assert look.covered(_noisy(painted, rng), "bgr", landmarks) is None
    monkeypatch.setattr(objects, "CHROMA", 0.0)  # without the rule it would be kept
    assert look.covered(_noisy(painted, rng), "bgr", landmarks) is not None
    monkeypatch.undo()
    green = frame.copy()
    green[y0:y1, x0:x1] = (40, 200, 40)
    assert look.covered(_noisy(green, rng), "bgr", landmarks) is not None


def test_another_face_in_the_same_place_is_learned_afresh(face_frame):
    """More than CHANGED of the learned points differing at once is not an object but
    another face (a cut in the source): nothing kept, the look learned again from scratch -
    but not while a hand is in front (learn=False)."""
    frame, landmarks = face_frame
    rng = np.random.default_rng(2)
    other = np.ascontiguousarray(frame[:, ::-1])  # the same frame mirrored: another face
    other_landmarks = landmarks.copy()
    other_landmarks[:, 0] = frame.shape[1] - 1 - landmarks[:, 0]
    look = _learned(frame, landmarks, rng)
    assert look.covered(_noisy(other, rng), "bgr", landmarks, learn=False) is None
    assert look.seen.max() > objects.LEARN_FRAMES  # kept while a hand is in front
    assert look.covered(_noisy(other, rng), "bgr", landmarks) is None
    assert look.seen.max() == 0  # learned afresh

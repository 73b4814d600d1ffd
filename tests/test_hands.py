"""Hands in front of the swap (core.hands, keep_hands): MediaPipe's palm detector and hand
landmarks (converted to ONNX, install/build_models.py) on real photos and a real clip of
../shared/data/occlusion, and the merge that keeps the hand's pixels live."""

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import hands
from core.commands import bench_occlusion
from core.hands import FOLLOW_THREAD, HandTracker, hand_mask
from core.imageio import read_bgr
from core.merge import merge
from core.pipeline import Pipeline
from core.recognise import SAME_PERSON, Recogniser, distance
from core.settings import SwapSettings
from core.stills import faces_in_image

OCCLUSION = Path(__file__).resolve().parents[2] / "shared" / "data" / "occlusion"
EYES_COVERED = OCCLUSION / "images" / "aflw2000_image00401.jpg"  # both hands over the eyes


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return bench_occlusion.run_occlusion(
        SwapSettings(), OCCLUSION, tmp_path_factory.mktemp("occlusion") / "sheet.png",
        OCCLUSION / "videos" / "singer_handheld_mic.mp4")


def test_both_hands_over_the_eyes_are_found_and_kept_in_front():
    image = read_bgr(EYES_COVERED)
    faces = faces_in_image(image, "bgr")
    hands = HandTracker().find_in_still(image, "bgr", faces)
    assert len(hands) == 2 and all(h.presence > 0.9 for h in hands)
    mask = hand_mask(image.shape, hands)
    eyes = faces[0].points5[:2].astype(int)
    assert all(mask[y, x] == 255 for x, y in eyes)  # the eyes are under the hands
    plain = Pipeline(SwapSettings(label=False, keep_hands=False)).process_still(image, "bgr")
    kept = Pipeline(SwapSettings(label=False)).process_still(image, "bgr")
    covered = mask == 255
    drawn = np.abs(plain.astype(int) - image).max(axis=2) > 12
    assert drawn[covered].mean() > 0.5  # without: the persona is painted over the hands
    still_drawn = np.abs(kept.astype(int) - image).max(axis=2) > 12
    assert still_drawn[covered].mean() < 0.02  # with: the live hands, measured 0.0


def test_no_face_no_hand_search():
    """Hands are only looked for around faces: a frame with no face runs no hand model."""
    pipeline = Pipeline(SwapSettings(label=False))
    pipeline.process(np.full((360, 640, 3), 90, np.uint8), "bgr", timestamp=0.0)
    assert pipeline.hands == [] and pipeline.tracked == []


def test_keep_leaves_the_frame_live_where_it_is_full():
    image = read_bgr(EYES_COVERED)
    pipeline = Pipeline(SwapSettings(label=False, keep_hands=False))
    pipeline.process_still(image, "bgr")
    face = pipeline.tracked[0]
    swap = pipeline.swapper.swap(image, "bgr", face, pipeline.settings)
    nothing, everything = image.copy(), image.copy()
    merge(nothing, "bgr", face, swap, pipeline.settings, np.zeros(image.shape[:2], np.uint8))
    merge(everything, "bgr", face, swap, pipeline.settings,
          np.full(image.shape[:2], 255, np.uint8))
    alone = image.copy()
    merge(alone, "bgr", face, swap, pipeline.settings)
    assert np.array_equal(nothing, alone) and np.array_equal(everything, image)


def test_occlusion_figures_on_real_photos(report):
    """bench --occlusion on ../shared/data/occlusion (39 photos): hand pixels inside the face
    drawn over 37.8 % -> 1.7 % (goal 5; 3.3 % before a half-seen hand was framed again,
    core.hands.REFRAME; 9.1 % with the fingers 1.5 knuckle spacings wide and the palm not
    grown), 0.2 % inside the outlines less their 10 px tolerance; any occluder 7.1 % (goal 8;
    8.6 % before REFRAME); the visible face still swapped 95.0 % (goal 90; 98.1 at 1.5
    spacings); false cut-outs on photos with no hand 0.0 % (goal 3)."""
    assert report["hand_drawn_over_pct"] < report["hand_drawn_over_off_pct"] - 30.0
    assert report["hand_drawn_over_pct"] <= 3.0
    assert report["hand_core_drawn_over_pct"] <= 1.0
    assert report["any_drawn_over_pct"] <= 8.0
    assert report["visible_swapped_pct"] >= 92.0
    assert report["false_cut_pct"] <= 1.0


def test_a_hand_is_followed_through_a_real_clip(report):
    """The singer's hand on the microphone: followed in 93 of 129 frames (72 %; the search
    runs on its own thread, so a hand is followed from a frame or two after it was
    searched); the hand stage costs nothing on the frame's thread while no hand is near a
    face (p50 0.01 ms)."""
    clip = report["clip"]
    assert clip["with_hand"] >= 0.55 * clip["frames"]
    assert clip["hands_ms_p50_without"] is None or clip["hands_ms_p50_without"] < 1.0


def test_a_hand_kept_in_front_never_unveils_the_face_in_privacy_mode():
    """A real hand at the face (../shared/data/occlusion: a fist at the chin) kept live,
    with a persona that does not hide the person (their own photo as the reference): the
    swap alone is recognised, and in a privacy mode the identity guard judges the output
    under the same hand and pixelates the face. (The default persona hides this photo: its
    swap is 0.674 from it; with the plain-average persona before it, 0.602 / 0.773.)"""
    path = OCCLUSION / "images" / "aflw2000_image00239.jpg"
    image = read_bgr(path)
    recogniser = Recogniser()
    apart = {}
    for on_lost in ("original", "pixelate"):
        pipeline = Pipeline(SwapSettings(label=False, on_lost=on_lost, reference=str(path)))
        out = pipeline.process_still(image, "bgr")
        assert pipeline.hands, "the hand is no longer found: pick another photo"
        face = pipeline.tracked[0]
        before, after = recogniser.descriptors_of_chips(np.concatenate(
            [recogniser.chips(picture, [face.points5], "bgr") for picture in (image, out)]))
        apart[on_lost] = distance(before, after)
    assert apart["original"] < SAME_PERSON  # the swap alone shows the person
    assert pipeline.shown == {face.id: "pixelate_face"}  # the guard hid it
    assert apart["pixelate"] >= SAME_PERSON and apart["pixelate"] > apart["original"] + 0.1


@pytest.mark.parametrize("photo", ["aflw2000_image00593.jpg", "aflw2000_image01574.jpg"])
def test_a_second_hand_without_a_palm_is_found_beside_one_with(photo):
    """Hands over a mouth while a whisperer's palm shows behind; two hands on a head, one
    palm seen: the probes run beside the one palm found, and both hands are found (one
    each when the probes ran only where no palm was found)."""
    image = read_bgr(OCCLUSION / "images" / photo)
    hands = HandTracker().find_in_still(image, "bgr", faces_in_image(image, "bgr")[:1])
    assert len(hands) == 2


def test_a_hand_half_seen_by_a_probe_is_framed_again(monkeypatch):
    """Hands clasped over mouth and chin, no palm seen: the cheek probe reads the second hand
    0.48 (under PRESENCE) and, framed again by its own landmarks, 0.94: both are found (one
    without the second look)."""
    image = read_bgr(OCCLUSION / "images" / "aflw2000_image04248.jpg")
    faces = faces_in_image(image, "bgr")[:1]
    assert len(HandTracker().find_in_still(image, "bgr", faces)) == 2
    monkeypatch.setattr(hands, "REFRAME", hands.PRESENCE)
    assert len(HandTracker().find_in_still(image, "bgr", faces)) == 1


@pytest.mark.parametrize(("fmt", "step_px"), [("bgr", 0), ("bgr", 6), ("rgba", 0),
                                             ("rgba", 6)])
def test_a_still_hand_keeps_its_landmarks_a_moving_one_is_followed(fmt, step_px):
    """A real hand on a cheek (../shared/data/occlusion) held still for 30 frames with
    camera noise (2 levels): the landmark model runs on one frame in three (REUSE 2; a held
    hand's "hands" stage p50 8.32 -> 1.05 ms, mean 8.15 -> 3.70, in bench --occlusion);
    moved 6 px a frame (its glance differs by 6.6 levels, against STILL_LEVELS 3), it runs
    on every one - also in OBS's RGBA, whose alpha must not damp the difference."""
    image = read_bgr(OCCLUSION / "images" / "aflw2000_image00079.jpg")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGBA) if fmt == "rgba" else image
    rng = np.random.default_rng(0)
    pipeline = Pipeline(SwapSettings(label=False))
    reused = []
    for i in range(30):
        frame = np.roll(image, step_px * i, axis=1).astype(np.int16)
        frame = np.clip(frame + rng.normal(0.0, 2.0, frame.shape).round(), 0, 255)
        if fmt == "rgba":
            frame[..., 3] = 255
        pipeline.process(frame.astype(np.uint8), fmt, timestamp=i / 30)
        pipeline.hand_tracker.wait(5.0)  # the search thread's hand is followed next frame
        reused += [hand.reused for hand in pipeline.hands]
    assert len(reused) >= 25  # the hand is followed (measured 29 of 30 frames)
    kept = sum(r > 0 for r in reused)
    if step_px:
        assert kept == 0, reused
    else:
        assert 0.5 * len(reused) <= kept <= 2 / 3 * len(reused) + 1, reused  # measured 19 of 29
        assert max(reused) == 2


def test_hands_are_followed_beside_the_faces_on_a_thread_that_ends_with_the_pipeline(
        monkeypatch):
    """A stream's hands are followed on their own thread while the frame's faces are
    tracked (HandTracker.start): the same landmarks as followed on the frame's own thread,
    and the thread is gone once the pipeline is closed."""
    image = read_bgr(OCCLUSION / "images" / "aflw2000_image00079.jpg")
    before = set(threading.enumerate())
    beside, inline = Pipeline(SwapSettings(label=False)), Pipeline(SwapSettings(label=False))
    inline.hand_tracker = inline._new_hand_tracker()
    monkeypatch.setattr(inline.hand_tracker, "start", lambda frame, fmt: None)
    for i in range(8):
        frame = np.ascontiguousarray(np.roll(image, 6 * i, axis=1))  # moved: the model runs
        for pipeline in (beside, inline):
            pipeline.process(frame, "bgr", timestamp=i / 30)
            pipeline.hand_tracker.wait(5.0)  # the same searches in both
    assert beside.hands and len(beside.hands) == len(inline.hands)
    for one, other in zip(beside.hands, inline.hands, strict=True):
        assert np.allclose(one.landmarks, other.landmarks)
    threads = [thread for thread in threading.enumerate()
               if thread not in before and thread.name.startswith(FOLLOW_THREAD)]
    assert len(threads) == 1  # beside's; inline never started one
    beside.close()
    inline.close()
    threads[0].join(5.0)
    assert not threads[0].is_alive()


def test_a_profile_is_not_taken_for_a_hand():
    """A real profile at 51 degrees (../shared/data/real_turns) whose palm detector and hand
    model both saw a hand (presence 0.965) - its palm inside the face oval: the face itself.
    Kept in front, it left the nose and lips live over the persona."""
    image = read_bgr(OCCLUSION.parent / "real_turns" / "images" / "image02116.jpg")
    faces = faces_in_image(image, "bgr")
    assert len(faces) == 1
    assert HandTracker().find_in_still(image, "bgr", faces) == []

"""The identity guard (core.guard) and anonymity on real head turns (../shared/data/real_turns).

Judged by dlib's recogniser (core.recognise, its rule: closer than 0.6 is the same person).
The guard's exposed case is a persona that is the person in front of the camera (the
astronaut's own portrait as the reference): a persona that does not hide you. The default
persona hides both test photos (its swaps are 0.68 / 0.71; install/make_persona.py;
tests/test_persona.py).
"""

from pathlib import Path

import numpy as np
import pytest

from core import SAMPLES_DIR, guard
from core.commands import bench_photos
from core.face import Face
from core.guard import GuardState
from core.imageio import read_rgb
from core.pipeline import Pipeline
from core.recognise import SAME_PERSON, Recogniser, distance
from core.settings import SwapSettings

REAL_TURNS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_turns"
OWN_FACE = str(SAMPLES_DIR / "astronaut.png")  # a persona that is the person it is drawn on


@pytest.fixture(scope="module")
def astronaut():
    return read_rgb(SAMPLES_DIR / "astronaut.png")


def _face_region(face: Face) -> tuple[slice, slice]:
    x0, y0, x1, y1 = face.box.astype(int)
    return slice(y0, y1), slice(x0, x1)


def test_a_swap_that_still_shows_the_person_is_pixelated_in_privacy_mode(astronaut):
    recogniser = Recogniser()
    swapped = Pipeline(SwapSettings(label=False, on_lost="pixelate", identity_guard=False,
                                    reference=OWN_FACE))
    plain = swapped.process(astronaut, "rgb", timestamp=0.0)
    face = swapped.tracked[0]
    # the swap alone: the recogniser still takes it for the astronaut
    before, after = recogniser.descriptors(astronaut, [face.points5]), \
        recogniser.descriptors(plain, [face.points5])
    assert distance(before[0], after[0]) < SAME_PERSON
    guarded = Pipeline(SwapSettings(label=False, on_lost="pixelate", fade_ms=0,
                                    reference=OWN_FACE))
    out = guarded.process(astronaut, "rgb", timestamp=0.0)
    state = guarded._states[face.id].guard
    assert state.exposed and state.distance < guard.EXPOSED
    assert guarded.shown == {face.id: "pixelate_face"} and guarded.faces == []
    region = _face_region(face)
    # a mosaic: the face region is flat blocks, and no longer the persona's swap
    assert not np.array_equal(out[region], plain[region])
    blocks = out[region][:, :, 0]
    assert len(np.unique(blocks)) < 0.02 * blocks.size
    hidden = recogniser.descriptors(out, [face.points5])
    assert distance(before[0], hidden[0]) >= SAME_PERSON  # measured 0.87
    assert guarded.timings["guard"] > 0.0


def test_the_guard_runs_only_in_privacy_modes(astronaut):
    shown = Pipeline(SwapSettings(label=False))  # on_lost "original": shows the real face
    shown.process(astronaut, "rgb", timestamp=0.0)
    assert shown.timings["guard"] == 0.0
    assert [f.id for f in shown.faces] == [0]
    off = Pipeline(SwapSettings(label=False, on_lost="hold", identity_guard=False))
    off.process(astronaut, "rgb", timestamp=0.0)
    assert off.shown == {0: "swap"} and off.identity_guard is None  # not even loaded


def test_an_exposed_face_is_released_after_passing_checks():
    state = GuardState()
    face = Face(np.zeros((468, 3), np.float32), np.zeros(4, np.float32), pose=(10.0, 0.0, 0.0))
    assert guard.due(state, face, 1)  # never checked
    state.checked_frame, state.checked_yaw = 1, 10.0
    assert not guard.due(state, face, 1 + guard.CHECK_EVERY - 1)
    assert guard.due(state, face, 1 + guard.CHECK_EVERY)
    turned = Face(face.landmarks, face.box, pose=(-(10.0 + guard.CHECK_TURN_DEG), 0.0, 0.0))
    assert guard.due(state, turned, 2)  # turned further away: checked at once
    for pitch in (guard.CHECK_TURN_DEG, -guard.CHECK_TURN_DEG):  # tilted up or down
        assert guard.due(state, Face(face.landmarks, face.box, pose=(10.0, pitch, 0.0)), 2)
    tilted_less = Face(face.landmarks, face.box, pose=(10.0, guard.CHECK_TURN_DEG - 0.1, 0.0))
    assert not guard.due(state, tilted_less, 2)
    # a hand or an object newly in front (more of the face's box kept live): checked at once
    boxed = Face(face.landmarks, np.array([10, 10, 30, 30], np.float32), pose=(10.0, 0.0, 0.0))
    keep = np.zeros((40, 40), np.uint8)
    assert guard.kept_share(keep, boxed) == 0.0 and guard.kept_share(None, boxed) == 0.0
    keep[10:30, 10:12] = 255  # 2 of 20 columns: 10 % of the box
    assert guard.kept_share(keep, boxed) == pytest.approx(0.1)
    assert guard.due(state, boxed, 2, guard.kept_share(keep, boxed))
    state.checked_kept = 0.08
    assert not guard.due(state, boxed, 2, guard.kept_share(keep, boxed))  # kept no more
    # the margin over dlib's rule grows with the turn, where the tracked points drift
    assert guard.exposed_below(0.0) == pytest.approx(guard.EXPOSED)
    assert guard.exposed_below(-70.0) == pytest.approx(SAME_PERSON + guard.TURNED_MARGIN)


def test_the_guard_clears_a_face_the_persona_hides():
    """A real photo whose swap the recogniser does not take for the person stays swapped."""
    truths = {t.path.name: t for t in bench_photos.read_truth(REAL_TURNS)}
    image = read_rgb(truths["image00039.jpg"].path)
    pipeline = Pipeline(SwapSettings(label=False, on_lost="pixelate"))
    pipeline.process(image, "rgb", timestamp=0.0)
    state = pipeline._states[0].guard
    assert not state.exposed and state.distance >= guard.EXPOSED  # measured 0.72
    assert pipeline.shown == {0: "swap"}


@pytest.fixture(scope="module")
def real_turns():
    """The real-photo head-turn report (both the swap alone and the privacy mode), with the
    default settings (hands kept in front: the same figures as without, since a profile is
    no longer taken for a hand)."""
    report = bench_photos.run_photos(SwapSettings(), REAL_TURNS)
    return {row["row"]: row for row in report["rows"]}


def test_real_turns_are_found_up_to_75_degrees(real_turns):
    """Faces found (the still path) per bin: measured 100 / 100 / 100 / 100 / 95.8 % up to
    75 degrees (target 90), 100 % of the pitched photos turned 60-75, 81.8 % at 75-90 (no
    target). Before the short range's faces were added ("both") and a turned face's crop
    was also tried moved a little (core.stills.SHIFTED_CROPS): 91.7, 83.3 and 63.6 %."""
    for row in ("yaw 0-15", "yaw 15-30", "yaw 30-45", "yaw 45-60", "yaw 60-75", "pitch+turn"):
        assert real_turns[row]["found"] >= 90.0, row


def test_real_turns_are_read_within_the_yaw_targets(real_turns):
    """The still path's yaw error against the labels (about 3-4 degrees is their own noise):
    measured 1.98 / 2.65 / 4.32 / 4.40 degrees per bin up to 60 (target 6); FaceMesh alone
    1.95 / 2.15 / 4.13 / 8.20. Moderate turns must not read worse than FaceMesh alone: at
    15-45 within 1 degree of it (measured +0.50 / +0.19; 5.48 / 5.71 before the detector's
    keypoints were weighed in only from 35 degrees, core.stills.KEYPOINTS_RAMP). At 60-75
    the target of 8 is not met (9.53, 9.17 before the faces found since - one at 71 degrees
    read 18 short; FaceMesh 14.82): both readings fall about 10 degrees short where the far
    ear is hidden. Held at 10 there so that it gets no worse."""
    for row in ("yaw 0-15", "yaw 15-30", "yaw 30-45", "yaw 45-60"):
        assert real_turns[row]["yaw_error_deg"] <= 6.0, row
    for row in ("yaw 15-30", "yaw 30-45"):
        assert real_turns[row]["yaw_error_deg"] <= \
            real_turns[row]["mesh_yaw_error_deg"] + 1.0, row
    assert real_turns["yaw 60-75"]["yaw_error_deg"] <= 10.0


def test_the_persona_hides_real_faces_up_to_75_degrees(real_turns):
    """The swap alone, recognised as the input (dlib, same photo, labelled points): measured 0 / 0 /
    0 / 3.6 % of photos per 15-degree bin up to 60 (target 10), 12.5 % at 60-75 (3 of 24, one of
    them a face not found; 16.7 % before the profiles found since, see
    test_real_turns_are_found_up_to_75_degrees; target 25), 3.2 % of the photos pitched 15-45
    degrees and turned under 60 (2 of 62, one not found; target 10), with the synthetic persona over
    the mirrored fill (core.fill). Pitched photos turned 60-75: 4 of 6 (all found now, one of them
    at 0.578; held to no more). The 60-75 target over both rows: 7 of 30 photos, 23.3 % (8 of 30
    before: 26.7). One row for every pitched photo read 10.1 % (the smooth fill before: 7.2, and
    25.0 at 60-75). Before the synthetic persona (the plain average of the test photos): 5.8
    (pitched, one row) and 20.8. Before the silhouette's fill grew with the turn
    (core.swap.persona.silhouette_margins): 0 / 0 / 4.0 / 3.6, 8.7 and 29.2; before the persona had
    its own face shape over a filled background: 0 / 8 / 0 / 7.1, 8.7 and 54; before its mask
    reached past the face outline: 5 / 20 / 48 / 79."""
    for row in ("yaw 0-15", "yaw 15-30", "yaw 30-45", "yaw 45-60", "pitch"):
        assert real_turns[row]["identity_leak"] <= 10.0, row
    assert real_turns["yaw 60-75"]["identity_leak"] <= 25.0
    turned, sixty = real_turns["pitch+turn"], real_turns["yaw 60-75"]
    assert turned["identity_leak"] <= 100.0 * 4 / turned["photos"] + 0.1
    leaks = (turned["identity_leak"] * turned["photos"] + sixty["identity_leak"] * sixty["photos"])
    assert leaks / (turned["photos"] + sixty["photos"]) <= 25.0


def test_the_privacy_mode_hides_real_faces_up_to_75_degrees(real_turns):
    """What a viewer of a privacy-mode stream gets (the guard on): recognised in 0 % of photos per
    bin up to 60, 0 % at 60-75 (target 25; 4.2 before its profile not found was found; 8.3 over the
    smooth fill, with the synthetic persona and the plain-average one before it; 4.2 before the
    refining crop stopped shrinking - the photo above; 12.5 before the silhouette's fill grew with
    the turn), 0 % of the photos pitched 15-45 degrees and turned under 60, 16.7 % (1 of 6) of those
    turned 60-75 (one row for all of them read 2.9 %, 1.4 over the smooth fill). Past 75 degrees the
    recogniser itself cannot tell people apart (52.9 % of pairs of different people's photos there
    are "the same person"), so no figure is held there."""
    for row in ("yaw 0-15", "yaw 15-30", "yaw 30-45", "yaw 45-60", "pitch"):
        assert real_turns[row]["guarded_leak"] <= 5.0, row
    for row in ("yaw 60-75", "pitch+turn"):
        assert real_turns[row]["guarded_leak"] <= 25.0, row

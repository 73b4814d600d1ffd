"""Head turns on rendered heads with known truth (core.commands.headturn_render): the
renderer itself, the live path's landmarks and pose through turns, the persona turning with
the head, pose limits that cross-fade into on_lost, and the benchmark command."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from doubles import build_dfm, save

from core.cli import main
from core.commands.bench_headturn import LIMITS, bins, pose_lag, run_sweep
from core.commands.headturn_render import (
    BACKGROUND,
    landmark_error,
    make_head,
    render_head,
    rotation,
    sweep,
)
from core.landmarks import roi_from_landmarks
from core.pipeline import Pipeline
from core.pose import fit_pose, head_pose, project, turn
from core.settings import SwapSettings
from core.stills import faces_in_image, landmarks_for_image, refine_crop
from core.track import FaceTracker

REAL_TURNS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_turns"
STEP = 3.0  # degrees per frame in the sweeps here (90 degrees a second at 30 fps)


@pytest.fixture(scope="module")
def heads(astronaut, grace_hopper) -> dict:
    return {"astronaut": make_head(astronaut), "grace_hopper": make_head(grace_hopper)}


@pytest.fixture(scope="module")
def sweeps(heads) -> dict:
    """Each portrait's yaw and pitch sweeps through the live path (persona, default
    settings) and the still-image path, binned as the benchmark bins them."""
    settings = SwapSettings(label=False)
    return {name: bins([run_sweep(head, axis, settings, STEP, still=True, output=False)
                        for axis in LIMITS])
            for name, head in heads.items()}


def test_a_render_is_the_portrait_turned(heads, astronaut):
    head = heads["astronaut"]
    frontal = render_head(head, 0.0, 0.0)
    assert frontal.frame.shape == (480, 640, 3)
    drawn = np.any(frontal.frame != np.array(BACKGROUND, np.uint8), axis=2)
    assert 0.1 < drawn.mean() < 0.6  # a head in the middle of a plain background (0.17)
    # the still path finds the face where the truth says, and its pose
    found = landmarks_for_image(frontal.frame)
    assert landmark_error(found.landmarks, frontal.landmarks, frontal.face_size) < 1.0  # 0.49
    base = frontal.yaw
    for yaw in (30.0, 60.0):
        turned = render_head(head, yaw, 0.0)
        assert abs(turned.yaw - base - yaw) < 1.5, (turned.yaw, base)
    tilted = render_head(head, 0.0, 30.0)
    assert abs(tilted.pitch - frontal.pitch - 30.0) < 1.5
    # a rotation turns the nose the way core.pose counts
    nose = rotation(40.0, 0.0) @ np.array([0.0, 0.0, -1.0])
    assert nose[0] > 0  # image-right


def test_fit_pose_recovers_a_turned_shape(heads):
    shape = heads["grace_hopper"].points[:468].astype(np.float64)
    shape = shape - shape.mean(axis=0)
    pose = turn((np.eye(3), 1.7, np.array([320.0, 240.0])), 35.0, -12.0)
    seen = project(shape, pose)[:, :2]
    rotation_, scale, offset = fit_pose(seen, shape)
    np.testing.assert_allclose(rotation_, pose[0], atol=1e-6)
    assert scale == pytest.approx(1.7) and offset == pytest.approx([320.0, 240.0])


def test_a_turned_face_s_refining_crop_does_not_shrink(heads):
    """FaceMesh draws a turned face shorter than it is: a crop framed by its points would
    shrink pass after pass, and the still path's landmarks with it. The astronaut at 54, 57
    and 60 degrees: still landmark error 3.25 % on average (4.22 when each refining crop
    was framed by the last pass's points alone); a frontal face's crop follows its points
    both ways."""
    errors = []
    for yaw in (54.0, 57.0, 60.0):
        render = render_head(heads["astronaut"], yaw, 0.0)
        found = faces_in_image(render.frame, "rgb")[0].landmarks
        errors.append(landmark_error(found, render.landmarks, render.face_size))
    assert np.mean(errors) < 3.7, errors
    frontal = landmarks_for_image(render_head(heads["astronaut"], 0.0, 0.0).frame).landmarks
    side = roi_from_landmarks(frontal).size
    assert refine_crop(frontal, side * 1.2).size == pytest.approx(side)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_landmarks_and_pose_hold_through_head_turns(sweeps, name):
    """The issue's targets, for the live path and the still-image path (`core detect`):
    landmark error <= 4 % of the face size and pose error <= 8 degrees up to 60 of yaw and
    30 of pitch; tracked in >= 95 % of frames up to 75 of yaw.

    Locked opencv-python-headless 5.0.0.93 and onnxruntime 1.32.0; the still path's pose is
    the figure nearest its target and the one that moved with OpenCV: 5.1.0.95 read 8.02 deg
    for the astronaut (before its refining crops stopped shrinking)."""
    # Measured here at STEP 3 (2026-12-07, AMD EPYC, 2 cores, same locks), the worst
    # bin each: live 2.55 % / 6.93 deg (astronaut, 45-60), 1.82 % / 4.39 deg (Grace Hopper,
    # 45-60); still 3.28 % (astronaut, 45-60; 3.84 before a turned face's refining crop
    # stopped shrinking, core.stills.refine_crop) / 8.63 deg (30-45), and 3.09 % / 8.37 deg
    # (Grace Hopper, 45-60). The bounds are the targets (README), but for the still
    # path's pose: 10 here. It weighs the detector's keypoints in only from 35 degrees of
    # their reading (core.stills.KEYPOINTS_RAMP), which on real photos took the yaw error at
    # 15-30 / 30-45 from 5.5 / 5.7 to 2.7 / 4.3 (tests/test_guard.py holds 6 there); the
    # renders' heads are flatter than real ones, so FaceMesh reads their moderate turns short
    # and the still path read them 6.37 / 7.11 before (README "Head turns").
    for row in sweeps[name]:
        if (row["axis"] == "yaw" and row["hi"] <= 60) or (row["axis"] == "pitch"
                                                           and row["hi"] <= 30):
            assert row["landmark_error"] <= 4.0, row
            assert row["pose_error_deg"] <= 8.0, row
            assert row["still_landmark_error"] <= 4.0, row
            assert row["still_pose_error_deg"] <= 10.0, row
        if row["hi"] <= 30:  # the persona drawn at most a frame off a 90-degree/s turn
            assert row["lag_frames"] is not None and abs(row["lag_frames"]) <= 1.0, row
        if row["axis"] == "yaw" and row["hi"] <= 75:
            assert row["tracked"] >= 95.0, row  # measured 100 in every bin
            assert row["swapped"] >= 95.0, row  # the persona keeps swapping (100)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_a_fast_turn_out_and_back_is_followed(heads, name):
    """A turn of 120 degrees a second (4 a frame) out to 80 degrees and back, both ways: the
    pose the persona is drawn at is at most a frame behind the head in every yaw bin up to
    75 degrees (measured 0.22-0.70), and within 6 degrees of it from 45 on (1.8-3.1). While
    the alignment turned the model about its shape's own origin, after a turn reversed far
    out the pose stayed up to 13 degrees beyond the head for 5-10 frames: on the renders of
    11 portraits 1.1-1.6 frames behind at 30-75 degrees, 5-8 degrees off
    (core.headmodel.HeadModel._turn)."""
    sweep = run_sweep(heads[name], "yaw", SwapSettings(label=False), 4.0, still=False,
                      output=False)
    for row in bins([sweep]):
        if row["hi"] <= 75:
            assert row["lag_frames"] is not None and abs(row["lag_frames"]) <= 1.0, row
            if row["lo"] >= 45:
                assert row["pose_error_deg"] <= 6.0, row


def test_a_search_round_with_nothing_drawn_leaves_the_pose(heads):
    """With none of the model drawn in the comparison square (a face leaving the frame) a
    search round has nothing to compare: the pose stays, unturned (it used to turn 3
    degrees in yaw and pitch; about its visible face's centre, the mean of no points, it
    became NaN)."""
    tracker = FaceTracker(SwapSettings(), threads=1)
    for i, yaw in enumerate(range(0, 52, 4)):
        render = render_head(heads["astronaut"], float(yaw), 0.0)
        tracker.process(render.frame, "rgb", timestamp=i / 30)
    model = tracker._tracks[0].model
    assert model.aligned
    grey = cv2.cvtColor(render.frame, cv2.COLOR_RGB2GRAY)
    pose, turned_by = model._turn(grey, model.pose, np.array([5000.0, 5000.0]), 10.0)
    assert turned_by == 0.0 and pose is model.pose


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
@pytest.mark.parametrize("start", [50.0, -45.0])
def test_a_face_first_seen_turned_is_followed(heads, name, start):
    """No frontal frame before the turn: the head model starts from the detector's reading
    of the yaw (HeadModel.bootstrap). Held turned for half a second, then turned to 60 and
    back to frontal, the targets hold while held and over the whole turn (FaceMesh alone was
    10-17 degrees off while held)."""
    pipeline = Pipeline(SwapSettings(label=False))
    side = np.sign(start)
    angles = [start] * 15 + list(np.arange(start, 60.0 * side, 2.0 * side)) + \
        list(np.arange(60.0 * side, -side, -2.0 * side))
    errors = []
    for i, yaw in enumerate(angles):
        render = render_head(heads[name], float(yaw), 0.0)
        pipeline.process(render.frame, "rgb", timestamp=i / 30)
        face = pipeline.tracked[0]
        errors.append((landmark_error(face.landmarks, render.landmarks, render.face_size),
                       abs(face.pose[0] - render.yaw)))
    errors = np.array(errors)
    held = errors[:15].mean(axis=0)
    # measured held 2.05-2.58 % and 4.42-7.22 deg (Grace Hopper at 50: 7.22, 10 % off 8);
    # overall 1.88-2.52 % and 2.37-4.91 deg
    assert held[0] <= 4.0 and held[1] <= 8.0, held
    overall = errors.mean(axis=0)
    assert overall[0] <= 4.0 and overall[1] <= 8.0, overall


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_a_face_first_seen_turned_that_turns_through_frontal_is_relearned(heads, name):
    """First seen at -45 degrees (a bootstrapped model: its hidden half a mirrored guess),
    then turned through frontal to +60 and back to 0 at 3 degrees a frame: once FaceMesh
    reads it as frontal RELEARN_AFTER frames in a row (core.headmodel) a model learned from
    the face itself replaces the guess and follows the far side."""
    pipeline = Pipeline(SwapSettings(label=False))
    angles = [-45.0] * 5 + list(np.arange(-45.0, 60.0, 3.0)) + list(np.arange(60.0, -1.0, -3.0))
    errors = []
    for i, yaw in enumerate(angles):
        render = render_head(heads[name], float(yaw), 0.0)
        pipeline.process(render.frame, "rgb", timestamp=i / 30)
        face = pipeline.tracked[0]
        if yaw > 0.0:
            errors.append(abs(face.pose[0] - render.yaw))
    assert not pipeline.tracker._tracks[0].model.bootstrapped
    # measured mean / worst on the far side: astronaut 3.15 / 7.98, Grace Hopper 2.79 / 6.24
    # deg; while the guess was kept until the model's own pose came near frontal, the
    # astronaut's never did and stayed bootstrapped: 9.99 / 30.3
    assert np.mean(errors) <= 8.0 and max(errors) <= 12.0, errors


def test_a_real_turn_through_frontal_stays_on_the_face():
    """A real clip (../shared/data/real_turns/videos/talking_turns.mp4, no labels) starts
    turned, so the head model is bootstrapped, then turns through frontal to about 30
    degrees the other way. The live pose against the still path's reading of each frame:
    while the bootstrapped guess was kept through frontal it ran off on the other side
    (40.4 degrees of yaw and 32.4 of roll apart: the persona drawn squashed and rolled); now
    13.7 and 3.9 at most."""
    clip = cv2.VideoCapture(str(REAL_TURNS / "videos" / "talking_turns.mp4"))
    pipeline = Pipeline(SwapSettings(label=False))
    apart = []
    while True:
        ok, frame = clip.read()
        if not ok:
            break
        pipeline.process(frame, "bgr", timestamp=len(apart) / 30)
        still = faces_in_image(frame, "bgr")
        assert pipeline.tracked and still
        live = pipeline.tracked[0].pose
        apart.append((abs(live[0] - still[0].pose[0]), abs(live[2] - still[0].pose[2])))
    apart = np.array(apart)
    assert len(apart) >= 50  # OpenCV decodes 55 frames of it
    assert apart[:, 0].max() <= 20.0 and apart[:, 1].max() <= 10.0, apart.max(axis=0)


def test_the_persona_looks_turned(heads):
    """FaceMesh run on the swapped output agrees within 5 % of the face size with the face
    the persona meant to draw (its own shape at the true pose) up to 60 degrees: the
    persona is drawn turned (3D order, no folds)."""
    sweep = run_sweep(heads["astronaut"], "yaw", SwapSettings(label=False), STEP,
                      still=False)
    for row in bins([sweep]):
        if row["hi"] <= 60:
            # measured 1.66 / 2.04 / 2.68 / 4.25 (45-60: 15 % off the bound, FaceMesh's own
            # drift at 45-60 is 3-5 %); 1.53-4.35 when the persona took the live face's shape
            assert row["output_landmark_error"] <= 5.0, row


def _face_changed(out: np.ndarray, frame: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true face box whose pixels the output changed."""
    x0, y0 = np.floor(truth[:, :2].min(axis=0)).astype(int)
    x1, y1 = np.ceil(truth[:, :2].max(axis=0)).astype(int)
    region = (slice(max(y0, 0), y1), slice(max(x0, 0), x1))
    return float(np.any(out[region] != frame[region], axis=2).mean())


@pytest.fixture(scope="module")
def dfm(tmp_path_factory):
    return save(build_dfm(224), tmp_path_factory.mktemp("turn_dfm") / "double_224.dfm")


@pytest.mark.parametrize("on_lost", ["pixelate", "hold"])
def test_past_the_pose_limit_no_frame_shows_the_real_face(heads, dfm, on_lost):
    """A .dfm (limit 50 degrees of yaw) through a full 0 -> 90 -> 0 turn: past the limit
    the swap fades into pixelation (hold: after its time); no frame shows the face
    unswapped. (The identity guard is off: the test double hides nobody, so it would keep
    the face pixelated throughout; tests/test_guard.py tests the guard.)"""
    pipeline = Pipeline(SwapSettings(model=str(dfm), on_lost=on_lost, label=False,
                                     hold_ms=200, identity_guard=False))
    angles = [*np.arange(0.0, 90.0, 3.0), *np.arange(90.0, -1.0, -3.0)]
    shown = []
    for i, yaw in enumerate(angles):
        render = render_head(heads["grace_hopper"], yaw, 0.0)
        out = pipeline.process(render.frame, "rgb", timestamp=i / 30.0)
        # measured at least 0.67 (both modes)
        assert _face_changed(out, render.frame, render.landmarks) > 0.5, (yaw, on_lost)
        shown.append(set(pipeline.shown.values()))
    assert any("pixelate_face" in views for views in shown)  # the limit was reached
    assert any(views == {"swap"} for views in shown[-10:])  # and the swap came back


def test_crossing_the_pose_limit_cross_fades(heads, dfm):
    """With on_lost original the swap fades out over fade_ms past the limit: the change
    it makes shrinks over several frames, not at once."""
    pipeline = Pipeline(SwapSettings(model=str(dfm), label=False, max_yaw=30.0, fade_ms=150))
    changes = []
    for i, yaw in enumerate(np.arange(20.0, 50.0, 2.0)):
        render = render_head(heads["grace_hopper"], yaw, 0.0)
        out = pipeline.process(render.frame, "rgb", timestamp=i / 30.0)
        changes.append(np.abs(out.astype(int) - render.frame).sum())
    first_past = next(i for i, c in enumerate(changes) if c < 0.95 * changes[0])
    fading = [c for c in changes[first_past:] if c > 0]
    assert len(fading) >= 3, changes  # ~150 ms at 30 fps: several partial frames (6)
    assert changes[-1] == 0  # faded out completely: the original (on_lost original)


def test_bench_headturn_command(tmp_path, capsys, astronaut):
    sheet = tmp_path / "sheet.png"
    code = main(["bench", "--headturn", "--json", "--step", "10", "--portrait",
                 "models/samples/astronaut.png", "--sheet", str(sheet)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    keys = {"axis", "lo", "hi", "frames", "tracked", "swapped", "landmark_error",
            "pose_error_deg", "lag_frames", "flicker"}
    assert report["bins"] and all(keys <= set(row) for row in report["bins"])
    assert {row["axis"] for row in report["bins"]} == {"yaw", "pitch"}
    assert sheet.is_file() and report["contact_sheet"] == str(sheet)
    assert main(["bench", "--headturn", "--step", "0.1"]) == 2  # one line, no traceback
    assert "--step" in capsys.readouterr().err


@pytest.mark.parametrize("step", [2.0, 3.0, 4.0])
@pytest.mark.parametrize("lag", [0.0, 0.4, -0.5])
def test_pose_lag_counts_frames_behind_the_turn_whatever_the_bias(step, lag):
    """A pose read 15 % short of the turn plus 1 degree, `lag` frames behind the head (ahead
    when negative), through the benchmark's own sweep: every bin reads the lag, the one of
    the turning point too (a plain mean of error over motion read 1.0-3.2 frames there for
    no lag at all); frames moving one way only tell nothing."""
    angles = np.array(sweep(80.0, step))
    motion = np.diff(angles, prepend=angles[0])
    read = 0.85 * angles + np.sign(angles) - lag * motion
    for lo, hi in ((0.0, 15.0), (30.0, 45.0), (60.0, 75.0), (75.0, 80.1)):
        inside = (np.abs(angles) >= lo) & (np.abs(angles) < hi) & (motion != 0.0)
        assert pose_lag(angles[inside], (angles - read)[inside], motion[inside]) == \
            pytest.approx(lag, abs=1e-6), (lo, hi)
    assert pose_lag(angles[:10], (angles - read)[:10], motion[:10]) is None  # all going up


def test_truth_pose_matches_the_estimator_convention(heads):
    """The truth of a render is core.pose's own reading of the exact 3D points."""
    render = render_head(heads["astronaut"], 25.0, -10.0)
    assert head_pose(render.landmarks)[:2] == pytest.approx((render.yaw, render.pitch))

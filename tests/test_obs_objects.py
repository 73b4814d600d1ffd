"""Objects in front of the swap in a real OBS (keep_objects, on by default): a real clip's
face (../shared/data/real_turns/videos/talking_turns.mp4) seen uncovered for four seconds,
then held with a headset mic laid over it (cut out of ../shared/data/occlusion by its
labelled outline); on screen the mic's pixels are the live ones only with the setting on,
and the face around it is swapped either way."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from obs.harness import (
    face_swap_filter,
    media_source,
    running,
    scene,
    scene_item,
    skip_module_without_obs,
    wait_for,
)

from core.commands.bench_occlusion import cutouts, lay_over
from core.face import FACE_OVAL
from core.imageio import read_video_frames
from core.settings import SwapSettings
from core.track import FaceTracker

pytestmark = pytest.mark.obs

skip_module_without_obs()

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SIZE = (640, 360)
FPS = 30
HELD_FRAMES = 8 * FPS  # the mic held over the face; fewer than objects.ABSORB_FRAMES


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The clip: 30 real frames forth and back twice (4 s, a face moving and talking), then
    the first frame with the mic over it, held; and where the mic and the face are."""
    real = read_video_frames(SHARED / "real_turns" / "videos" / "talking_turns.mp4")[:30]
    first = [cv2.resize(f, SIZE, interpolation=cv2.INTER_AREA) for f in real]
    uncovered = (first + first[::-1]) * 2
    tracker = FaceTracker(SwapSettings())
    for index, frame in enumerate(uncovered):
        faces = tracker.process(frame, "bgr", timestamp=index / FPS)
    assert faces
    mic = next(c for c in cutouts(SHARED / "occlusion") if c[0] == "mic")
    held, where = lay_over(uncovered[-1], faces[0], mic)
    oval = np.zeros(held.shape[:2], np.uint8)
    cv2.fillPoly(oval, [np.round(faces[0].landmarks[FACE_OVAL, :2]).astype(np.int32)], 1)
    path = tmp_path_factory.mktemp("obs_objects") / "mic.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    for frame in uncovered + [held] * HELD_FRAMES:
        writer.write(frame)
    writer.release()
    # the mic's pixels inside the face, less their feathered edge
    mic_core = cv2.erode((where & oval.astype(bool)).astype(np.uint8), np.ones((3, 3), np.uint8),
                         iterations=2).astype(bool)
    return path, mic_core, oval.astype(bool) & ~where


@pytest.fixture(scope="module")
def obs(tmp_path_factory, clip):
    path = clip[0]
    sources = [
        media_source("Kept", path, [face_swap_filter(settings={"label": False})]),
        media_source("NotKept", path, [face_swap_filter(settings={"label": False,
                                                                  "keep_objects": False})]),
        media_source("Plain", path),
        scene("Objects", [scene_item("Kept", 1, scale=0.5), scene_item("NotKept", 2, scale=0.5),
                          scene_item("Plain", 3, scale=0.5)]),
    ]
    with running(tmp_path_factory.mktemp("obs_objects"), sources) as session:
        yield session


def test_a_mic_over_a_learned_face_stays_in_front_of_the_swap(obs, clip):
    _, mic, face = clip
    assert mic.sum() > 150 and face.sum() > 5000
    obs.program("Objects")
    held = None

    def plain_held():
        nonlocal held
        shot = obs.screenshot("Plain")[..., :3].astype(int)
        previous, held = held, shot
        return previous is not None and np.abs(shot - previous).max(axis=2)[face].mean() < 0.01

    shots = {}

    def drawn(source: str) -> np.ndarray:
        shots[source] = obs.screenshot(source)
        return np.abs(shots[source][..., :3].astype(int) - held).max(axis=2) > 12

    for source in ("Kept", "NotKept"):
        obs.wait_filter(source, lambda f: f["swapping"] and f["frames_out"] > 3, 90,
                        f"{source} swapping")
    def kept_more() -> bool:
        """Both filtered sources showing the held frame swapped (the face around the mic drawn
        over), and the one keeping objects drawing over far less of the mic: offline, on
        this clip, 0.30 of the mic's pixels against 0.55-0.57 (the mic's head at the lips
        is the live mouth in both)."""
        kept, not_kept = drawn("Kept"), drawn("NotKept")
        return kept[face].mean() > 0.5 and not_kept[face].mean() > 0.5 and \
            not_kept[mic].mean() > 0.45 and kept[mic].mean() < not_kept[mic].mean() - 0.15

    # the plain source showing the held frame (two screenshots alike), then the filtered ones
    wait_for(plain_held, 60, "the held frame on the plain source")
    wait_for(kept_more, 60, "the live mic in front of the persona")
    cv2.imwrite(str(obs.workdir / "objects.png"), cv2.cvtColor(np.hstack(
        [held.astype(np.uint8), shots["Kept"][..., :3], shots["NotKept"][..., :3]]),
        cv2.COLOR_RGB2BGR))

"""Hands in front of the swap in a real OBS (keep_hands, on by default): a photo of a woman
covering her eyes with both hands (../shared/data/occlusion), swapped with hands kept and
not; the hands' pixels on screen are the live ones only with the setting on."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from obs.harness import (
    face_swap_filter,
    image_source,
    running,
    scene,
    scene_item,
    skip_module_without_obs,
    wait_for,
)

from core.hands import HandTracker, hand_mask
from core.stills import faces_in_image

pytestmark = pytest.mark.obs

skip_module_without_obs()

PHOTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "occlusion" / "images" / \
    "aflw2000_image00401.jpg"


@pytest.fixture(scope="module")
def obs(tmp_path_factory):
    sources = [
        image_source("Kept", PHOTO, [face_swap_filter(settings={"label": False})]),
        image_source("NotKept", PHOTO, [face_swap_filter(settings={"label": False,
                                                                   "keep_hands": False})]),
        image_source("Plain", PHOTO),
        scene("Hands", [scene_item("Kept", 1, scale=0.5), scene_item("NotKept", 2, scale=0.5),
                        scene_item("Plain", 3, scale=0.5)]),
    ]
    with running(tmp_path_factory.mktemp("obs_hands"), sources) as session:
        yield session


def test_hands_over_the_eyes_stay_in_front_of_the_swap(obs):
    obs.program("Hands")
    plain = obs.screenshot("Plain")
    rgb = np.ascontiguousarray(plain[..., :3])
    hands = HandTracker().find_in_still(rgb, "rgb", faces_in_image(rgb, "rgb"))
    covered = hand_mask(rgb.shape, hands) == 255
    assert covered.sum() > 2000

    def drawn(source: str) -> np.ndarray:
        shot = obs.screenshot(source)
        return np.abs(shot[..., :3].astype(int) - rgb).max(axis=2) > 12

    for source in ("Kept", "NotKept"):
        obs.wait_filter(source, lambda f: f["swapping"] and f["frames_out"] > 3, 90,
                        f"{source} swapping")
    wait_for(lambda: drawn("NotKept")[covered].mean() > 0.5, 60, "the persona over the hands")
    assert drawn("Kept")[covered].mean() < 0.02  # the live hands, in front of the persona
    assert drawn("Kept").sum() > 2000  # and the face around them swapped
    cv2.imwrite(str(obs.workdir / "hands.png"), cv2.cvtColor(
        np.hstack([plain, obs.screenshot("Kept"), obs.screenshot("NotKept")]),
        cv2.COLOR_RGBA2BGR))

"""The identity lock in a real OBS: "Faces to swap: Only enrolled people" swaps the enrolled
face of a group photo and never the guest's; enrolling from a photo (as the panel's file
picker saves it, here over obs-websocket) and from the face in view (the hotkey the panel's
button shares); the panel's "Who is swapped" group. Photos: ../shared/data/identity.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from obs.harness import (
    ObsSession,
    face_swap_filter,
    image_source,
    missing_tools,
    scene,
    scene_item,
    skip_module_without_obs,
    wait_for,
)

pytestmark = pytest.mark.obs

skip_module_without_obs()

IDENTITY = Path(__file__).resolve().parents[2] / "shared" / "data" / "identity"
GROUP_SCALE = 0.5  # group_01 (1280 px) shown at 640 px: cheaper for the software renderer


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("identity_files")
    group = cv2.imread(str(IDENTITY / "images" / "group_01.jpg"))
    group = cv2.resize(group, None, fx=GROUP_SCALE, fy=GROUP_SCALE, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(folder / "group.png"), group)
    solo = cv2.imread(str(IDENTITY / "images" / "mel_gibson_01.jpg"))
    cv2.imwrite(str(folder / "solo.png"), cv2.resize(solo, (340, 512)))
    boxes = {f["name"]: np.asarray(f["box"]) * GROUP_SCALE for f in json.loads(
        (IDENTITY / "identities.json").read_text())["images"]["images/group_01.jpg"]["faces"]}
    return {"group": folder / "group.png", "solo": folder / "solo.png", "boxes": boxes,
            "her_photo": IDENTITY / "images" / "angelina_jolie_01.jpg"}


@pytest.fixture(scope="module")
def obs(files, tmp_path_factory):
    if missing_tools():  # only reached under CI=true: there it is a failure, not a skip
        pytest.fail(f"OBS tests need {' and '.join(missing_tools())} (obs-studio, xvfb)")
    enrolled = {"faces": "enrolled", "label": False}
    sources = [
        image_source("Group", files["group"], [face_swap_filter(
            settings={**enrolled, "on_lost": "original"})]),
        image_source("GroupPlain", files["group"]),
        image_source("Solo", files["solo"], [face_swap_filter(
            settings={**enrolled, "on_lost": "pixelate"})]),
        image_source("SoloPlain", files["solo"]),
        scene("Group scene", [scene_item("Group", 1, scale=0.5)]),
        scene("Solo scene", [scene_item("Solo", 1, scale=0.5)]),
        scene("References", [scene_item("GroupPlain", 1), scene_item("SoloPlain", 2)]),
    ]
    session = ObsSession(tmp_path_factory.mktemp("obs_identity"), sources)
    with session:
        wait_for(lambda: session.status_file.exists() and session.status(), 60, "status file")
        yield session
    session.assert_clean_exit()


def _shot_when(obs: ObsSession, source: str, check, what: str) -> np.ndarray:
    """The first screenshot of `source` that passes `check` (within 90 s)."""
    def probe():
        shot = obs.screenshot(source)
        return (shot,) if check(shot) else None
    return wait_for(probe, 90, what)[0]


def _box(box: np.ndarray) -> tuple[slice, slice]:
    x0, y0, x1, y1 = box.astype(int)
    return slice(y0, y1), slice(x0, x1)


def _changed(a: np.ndarray, b: np.ndarray, region: tuple[slice, slice]) -> float:
    """Mean absolute difference of two screenshots inside a region (colour channels)."""
    return float(np.abs(a[region][..., :3].astype(int) - b[region][..., :3].astype(int)).mean())


def test_enrolled_from_a_photo_only_she_is_swapped_in_the_group(obs, files):
    obs.program("Group scene")
    status = obs.wait_filter("Group", lambda f: "nobody is enrolled" in json.dumps(f), 60,
                             "the error: nobody enrolled yet")
    assert not status["settings"]["people"]
    plain = obs.screenshot("GroupPlain")
    assert _changed(obs.screenshot("Group"), plain, _box(files["boxes"]["Angelina Jolie"])) < 1
    obs.client.set_source_filter_settings("Group", "Face Swap",
                                          {"enrol_photo": str(files["her_photo"])}, True)
    status = obs.wait_filter("Group", lambda f: f["settings"]["people"], 60, "enrolled")
    assert "group" not in status["settings"]["people"] and len(status["settings"]["people"]) < 800
    her, him = _box(files["boxes"]["Angelina Jolie"]), _box(files["boxes"]["Brad Pitt"])
    out = _shot_when(obs, "Group", lambda shot: _changed(shot, plain, her) > 10,
                     "her face swapped")
    assert _changed(out, plain, him) < 0.5  # the guest untouched
    panel = obs.properties_of("Group/Face Swap")
    props = panel["properties"]
    assert props["enrol_now"]["visible"] and props["guests"]["visible"]
    assert props["faces"]["group"] == "group_who"
    assert "Only enrolled people" in props["faces"]["items"]
    assert "Enrolled Person 1 from angelina_jolie_01.jpg" in panel["texts"]["enrolled"]
    assert "Person 1 (1 view, the filter model)" in panel["texts"]["enrolled"]
    assert panel["texts"]["enrol_photo"] == ""  # cleared: the next photo is a new person


def _colors(image: np.ndarray, region: tuple[slice, slice]) -> int:
    return len(np.unique(image[region][..., :3].reshape(-1, 3), axis=0))


def test_the_hotkey_enrols_the_face_in_view(obs, files):
    """In privacy mode with nobody enrolled yet the face is pixelated (the panel says why);
    the hotkey enrols the face in view, which is then swapped."""
    obs.program("Solo scene")
    obs.wait_filter("Solo", lambda f: "nobody is enrolled yet" in f["warning"], 60,
                    "the warning: nobody enrolled yet")
    plain = obs.screenshot("SoloPlain")
    height, width = plain.shape[:2]
    face = (slice(int(0.35 * height), int(0.7 * height)), slice(int(0.2 * width),
                                                                 int(0.7 * width)))
    corner = (slice(0, height // 8), slice(0, width // 8))
    mosaic = _shot_when(obs, "Solo", lambda shot: _colors(shot, face) < 100, "his face pixelated")
    assert _changed(mosaic, plain, corner) == 0  # only the face, not the whole source
    assert "nobody is enrolled yet" in obs.properties_of("Solo/Face Swap")["status"]
    obs.client.trigger_hot_key_by_name("face_swap.enrol_now")
    said = wait_for(lambda: (text := obs.properties_of("Solo/Face Swap")["texts"]["enrolled"])
                    and ("Enrolled Person" in text or "Not enrolled" in text) and text, 60,
                    "the enrolment's outcome")
    assert "Enrolled Person 1 from the face in view." in said
    assert "Person 1 (5 views, the filter model)" in said
    status = obs.wait_filter("Solo", lambda f: f["settings"]["people"], 30, "enrolled by hotkey")
    assert status["settings"]["faces"] == "enrolled"
    out = _shot_when(obs, "Solo", lambda shot: _colors(shot, face) > 1000, "his face swapped")
    assert _changed(out, plain, face) > 10 and _changed(out, plain, corner) == 0

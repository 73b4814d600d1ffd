"""End to end in a real OBS (Xvfb + llvmpipe): the Face Swap filter, driven by obs-websocket.

One OBS session serves the whole module (starting OBS is the slow part). Each test puts
the scene it needs on program, so only that scene's filters are busy.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import DATA
from doubles import build_dfm, save, write_truncated
from obs.bench_render import CLIP_FPS, builtin_filter, measure, write_bench_images, write_clip
from obs.harness import (
    OBS_FPS,
    ObsSession,
    badge_area,
    face_swap_filter,
    image_source,
    media_source,
    missing_tools,
    scene,
    scene_item,
    skip_module_without_obs,
    wait_for,
)

from core.commands.bench_dfm import ensure_bench_dfm
from core.settings import SwapSettings
from core.stills import landmarks_for_image

pytestmark = pytest.mark.obs

skip_module_without_obs()

ASTRONAUT = DATA / "astronaut.png"
NO_LABEL = {"label": False}
SLOW = {"label": False}  # + the slow model's path and one thread, once it is written
# a neutral filter in front of ours: our target is then not the parent, so the texrender path
CROP = {"id": "crop_filter", "versioned_id": "crop_filter", "name": "Crop", "enabled": True,
        "settings": {}}
# an async video filter (Video Delay) after ours: it would act on raw frames after we copy them
DELAY = {"id": "async_delay_filter", "versioned_id": "async_delay_filter", "name": "Delay",
         "enabled": True, "settings": {"delay_ms": 0}}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("obs_files")
    dfm = save(build_dfm(224), folder / "double_224.dfm")
    amp = save(build_dfm(224, morph=True), folder / "double_amp_224.dfm")
    removable = folder / "removable" / "gone_soon.dfm"
    removable.parent.mkdir()
    shutil.copy(dfm, removable)
    replaced = shutil.copy(dfm, removable.parent / "replaced.dfm")
    odd = folder / "odd.png"
    cv2.imwrite(str(odd), cv2.imread(str(ASTRONAUT))[20:277, 90:391])  # 301x257, face inside
    truncated = write_truncated(dfm, folder / "truncated.dfm")
    video = folder / "astronaut.avi"  # lossless (FFV1), so both decodes are identical
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 10, (512, 512))
    for _ in range(10):
        writer.write(cv2.imread(str(ASTRONAUT)))
    writer.release()
    clips = {"clip720": write_clip(folder / "clip720.mp4", 1280, 720),  # I420, BT.709 limited
             "mjpg": write_clip(folder / "clip_mjpg.avi", 640, 360, "MJPG"),  # I420, full range
             "raw": write_clip(folder / "clip_i422.avi", 320, 180, "HFYU", color=False)}  # I422
    # a model much slower than OBS's frames (SAEHD-224-sized, one thread: ~750 ms a frame
    # here), outside the models folder so catalog scans do not read its 270 MB
    slow = ensure_bench_dfm(tmp_path_factory.mktemp("slow_model"))
    return {"folder": folder, "dfm": dfm, "amp": amp, "truncated": truncated, "slow": slow,
            "removable": removable, "replaced": Path(replaced), "odd": odd, "video": video, **clips,
            **write_bench_images(folder)}


@pytest.fixture(scope="module")
def obs(files, tmp_path_factory):
    SLOW.update(model=str(files["slow"]), threads=1)
    if missing_tools():  # only reached under CI=true: there it is a failure, not a skip
        pytest.fail(f"OBS tests need {' and '.join(missing_tools())} (obs-studio, xvfb)")
    f = files
    sources = [
        image_source("Face", ASTRONAUT, [face_swap_filter(settings=NO_LABEL)]),
        image_source("Plain", ASTRONAUT),
        image_source("Odd", f["odd"], [face_swap_filter(settings=NO_LABEL)]),
        image_source("OddPlain", f["odd"]),
        image_source("Dfm", ASTRONAUT, [face_swap_filter(settings={"model": str(f["dfm"]),
                                                                   **NO_LABEL})]),
        image_source("Broken", ASTRONAUT,
                     [face_swap_filter(settings={"model": "/nonexistent/missing.dfm"})]),
        image_source("Corrupt", ASTRONAUT,
                     [face_swap_filter(settings={"model": str(f["truncated"])})]),
        image_source("Removable", ASTRONAUT,
                     [face_swap_filter(settings={"model": str(f["removable"])})]),
        image_source("Replaced", ASTRONAUT,
                     [face_swap_filter(settings={"model": str(f["replaced"])})]),
        image_source("Nothing", Path("/nonexistent/no_image.png"), [face_swap_filter()]),
        media_source("Video", f["video"], [face_swap_filter(settings=NO_LABEL)]),
        media_source("VideoPlain", f["video"]),
        media_source("Clip", f["clip720"], [face_swap_filter(settings=NO_LABEL)]),
        media_source("ClipTex", f["clip720"], [CROP, face_swap_filter(settings=NO_LABEL)]),
        media_source("ClipPlain", f["clip720"]),
        media_source("Mjpg", f["mjpg"], [face_swap_filter(settings=NO_LABEL)]),
        media_source("MjpgPlain", f["mjpg"]),
        media_source("Raw", f["raw"], [face_swap_filter(settings=NO_LABEL)]),
        media_source("Delayed", f["mjpg"], [face_swap_filter(settings=NO_LABEL), DELAY]),
        media_source("RawPlain", f["raw"]),
        image_source("Mapped", ASTRONAUT, [face_swap_filter(settings={**NO_LABEL,
            "model_presets": json.dumps({"double_224": {"face_coverage": 2.8}})})]),
        image_source("Bench360", f["bench360"], [face_swap_filter(settings=NO_LABEL),
                                                 builtin_filter()]),
        image_source("Bench720", f["bench720"], [face_swap_filter(settings=NO_LABEL),
                                                 builtin_filter()]),
        image_source("Scratch", ASTRONAUT),  # filters are added to it and removed
        # as an earlier release saved it: hold_ms a double, none of the later settings
        image_source("OldSaved", ASTRONAUT, [face_swap_filter(settings={
            "model": "persona:default", "on_lost": "hold", "hold_ms": 750.0, "label": False})]),
        # a preset for the DFM double, as an earlier OBS session saved it
        image_source("Tuned", ASTRONAUT, [face_swap_filter(settings={
            "model": "persona:default", **NO_LABEL, "model_presets": json.dumps(
                {"double_224": {"face_coverage": 3.0, "two_pass": True}})})]),
        image_source("Slow", ASTRONAUT, [face_swap_filter(settings=SLOW)]),
        media_source("SlowVideo", f["video"], [face_swap_filter(settings=SLOW)]),
        scene("Main", [scene_item("Face", 1), scene_item("Plain", 2, x=320),
                       scene_item("Odd", 3, y=200), scene_item("OddPlain", 4, x=320, y=200)]),
        scene("Dfm scene", [scene_item("Dfm", 1)]),
        scene("Video scene", [scene_item("Video", 1), scene_item("VideoPlain", 2, x=320)]),
        scene("Clip scene", [scene_item("Clip", 1, scale=0.25),
                             scene_item("ClipTex", 2, x=320, scale=0.25),
                             scene_item("ClipPlain", 3, y=180, scale=0.25)]),
        scene("Clip alone", [scene_item("Clip", 1, scale=0.5)]),
        scene("Formats scene", [scene_item("Mjpg", 1, scale=0.5),
                                scene_item("MjpgPlain", 2, x=320, scale=0.5),
                                scene_item("Raw", 3, y=180), scene_item("RawPlain", 4, x=320,
                                                                          y=180),
                                scene_item("Delayed", 5, x=160, y=180, scale=0.25)]),
        scene("Errors", [scene_item("Broken", 1), scene_item("Corrupt", 2, x=100),
                         scene_item("Removable", 3, x=200), scene_item("Nothing", 4),
                         scene_item("Replaced", 5, x=300)]),
        scene("Second", [scene_item("Mapped", 1)]),
        scene("Third", [scene_item("Mapped", 1)]),
        scene("Bench 360", [scene_item("Bench360", 1)]),
        scene("Bench 720", [scene_item("Bench720", 1, scale=0.5)]),
        scene("Scratch scene", [scene_item("Scratch", 1),  # filters come and go on Scratch
                                scene_item("OldSaved", 2, x=320), scene_item("Tuned", 3)]),
        scene("Slow scene", [scene_item("Slow", 1, scale=0.5),
                             scene_item("SlowVideo", 2, x=320, scale=0.5)]),
    ]
    # by registry name: resolvable only through the models folder
    mapping = [{"value": "Second = double_224"}, {"value": "Third = persona:default"}]
    # the doubles are found through the script's "Models folder" setting
    session = ObsSession(tmp_path_factory.mktemp("obs"), sources,
                         {"scene_models": mapping, "models_dir": str(f["folder"])})
    session.expect_saved = {}  # source -> filter settings the scene collection must keep
    session.expect_presets = {}  # source -> {model: preset values} it must keep
    with session:
        wait_for(lambda: session.status_file.exists() and session.status(), 60, "status file")
        yield session
        # OBS 29 itself crashes at exit (a Qt repaint of a deleted widget) in about one exit
        # in five with "Slow scene" on program, even with our filters disabled there (3 of
        # 16 runs; 0 of 16 after this switch). Exiting mid-swap is test_obs_exit's job.
        session.program("Scratch scene")
    session.assert_clean_exit()
    collection = session.saved_collection()  # what OBS wrote on exit
    script_settings = collection["modules"]["scripts-tool"][0]["settings"]
    assert "face_swap.toggle" in script_settings  # hotkey bindings saved with the script
    saved = {s["name"]: s for s in collection["sources"]}
    for source, settings in session.expect_saved.items():  # set over obs-websocket
        stored = saved[source]["filters"][0]["settings"]
        assert {k: stored.get(k) for k in settings} == settings
    for source, presets in session.expect_presets.items():
        stored = json.loads(saved[source]["filters"][0]["settings"]["model_presets"])
        for model, values in presets.items():
            assert {k: stored[model][k] for k in values} == values, (model, stored)



def face_zone(image_rgb: np.ndarray, margin: float = 0.6) -> tuple[slice, slice]:
    """The face box grown by `margin` x face size: the feathered mask lies inside it."""
    face = landmarks_for_image(image_rgb)
    assert face is not None
    x0, y0, x1, y1 = face.box
    pad = margin * face.size
    h, w = image_rgb.shape[:2]
    return (slice(max(int(y0 - pad), 0), min(int(y1 + pad) + 1, h)),
            slice(max(int(x0 - pad), 0), min(int(x1 + pad) + 1, w)))


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 0


def wait_swapped(obs: ObsSession, source: str, plain: str, timeout: float = 90.0):
    obs.wait_filter(source, lambda f: f["swapping"] and f["frames_out"] > 3, timeout,
                    f"{source} swapping")

    def differs():
        out, ref = obs.screenshot(source), obs.screenshot(plain)
        return (out, ref) if changed(out, ref).sum() > 200 else None
    return wait_for(differs, 30, f"{source} to differ from {plain}")


def assert_swap_confined(out: np.ndarray, ref: np.ndarray) -> None:
    assert out.shape == ref.shape
    zone = face_zone(ref[..., :3])
    diff = changed(out, ref)
    inside = diff[zone].sum()
    diff[zone] = False
    assert diff.sum() == 0, f"{diff.sum()} pixels changed outside the face zone"
    face_area = (zone[0].stop - zone[0].start) * (zone[1].stop - zone[1].start)
    # measured 46-48 % of the face zone changed (persona, DFM double)
    assert inside > 0.02 * face_area, f"only {inside} pixels changed inside the face"


def test_persona_swaps_inside_the_face_only(obs):
    obs.program("Main")
    out, ref = wait_swapped(obs, "Face", "Plain")
    assert_swap_confined(out, ref)
    status = obs.filter_status("Face")
    assert status["model"] == "persona:default" and status["device"] == "cpu"
    assert status["provider"], "status must name the active provider"


def test_odd_sized_source(obs):
    obs.program("Main")
    out, ref = wait_swapped(obs, "Odd", "OddPlain")
    assert out.shape[:2] == (257, 301)
    assert_swap_confined(out, ref)


def test_media_source_async_frames(obs):
    obs.program("Video scene")
    out, ref = wait_swapped(obs, "Video", "VideoPlain")
    assert_swap_confined(out, ref)


def wait_path(obs: ObsSession, source: str, path: str, timeout: float = 90.0) -> dict:
    return obs.wait_filter(source, lambda f: f["swapping"] and f["frames_out"] > 3
                           and f["grab"] == path, timeout, f"{source} swapping via {path}")


def mean_diff_outside_face(a: np.ndarray, b: np.ndarray, ref: np.ndarray) -> float:
    """Mean absolute RGB difference of a and b outside the face zone of `ref`."""
    outside = np.ones(ref.shape[:2], bool)
    outside[face_zone(ref[..., :3])] = False
    diff = np.abs(a[..., :3].astype(np.int16) - b[..., :3].astype(np.int16))
    return float(diff[outside].mean())


def test_async_frames_match_texrender_colors(obs):
    """A media source's raw I420 frames (BT.709, limited range), converted on our thread,
    give the colours libobs' GPU conversion gives: the swapped output outside the face
    matches the texrender path's output and the unfiltered source."""
    obs.program("Clip scene")
    wait_path(obs, "Clip", "async I420")
    wait_path(obs, "ClipTex", "texrender")
    out_async, plain = wait_swapped(obs, "Clip", "ClipPlain")
    out_tex, _ = wait_swapped(obs, "ClipTex", "ClipPlain")
    assert out_async.shape == out_tex.shape == (720, 1280, 4)
    # measured 1.50 and 1.49 (OBS 29.0.2)
    assert mean_diff_outside_face(out_async, out_tex, plain) < 3.0
    assert mean_diff_outside_face(out_async, plain, plain) < 3.0
    zone = face_zone(plain[..., :3])
    face_area = (zone[0].stop - zone[0].start) * (zone[1].stop - zone[1].start)
    assert changed(out_async, plain)[zone].sum() > 0.02 * face_area, "no swap in the face"
    status = obs.filter_status("Clip")
    assert status["copy_ms"]["n"] > 0 and status["convert_ms"]["n"] > 0
    assert status["convert_errors"] == 0


def test_async_frames_are_handed_over_once_each(obs):
    """The clip has CLIP_FPS frames a second and OBS draws it more often: each raw frame
    reaches the engine once, not once per video_render."""
    obs.program("Clip alone")
    wait_path(obs, "Clip", "async I420")
    first = obs.filter_status("Clip")
    start = time.monotonic()
    time.sleep(4.0)
    last = obs.wait_filter("Clip", lambda f: f["renders"] > first["renders"], 10, "renders")
    elapsed = time.monotonic() - start
    raw = last["frames_in"] - first["frames_in"]
    renders = last["renders"] - first["renders"]
    # Nominally raw = 20 and renders ~120 (30 / CLIP_FPS = 6x). Measured with two other
    # benchmarks on this 2-core box (load 7-12): raw 14, 14, 6; renders 21 and 33 - OBS's
    # own render rate and the clip's decoding fall that far under such load; in a whole
    # local suite run (2026-12-06) raw 10. The lower bound only says raw frames flow (what
    # this test holds is the upper one: once each, never once per render).
    assert 0.25 * CLIP_FPS * elapsed <= raw <= 1.3 * CLIP_FPS * elapsed + 2, (raw, elapsed)
    assert renders > 1.5 * raw, (renders, raw)


def test_full_range_and_texrender_fallbacks(obs):
    """MJPEG decodes to full-range I420 (converted here with its own range); grey HuffYUV
    to I422, not converted here, and a source with a Video Delay filter: those filters
    fall back to the texrender path."""
    obs.program("Formats scene")
    wait_path(obs, "Mjpg", "async I420 full range")
    out, plain = wait_swapped(obs, "Mjpg", "MjpgPlain")
    assert mean_diff_outside_face(out, plain, plain) < 3.0  # measured 0.24
    status = wait_path(obs, "Raw", "texrender")
    assert status["async_format"] == "format 12 320x180 unsupported"  # VIDEO_FORMAT_I422
    out, plain = wait_swapped(obs, "Raw", "RawPlain")
    assert_swap_confined(out, plain)
    status = wait_path(obs, "Delayed", "texrender")
    assert status["async_format"] == "another async filter on the source"


def test_async_filter_added_and_removed_while_running(obs):
    """The other-async-filter check is cached: adding one (the parent's filter count
    changes) still moves us to the texrender path at once, and removing it moves us back."""
    obs.program("Formats scene")
    wait_path(obs, "Mjpg", "async I420 full range")
    obs.client.create_source_filter("Mjpg", "Delay", "async_delay_filter", {"delay_ms": 0})
    try:
        status = wait_path(obs, "Mjpg", "texrender", 30)
        assert status["async_format"] == "another async filter on the source"
    finally:
        obs.client.remove_source_filter("Mjpg", "Delay")
    wait_path(obs, "Mjpg", "async I420 full range", 30)


def test_filters_removed_while_rendering(obs):
    """A filter taken off its source mid-frame: the frame callbacks stop touching the parent
    before libobs clears it (filter_remove), so deleting filters while OBS renders them,
    as a user does in the Filters dialog, never crashes OBS (it did in one of about eight runs of
    the module here: a race, which this loop makes likelier, not certain)."""
    obs.program("Scratch scene")
    for i in range(30):
        settings = {**NO_LABEL, "on_lost": ("pixelate", "original")[i % 2]}
        obs.client.create_source_filter("Scratch", "Face Swap", "face_swap", settings)
        time.sleep(0.05 * (i % 5))
        obs.client.remove_source_filter("Scratch", "Face Swap")
        assert obs.running, f"OBS crashed removing filter {i + 1}"
    assert "video_render failed" not in obs.log_text()
    np.testing.assert_array_equal(obs.screenshot("Scratch"), obs.screenshot("Plain"))


def test_reenabled_filter_never_shows_swaps_from_before(obs):
    """After the filter was off, results of frames from before are skipped (passed through)
    until a swap of a new frame arrives; then it swaps again."""
    obs.program("Main")
    wait_swapped(obs, "Face", "Plain")
    before = obs.filter_status("Face")
    obs.client.set_source_filter_enabled("Face", "Face Swap", False)
    time.sleep(1.5)  # longer than the resume gap
    obs.client.set_source_filter_enabled("Face", "Face Swap", True)
    status = obs.wait_filter("Face", lambda f: f["skipped_results"] > before["skipped_results"]
                             and f["renders"] > before["renders"] + 5, 30, "skipped old result")
    assert status["callback_errors"] == {}
    wait_swapped(obs, "Face", "Plain")


def test_removed_filter_stops_its_threads(obs):
    """Destroying a filter does not wait for its threads; a reaper joins them shortly after."""
    def workers() -> int:
        return obs.status()["threads"].count("face-swap-worker")
    start = workers()
    obs.client.create_source_filter("Scratch", "Face Swap", "face_swap", NO_LABEL)
    wait_for(lambda: workers() == start + 1, 30, "the new filter's worker")
    obs.client.remove_source_filter("Scratch", "Face Swap")
    wait_for(lambda: workers() == start and "face-swap-reaper" not in obs.status()["threads"],
             30, "the removed filter's threads to end")
    assert obs.running


def test_resolution_change_while_rendering(obs, files):
    obs.program("Main")
    wait_swapped(obs, "Odd", "OddPlain")
    try:
        for name in ("Odd", "OddPlain"):
            obs.client.set_input_settings(name, {"file": str(files["bench360"])}, True)
        obs.wait_filter("Odd", lambda f: f["size"] == [640, 360], 20, "the new size")
        out, ref = wait_swapped(obs, "Odd", "OddPlain")
        assert out.shape[:2] == (360, 640)
        assert_swap_confined(out, ref)
    finally:
        for name in ("Odd", "OddPlain"):
            obs.client.set_input_settings(name, {"file": str(files["odd"])}, True)


def test_dfm_double_swaps_inside_the_face_only(obs):
    obs.program("Dfm scene")
    out, ref = wait_swapped(obs, "Dfm", "Plain")
    assert_swap_confined(out, ref)
    status = obs.filter_status("Dfm")
    assert status["provider"] == "CPUExecutionProvider"
    assert status["model"] == "double_224"



PANEL_GROUPS = {
    "group_model": ["model", "refresh_models", "reference", "device", "threads", "morph"],
    "group_dfm": ["face_coverage", "align_x_offset", "align_y_offset", "exclude_moving_parts",
                  "head_mode", "freeze_z_rotation", "presharpen", "pre_gamma_r", "pre_gamma_g",
                  "pre_gamma_b", "post_gamma_r", "post_gamma_g", "post_gamma_b", "two_pass"],
    "group_who": ["faces", "face_id", "max_faces", "guests", "enrol_model", "enrol_photo",
                  "enrol_now", "enrolled", "forget_people"],
    "group_face": ["mask", "erode", "blur", "face_scale", "face_offset_x", "face_offset_y",
                   "keep_eyes", "keep_mouth", "keep_hands", "keep_objects"],
    "group_color": ["color_transfer", "opacity", "interpolation", "color_compression"],
    "group_tracking": ["smoothing", "detect_interval", "max_yaw", "max_pitch", "fade_ms"],
    "group_privacy": ["on_lost", "hold_ms", "identity_guard", "label", "label_corner",
                      "label_size"],
}


def test_properties_panel(obs, files):
    """The panel as OBS's properties window builds it: the status on top, seven groups of
    controls with a tooltip each, the engine's ranges, and only what applies visible."""
    obs.program("Dfm scene")
    wait_swapped(obs, "Dfm", "Plain")
    from obs_script.properties import CONTROLS, TOOLTIP_WIDTH  # needs libobs: not at import

    panel = obs.properties_of("Dfm/Face Swap")
    props = panel["properties"]
    assert panel["order"][0] == "status" and props["status"]["group"] == ""
    assert [n for n in panel["order"] if props[n]["group"] == ""] == ["status", *PANEL_GROUPS]
    for group, names in PANEL_GROUPS.items():
        assert [n for n in panel["order"] if props[n]["group"] == group] == names, group
    for name, prop in props.items():
        if not name.startswith("group_"):
            assert len(prop["tooltip"]) > 20, f"{name} has no tooltip"
        if name in CONTROLS:  # broken into lines, not one running off the screen
            assert max(map(len, prop["tooltip"].splitlines())) <= TOOLTIP_WIDTH, name
    assert props["erode"]["range"] == [-50.0, 50.0] and props["blur"]["range"] == [0.0, 100.0]
    assert props["hold_ms"]["range"] == [0, 60000] and props["hold_ms"]["type"] == 2  # int
    assert props["max_yaw"]["range"] == [0.0, 90.0] and "persona: none" in \
        " ".join(props["max_yaw"]["tooltip"].split())
    assert props["threads"]["label"] == "CPU threads (0 = automatic)"
    assert props["face_coverage"]["range"] == [0.1, 8.0] and props["group_dfm"]["visible"]
    # a DFM that is not AMP, one face, on_lost original, label off (NO_LABEL)
    hidden = {n for n, p in props.items() if not p["visible"]}
    assert hidden == {"morph", "face_id", "keep_eyes", "keep_mouth", "hold_ms",
                      "identity_guard", "label_corner", "label_size", "guests", "enrol_model",
                      "enrol_photo", "enrol_now", "enrolled", "forget_people"}, hidden
    assert "Models folder" in " ".join(props["model"]["tooltip"].split())
    models = " ".join(props["model"]["items"])
    assert "persona:default" in models and "double_224" in models and "double_amp_224" in models
    assert any(item.startswith("cpu") for item in props["device"]["items"])
    status = panel["status"]
    assert status.startswith("Swapping double_224 on CPU, ") and "delay typical" in status
    assert "ExecutionProvider" not in status and "p50" not in status
    # the Scripts window shows what holds while the script is loaded: what changes (models,
    # mistakes) is in each filter's panel and under the lists, where it updates
    script = obs.status()["test_properties"]["script"]
    description = script["description"]
    assert "Engine ready" in description and "Devices: cpu" in description
    assert "Warning" not in description  # OBS 29-32 verified
    assert "double_224" not in description and "scanning" not in description
    shown = {name for name, p in script["properties"].items() if p["visible"]}
    assert shown - {"mapping_errors", "server_errors"} == {
        "models_dir", "scene_models", "inference_servers"}, shown

    obs.client.set_source_filter_settings("Dfm", "Face Swap", {"model": "double_amp_224",
                                                               "faces": "id"}, True)
    obs.wait_filter("Dfm", lambda f: f["model"] == "double_amp_224", 60, "the AMP double")
    obs.status_file.unlink()  # drop the old report
    props = obs.properties_of("Dfm/Face Swap")["properties"]
    assert props["morph"]["visible"] is True and props["face_id"]["visible"] is True
    obs.client.set_source_filter_settings("Dfm", "Face Swap", {"model": str(files["dfm"]),
                                                               "faces": "largest"}, True)


def test_dfm_crop_options_reach_the_model(obs):
    """DeepFaceLive's aligner options set in the panel (here over obs-websocket, as the
    panel saves them) change the crop the .dfm is given: the double flips the face about
    the crop's centre line, so a crop moved sideways shows on screen. A persona's panel
    hides them."""
    obs.program("Dfm scene")
    wait_swapped(obs, "Dfm", "Plain")
    before = obs.screenshot("Dfm")
    obs.client.set_source_filter_settings("Dfm", "Face Swap", {"align_x_offset": 0.15}, True)
    try:
        wait_for(lambda: (changed(obs.screenshot("Dfm"), before)).sum() > 1000, 30,
                 "the swap drawn from a crop moved sideways")
        # the status file is rewritten every 0.5 s (obs_script/status.py): the moved crop
        # can reach the screen before it (a clean-clone CI run read 0.0 here once)
        obs.wait_filter("Dfm", lambda f: f["settings"]["align_x_offset"] == 0.15, 10,
                        "the offset in the filter's settings")
    finally:
        obs.client.set_source_filter_settings("Dfm", "Face Swap", {"align_x_offset": 0.0},
                                              True)
    assert not obs.properties_of("Face/Face Swap")["properties"]["group_dfm"]["visible"]


def test_each_model_brings_back_its_own_preset(obs, files):
    """The .dfm options tuned for a model come back when it is chosen again (DeepFaceLive's
    per-model settings); a model without a preset gets the defaults. The preset for
    double_224 was saved by an earlier session; the one tuned here is saved on exit."""
    def settings(check, what):
        return obs.wait_filter("Tuned", lambda f: check(f["settings"]), 30, what)["settings"]

    def choose(**values):
        obs.client.set_source_filter_settings("Tuned", "Face Swap", values, True)

    choose(model="double_224")
    tuned = settings(lambda s: s["model"] == "double_224", "double_224 chosen")
    assert tuned["face_coverage"] == 3.0 and tuned["two_pass"] is True  # the saved preset
    choose(face_coverage=2.6, pre_gamma_r=1.3)
    settings(lambda s: s["face_coverage"] == 2.6, "the new coverage")
    choose(model="persona:default")
    persona = settings(lambda s: s["model"] == "persona:default", "the persona chosen")
    assert persona["face_coverage"] == 2.2 and persona["two_pass"] is False
    assert persona["pre_gamma_r"] == 1.0
    choose(model=str(files["dfm"]))  # the same model by its path: the same preset
    again = settings(lambda s: s["model"].endswith("double_224.dfm"), "double_224 by path")
    assert (again["face_coverage"], again["pre_gamma_r"], again["two_pass"]) == (2.6, 1.3, True)
    obs.expect_presets["Tuned"] = {"double_224": {"face_coverage": 2.6, "pre_gamma_r": 1.3,
                                                  "two_pass": True}}


def test_a_collection_saved_by_an_earlier_release_loads(obs):
    """Settings saved before a setting changed type (hold_ms: double -> int) or existed
    (fade_ms, max_faces, label_size, turn limits) read as the saved value or the default."""
    settings = obs.wait_filter("OldSaved", lambda f: f["settings"], 30, "OldSaved")["settings"]
    assert settings["hold_ms"] == 750 and isinstance(settings["hold_ms"], int)
    assert settings["on_lost"] == "hold" and settings["label"] is False
    defaults = SwapSettings()
    for name in ("fade_ms", "max_faces", "label_size", "max_yaw", "max_pitch"):
        assert settings[name] == getattr(defaults, name), name
    assert not obs.filter_status("OldSaved")["problem"]


def test_status_refreshes_itself(obs, files):
    """No button: the status line in the filter's settings (what an open panel shows)
    follows the engine - an error appears, then clears when the model is fixed - and OBS is
    asked to rebuild open panels (obs_source_update_properties) as it changes."""
    obs.program("Scratch scene")
    obs.client.create_source_filter("Scratch", "Face Swap", "face_swap",
                                    {**NO_LABEL, "model": "/nonexistent/gone.dfm"})
    try:
        def status_text() -> str:
            return obs.client.get_source_filter("Scratch", "Face Swap").filter_settings.get(
                "status", "")
        wait_for(lambda: "model file not found" in status_text(), 30, "the error in the status")
        assert status_text().startswith("Not swapping (the source shows unswapped)")
        pushes = obs.wait_filter("Scratch", lambda f: f["problem"], 30, "Scratch's status")[
            "panel_pushes"]
        obs.client.set_source_filter_settings("Scratch", "Face Swap",
                                              {"model": "persona:default"}, True)
        wait_for(lambda: status_text().startswith("Swapping persona:default on CPU"), 60,
                 "the fixed model in the status")
        obs.wait_filter("Scratch", lambda f: f["panel_pushes"] > pushes, 10,
                        "a push of the changed status to the panel")
    finally:
        obs.client.remove_source_filter("Scratch", "Face Swap")


def test_a_steady_status_never_rebuilds_the_panel(obs):
    """OBS can only rebuild a whole open panel (which closes an open dropdown and ends a
    slider drag): new figures alone never ask for it, while the status text an opened panel
    shows keeps up with them."""
    obs.program("Main")
    pushes = obs.wait_filter("Face", lambda f: f["swapping"] and f["frames_out"] > 10, 60,
                             "Face swapping")["panel_pushes"]
    texts = set()
    for _ in range(20):
        texts.add(obs.client.get_source_filter("Face", "Face Swap").filter_settings.get(
            "status", ""))
        time.sleep(0.5)
    assert all(t.startswith("Swapping persona:default") for t in texts), texts
    assert len(texts) > 1, texts  # the figures moved on in the text
    assert obs.filter_status("Face")["panel_pushes"] == pushes  # and no rebuild for them


def test_mapping_mistakes_show_at_once(obs):
    """Lines entered in "Scene -> model" (as the Scripts window applies them) that are
    malformed or name an unknown model are logged and shown under the mapping's list."""
    mapping = [{"value": "Second = double_224"}, {"value": "Third = persona:default"}]
    lines = [m["value"] for m in mapping] + ["no separator", "Main = no_such_model",
                                             "Dfm scene = /nowhere/x.dfm"]
    (obs.workdir / "test_input.json").write_text(json.dumps({"scene_models": lines}))
    try:
        obs.client.trigger_hot_key_by_name("face_swap.test_script_settings")
        wait_for(lambda: "unknown model 'no_such_model'" in obs.log_text(), 20, "the log line")
        log = obs.log_text()
        assert "Scene -> model: ignored 'no separator'" in log
        assert "model file /nowhere/x.dfm not found" in log
        errors = wait_for(lambda: len(obs.status()["mapping_errors"]) == 3
                          and obs.status()["mapping_errors"], 10, "three mapping errors")
        assert any("scene 'Main'" in e for e in errors)

        def under_the_list() -> dict:
            obs.client.trigger_hot_key_by_name("face_swap.test_properties")
            props = obs.status().get("test_properties", {}).get("script", {}).get(
                "properties", {})
            return props if "no_such_model" in props.get("mapping_errors", {}).get(
                "label", "") else {}
        props = wait_for(under_the_list, 20, "the mistakes under the mapping's list")
        assert props["mapping_errors"]["visible"] and not props["server_errors"]["visible"]
        order = list(props)  # right under the list they are about
        assert order.index("mapping_errors") == order.index("scene_models") + 1
        assert "ignored 'no separator'" in props["mapping_errors"]["label"]
    finally:
        (obs.workdir / "test_input.json").write_text(json.dumps(
            {"scene_models": [m["value"] for m in mapping]}))
        obs.client.trigger_hot_key_by_name("face_swap.test_script_settings")
        wait_for(lambda: obs.status()["mapping_errors"] == [], 20, "the mapping fixed")


def test_settings_from_websocket_take_effect(obs):
    obs.program("Main")
    wait_swapped(obs, "Face", "Plain")
    obs.client.set_source_filter_settings("Face", "Face Swap",
                                          {"label": True, "label_corner": "top-left"}, True)

    def label_shown():
        out, ref = obs.screenshot("Face"), obs.screenshot("Plain")
        return changed(out, ref)[:60, :120].sum() > 50
    wait_for(label_shown, 30, "disclosure label in the top-left corner")

    obs.client.set_source_filter_settings("Face", "Face Swap", {"opacity": 0.0, "label": False},
                                          True)
    wait_for(lambda: not changed(obs.screenshot("Face"), obs.screenshot("Plain")).any(), 30,
             "opacity 0 to show the source unchanged")
    saved = obs.client.get_source_filter("Face", "Face Swap").filter_settings
    assert saved["opacity"] == 0.0 and saved["label"] is False
    obs.client.set_source_filter_settings("Face", "Face Swap", {"opacity": 1.0}, True)
    obs.expect_saved["Face"] = {"label_corner": "top-left", "opacity": 1.0, "label": False}


@pytest.mark.parametrize("source, needle", [("Broken", "not found"),
                                            ("Corrupt", "truncated.dfm")])
def test_bad_model_passes_through_with_the_error(obs, source, needle):
    obs.program("Errors")
    status = obs.wait_filter(source, lambda f: f["problem"], 60, f"{source} error")
    assert needle in status["problem"]
    assert badge_area(obs.screenshot(source), obs.screenshot("Plain")) is not None
    assert obs.running


def test_model_removed_while_running(obs, files):
    obs.program("Errors")
    obs.wait_filter("Removable", lambda f: f["swapping"], 60, "Removable swapping")
    files["removable"].unlink()
    status = obs.wait_filter("Removable", lambda f: f["problem"], 30, "removed-model error")
    assert "removed" in status["problem"]
    wait_for(lambda: badge_area(obs.screenshot("Removable"), obs.screenshot("Plain")), 10,
             "pass-through (with the badge) after the model file went away")
    assert obs.running


def test_model_overwritten_in_place_keeps_the_running_model(obs, files):
    """A running model's file overwritten with junk is noticed (size and time change): the
    reload fails, the model loaded before keeps swapping, the status warns."""
    obs.program("Errors")
    obs.wait_filter("Replaced", lambda f: f["swapping"] and f["frames_out"] > 3, 60,
                    "Replaced swapping")
    good = files["replaced"].read_bytes()
    files["replaced"].write_bytes(b"junk, not an onnx model" * 10)
    try:
        status = obs.wait_filter("Replaced", lambda f: f["warning"], 30, "the reload warning")
        assert "changed and cannot be loaded" in status["warning"] and status["swapping"]
        before = status["frames_out"]
        obs.wait_filter("Replaced", lambda f: f["frames_out"] > before + 2, 30, "more swaps")
        assert "the model file changed" in obs.properties_of("Replaced/Face Swap")["status"]
    finally:
        files["replaced"].write_bytes(good)
    obs.wait_filter("Replaced", lambda f: not f["warning"], 30, "the warning cleared")


def test_source_that_renders_nothing(obs):
    obs.program("Errors")
    time.sleep(1.0)
    status = obs.filter_status("Nothing")
    assert status is not None and status["size"] == [0, 0] and status["frames_in"] == 0
    assert obs.running


def test_scene_switch_applies_the_mapping_without_unswapped_frames(obs, files):
    obs.program("Third")  # Third = persona:default; Mapped is in Third and in Second
    wait_swapped(obs, "Mapped", "Plain")
    zone = face_zone(obs.screenshot("Plain")[..., :3])
    obs.client.set_current_program_scene("Second")  # Second = the DFM double
    frames = 0
    while obs.filter_status("Mapped")["model"] != "double_224":
        out, ref = obs.screenshot("Mapped"), obs.screenshot("Plain")
        assert changed(out, ref)[zone].sum() > 200, "an unswapped frame during the switch"
        frames += 1
        assert frames < 300, "the mapped model never went live"
    status = obs.wait_filter("Mapped", lambda f: f["swapping"], 30, "Mapped swapping")
    assert status["requested_model"] == "double_224" and obs.status()["scene"] == "Second"
    assert status["settings"]["face_coverage"] == 2.8  # the scene brought the model's preset
    assert obs.filter_status("Face")["requested_model"] == "persona:default"  # not in Second
    obs.program("Third")
    back = obs.wait_filter("Mapped", lambda f: f["model"] == "persona:default", 60,
                           "Mapped back on the persona")
    assert back["settings"]["face_coverage"] == 2.2


def test_a_mapping_typo_never_reaches_program(obs, files):
    """'Second = double_22' (a typo): on the switch to Second the filter keeps the model it
    swaps with, every frame is swapped, the log says why (it used to switch to the unknown
    model and show the real face)."""
    good = ["Second = double_224", "Third = persona:default"]
    obs.program("Third")
    wait_swapped(obs, "Mapped", "Plain")
    zone = face_zone(obs.screenshot("Plain")[..., :3])
    (obs.workdir / "test_input.json").write_text(json.dumps(
        {"scene_models": ["Second = double_22", "Third = persona:default"]}))
    try:
        obs.client.trigger_hot_key_by_name("face_swap.test_script_settings")
        wait_for(lambda: any("double_22'" in e for e in obs.status()["mapping_errors"]), 20,
                 "the typo reported")
        obs.client.set_current_program_scene("Second")
        wait_for(lambda: "scene 'Second': not switched to double_22" in obs.log_text(), 20,
                 "the refusal in the log")
        for _ in range(6):  # a screenshot pair takes about 2.5 s here
            out, ref = obs.screenshot("Mapped"), obs.screenshot("Plain")
            assert changed(out, ref)[zone].sum() > 200, "an unswapped frame after the switch"
        status = obs.filter_status("Mapped")
        assert status["requested_model"] == "persona:default" and status["swapping"]
    finally:
        (obs.workdir / "test_input.json").write_text(json.dumps({"scene_models": good}))
        obs.client.trigger_hot_key_by_name("face_swap.test_script_settings")
        wait_for(lambda: obs.status()["mapping_errors"] == [], 20, "the mapping fixed")
        obs.program("Third")


def test_hotkeys_act_on_the_filters_on_program(obs):
    obs.program("Main")
    names = [h for h in obs.client.get_hotkey_list().hotkeys if h.startswith("face_swap.")]
    assert sorted(names) == sorted(set(names)), "a hotkey is registered twice"
    assert {"face_swap.toggle", "face_swap.next_model", "face_swap.previous_model"} <= set(names)
    dfm_model = obs.filter_status("Dfm")["requested_model"]
    before = obs.client.get_source_filter("Face", "Face Swap").filter_enabled
    obs.client.trigger_hot_key_by_name("face_swap.toggle")
    wait_for(lambda: obs.client.get_source_filter("Face", "Face Swap").filter_enabled != before,
             10, "toggle hotkey")
    obs.client.trigger_hot_key_by_name("face_swap.toggle")
    wait_for(lambda: obs.client.get_source_filter("Face", "Face Swap").filter_enabled == before,
             10, "toggle back")
    obs.client.trigger_hot_key_by_name("face_swap.next_model")
    wait_for(lambda: obs.filter_status("Face")["requested_model"] != "persona:default", 10,
             "next model")
    obs.client.trigger_hot_key_by_name("face_swap.previous_model")
    wait_for(lambda: obs.filter_status("Face")["requested_model"] == "persona:default", 10,
             "previous model")
    assert obs.filter_status("Dfm")["requested_model"] == dfm_model  # not on program


def test_reload_scripts_ten_times_while_rendering(obs):
    obs.program("Main")
    wait_swapped(obs, "Face", "Plain")
    time.sleep(2.0)
    threads_before = obs.thread_count()
    loads = obs.status()["loads"]
    for i in range(10):
        obs.client.trigger_hot_key_by_name("face_swap.test_reload_scripts")
        wait_for(lambda n=loads + i + 1: obs.status()["loads"] == n, 30, f"reload {i + 1}")
        # the new load registers its hotkeys after it counts itself: wait for the next one
        wait_for(lambda: "face_swap.test_reload_scripts" in obs.client.get_hot_key_list().hotkeys,
                 30, f"reload {i + 1}'s hotkeys")
        assert obs.running
    status = obs.status()
    assert status["registrations"] == 1
    assert obs.log_text().count("registered filter 'face_swap'") == 1
    # the startup line says which Python OBS runs (what the venv must be made with)
    assert re.search(r"script loaded \(load #\d+, Python 3\.\d+\.\d+ from /", obs.log_text())
    assert "already exists" not in obs.log_text()
    out, ref = wait_swapped(obs, "Face", "Plain")
    assert_swap_confined(out, ref)

    def ours() -> list[str]:  # threads and filters of one status snapshot
        snapshot = obs.status()
        names = [t for t in snapshot["threads"] if t.startswith("face-swap")]
        return names if names.count("face-swap-worker") == len(snapshot["filters"]) else []
    threads = wait_for(ours, 20, "one worker per filter")
    assert threads.count("face-swap-status") == 1 and threads.count("face-swap-prepare") == 1
    assert "face-swap-reaper" not in threads, threads  # unload waited for the closed filters
    wait_for(lambda: obs.thread_count() <= threads_before, 30,
             f"OS threads back to {threads_before} (now {obs.thread_count()})")


def test_a_slow_model_is_not_fed_frames_it_would_drop(obs):
    """Texrender and raw-frame paths grab only when the worker is about to take a frame:
    with a model several OBS frames slow, most frames are left alone (and none of them is
    an old frame handed over later), and the swap goes on."""
    obs.program("Slow scene")
    for source in ("Slow", "SlowVideo"):
        ready = obs.wait_filter(source, lambda f: f["swapping"], 180,
                                f"{source} swapping with the slow model")
        obs.wait_filter(source, lambda f, n=ready["frames_out"]: f["frames_out"] >= n + 2,
                        60, f"{source}: two slow swaps")
    before = {s: obs.filter_status(s) for s in ("Slow", "SlowVideo")}
    for source in ("Slow", "SlowVideo"):  # a few more slow swaps, however slow this machine
        now = obs.wait_filter(source, lambda f, n=before[source]["frames_out"]:
                              f["frames_out"] >= n + 3, 60, f"{source}: three more swaps")
        left = now["frames_not_grabbed"] - before[source]["frames_not_grabbed"]
        taken = now["frames_in"] - before[source]["frames_in"]
        swapped = now["frames_out"] - before[source]["frames_out"]
        assert swapped >= 2 and now["errors"] == 0, now
        # a few frames handed over per swap at most (before: every frame, ~20 per swap here)
        # measured 2 and 5 handed over for 3 swaps
        assert taken <= 4 * swapped + 2, f"{source}: {taken} handed over for {swapped} swaps"
        # a swap spanning many OBS frames (the premise): most of them are left alone
        assert now["timings"]["total"] > 8 * 1000 / OBS_FPS, now["timings"]  # 9.9-11 s
        assert left > taken, f"{source}: {left} frames left alone, {taken} handed over"  # 231, 206
    # what is drawn is the swap (random weights: a faint change, but a change)
    out, ref = obs.screenshot("Slow"), obs.screenshot("Plain")
    assert changed(out, ref).sum() > 200


def test_render_thread_cost_is_reported(obs, capsys):
    # 2 s a phase (the bench command, tests/obs/bench_render.py, takes 6 for its figures)
    rows = [measure(obs, "Bench 360", "Bench360", 2.0), measure(obs, "Bench 720", "Bench720", 2.0)]
    with capsys.disabled():
        for row in rows:
            print("\n" + row["line"])
    for row in rows:
        assert row["with_filter"]["render_ms"]["n"] > 10
        assert row["without_filter"]["obs_frame_ms"] > 0
        assert row["builtin_filter"]["obs_frame_ms"] > 0


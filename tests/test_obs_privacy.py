"""Privacy mode in a real OBS: with on_lost = pixelate (or hold once its time is up) no
frame in which no swap is drawn shows the real face, whatever the cause. Pixel checks on
the source as OBS renders it (obs-websocket screenshots).

One OBS session serves the module; its filters cover each cause: a model missing,
unusable or producing NaN, an unreadable reference, no face in view, a model still
loading, a stalled engine (FACE_SWAP_STALL_MS lowered so that a slow model's frames count
as stalls), a filter re-enabled, and "original" for contrast.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from conftest import DATA
from doubles import build_dfm, save, write_truncated
from obs.harness import (
    ObsSession,
    badge_area,
    face_swap_filter,
    image_source,
    missing_tools,
    scene,
    scene_item,
    skip_module_without_obs,
    wait_for,
)

from core import privacy
from core.commands.bench_dfm import ensure_bench_dfm
from core.commands.headturn_render import make_head, render_head
from core.face import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, points5
from core.stills import landmarks_for_image

pytestmark = pytest.mark.obs

skip_module_without_obs()

ASTRONAUT = DATA / "astronaut.png"
PIXELATE = {"on_lost": "pixelate", "label": False}
STALL_MS = 300  # a frame running longer than this (and 4x the usual) counts as a stall


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("privacy_files")
    dfm = save(build_dfm(224), folder / "double_224.dfm")
    nan = save(build_dfm(224, poison=float("nan")), folder / "nan_224.dfm")
    truncated = write_truncated(dfm, folder / "truncated.dfm")
    no_face = folder / "no_face.png"  # the astronaut's suit and flag: no face in view
    cv2.imwrite(str(no_face), cv2.imread(str(ASTRONAUT))[300:512, 0:512])
    slow = ensure_bench_dfm(tmp_path_factory.mktemp("privacy_slow"))
    turned = render_head(make_head(cv2.imread(str(ASTRONAUT))[..., ::-1].copy()), 60.0, 0.0)
    turned_path = folder / "turned.png"  # the astronaut's head turned 60 degrees
    cv2.imwrite(str(turned_path), cv2.cvtColor(turned.frame, cv2.COLOR_RGB2BGR))
    tiny = folder / "tiny.png"  # a webcam far smaller than the 640x360 output
    cv2.imwrite(str(tiny), cv2.resize(cv2.imread(str(ASTRONAUT)), (96, 54)))
    corner = folder / "corner.png"  # a webcam its scene item scales down to a corner
    cv2.imwrite(str(corner), cv2.resize(cv2.imread(str(ASTRONAUT)), (320, 180)))
    return {"dfm": dfm, "nan": nan, "truncated": truncated, "no_face": no_face, "slow": slow,
            "turned": turned_path, "turned_truth": turned.landmarks, "tiny": tiny,
            "corner": corner}


@pytest.fixture(scope="module")
def obs(files, tmp_path_factory):
    if missing_tools():  # only reached under CI=true: there it is a failure, not a skip
        pytest.fail(f"OBS tests need {' and '.join(missing_tools())} (obs-studio, xvfb)")
    f = files

    def source(name: str, path=ASTRONAUT, **settings) -> dict:
        return image_source(name, path, [face_swap_filter(settings={**PIXELATE, **settings})])

    sources = [
        image_source("Plain", ASTRONAUT),
        image_source("NoFacePlain", f["no_face"]),
        source("Missing", model="/nonexistent/missing.dfm"),
        source("Corrupt", model=str(f["truncated"])),
        source("Nan", model=str(f["nan"])),
        source("Reference", reference="/nonexistent/reference.png"),
        source("NoFace", f["no_face"]),
        source("HoldMissing", on_lost="hold", hold_ms=0, model="/nonexistent/missing.dfm"),
        image_source("OriginalMissing", ASTRONAUT, [face_swap_filter(
            settings={"model": "/nonexistent/missing.dfm", "label": False})]),
        source("Swapped"),
        source("Turned", f["turned"], max_yaw=20.0),
        image_source("TurnedPlain", f["turned"]),
        source("Slow", model=str(f["slow"]), threads=1),
        image_source("Scratch", ASTRONAUT),
        image_source("Tiny", f["tiny"], [face_swap_filter(settings={"label": True})]),
        image_source("Corner", f["corner"], [face_swap_filter(settings={"label": True})]),
        scene("Errors", [scene_item(n, i + 1, x=(i % 4) * 160, y=(i // 4) * 120, scale=0.3)
                         for i, n in enumerate(["Missing", "Corrupt", "Nan", "Reference",
                                                "NoFace", "HoldMissing", "OriginalMissing"])]),
        scene("Swap scene", [scene_item("Swapped", 1, scale=0.5)]),
        scene("Turned scene", [scene_item("Turned", 1, scale=0.5)]),
        scene("Slow scene", [scene_item("Slow", 1, scale=0.5)]),
        scene("Scratch scene", [scene_item("Scratch", 1, scale=0.5)]),
        scene("Tiny scene", [scene_item("Tiny", 1)]),
        scene("Corner scene", [scene_item("Corner", 1, scale=0.5)]),
        scene("References", [scene_item("Plain", 1), scene_item("NoFacePlain", 2),  # kept
                             scene_item("TurnedPlain", 3)]),
    ]
    session = ObsSession(tmp_path_factory.mktemp("obs_privacy"), sources,
                         env={"FACE_SWAP_STALL_MS": str(STALL_MS)})
    with session:
        wait_for(lambda: session.status_file.exists() and session.status(), 60, "status file")
        yield session
        session.program("Scratch scene")
    session.assert_clean_exit()



def colors(image: np.ndarray) -> int:
    return len(np.unique(image[..., :3].reshape(-1, 3), axis=0))


def is_cover(out: np.ndarray, plain: np.ndarray) -> bool:
    """The whole source is the privacy mosaic: a few block colours where the picture has
    tens of thousands, and it differs from the picture nearly everywhere."""
    height, width = out.shape[:2]
    side = privacy.cover_block_px(width, height)
    blocks = (width / side + 2) * (height / side + 2)
    differs = np.abs(out[..., :3].astype(int) - plain[..., :3].astype(int)).max(axis=2) > 0
    return colors(out) <= 4 * blocks and differs.mean() > 0.8


def eyes_box(plain: np.ndarray) -> tuple[slice, slice]:
    """The box around both eyes of the real face: what identifies a person first."""
    face = landmarks_for_image(np.ascontiguousarray(plain[..., :3]))
    eyes = face.landmarks[EYE_IMAGE_LEFT + EYE_IMAGE_RIGHT, :2]
    x0, y0 = eyes.min(axis=0).astype(int)
    x1, y1 = np.ceil(eyes.max(axis=0)).astype(int)
    return slice(y0, y1 + 1), slice(x0, x1 + 1)


def face_hidden(out: np.ndarray, plain: np.ndarray) -> bool:
    """The real eyes are not in the picture: a swap or a mosaic covers them (a swap with
    random weights changes them faintly, but changes them)."""
    zone = eyes_box(plain)
    same = (out[zone][..., :3] == plain[zone][..., :3]).all(axis=2).mean()
    return same < 0.3


@pytest.mark.parametrize("source, needle", [
    ("Missing", "missing.dfm"), ("Corrupt", "truncated.dfm"),
    ("Reference", "reference.png"), ("HoldMissing", "missing.dfm")])
def test_an_unusable_model_or_reference_covers_the_source(obs, source, needle):
    obs.program("Errors")
    status = obs.wait_filter(source, lambda f: f["problem"], 60, f"{source} error")
    assert needle in status["problem"]
    plain = obs.screenshot("Plain")
    for _ in range(3):
        assert is_cover(obs.screenshot(source), plain)
    assert obs.filter_status(source)["no_swap_views"].get("cover", 0) > 0


def test_original_passes_the_source_through_with_a_badge(obs):
    """"Show the real face" with a failed model: the source as it is, but for the small red
    "not swapping" badge in the label's corner (bottom right): a sign outside the dialog."""
    obs.program("Errors")
    obs.wait_filter("OriginalMissing", lambda f: f["problem"], 60, "OriginalMissing error")
    out, plain = obs.screenshot("OriginalMissing"), obs.screenshot("Plain")
    area = badge_area(out, plain)  # a small square in the bottom-right corner
    assert area is not None, "no badge"
    assert area[1].stop - area[1].start > 0.03 * min(plain.shape[:2])  # about the label's size
    badge = out[area][..., :3].astype(int)
    red = (badge[..., 0] > 150) & (badge[..., 1] < 60) & (badge[..., 2] < 60)
    white = badge.min(axis=2) > 200
    assert red.mean() > 0.5 and white.mean() > 0.05  # red, with a white cross


def test_a_model_producing_nan_is_an_error_and_covers(obs):
    obs.program("Errors")
    # met while the model is warmed up on the first real frame (a failed load), or on a later
    # frame (a frame error), as the first frame and the load race: the same problem either way
    status = obs.wait_filter("Nan", lambda f: "produced NaN values" in f["problem"], 60,
                             "Nan's error as a problem")
    assert "model nan_224 produced NaN values" in status["problem"]
    assert status["errors"] > 0 or status["state"] == "error", status
    plain = obs.screenshot("Plain")
    for _ in range(3):
        assert is_cover(obs.screenshot("Nan"), plain)


def test_no_face_in_view_covers_the_source(obs):
    obs.program("Errors")
    obs.wait_filter("NoFace", lambda f: f["swapping"] and f["frames_out"] > 3, 60,
                    "NoFace running")
    plain = obs.screenshot("NoFacePlain")
    wait_for(lambda: is_cover(obs.screenshot("NoFace"), plain), 20, "NoFace covered")


def test_a_loading_model_covers_until_the_swap_arrives(obs, files):
    """A new filter's first model load (the slow model on 2 threads: a session of its own,
    seconds to load) never shows the face."""
    obs.program("Scratch scene")
    plain = obs.screenshot("Plain")
    obs.client.create_source_filter("Scratch", "Face Swap", "face_swap",
                                    {**PIXELATE, "model": str(files["slow"]), "threads": 2})
    try:
        shots, loading = 0, 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            taken = time.time()
            out = obs.screenshot("Scratch")
            shots += 1
            assert face_hidden(out, plain), f"the real face showed (screenshot {shots})"
            # the status written after the screenshot: still loading then, so loading when
            # the screenshot was taken
            status = wait_for(lambda t=taken: (s := obs.filter_status("Scratch")) is not None
                              and obs.status()["time"] > t and s, 10, "a newer status")
            if not status["model"]:
                loading += 1
                assert is_cover(out, plain), f"screenshot {shots} while loading"
            if status["swapping"] and status["frames_out"] > 2:
                break
        assert loading >= 1, "no screenshot was taken while the model loaded"
        assert obs.filter_status("Scratch")["swapping"]
    finally:
        obs.client.remove_source_filter("Scratch", "Face Swap")


def test_a_stalled_engine_covers_the_source(obs):
    """Frames of the slow model run longer than the (lowered) stall limit: while one runs
    the filter reports a stall and covers; between them the swap shows. Never the face."""
    obs.program("Slow scene")
    obs.wait_filter("Slow", lambda f: f["frames_out"] > 2, 180, "Slow's first swaps")
    plain = obs.screenshot("Plain")
    stalls = 0
    for _ in range(40):
        status = obs.filter_status("Slow")
        stalls += status["problem"].startswith("engine stalled")
        assert face_hidden(obs.screenshot("Slow"), plain)
        time.sleep(0.05)
    assert stalls > 0, "no stall reported"
    assert obs.filter_status("Slow")["no_swap_views"].get("cover", 0) > 0


def test_a_reenabled_filter_never_shows_the_face(obs):
    """Re-enabled after a pause, the filter has no swap of a new frame yet: it covers."""
    obs.program("Swap scene")
    obs.wait_filter("Swapped", lambda f: f["swapping"] and f["frames_out"] > 3, 60,
                    "Swapped swapping")
    plain = obs.screenshot("Plain")
    before = obs.filter_status("Swapped")["no_swap_views"].get("cover", 0)
    for _ in range(3):
        obs.client.set_source_filter_enabled("Swapped", "Face Swap", False)
        time.sleep(0.8)  # longer than the resume gap
        obs.client.set_source_filter_enabled("Swapped", "Face Swap", True)
        for _ in range(10):
            assert face_hidden(obs.screenshot("Swapped"), plain)
    assert obs.filter_status("Swapped")["no_swap_views"].get("cover", 0) > before


def test_a_head_past_the_pose_limit_is_pixelated(obs, files):
    """A head turned 60 degrees with a turn limit of 20: the engine tracks it but does not
    swap it, and pixelates the face where it is (the rest of the picture as it is)."""
    obs.program("Turned scene")
    status = obs.wait_filter("Turned", lambda f: f["swapping"] and f["frames_out"] > 3, 60,
                             "Turned running")
    assert status["problem"] == ""
    plain = obs.screenshot("TurnedPlain")
    # the features that identify: eyes, nose and mouth as the turned head shows them
    features = points5(files["turned_truth"])
    x0, y0 = np.floor(features.min(axis=0)).astype(int)
    x1, y1 = np.ceil(features.max(axis=0)).astype(int)

    def pixelated():
        out = obs.screenshot("Turned")
        face = out[y0:y1, x0:x1, :3]
        corner = (slice(0, 40), slice(0, 40))  # background far from the face: untouched
        return (colors(face) <= (privacy.FACE_BLOCKS + 3) ** 2
                and np.array_equal(out[corner], plain[corner]))
    wait_for(pixelated, 20, "the turned face pixelated, the rest untouched")


def test_a_new_filter_starts_in_privacy_mode(obs):
    """Added with no settings (as the Filters dialog adds it), a filter pixelates where it
    cannot swap; a filter saved before this default keeps "original" (tests/test_obs_script
    covers the migration on obs_data)."""
    obs.program("Scratch scene")
    obs.client.create_source_filter("Scratch", "Face Swap", "face_swap", {})
    try:
        status = obs.wait_filter("Scratch", lambda f: f["settings"], 30, "the new filter")
        assert status["on_lost"] == "pixelate" and status["settings"]["identity_guard"]
        saved = obs.client.get_source_filter("Scratch", "Face Swap").filter_settings
        assert saved.get("settings_version") == 2 and "on_lost" not in saved
    finally:
        obs.client.remove_source_filter("Scratch", "Face Swap")


def test_the_toggle_hotkey_in_privacy_mode_covers_never_shows_the_face(obs):
    obs.program("Swap scene")
    obs.wait_filter("Swapped", lambda f: f["swapping"] and f["frames_out"] > 3, 60,
                    "Swapped swapping")
    plain = obs.screenshot("Plain")
    obs.client.trigger_hot_key_by_name("face_swap.toggle")
    try:
        obs.wait_filter("Swapped", lambda f: f["covered"], 10, "covered by the toggle")
        assert obs.client.get_source_filter("Swapped", "Face Swap").filter_enabled
        for _ in range(5):
            assert is_cover(obs.screenshot("Swapped"), plain)
    finally:
        obs.client.trigger_hot_key_by_name("face_swap.toggle")
    obs.wait_filter("Swapped", lambda f: not f["covered"], 10, "uncovered by the toggle")
    for _ in range(5):
        assert face_hidden(obs.screenshot("Swapped"), plain)


def test_privacy_now_covers_every_source_even_a_filter_switched_off(obs):
    obs.program("Swap scene")
    plain = obs.screenshot("Plain")
    obs.client.set_source_filter_enabled("Swapped", "Face Swap", False)
    obs.client.trigger_hot_key_by_name("face_swap.privacy_now")
    try:
        for name in ("Swapped", "OriginalMissing", "Turned"):
            obs.wait_filter(name, lambda f: f["covered"], 10, f"{name} covered")
        assert obs.client.get_source_filter("Swapped", "Face Swap").filter_enabled
        for name in ("Swapped", "OriginalMissing"):  # "original" too: it is a panic key
            assert is_cover(obs.screenshot(name), plain)
    finally:
        obs.client.trigger_hot_key_by_name("face_swap.privacy_now")
    obs.wait_filter("Swapped", lambda f: not f["covered"], 10, "uncovered")
    assert face_hidden(obs.screenshot("Swapped"), plain)


def test_a_small_source_gets_a_label_sized_for_the_output(obs):
    """A 96x54 source in the 640x360 output: the engine draws the label at 20 % of the
    source (half as tall as on a full-output source: core.label.size_for_output), not 6."""
    obs.program("Tiny scene")
    status = obs.wait_filter("Tiny", lambda f: f["frames_out"] > 3 and f["size"] == [96, 54],
                             30, "Tiny swapping")
    assert status["canvas_size"] == [640, 360] and status["settings"]["label_size"] == 6.0
    obs.wait_filter("Tiny", lambda f: f["label_size_drawn"] == pytest.approx(20.0), 10,
                    "the label sized for the output")


def test_a_source_scaled_down_by_its_scene_item_gets_a_label_sized_for_where_it_is_seen(obs):
    """A 320x180 source its scene item shows at half size (160x90 of the 640x360 canvas):
    the label is sized for those 90 rows (12 %, a 22 px box), not for the source's 180 (6 %,
    which would be 5 canvas pixels of text)."""
    obs.program("Corner scene")
    status = obs.wait_filter("Corner", lambda f: f["frames_out"] > 3
                             and f["label_size_drawn"] == pytest.approx(12.0), 30,
                             "the label sized for the scaled item")
    assert status["shown_scale"] == pytest.approx(0.5) and status["size"] == [320, 180]

"""The OBS glue's parts that run without an OBS process: real libobs (loaded by ctypes),
the settings mapping on real obs_data_t, the venv bootstrap and install/obs_setup.sh."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from doubles import write_doubles

from core import registry
from core.errors import FaceSwapError
from core.settings import RANGES, SwapSettings, field_types
from core.worker import Result

ROOT = Path(__file__).resolve().parent.parent
OBSPYTHON_DIR = Path("/usr/lib/x86_64-linux-gnu/obs-scripting")
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

try:
    from obs_script import libobs
except OSError as exc:  # no libobs on this machine
    if CI:
        raise
    pytest.skip(f"libobs not installed ({exc})", allow_module_level=True)

from obs_script import env, obsdata, registration  # noqa: E402
from obs_script.catalog import ModelCatalog  # noqa: E402
from obs_script.health import EngineHealth, problem_of  # noqa: E402
from obs_script.hotkeys import step_model  # noqa: E402
from obs_script.preparer import Preparer  # noqa: E402
from obs_script.properties import (  # noqa: E402
    CONTROLS,
    ENROL_CONTROLS,
    StatusPush,
    status_line,
    visibility,
)
from obs_script.render import FramePool  # noqa: E402
from obs_script.scenes import model_problem, parse_mapping  # noqa: E402
from obs_script.status import StatusWriter  # noqa: E402

pytestmark = pytest.mark.libobs

OBS_HEADERS = Path("/usr/include/obs/obs.h")


def test_source_info_prefix_layout():
    info = libobs.SourceInfo
    assert ctypes.sizeof(info) == 216
    assert info.get_name.offset == 16 and info.get_defaults.offset == 56
    assert info.video_render.offset == 120 and info.filter_video.offset == 128
    assert info.filter_remove.offset == 208


def test_version_is_in_the_verified_range():
    major, minor, _ = libobs.version()
    out = subprocess.run(["obs", "--version"], capture_output=True, text=True, timeout=30)
    assert f"{major}.{minor}." in out.stdout
    assert libobs.version_problem() == ""


@pytest.mark.skipif(not (OBSPYTHON_DIR / "obspython.py").exists(), reason="no obspython")
def test_constants_match_obspython():
    names = [n for n in dir(libobs) if n.isupper() and n.startswith(("OBS_", "GS_", "LOG_"))]
    code = ("import json, sys, obspython as o; names = sys.argv[1:]; "
            "print(json.dumps({n: getattr(o, n) for n in names if hasattr(o, n)}))")
    out = subprocess.run([f"python{sys.version_info[0]}.{sys.version_info[1]}", "-c", code,
                          *names], env=dict(os.environ, PYTHONPATH=str(OBSPYTHON_DIR)),
                         capture_output=True, text=True, timeout=60, check=True)
    theirs = json.loads(out.stdout)
    assert len(theirs) >= len(names) - 1  # every constant but at most one exists there
    assert {n: getattr(libobs, n) for n in theirs} == theirs


def test_settings_round_trip_through_obs_data():
    data = libobs.obs_data_create()
    try:
        obsdata.write_defaults(data)
        # no settings: persona on the CPU, in privacy mode
        assert obsdata.read(data) == SwapSettings(on_lost="pixelate")
        libobs.obs_data_set_string(data, b"model", b"my.dfm")
        assert obsdata.read(data).model == "my.dfm"
        libobs.obs_data_set_string(data, b"faces", b"everyone")
        with pytest.raises(ValueError, match="faces"):
            obsdata.read(data)
    finally:
        libobs.obs_data_release(data)


def _filter_data(stored: dict) -> int:
    """A filter's obs_data as OBS hands it to create: the defaults, then what was saved."""
    data = libobs.obs_data_create()
    obsdata.write_defaults(data)
    for key, value in stored.items():
        if isinstance(value, str):
            libobs.obs_data_set_string(data, key.encode(), value.encode())
        else:
            libobs.obs_data_set_int(data, key.encode(), value)
    return data


@pytest.mark.parametrize(("stored", "on_lost"), [
    ({}, "pixelate"),  # a new filter: privacy mode
    ({"model": "my.dfm"}, "original"),  # saved by an earlier release: "original" was default
    ({"model": "my.dfm", "on_lost": "hold"}, "hold"),  # chosen: kept
    ({"model": "my.dfm", "settings_version": 2}, "pixelate"),  # saved since: the new default
])
def test_new_filters_start_in_privacy_mode_saved_ones_keep_theirs(stored, on_lost):
    data = _filter_data(stored)
    try:
        obsdata.migrate(data)
        assert obsdata.read(data).on_lost == on_lost
        assert libobs.obs_data_get_int(data, obsdata.SETTINGS_VERSION_KEY) == 2
        obsdata.migrate(data)  # once only: a saved "original" stays what it was
        assert obsdata.read(data).on_lost == on_lost
    finally:
        libobs.obs_data_release(data)


def test_scene_mapping_lines():
    lines = ["Gaming = dfm_one", "  # comment", "", "Just Chatting=persona:x", "a = b = c",
             "no separator"]
    mapping, errors = parse_mapping(lines)
    assert mapping == {"Gaming": "dfm_one", "Just Chatting": "persona:x", "a = b": "c"}
    assert errors == ["ignored 'no separator': expected 'Scene name = model'"]


def test_a_mapped_model_is_named_unusable_or_unknown_as_it_is(tmp_path):
    broken = tmp_path / "broken.dfm"
    entries = [registry.ModelEntry("persona:default", "persona"),
               registry.ModelEntry("broken", "unusable", broken, reason="not an ONNX file"),
               registry.ModelEntry("arcface", "arcface", tmp_path / "arcface.onnx")]
    assert model_problem("persona:default", entries) == ""
    assert model_problem("default", entries) == ""
    assert model_problem("broken", entries) == "model 'broken' is unusable: not an ONNX file"
    assert model_problem(str(broken), entries).endswith("is unusable: not an ONNX file")
    assert "is not a swap model (ArcFace" in model_problem("arcface", entries)
    assert model_problem("typo", entries) == "unknown model 'typo'"
    assert model_problem("typo", None) == ""  # not scanned yet: cannot be told


def test_step_model_wraps_both_ways():
    names = ["a", "b", "c"]
    assert step_model(names, "c", 1) == "a"
    assert step_model(names, "a", -1) == "c"
    assert step_model(names, "custom.dfm", 1) == "a"
    with pytest.raises(ValueError):
        step_model([], "a", 1)


def test_status_line_names_provider_and_problems():
    status = {"state": "ready", "model": "double_224", "provider": "CPUExecutionProvider",
              "requested_model": "double_224", "fps": 29.5, "dropped": 3, "last_error": "",
              "device_note": "", "problem": "",
              "latency_ms": {"p50": 40.0, "p95": 52.0}, "render_ms": {"p50": 1.1, "p95": 1.9}}
    line, kind = status_line(dict(status, threads=2))
    assert line.startswith("Swapping double_224 on CPU, 2 threads | 30 fps") and kind == 0
    assert "delay typical 40 / worst 52 ms" in line and "p50" not in line
    line, kind = status_line(dict(status, problem="model file not found: x.dfm"))
    assert line.startswith("Not swapping (the source shows unswapped): model file not found")
    assert kind == libobs.OBS_TEXT_INFO_ERROR
    line, _ = status_line(dict(status, problem="model file not found: x.dfm", on_lost="hold"))
    assert line.startswith("Not swapping (the source is pixelated)")
    line, _ = status_line(dict(status, state="loading", model="", on_lost="pixelate"))
    assert line == "Loading double_224... (the source is pixelated meanwhile)"
    line, kind = status_line(dict(status, covered=True, on_lost="pixelate"))
    assert line.startswith("Privacy view: the source is pixelated (a hotkey")
    assert kind == libobs.OBS_TEXT_INFO_WARNING


def test_the_panel_is_rebuilt_only_for_a_new_status_never_while_edited():
    push = StatusPush()
    assert push.due("Swapping a | 30 fps", 0, now=0.0)
    assert not push.due("Swapping a | 30 fps", 0, now=10.0)  # the same line: never
    assert not push.due("Swapping a | 29 fps", 0, now=20.0)  # figures alone: never
    assert not push.due("Not swapping: x", 2, now=20.5, edited_at=19.0)  # being edited
    assert push.due("Not swapping: x", 2, now=22.5, edited_at=19.0)  # then it follows
    assert not push.due("Swapping a | 30 fps", 0, now=23.0)  # a change, within a second
    assert push.due("Swapping a | 30 fps", 0, now=23.6)
    assert push.pushes == 3


def test_panel_visibility_rules():
    shown = visibility("persona:default", "largest", "original", True)
    assert shown == {"group_dfm": False, "face_id": False, "morph": False,
                     "keep_eyes": True, "keep_mouth": True, "hold_ms": False,
                     "identity_guard": False, "label_corner": True, "label_size": True,
                     **dict.fromkeys(ENROL_CONTROLS, False)}
    assert all(visibility("persona:default", "enrolled", "original", True)[name]
               for name in ENROL_CONTROLS)  # who is enrolled: with "Only enrolled people"
    shown = visibility("my.dfm", "id", "hold", False)
    assert shown["face_id"] and shown["hold_ms"] and not shown["keep_eyes"]
    assert shown["identity_guard"]  # a privacy mode: the guard applies
    assert shown["group_dfm"]  # the .dfm crop options: for .dfm models only
    assert not shown["label_corner"] and not shown["label_size"]


def test_panel_ranges_span_the_engine_ranges():
    """Every setting has its control, and every numeric control's slider is the range
    SwapSettings accepts (read from core.settings.RANGES, the one place it is written)."""
    # models_dir is script-wide; people is written by enrolling (obs_script.enrolment)
    assert set(field_types()) - {"models_dir", "people"} <= set(CONTROLS)
    numbers = {c.name for c in CONTROLS.values() if c.kind in ("int", "float")}
    assert numbers == {name for name, _, _ in RANGES}
    for name, low, high in RANGES:
        assert CONTROLS[name].bounds == (low, high), name
        assert CONTROLS[name].kind == ("int" if isinstance(low, int) else "float"), name


def test_every_slider_label_says_what_its_values_mean():
    """OBS 29-32 draw no help icon beside a slider (its tooltip sits on the number box
    only), so the label itself carries the hint: what 0 / 1 / negative mean."""
    sliders = [c for c in CONTROLS.values() if c.kind in ("int", "float")]
    assert len(sliders) > 20
    sentence = {"detect_interval"}  # "Look for new faces every [30 frames]" reads whole
    for control in sliders:
        if control.name not in sentence:
            assert control.label.endswith(")") and " (" in control.label, control.label
        assert len(control.label) <= 40, control.label  # the panel keeps its width


def _fake_venv(tmp_path: Path, version: str) -> Path:
    venv = tmp_path / "venv"
    major, minor = version.split(".")[:2]
    (venv / "lib" / f"python{major}.{minor}" / "site-packages").mkdir(parents=True)
    (venv / "Lib" / "site-packages").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {version}\n")
    return venv


def test_env_puts_the_venv_first(tmp_path, monkeypatch):
    running = f"{sys.version_info[0]}.{sys.version_info[1]}.9"
    venv = _fake_venv(tmp_path, running)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv(env.ENV_VAR, str(venv))
    problem = env.activate(ROOT)
    assert sys.path[0] == str(env.site_packages(venv, sys.version_info[:2]))
    # this process imported numpy from the real .venv, not from the fake one: that is said
    assert "was imported before the face swap environment" in problem


def test_env_refuses_another_python(tmp_path, monkeypatch):
    venv = _fake_venv(tmp_path, f"{sys.version_info[0]}.{sys.version_info[1] + 1}.0")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv(env.ENV_VAR, str(venv))
    problem = env.activate(ROOT)
    assert "was made with Python" in problem and "OBS runs Python" in problem
    monkeypatch.setenv(env.ENV_VAR, str(tmp_path / "nothing"))
    assert "run install/setup.sh" in env.activate(ROOT)


@pytest.mark.skipif(shutil.which("obs") is None and not CI, reason="OBS not installed")
def test_obs_setup_adds_the_script_once_with_a_backup(tmp_path):
    config = tmp_path / ".config" / "obs-studio"
    collection = config / "basic" / "scenes" / "Mine.json"
    collection.parent.mkdir(parents=True)
    (config / "global.ini").write_text("[Basic]\nSceneCollectionFile=Mine\n")
    collection.write_text(json.dumps({"name": "Mine", "sources": []}))
    run_env = dict(os.environ, HOME=str(tmp_path))
    run_env.pop("XDG_CONFIG_HOME", None)
    cmd = [str(ROOT / "install" / "obs_setup.sh"), "--add-script"]
    first = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=300)
    assert "already loads" in second.stdout
    scripts = json.loads(collection.read_text())["modules"]["scripts-tool"]
    assert scripts == [{"path": str(ROOT / "obs_script" / "face_swap.py"), "settings": {}}]
    assert len(list(collection.parent.glob("Mine.json.bak-*"))) == 1
    (config / "global.ini").unlink()
    third = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=300)
    assert third.returncode != 0 and "start OBS once" in third.stderr


def test_status_line_counts_render_errors():
    status = {"state": "ready", "model": "m", "provider": "CPUExecutionProvider",
              "requested_model": "m", "fps": 30.0, "dropped": 0, "last_error": "",
              "device_note": "", "problem": "", "callback_errors": {"video_render": 3},
              "latency_ms": {"p50": 40.0, "p95": 52.0}, "render_ms": {"p50": 1.1, "p95": 1.9}}
    line, kind = status_line(status)
    assert "render errors: video_render 3" in line and kind == libobs.OBS_TEXT_INFO_WARNING


class _Failing:
    """A filter instance whose per-frame callbacks raise (what a bug in them does)."""

    def render(self) -> None:
        raise RuntimeError("render bug")

    def filter_video(self, frame) -> None:
        raise RuntimeError("filter_video bug")


def test_render_errors_are_counted_per_callback():
    key = 10**9  # far from the keys libobs-created entries get
    registration.STATE.entries[key] = registration.Entry(0, _Failing())
    try:
        for _ in range(3):
            registration._video_render(key, None)
        assert registration._filter_video(key, 1234) == 1234  # the frame always goes on
        assert registration.callback_errors(key) == {"video_render": 3, "filter_video": 1}
    finally:
        del registration.STATE.entries[key]
    assert registration.callback_errors(key) == {}


def test_preparer_survives_unexpected_errors():
    calls = []

    def build(settings: SwapSettings) -> None:
        calls.append(settings.model)
        if settings.model == "crash":
            raise RuntimeError("not a FaceSwapError")
        if settings.model == "bad":
            raise FaceSwapError("model file not found: bad")

    preparer = Preparer(build)
    for model in ("crash", "bad", "good"):
        preparer.prepare(SwapSettings(model=model))
    preparer.stop(10)  # handles what was asked before it, then ends
    assert not preparer.alive
    # the thread went on after the crash: the later requests were built
    assert calls == ["crash", "bad", "good"]
    assert [s.model for s in preparer.prepared] == ["good"]
    assert preparer.errors == {"crash": "RuntimeError: not a FaceSwapError",
                               "bad": "model file not found: bad"}


def test_preparer_builds_each_distinct_session_key():
    """Filters with their own threads / reference need their own sessions prepared."""
    built = []
    preparer = Preparer(built.append)
    base = SwapSettings(model="persona:default")
    for settings in (base, base.with_changes(threads=2), base,
                     base.with_changes(reference="/x.png")):
        preparer.prepare(settings)
    preparer.stop(10)
    assert not preparer.alive
    assert [(s.threads, s.reference) for s in built] == [(0, ""), (2, ""), (0, "/x.png")]


def test_status_writer_logs_a_repeating_error_once(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the status folder should be")
    writer = StatusWriter(lambda: {"filters": []}, blocker / "status.json")
    try:
        deadline = time.monotonic() + 10
        while writer.failures < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        writer.stop()
    assert writer.failures >= 3
    assert len(writer.logged) == 1 and "status poll failed" in next(iter(writer.logged))


def test_frame_pool_reuses_only_unreferenced_buffers():
    pool = FramePool(size=3)
    shape = (4, 6, 4)
    held = [pool.take(shape) for _ in range(3)]  # all three in use (mailbox, worker, ...)
    assert len({id(a) for a in held}) == 3
    extra = pool.take(shape)  # none free: a new, unpooled frame, never a buffer in use
    assert all(extra is not a for a in held)
    view = held[1][..., :3]  # a view keeps its base in use
    del held[1]
    assert all(pool.take(shape) is not view.base for _ in range(3))
    del view
    again = pool.take(shape)
    assert again is pool._buffers[1] and pool.allocations == 7  # 3 + 1 + 3 while in use
    other = pool.take((2, 2, 4))  # a new size drops the old buffers
    assert other.shape == (2, 2, 4) and all(b.shape == (2, 2, 4) for b in pool._buffers)


def test_frame_pool_frames_are_safe_with_the_swap_service():
    """Pooled frames through a real SwapService: no frame the engine holds is overwritten."""
    from core.service import SwapService

    service = SwapService(SwapSettings(label=False), fmt="rgba")
    pool = FramePool()
    try:
        for seq in range(1, 121):  # the worker numbers inputs 1, 2, ...
            frame = pool.take((64, 64, 4))
            frame[...] = seq  # a buffer the engine still held would change under it here
            service.submit(frame)
            del frame
            result = service.latest_result()
            if result is not None:  # no face: the output shows its input's pixels
                assert np.all(result.frame == result.seq % 256), result.seq
            time.sleep(0.002)
        result = service.wait_result(119, timeout=30)
        assert result is not None and np.all(result.frame == 120)
        assert pool.allocations < 120 / 4  # the pool does recycle (measured 3-4)
    finally:
        service.stop(timeout=5.0)


def test_model_catalog_scans_in_the_background(tmp_path):
    release = threading.Event()

    def slow_scan() -> list:
        release.wait(10)
        return ["entry"]

    catalog = ModelCatalog(slow_scan)
    done = threading.Event()
    catalog.refresh(then=done.set)
    assert catalog.entries() is None  # the caller never waits for the scan
    release.set()
    assert done.wait(10) and catalog.entries() == ["entry"]
    assert catalog.wait(10) and catalog.scans == 1


def test_model_catalog_names_the_swap_models_only(tmp_path):
    """What the hotkeys step through and the description lists: swappers, not helpers or
    unusable files."""
    write_doubles(tmp_path, resolution=64, broken=True)
    catalog = ModelCatalog(lambda: registry.scan([tmp_path]))
    assert catalog.swapper_names() is None  # not scanned yet
    catalog.refresh()
    assert catalog.wait(30)
    names = catalog.swapper_names()
    assert names[0] == "persona:default"
    assert {"double_64", "double_amp_64", "inswapper_128"} <= set(names)
    assert not {"w600k_r50", "truncated", "not_onnx", "foreign"} & set(names)


def test_model_catalog_keeps_the_last_list_when_a_scan_fails():
    results: list = [["a"], OSError("folder unreadable")]

    def scan() -> list:
        item = results.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    catalog = ModelCatalog(scan)
    catalog.refresh()
    assert catalog.wait(10) and catalog.entries() == ["a"]
    catalog.refresh()
    assert catalog.wait(10) and catalog.entries() == ["a"]
    assert catalog.error == "OSError: folder unreadable"


def test_find_library_names_every_place_tried():
    with pytest.raises(OSError, match=r"^thing not found; tried libnope\.so\.9: .*; "
                                      r"libc\.so\.6: no obs_nothing$"):
        libobs.find_library(["libnope.so.9", "libc.so.6"], "obs_nothing", "thing")
    found = libobs.find_library(["libnope.so.9", libobs.lib._name], "obs_get_version", "libobs")
    assert found._name == libobs.lib._name


def _status(**changes) -> dict:
    """An engine status as SwapService.status() words it: ready, a model loaded, well."""
    return {"state": "ready", "model": "persona:default", "model_file": "", "last_error": "",
            "busy_ms": 0.0, "process_ms": {"p50": 20.0, "p95": 30.0}, **changes}


def test_engine_health_names_the_first_problem_and_retries_a_failed_frame(tmp_path):
    """The filter's reasons not to swap, in the order poll() checks them, and the one a
    second retry that only a failed frame gets (obs_script.health)."""
    failed = Result(np.zeros((2, 2, 3), np.uint8), 7, 0.0, 0.0, ok=False)
    fine = Result(np.zeros((2, 2, 3), np.uint8), 8, 0.0, 0.0, ok=True)
    assert problem_of(_status(), fine, "") == ("", False)
    assert problem_of(_status(state="error", last_error="x"), failed, "bad setting: y") == \
        ("bad setting: y", False)
    assert problem_of(_status(state="error", last_error="model gone"), failed, "") == \
        ("model gone", False)
    gone = str(tmp_path / "removed.dfm")
    assert problem_of(_status(model_file=gone), failed, "")[0] == \
        f"model file removed while running: {gone}"
    assert problem_of(_status(last_error="NaN out"), failed, "") == ("NaN out", True)
    assert problem_of(_status(busy_ms=2900.0), fine, "") == ("", False)  # under 3 s
    assert problem_of(_status(busy_ms=3100.0), fine, "")[0] == \
        "engine stalled: one frame has run for 3.1 s"

    health = EngineHealth()
    assert not health.update(_status(state="error", model="", last_error="no model"), None, "")
    assert health.problem == "no model" and not health.has_pipeline
    assert health.blocks("render") and health.blocks("async")  # not a frame: no retry
    assert not health.update(_status(last_error="NaN out"), failed, "")
    assert health.frame_failed
    assert not health.blocks("render")  # a failed frame: one goes through ...
    assert health.blocks("render")  # ... then none for RETRY_S
    assert not health.blocks("async")  # each path has its own second
    assert health.update(_status(), fine, "")  # cleared
    assert not health.blocks("render") and health.has_pipeline

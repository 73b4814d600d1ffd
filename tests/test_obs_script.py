"""The OBS glue's parts that run without an OBS process: real libobs (loaded by ctypes),
the settings mapping on real obs_data_t, the venv bootstrap and install/obs_setup.sh."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import SwapSettings

ROOT = Path(__file__).resolve().parent.parent
OBSPYTHON_DIR = Path("/usr/lib/x86_64-linux-gnu/obs-scripting")
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

try:
    from obs_script import libobs
except OSError as exc:  # no libobs on this machine
    if CI:
        raise
    pytest.skip(f"libobs not installed ({exc})", allow_module_level=True)

from obs_script import env, obsdata  # noqa: E402
from obs_script.properties import status_line  # noqa: E402
from obs_script.scenes import parse_mapping, step_model  # noqa: E402


def test_source_info_prefix_layout():
    info = libobs.SourceInfo
    assert ctypes.sizeof(info) == 136
    assert info.get_name.offset == 16 and info.get_defaults.offset == 56
    assert info.video_render.offset == 120 and info.filter_video.offset == 128


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
        assert obsdata.read(data) == SwapSettings()  # no settings: persona on the CPU
        libobs.obs_data_set_string(data, b"model", b"my.dfm")
        assert obsdata.read(data).model == "my.dfm"
        libobs.obs_data_set_string(data, b"faces", b"everyone")
        with pytest.raises(ValueError, match="faces"):
            obsdata.read(data)
    finally:
        libobs.obs_data_release(data)


def test_scene_mapping_lines():
    lines = ["Gaming = dfm_one", "  # comment", "", "Just Chatting=persona:x", "a = b = c",
             "no separator"]
    mapping, errors = parse_mapping(lines)
    assert mapping == {"Gaming": "dfm_one", "Just Chatting": "persona:x", "a = b": "c"}
    assert errors == ["ignored 'no separator': expected 'Scene name = model'"]


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
    line, kind = status_line(status)
    assert "CPUExecutionProvider" in line and "29.5 fps" in line and kind == 0
    line, kind = status_line(dict(status, problem="model file not found: x.dfm"))
    assert line.startswith("Passing through") and kind == libobs.OBS_TEXT_INFO_ERROR


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

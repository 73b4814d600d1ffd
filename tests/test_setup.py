"""install/setup.py's choices per platform, with the platform faked: which onnxruntime build
each machine gets, where the venv's Python is, and what OBS must be told."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from core import ROOT
from obs_script import env

_spec = importlib.util.spec_from_file_location("setup_script", ROOT / "install" / "setup.py")
setup = sys.modules["setup_script"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(setup)

PY311, PY310 = (3, 11), (3, 10)
CASES = [
    # system, NVIDIA driver, forced, python -> build
    ("Linux", None, None, PY311, "cpu"),
    ("Linux", "580.65", None, PY311, "gpu"),
    ("Linux", "550.120", None, PY311, "gpu-cuda12"),  # driver before CUDA 13
    ("Linux", "580.65", None, PY310, "gpu-cuda12"),  # Python 3.10 stops at the CUDA 12 build
    ("Linux", "580.65", "cpu", PY311, "cpu"),
    ("Linux", None, "gpu", PY311, "gpu"),
    ("Windows", None, None, PY311, "directml"),  # any DirectX 12 GPU
    ("Windows", "581.15", None, PY311, "gpu"),  # NVIDIA: CUDA
    ("Windows", "581.15", "directml", PY311, "directml"),
    ("Windows", None, "cpu", PY311, "cpu"),
    ("Darwin", None, None, PY311, "cpu"),  # stock onnxruntime: CPU and CoreML
]


@pytest.mark.parametrize(("system", "driver", "forced", "python", "build"), CASES)
def test_the_build_each_machine_gets(system, driver, forced, python, build):
    choice = setup.choose_build(system, driver, forced, python)
    assert choice.build == build and choice.reason
    assert choice.build in setup.BUILDS


@pytest.mark.parametrize(("system", "forced"), [("Darwin", "gpu"), ("Linux", "directml"),
                                                ("Darwin", "directml")])
def test_builds_a_system_cannot_run_are_refused(system, forced):
    with pytest.raises(SystemExit, match="setup: "):
        setup.choose_build(system, None, forced, PY311)


def test_builds_are_extras_of_the_project():
    pyproject = (ROOT / "pyproject.toml").read_text()
    for build in setup.BUILDS:
        assert f"\n{build} = [" in pyproject


def test_the_venv_python_per_system(tmp_path):
    assert setup.venv_python(tmp_path, "Windows") == tmp_path / "Scripts" / "python.exe"
    assert setup.venv_python(tmp_path, "Linux") == tmp_path / "bin" / "python"
    assert setup.venv_python(tmp_path, "Darwin") == tmp_path / "bin" / "python"


def test_obs_python_setting_is_said_for_every_system():
    assert set(env.PYTHON_SETTING) == set(env.SETUP_COMMAND) == {"Windows", "Darwin", "Linux"}
    assert env.PYTHON_SETTING["Linux"].startswith("nothing")  # OBS embeds the system Python
    assert "Python.framework" in env.PYTHON_SETTING["Darwin"]
    # the script's startup problem says how to rebuild, per system, with the Python OBS runs
    assert "`py -3.12 install\\setup.py`" in env.setup_hint("Windows", (3, 12))
    assert "Python Settings (the folder" in env.setup_hint("Windows", (3, 12))
    assert "`python3.11 install/setup.py`" in env.setup_hint("Darwin", (3, 11))
    assert env.setup_hint("Linux", (3, 11)) == "run install/setup.sh"


def test_the_stamp_changes_with_the_dependencies_and_the_build():
    assert setup.stamp_text("cpu") != setup.stamp_text("gpu")
    assert setup.stamp_text("cpu").split()[1] == setup.stamp_text("gpu").split()[1]

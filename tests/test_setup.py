"""install/setup.py's choices per platform, with the platform faked: which onnxruntime build
each machine gets, where the venv's Python is, and what OBS must be told."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from core import ROOT
from obs_script import env

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

_spec = importlib.util.spec_from_file_location("setup_script", ROOT / "install" / "setup.py")
setup = sys.modules["setup_script"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(setup)

lock = setup.lock
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
    assert choice.build in lock.BUILDS


@pytest.mark.parametrize(("system", "forced"), [("Darwin", "gpu"), ("Linux", "directml"),
                                                ("Darwin", "directml")])
def test_builds_a_system_cannot_run_are_refused(system, forced):
    with pytest.raises(SystemExit, match="setup: "):
        setup.choose_build(system, None, forced, PY311)


def test_builds_are_extras_of_the_project():
    pyproject = (ROOT / "pyproject.toml").read_text()
    for build in lock.BUILDS:
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


def test_the_stamp_changes_with_the_build_and_its_lock():
    """Each build has its own lock, so the stamp's digest differs too: switching builds or
    pulling a new lock installs again."""
    assert setup.stamp_text("cpu").split()[0] == "cpu"
    assert setup.stamp_text("cpu").split()[1] != setup.stamp_text("gpu").split()[1]


@pytest.mark.parametrize("build", lock.BUILDS)
def test_each_lock_pins_every_package_with_hashes(build):
    """Every requirement line of a lock is an exact pin followed by at least one hash, so
    `pip install --require-hashes` installs nothing that was not tested."""
    text = lock.lock_path(build).read_text()
    entries = [e for e in text.replace("\\\n", " ").splitlines()
               if e.strip() and not e.lstrip().startswith("#")]
    assert len(entries) == len(lock.pins(lock.lock_path(build))) > 20
    for entry in entries:
        assert "==" in entry and "--hash=sha256:" in entry, entry


@pytest.mark.parametrize("build", lock.BUILDS)
def test_each_lock_satisfies_the_project_ranges(build):
    """The locks hold versions pyproject.toml's ranges allow, for every Python the project
    supports: a lock refreshed without the ranges (or ranges edited without a refresh) fails."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]
              + project["optional-dependencies"][build] + project["optional-dependencies"]["test"]]
    pinned = lock.pins(lock.lock_path(build))
    for python in lock.PYTHONS:
        env = {"python_version": python, "python_full_version": f"{python}.0",
               "sys_platform": "linux", "platform_system": "Linux"}
        versions = {}
        for key, version in pinned.items():
            name, _, marker = key.partition(" ; ")
            if not marker or Marker(marker).evaluate(env):
                versions[name.split("[")[0]] = version
        for req in wanted:
            if req.marker and not req.marker.evaluate(env):
                continue
            assert req.name in versions, f"{req.name} missing from the {build} lock"
            assert req.specifier.contains(versions[req.name], prereleases=True), \
                f"{req.name}=={versions[req.name]} outside {req.specifier} (Python {python})"


def test_this_venv_has_the_locked_versions():
    """What the suite runs on is what the lock says (setup installed from it), so a green
    run vouches for the lock."""
    build = (ROOT / ".venv" / ".setup-stamp").read_text().split()[0]
    env = {"python_version": f"{sys.version_info[0]}.{sys.version_info[1]}",
           "python_full_version": ".".join(map(str, sys.version_info[:3])),
           "sys_platform": sys.platform, "platform_system": setup.platform.system()}
    checked = 0
    for key, version in lock.pins(lock.lock_path(build)).items():
        name, _, marker = key.partition(" ; ")
        if marker and not Marker(marker).evaluate(env):
            continue
        assert importlib.metadata.version(name) == version, name
        checked += 1
    assert checked > 20


def test_the_lock_changes_are_listed():
    before = {"numpy ; python_full_version < '3.11'": "2.2.6", "opencv-python-headless":
              "5.0.0.93", "tqdm": "4.70.1"}
    after = {"numpy ; python_full_version < '3.11'": "2.2.7", "opencv-python-headless":
             "5.0.0.93", "uv": "0.13.9"}
    assert lock.changes(before, after) == [
        "  numpy ; python_full_version < '3.11': 2.2.6 -> 2.2.7",
        "  tqdm: 4.70.1 -> (removed)", "  uv: (new) -> 0.13.9"]

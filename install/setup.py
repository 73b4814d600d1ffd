"""One-command setup on Linux, Windows and macOS: .venv at the repo root with the engine, the
onnxruntime build this machine can use, and the test tools.

    python3 install/setup.py            # Linux, macOS (install/setup.sh runs this)
    py -3.11 install\\setup.py           # Windows: the Python OBS is set to use
    ... --cpu | --gpu | --directml      # force a build instead of choosing by hardware
    ... --upgrade                       # move the locks to the newest versions, then test

The build: an NVIDIA driver (nvidia-smi answers) -> onnxruntime-gpu with NVIDIA's CUDA and
cuDNN wheels (the CUDA 13 build for drivers 580 and newer, the last CUDA 12 build, 1.26,
for older ones and Python 3.10); otherwise Windows -> onnxruntime-directml (any DirectX 12
GPU), macOS and Linux -> onnxruntime (on macOS it brings the CoreML provider). The versions
installed are the tested ones, locked with hashes in install/locks/BUILD.txt (install/lock.py
says how and why); `--upgrade` refreshes every lock, shows what changed, installs the new one
and runs the whole suite. Idempotent: a stamp in .venv records what was installed; the same
inputs again do nothing. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from install import lock  # noqa: E402  (standard library only)
from obs_script.env import PYTHON_SETTING  # noqa: E402  (standard library only)

VENV = ROOT / ".venv"
SUPPORTED = lock.supported_pythons()  # the Python versions the engine's wheels exist for
CUDA13_DRIVER = 580  # NVIDIA drivers from this major version run the CUDA 13 build


@dataclass(frozen=True)
class Choice:
    """The onnxruntime build to install and why."""

    build: str  # one of lock.BUILDS
    reason: str


def choose_build(system: str, driver: str | None, forced: str | None,
                 python: tuple[int, int]) -> Choice:
    """The build for a system ("Linux", "Windows", "Darwin"), an NVIDIA driver version
    (None: no NVIDIA driver answered) and a forced build (--cpu/--gpu/--directml)."""
    if forced == "cpu":
        return Choice("cpu", "forced by --cpu")
    if forced == "directml" or (forced is None and driver is None and system == "Windows"):
        if system != "Windows":
            raise SystemExit("setup: --directml is Windows only (DirectX 12)")
        why = "forced by --directml" if forced else "Windows without an NVIDIA driver"
        return Choice("directml", f"{why}: DirectML runs on any DirectX 12 GPU")
    if forced == "gpu" or driver is not None:
        if system == "Darwin":
            raise SystemExit("setup: NVIDIA CUDA builds do not exist for macOS")
        why = "forced by --gpu" if forced else f"NVIDIA driver {driver} found (nvidia-smi)"
        major = _major(driver)
        if python < (3, 11) or (major is not None and major < CUDA13_DRIVER):
            return Choice("gpu-cuda12", f"{why}; CUDA 12 build (driver before "
                                        f"{CUDA13_DRIVER} or Python 3.10)")
        return Choice("gpu", f"{why}; CUDA 13 build")
    if system == "Darwin":
        return Choice("cpu", "macOS: the stock onnxruntime, with the CoreML provider")
    return Choice("cpu", "no NVIDIA driver answered (nvidia-smi)")


def _major(version: str | None) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


def nvidia_driver() -> str | None:
    """The NVIDIA driver version nvidia-smi reports, or None."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


def venv_python(venv: Path, system: str) -> Path:
    """The interpreter inside a venv on `system`."""
    return venv / ("Scripts/python.exe" if system == "Windows" else "bin/python")


def base_python(system: str) -> list[str]:
    """The Python to make the venv with: this one, except on Linux, where OBS embeds the
    system Python and the venv must have its minor version (a python3.X on PATH)."""
    if system != "Linux" or not Path("/usr/bin/python3").exists():
        return [sys.executable]
    want = subprocess.run(["/usr/bin/python3", "-c", "import sys; "
                           "print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
                          capture_output=True, text=True).stdout.strip()
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == want:
        return [sys.executable]
    found = shutil.which(f"python{want}")
    return [found] if found else [sys.executable]


def stamp_text(build: str) -> str:
    """What the stamp records: the build, its lock and the project's metadata."""
    digest = hashlib.sha256(lock.lock_path(build).read_bytes()
                            + (ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    return f"{build} {digest}"


def install(python: Path, build: str) -> None:
    """The locked versions (hashes required, nothing else resolved), then this project as an
    editable package built by the locked setuptools."""
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    # the builds ship the same module: remove the others before installing one
    others = {"cpu": "onnxruntime", "gpu": "onnxruntime-gpu", "gpu-cuda12": "onnxruntime-gpu",
              "directml": "onnxruntime-directml"}
    subprocess.run([*pip, "uninstall", "-y",
                    *sorted({d for b, d in others.items() if d != others[build]})],
                   capture_output=True)
    run([*pip, "install", "--require-hashes", "--no-deps", "-r", str(lock.lock_path(build))])
    run([*pip, "install", "--no-deps", "--no-build-isolation", "-e", str(ROOT)])


def upgrade(python: Path, build: str) -> int:
    """Move every lock to the newest versions pyproject.toml allows (within the holds),
    show what changed, install this build's new lock and run the whole suite."""
    uv = python.parent / ("uv.exe" if platform.system() == "Windows" else "uv")
    problems = lock.refresh(str(uv))
    if problems:
        print("setup: some locked versions have no wheel for a supported platform: hold "
              f"them back in {lock.HOLDS.relative_to(ROOT)} and run --upgrade again",
              file=sys.stderr)
        return 1
    install(python, build)
    (VENV / ".setup-stamp").write_text(stamp_text(build) + "\n")
    print("setup: the new versions are installed; running the whole suite (install/test.sh)")
    tested = subprocess.run(["bash", str(ROOT / "install" / "test.sh")], cwd=ROOT)
    if tested.returncode:
        print("setup: the suite fails with the new versions: fix the code or hold the "
              "version back; `git checkout install/locks` returns to the tested lock",
              file=sys.stderr)
        return tested.returncode
    print("setup: the suite passes: commit install/locks with the figures it printed")
    return 0


def run(command: list[str]) -> None:
    subprocess.run(command, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Set up .venv (see the module docstring).")
    group = parser.add_mutually_exclusive_group()
    for build in ("cpu", "gpu", "directml"):
        group.add_argument(f"--{build}", dest="forced", action="store_const", const=build)
    parser.add_argument("--upgrade", action="store_true",
                        help="refresh the locks to the newest versions, then run the suite")
    args = parser.parse_args(argv)
    if sys.version_info[:2] not in SUPPORTED:
        print(f"setup: need Python {SUPPORTED[0][0]}.{SUPPORTED[0][1]}-"
              f"{SUPPORTED[-1][0]}.{SUPPORTED[-1][1]}, this is {platform.python_version()}",
              file=sys.stderr)
        return 1
    system = platform.system()
    python = venv_python(VENV, system)
    if not python.exists():
        base = base_python(system)
        print(f"setup: creating .venv with {base[0]}")
        run([*base, "-m", "venv", str(VENV)])
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version_info[0], "
                              "sys.version_info[1])"], capture_output=True, text=True,
                             check=True).stdout.split()
    choice = choose_build(system, nvidia_driver(), args.forced, (int(version[0]),
                                                                 int(version[1])))
    stamp = VENV / ".setup-stamp"
    if args.upgrade:
        return upgrade(python, choice.build)
    if stamp.exists() and stamp.read_text().strip() == stamp_text(choice.build):
        print(f"setup: .venv is up to date (onnxruntime: {choice.build})")
        return 0
    print(f"setup: onnxruntime build: {choice.build} ({choice.reason})")
    install(python, choice.build)
    run([str(python), "-c", "import cv2, numpy, onnxruntime as ort; print('setup: ok - numpy', "
         "numpy.__version__, '| opencv', cv2.__version__, '| onnxruntime', ort.__version__, "
         "ort.get_available_providers())"])
    stamp.write_text(stamp_text(choice.build) + "\n")
    print(f"setup: OBS Python setting (Tools > Scripts > Python Settings): "
          f"{PYTHON_SETTING.get(system, sys.base_prefix)}"
          + (f" - {sys.base_prefix}" if system in ("Windows", "Darwin") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

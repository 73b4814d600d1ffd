"""The locked dependency versions: one pip requirements file with hashes per onnxruntime
build (install/locks/BUILD.txt), installed by install/setup.py, and the one command that
moves them to newer versions (`install/setup.py --upgrade`, which calls `refresh` here).

Why pip requirements files made by `uv pip compile --universal --generate-hashes`: a plain
pip (the only tool a Windows or macOS user has next to OBS's Python) installs them with
`--require-hashes`, and uv's universal resolution writes one file valid on every platform and
Python 3.10-3.14 (environment markers where versions differ, e.g. onnxruntime 1.23 for 3.10).
uv is needed only to refresh the locks; it is itself locked with the test tools. `pylock.toml`
was not chosen: pip cannot install from it yet.

A universal resolution looks at metadata, not at wheel tags, so `check_wheels` proves that
every pinned package has a wheel for each supported platform and Python; versions that fail it
are held back in install/locks/holds.txt, each with its reason.

Standard library only: setup.py imports this before anything is installed.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "install" / "locks"
HOLDS = LOCKS / "holds.txt"
BUILD_TOOLS = LOCKS / "build-tools.in"  # setuptools for the editable install (no isolation)
BUILDS = ("cpu", "gpu", "gpu-cuda12", "directml")  # pyproject.toml extras, one lock each


def supported_pythons() -> tuple[tuple[int, int], ...]:
    """Every Python version pyproject.toml's requires-python allows (">=3.10,<3.15"), the
    one place the supported range is written (install/setup.sh reads it too)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^requires-python = ">=3\.(\d+),<3\.(\d+)"', text, re.M)
    if found is None:
        raise ValueError('pyproject.toml: requires-python must read ">=3.A,<3.B"')
    return tuple((3, minor) for minor in range(int(found[1]), int(found[2])))


PYTHONS = tuple(f"{major}.{minor}" for major, minor in supported_pythons())
LOWEST_PYTHON = PYTHONS[0]
MACOS = "14.0"  # onnxruntime's macOS wheels: Apple silicon, macOS 14 and newer
LINUX_X64, LINUX_ARM, MAC_ARM, WINDOWS = ("x86_64-manylinux_2_28", "aarch64-manylinux_2_28",
                                          "aarch64-apple-darwin", "x86_64-pc-windows-msvc")
# where each build is supported (uv --python-platform names)
PLATFORMS = {"cpu": (LINUX_X64, LINUX_ARM, MAC_ARM, WINDOWS),
             "gpu": (LINUX_X64, WINDOWS), "gpu-cuda12": (LINUX_X64, WINDOWS),
             "directml": (WINDOWS,)}
# the test Triton server's own venv (tests/triton_env.py): the system Python of Debian 12
SERVER_LOCK, SERVER_TARGET = LOCKS / "triton-test-server.txt", ("x86_64-manylinux_2_35", "3.11")
COMMAND = "install/setup.py --upgrade"
PIN = re.compile(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def lock_path(build: str) -> Path:
    return LOCKS / f"{build}.txt"


def pins(path: Path) -> dict[str, str]:
    """{"name [; marker]": version} of a lock file."""
    found = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            name, version, marker = match.groups()
            found[name.lower() + (f" ; {marker}" if marker else "")] = version
    return found


def compile_lock(uv: str, build: str, upgrade: bool) -> None:
    """Resolve `build`'s lock; without `upgrade` the versions already locked are kept
    where they still satisfy pyproject.toml (uv reads the output file as preferences)."""
    command = [uv, "pip", "compile", "pyproject.toml", str(BUILD_TOOLS.relative_to(ROOT)),
               "--extra", build, "--extra", "test", "--universal", "--generate-hashes",
               "--python-version", LOWEST_PYTHON, "--constraints",
               str(HOLDS.relative_to(ROOT)), "--custom-compile-command", COMMAND,
               "--quiet", "--output-file", str(lock_path(build).relative_to(ROOT))]
    subprocess.run(command + (["--upgrade"] if upgrade else []), cwd=ROOT, check=True)


def compile_server_lock(uv: str, upgrade: bool) -> None:
    """The test server's lock, resolved for its one target (so no wheel check is needed)."""
    platform, python = SERVER_TARGET
    command = [uv, "pip", "compile", str(SERVER_LOCK.with_suffix(".in").relative_to(ROOT)),
               "--generate-hashes", "--python-platform", platform, "--python-version", python,
               "--custom-compile-command", COMMAND, "--quiet", "--output-file",
               str(SERVER_LOCK.relative_to(ROOT))]
    subprocess.run(command + (["--upgrade"] if upgrade else []), cwd=ROOT, check=True)


def check_wheels(uv: str, build: str) -> list[str]:
    """Problems: each (platform, Python) of the build where a pinned package has no wheel."""
    problems = []
    env = dict(os.environ, MACOSX_DEPLOYMENT_TARGET=MACOS)
    for platform in PLATFORMS[build]:
        for python in PYTHONS:
            done = subprocess.run(
                [uv, "pip", "compile", str(lock_path(build)), "--no-deps", "--only-binary",
                 ":all:", "--python-platform", platform, "--python-version", python,
                 "--quiet", "--output-file", os.devnull], cwd=ROOT, env=env,
                capture_output=True, text=True)
            if done.returncode:
                why = [line.strip() for line in done.stderr.splitlines() if "cause" in line]
                problems.append(f"{build} on {platform}, Python {python}: "
                                + (why[0] if why else done.stderr.strip()[-300:]))
    return problems


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Lines 'name: old -> new' for every pin that changed, appeared or went away."""
    lines = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            lines.append(f"  {key}: {old or '(new)'} -> {new or '(removed)'}")
    return lines


def refresh(uv: str, upgrade: bool = True) -> list[str]:
    """Re-resolve every lock, print what changed and return wheel problems."""
    for build in (*BUILDS, None):
        path = lock_path(build) if build else SERVER_LOCK
        before = pins(path) if path.exists() else {}
        if build:
            compile_lock(uv, build, upgrade)
        else:
            compile_server_lock(uv, upgrade)
        moved = changes(before, pins(path))
        print(f"lock: {path.relative_to(ROOT)}: "
              + (f"{len(moved)} change(s)" if moved else "unchanged"))
        for line in moved:
            print(line)
    problems = [p for build in BUILDS for p in check_wheels(uv, build)]
    for problem in problems:
        print(f"lock: no wheel: {problem}")
    return problems

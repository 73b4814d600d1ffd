"""Make the project's virtual environment importable from OBS's embedded Python.

OBS embeds a Python of its own (Linux: the system one, with Debian's older numpy on its
path). install/setup.sh builds .venv with the same minor version; here its site-packages
go to the *front* of sys.path, so our numpy/onnxruntime win over system packages. A venv
built for another minor version would fail inside compiled modules, so it is refused with
a message instead. Standard library only: this runs before anything else is importable.
"""

from __future__ import annotations

import os
import platform
import site
import sys
from pathlib import Path

ENV_VAR = "FACE_SWAP_VENV"  # another venv than <repo>/.venv
# Which Python OBS loads (Tools > Scripts > Python Settings), per platform.system(); the venv
# must be made by that same Python (install/setup.py prints this line too)
PYTHON_SETTING = {
    "Windows": "the folder of a 64-bit python.org Python (e.g. "
               "%LOCALAPPDATA%\\Programs\\Python\\Python311)",
    "Darwin": "a python.org Python's framework folder (e.g. "
              "/Library/Frameworks/Python.framework/Versions/3.11)",
    "Linux": "nothing: OBS on Linux embeds the system Python (/usr/bin/python3)",
}
SETUP_COMMAND = {"Windows": "py -{v} install\\setup.py", "Darwin": "python{v} install/setup.py",
                 "Linux": "install/setup.sh"}


def setup_hint(system: str, version: tuple[int, int]) -> str:
    """How to (re)build the venv for the Python OBS runs, and where OBS is told which one."""
    command = SETUP_COMMAND.get(system, SETUP_COMMAND["Linux"]).format(
        v=f"{version[0]}.{version[1]}")
    if system in ("Windows", "Darwin"):
        return (f"run `{command}` with the Python set in Tools > Scripts > Python Settings "
                f"({PYTHON_SETTING[system]})")
    return f"run {command}"


def venv_dir(root: Path) -> Path:
    return Path(os.environ.get(ENV_VAR) or root / ".venv").expanduser()


def venv_version(venv: Path) -> tuple[int, int] | None:
    """(major, minor) of the Python a venv was made with, from its pyvenv.cfg."""
    try:
        lines = (venv / "pyvenv.cfg").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            parts = value.strip().split(".")
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                return int(parts[0]), int(parts[1])
    return None


def site_packages(venv: Path, version: tuple[int, int]) -> Path:
    if sys.platform == "win32":
        return venv / "Lib" / "site-packages"
    return venv / "lib" / f"python{version[0]}.{version[1]}" / "site-packages"


def activate(root: Path) -> str:
    """Put `root` and its venv's site-packages first on sys.path; '' or a one-line problem."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    venv = venv_dir(root)
    version = venv_version(venv)
    running = sys.version_info[:2]
    hint = setup_hint(platform.system(), running)
    if version is None:
        return f"no Python environment at {venv}: {hint}"
    if version != running:
        return (f"{venv} was made with Python {version[0]}.{version[1]} but OBS runs Python "
                f"{running[0]}.{running[1]} ({sys.base_prefix}): rebuild it, {hint}")
    packages = Path(os.path.abspath(site_packages(venv, version)))
    if not packages.is_dir():
        return f"{packages} is missing: {hint}"
    before = list(sys.path)
    site.addsitedir(str(packages))  # also runs its .pth files (the editable install)
    added = [p for p in sys.path if p not in before]
    rest = [p for p in before if p != str(packages)]
    sys.path[:] = [str(packages), *[p for p in added if p != str(packages)], *rest]
    numpy = sys.modules.get("numpy")
    if numpy is not None and not str(getattr(numpy, "__file__", "")).startswith(str(packages)):
        return (f"numpy {numpy.__version__} from {numpy.__file__} was imported before the "
                "face swap environment (another script?): restart OBS")
    return ""

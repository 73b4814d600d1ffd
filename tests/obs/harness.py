"""A real OBS Studio under Xvfb for end-to-end tests, driven through obs-websocket.

`ObsSession` writes a throw-away HOME with a profile (small canvas), a scene collection
(sources, filters, our script and its settings) and obs-websocket enabled on a free port,
starts Xvfb and OBS, connects an obsws-python client to 127.0.0.1, and always stops both
processes (SIGINT, then SIGKILL after a timeout) - also when start-up fails half way.
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
logging.getLogger("obsws_python").setLevel(logging.CRITICAL)  # refused connects while starting
SCRIPT = ROOT / "obs_script" / "face_swap.py"
COLLECTION = "FaceSwapTest"
PROFILE = "FaceSwapTest"
OBS_FPS = 30  # the profile's frame rate


def missing_tools() -> list[str]:
    """Executables an OBS session needs that this machine lacks."""
    return [tool for tool in ("obs", "Xvfb") if shutil.which(tool) is None]


def skip_module_without_obs() -> None:
    """Skip the calling test module when OBS or Xvfb is missing - except in CI (CI=true),
    where the module's OBS fixture fails instead: OBS tests never skip there."""
    import pytest

    if missing_tools() and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip(f"needs {' and '.join(missing_tools())} (apt-get install obs-studio "
                    "xvfb); set CI=true to make this a failure", allow_module_level=True)


QUIT_SCENE = "Before exit"  # running(): an empty scene put on program before OBS quits


@contextlib.contextmanager
def running(workdir: Path, sources: list[dict]) -> Iterator[ObsSession]:
    """A real OBS with `sources` for one test module: a failure, not a skip, where OBS or
    Xvfb is missing (reached only under CI=true, see skip_module_without_obs); its status
    file waited for; a clean exit checked once the module is done. It quits from an empty
    scene (QUIT_SCENE, added after the module's own): OBS 29 itself crashes at exit now and
    then with a media source on program (README "Tests"; -11 once in CI for
    test_obs_objects' session, after its scene data was cleared)."""
    import pytest

    if missing_tools():
        pytest.fail(f"OBS tests need {' and '.join(missing_tools())} (obs-studio, xvfb)")
    session = ObsSession(workdir, [*sources, scene(QUIT_SCENE, [])])
    with session:
        wait_for(lambda: session.status_file.exists() and session.status(), 60, "status file")
        yield session
        session.program(QUIT_SCENE)
    session.assert_clean_exit()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DISCONNECTED = "has disconnected with code"  # obs-websocket's log line for a closed client


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25):
    """Poll `check()` until it returns something truthy; TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the check's own failures count as "not yet"
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


def scene_item(source: str, item_id: int, x: float = 0.0, y: float = 0.0,
               scale: float = 1.0) -> dict:
    return {"name": source, "id": item_id, "visible": True, "locked": False, "rot": 0.0,
            "pos": {"x": x, "y": y}, "scale": {"x": scale, "y": scale}, "align": 5,
            "bounds_type": 0, "bounds_align": 0, "bounds": {"x": 0.0, "y": 0.0},
            "crop_left": 0, "crop_top": 0, "crop_right": 0, "crop_bottom": 0}


def image_source(name: str, path: Path, filters: list[dict] | None = None) -> dict:
    return {"id": "image_source", "versioned_id": "image_source", "name": name,
            "enabled": True, "settings": {"file": str(path), "unload": False},
            "filters": filters or []}


def media_source(name: str, path: Path, filters: list[dict] | None = None) -> dict:
    """An ffmpeg_source (OBS's media source: asynchronous frames, like a webcam), looping."""
    return {"id": "ffmpeg_source", "versioned_id": "ffmpeg_source", "name": name,
            "enabled": True, "filters": filters or [],
            "settings": {"local_file": str(path), "is_local_file": True, "looping": True,
                         "restart_on_activate": False, "close_when_inactive": False}}


def face_swap_filter(name: str = "Face Swap", settings: dict | None = None,
                     enabled: bool = True) -> dict:
    return {"id": "face_swap", "versioned_id": "face_swap", "name": name, "enabled": enabled,
            "settings": settings or {}}


def scene(name: str, items: list[dict]) -> dict:
    return {"id": "scene", "versioned_id": "scene", "name": name, "enabled": True,
            "settings": {"items": items, "id_counter": len(items), "custom_size": False}}


class ObsSession:
    """One OBS process with our script loaded; use as a context manager."""

    def __init__(self, workdir: Path, sources: list[dict], script_settings: dict | None = None,
                 canvas: tuple[int, int] = (640, 360), start_timeout: float = 90.0,
                 env: dict[str, str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.home = self.workdir / "home"
        self.config = self.home / ".config" / "obs-studio"
        self.status_file = self.workdir / "status.json"
        self.stacks_file = self.workdir / "obs-python-stacks.txt"  # tests/obs/hooks.py
        self.sources = sources
        self.script_settings = script_settings or {}
        self.canvas = canvas
        self.start_timeout = start_timeout
        self.extra_env = env or {}
        self.port = free_port()
        self.xvfb: subprocess.Popen | None = None
        self.obs: subprocess.Popen | None = None
        self.client = None

    # --- set-up --------------------------------------------------------------------------
    def _write_ini(self, path: Path, sections: dict[str, dict[str, object]]) -> None:
        parser = configparser.ConfigParser()
        parser.optionxform = str  # OBS keys are case-sensitive
        for section, values in sections.items():
            parser[section] = {k: str(v) for k, v in values.items()}
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            parser.write(f, space_around_delimiters=False)

    def write_config(self) -> None:
        width, height = self.canvas
        self._write_ini(self.config / "global.ini", {
            "General": {"FirstRun": "true", "LastVersion": "486539266"},
            "Basic": {"Profile": PROFILE, "ProfileDir": PROFILE, "SceneCollection": COLLECTION,
                      "SceneCollectionFile": COLLECTION, "ConfigOnNewProfile": "false"},
            "BasicWindow": {"ShowTransitions": "false"},
            "OBSWebSocket": {"FirstLoad": "false", "ServerEnabled": "true",
                             "ServerPort": self.port, "AlertsEnabled": "false",
                             "AuthRequired": "false", "ServerPassword": ""},
        })
        self._write_ini(self.config / "basic" / "profiles" / PROFILE / "basic.ini", {
            "General": {"Name": PROFILE},
            "Video": {"BaseCX": width, "BaseCY": height, "OutputCX": width, "OutputCY": height,
                      "FPSType": 1, "FPSInt": OBS_FPS},
        })
        scenes = [s for s in self.sources if s["id"] == "scene"]
        collection = {
            "name": COLLECTION, "sources": self.sources, "groups": [],
            "current_scene": scenes[0]["name"], "current_program_scene": scenes[0]["name"],
            "scene_order": [{"name": s["name"]} for s in scenes],
            "transitions": [], "current_transition": "Cut", "transition_duration": 0,
            "modules": {"scripts-tool": [{"path": str(SCRIPT), "settings": self.script_settings}]},
        }
        path = self.config / "basic" / "scenes" / f"{COLLECTION}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(collection, indent=1), encoding="utf-8")

    def start(self) -> ObsSession:
        self.write_config()
        try:
            self._start_processes()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_processes(self) -> None:
        # -displayfd: Xvfb picks a free display itself and prints its number when ready
        self.xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x720x24",
                                      "-nolisten", "tcp"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        ready, _, _ = select.select([self.xvfb.stdout], [], [], 30)
        line = self.xvfb.stdout.readline().strip() if ready else b""
        if not line.isdigit():
            raise RuntimeError(f"Xvfb did not start (exit code {self.xvfb.poll()})")
        display = int(line)
        env = dict(os.environ, HOME=str(self.home), DISPLAY=f":{display}",
                   LIBGL_ALWAYS_SOFTWARE="1", QT_QPA_PLATFORM="xcb",
                   FACE_SWAP_STATUS_FILE=str(self.status_file),
                   FACE_SWAP_TEST_HOOKS=str(Path(__file__).with_name("hooks.py")),
                   FACE_SWAP_TEST_INPUT=str(self.workdir / "test_input.json"),
                   FACE_SWAP_TEST_STACKS=str(self.stacks_file),
                   **self.extra_env)
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        self.obs_log = (self.workdir / "obs-stdout.txt").open("wb")
        self.obs = subprocess.Popen(
            ["obs", "--multi", "--disable-missing-files-check", "--disable-shutdown-check",
             "--collection", COLLECTION, "--profile", PROFILE],
            env=env, cwd=str(self.workdir), stdout=self.obs_log, stderr=subprocess.STDOUT)
        import obsws_python

        def connect():
            if self.obs.poll() is not None:
                raise RuntimeError(f"OBS exited with {self.obs.returncode}:\n{self.log_tail()}")
            client = obsws_python.ReqClient(host="127.0.0.1", port=self.port, timeout=30)
            try:
                # OBS 30+ accepts connections before it has loaded the scene collection and
                # answers "not ready" (207) until then; OBS 29 answers once it listens.
                client.get_scene_list()
            except Exception:
                with contextlib.suppress(Exception):
                    client.disconnect()
                raise
            return client

        self.client = self._retry_connect(connect)

    def _retry_connect(self, connect):
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                return connect()
            except RuntimeError:
                raise
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"obs-websocket did not answer on 127.0.0.1:{self.port} "
                                       f"within {self.start_timeout:.0f} s:\n{self.log_tail()}"
                                       ) from exc
                time.sleep(0.5)

    # --- tear-down -----------------------------------------------------------------------
    @staticmethod
    def _end(process: subprocess.Popen | None, first: int, timeout: float,
             before_kill: int | None = None) -> int | None:
        """Signal `first`, wait `timeout` s, then (after `before_kill`, if given: a second
        to act on it) kill; the exit code."""
        if process is None or process.poll() is not None:
            return None if process is None else process.returncode
        process.send_signal(first)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            if before_kill is not None:
                process.send_signal(before_kill)
                time.sleep(1.0)
            process.kill()
            return process.wait(10)

    def stop(self) -> int | None:
        """Stop OBS (then Xvfb); OBS's exit code, or None if it was not running."""
        if self.client is not None:
            closed = self.log_text().count(DISCONNECTED) + 1
            with contextlib.suppress(Exception):  # OBS may already be gone
                self.client.disconnect()
            self.client = None
            # obs-websocket 5 (OBS 29) can crash when a client's close is still being
            # handled as OBS shuts down its server: let it finish first
            with contextlib.suppress(TimeoutError):
                wait_for(lambda: not self.running
                         or self.log_text().count(DISCONNECTED) >= closed, 5,
                         "obs-websocket to log the disconnection", interval=0.05)
        # an OBS that does not exit in time dumps its Python threads' stacks first
        # (tests/obs/hooks.py), for assert_clean_exit to show
        code = self._end(self.obs, signal.SIGINT, 30, before_kill=signal.SIGUSR1)
        self._end(self.xvfb, signal.SIGTERM, 10)
        if getattr(self, "obs_log", None):
            self.obs_log.close()
        return code

    def assert_clean_exit(self) -> None:
        """OBS exited by itself with code 0, and its scene clearing left no source behind
        (one left behind is destroyed after Python is finalised: obs_script/clearing.py)."""
        code = self.obs.returncode
        leaks = [line for line in self.log_text().splitlines()
                 if "Not all sources were cleared" in line or "were remaining" in line]
        dump = self.stacks_file.read_text(encoding="utf-8", errors="replace") \
            if code != 0 and self.stacks_file.is_file() else ""
        assert code == 0 and not leaks, f"OBS exited with {code}: {leaks}" + \
            (f"\nits Python threads before it was killed:\n{dump}" if dump.strip() else "") + \
            f"\nlog tail:\n{self.log_tail(15)}"

    def __enter__(self) -> ObsSession:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- reading OBS -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.obs is not None and self.obs.poll() is None

    def log_text(self) -> str:
        logs = sorted((self.config / "logs").glob("*.txt"), key=lambda p: p.stat().st_mtime)
        return logs[-1].read_text(encoding="utf-8", errors="replace") if logs else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def saved_collection(self) -> dict:
        """The scene collection as OBS last saved it."""
        path = self.config / "basic" / "scenes" / f"{COLLECTION}.json"
        return json.loads(path.read_text(encoding="utf-8"))

    def status(self) -> dict:
        """The script's status file (see obs_script/status.py)."""
        return json.loads(self.status_file.read_text(encoding="utf-8"))

    def filter_status(self, source: str, name: str = "Face Swap") -> dict | None:
        for entry in self.status().get("filters", []):
            if entry["source"] == source and entry["filter"] == name:
                return entry
        return None

    def wait_filter(self, source: str, check: Callable[[dict], bool], timeout: float = 60.0,
                    what: str = "", name: str = "Face Swap") -> dict:
        def probe():
            entry = self.filter_status(source, name)
            return entry if entry is not None and check(entry) else None
        return wait_for(probe, timeout, what or f"status of {source}/{name}")

    def program(self, scene_name: str) -> None:
        """Put a scene on program and wait until the script has seen it."""
        self.client.set_current_program_scene(scene_name)
        wait_for(lambda: self.status()["scene"] == scene_name, 20,
                 f"scene {scene_name} on program")

    def properties_of(self, key: str) -> dict:
        """Build every filter's properties panel in OBS (test hook) and return the one of
        `key` ("source/filter")."""
        def report() -> dict:
            return self.status().get("test_properties", {})

        # a report from before this call must not be taken for this one
        before = wait_for(lambda: [report().get("built", 0)], 30, "the script's status")[0]
        self.client.trigger_hot_key_by_name("face_swap.test_properties")
        return wait_for(lambda: report().get("built", 0) > before and report()[key], 20,
                        f"properties of {key}")

    def screenshot(self, source: str) -> np.ndarray:
        """The source as OBS renders it (with its filters), RGBA at its own size."""
        reply = self.client.send("GetSourceScreenshot",
                                 {"sourceName": source, "imageFormat": "png"}, raw=True)
        data = base64.b64decode(reply["imageData"].split(",", 1)[1])
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if image.shape[2] == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGBA)
        else:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
        return image

    def thread_count(self) -> int:
        return len(os.listdir(f"/proc/{self.obs.pid}/task"))


def badge_area(out: np.ndarray, plain: np.ndarray) -> tuple[slice, slice] | None:
    """Where a screenshot differs from the plain source, when that is only the filter's
    "not swapping" badge (obs_script.cover.badge): a small square in the bottom-right
    corner (the label's default corner); None when nothing differs. AssertionError when the
    differences are anything else."""
    differs = np.abs(out[..., :3].astype(int) - plain[..., :3].astype(int)).max(axis=2) > 0
    if not differs.any():
        return None
    ys, xs = np.nonzero(differs)
    height, width = plain.shape[:2]
    side = min(width, height)
    assert xs.min() > 0.85 * width and ys.min() > 0.85 * height, "changed outside the badge"
    assert xs.max() - xs.min() < 0.12 * side and ys.max() - ys.min() < 0.12 * side
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


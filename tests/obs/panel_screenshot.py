"""The README's screenshot of the Face Swap filter's panel (docs/obs_panel.png), taken in a
real OBS under Xvfb with a window manager, so the Filters dialog renders as a streamer sees it.

Needs, besides what install/test.sh installs: `apt-get install openbox xdotool imagemagick`.
Run from the repository root: `.venv/bin/python tests/obs/panel_screenshot.py [OUT_DIR]`
(default /tmp/panel_screenshot). It writes top.png (the top of the panel, as in the README),
scroll1..4.png (the lower groups) and obs_panel.png (top.png with 128 colours); open them and
look before copying obs_panel.png to docs/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from obs import harness  # noqa: E402
from obs.harness import ObsSession, face_swap_filter, image_source, scene, scene_item  # noqa: E402

SCREEN = "1600x1000x24"  # room for a 1200x950 dialog
DIALOG = (1200, 950)
PHOTO = ROOT / "models" / "samples" / "astronaut.png"
_display: dict[str, object] = {}


def _popen(args, *rest, _real=subprocess.Popen, **kwargs):
    """The harness's Popen with a bigger Xvfb screen and openbox started beside OBS."""
    if args and args[0] == "Xvfb":
        args = [SCREEN if arg == "1280x720x24" else arg for arg in args]
    if args and args[0] == "obs":
        _display["name"] = kwargs["env"]["DISPLAY"]
        _display["openbox"] = _real(["openbox"], env=dict(kwargs["env"]),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
    return _real(args, *rest, **kwargs)


def _x(*command: str) -> str:
    env = {"DISPLAY": str(_display["name"]), "PATH": "/usr/bin:/bin"}
    return subprocess.run(command, env=env, capture_output=True, text=True).stdout.strip()


def _shot(out: Path, name: str, box: tuple[int, int, int, int]) -> Path:
    """The dialog's rectangle `box` (x, y, w, h) of the screen, as out/name.png."""
    full = out / f"{name}_full.png"
    _x("import", "-window", "root", "-display", str(_display["name"]), str(full))
    x, y, w, h = box
    path = out / f"{name}.png"
    subprocess.run(["convert", str(full), "-crop", f"{w}x{h}+{x}+{y}", "+repage", str(path)],
                   check=True)
    full.unlink()
    return path


def main(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    (out / "obs").mkdir(parents=True)
    harness.subprocess.Popen = _popen
    # the defaults (privacy mode "Pixelate", the identity guard on): the persona hides this
    # sample from the recogniser, so the preview shows the swap (README)
    sources = [image_source("Webcam", PHOTO,
                            [face_swap_filter(settings={"on_lost": "pixelate"})]),
               scene("Scene", [scene_item("Webcam", 1)])]
    session = ObsSession(out / "obs", sources, canvas=(640, 360), start_timeout=180)
    try:
        session.start()
        session.program("Scene")
        session.wait_filter("Webcam", lambda f: f["swapping"], 300, "swapping")
        session.client.send("OpenInputFiltersDialog", {"inputName": "Webcam"})
        window = harness.wait_for(lambda: _x("xdotool", "search", "--name", "Filters").split(),
                                  30, "the Filters dialog")[-1]
        time.sleep(3)
        _x("xdotool", "windowsize", window, *map(str, DIALOG))
        _x("xdotool", "windowmove", window, "20", "20")
        _x("xdotool", "windowactivate", window)
        time.sleep(2)
        geometry = dict(line.split("=") for line in
                        _x("xdotool", "getwindowgeometry", "--shell", window).splitlines())
        x, y, w, h = (int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
        box = (x - 2, 0, w, h + y - 19)  # with the title bar openbox draws, not the screen
        # the splitter under the preview dragged up: the panel gets the height
        _x("xdotool", "mousemove", str(x + 730), str(y + 420), "mousedown", "1")
        for row in (300, 200, 100):
            time.sleep(0.3)
            _x("xdotool", "mousemove", str(x + 730), str(y + row))
        _x("xdotool", "mouseup", "1")
        time.sleep(4)
        top = _shot(out, "top", box)
        # the wheel over the label column, never over a slider or a number box
        _x("xdotool", "mousemove", str(x + 330), str(y + 700))
        for i in range(1, 5):
            _x("xdotool", "click", "--repeat", "10", "--delay", "60", "5")
            time.sleep(1.5)
            _shot(out, f"scroll{i}", box)
        subprocess.run(["convert", str(top), "+dither", "-colors", "128", "-strip",
                        str(out / "obs_panel.png")], check=True)
    finally:
        session.stop()
        openbox = _display.get("openbox")
        if openbox is not None and openbox.poll() is None:
            openbox.terminate()
            openbox.wait(10)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/panel_screenshot"))

"""Render-thread cost of the Face Swap filter in a real OBS, with the worker busy.

For a 640x360 and a 1280x720 source showing a face: the filter's video_render time per
frame (grab + hand-over + draw, p50/p95, from the script's status), the parent's own
render inside it, and OBS's average frame time with the filter on and off.
Run alone:  .venv/bin/python tests/obs/bench_render.py   (prints one line per size)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from obs.harness import (  # noqa: E402
    ROOT,
    ObsSession,
    face_swap_filter,
    image_source,
    scene,
    scene_item,
    wait_for,
)

SIZES = {"bench360": (640, 360), "bench720": (1280, 720)}
SETTLE_S = 6.0


def write_bench_images(folder: Path) -> dict[str, Path]:
    """The astronaut centred on grey canvases of the benchmark sizes."""
    face = cv2.imread(str(ROOT / "tests" / "data" / "astronaut.png"))
    paths = {}
    for name, (width, height) in SIZES.items():
        canvas = np.full((height, width, 3), 128, np.uint8)
        scaled = cv2.resize(face, (height, height), interpolation=cv2.INTER_AREA)
        x = (width - height) // 2
        canvas[:, x:x + height] = scaled
        paths[name] = Path(folder) / f"{name}.png"
        cv2.imwrite(str(paths[name]), canvas)
    return paths


def measure(obs: ObsSession, scene_name: str, source: str) -> dict:
    """Figures for `source` (alone on program) with its filter on, then off."""
    obs.client.set_current_program_scene(scene_name)
    obs.client.set_source_filter_enabled(source, "Face Swap", True)
    obs.wait_filter(source, lambda f: f["swapping"] and f["frames_out"] > 5, 120,
                    f"{source} swapping")
    time.sleep(SETTLE_S)
    status = obs.status()
    on = dict(obs.filter_status(source), obs_frame_ms=status["obs_frame_ms"])
    obs.client.set_source_filter_enabled(source, "Face Swap", False)
    time.sleep(SETTLE_S)
    off = {"obs_frame_ms": obs.status()["obs_frame_ms"]}
    obs.client.set_source_filter_enabled(source, "Face Swap", True)
    size = "x".join(map(str, on["size"]))
    r, p, s = on["render_ms"], on["parent_render_ms"], on["stage_ms"]
    line = (f"{size}: video_render p50 {r['p50']:.2f} / p95 {r['p95']:.2f} ms "
            f"(n={r['n']}; parent render p50 {p['p50']:.2f}, gs_stage_texture p50 "
            f"{s['p50']:.2f} / p95 {s['p95']:.2f}); worker {on['fps']} fps, "
            f"{on['model']} latency p50 {on['latency_ms']['p50']} ms; OBS avg frame "
            f"{on['obs_frame_ms']:.2f} ms with the filter, {off['obs_frame_ms']:.2f} ms without")
    return {"with_filter": on, "without_filter": off, "line": line}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="obs_bench_") as tmp:
        images = write_bench_images(Path(tmp))
        sources, scenes = [], []
        for name, path in images.items():
            source = name.capitalize()
            sources.append(image_source(source, path,
                                        [face_swap_filter(settings={"label": False})]))
            scenes.append(scene(f"Scene {name}", [scene_item(source, 1, scale=0.5)]))
        with ObsSession(Path(tmp), sources + scenes) as obs:
            wait_for(lambda: obs.status_file.exists(), 60, "status file")
            for name in images:
                print(measure(obs, f"Scene {name}", name.capitalize())["line"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

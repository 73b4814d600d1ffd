"""Render-thread cost of the Face Swap filter in a real OBS, with the worker busy.

For 640x360 and 1280x720 sources showing a face - an image source (texrender copy-back)
and a media source playing a clip (raw async frames, copied in filter_video): the
filter's video_render time per frame (grab + hand-over + draw, p50/p95, from the script's
status), the parent's own render inside it or the raw-frame copy, and OBS's average frame
time with the filter on, off, and with OBS's own Color Correction filter instead (a built-in
effect filter: it too renders the parent into a texture, but never reads it back).
Run alone:  .venv/bin/python tests/obs/bench_render.py   (prints one line per source)
            .venv/bin/python tests/obs/bench_render.py --texrender   (media sources through
            the texrender path too, FACE_SWAP_ASYNC_FRAMES=0: the cost before raw frames)
            ... --model PATH --threads 1   (another swap model, e.g. the bench DFM from
            `python -m core bench --make-bench-dfm DIR`: a model slower than OBS's frames)
"""

from __future__ import annotations

import argparse
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
    media_source,
    scene,
    scene_item,
    wait_for,
)

SIZES = {"bench360": (640, 360), "bench720": (1280, 720)}
BUILTIN = "Color Correction"  # OBS's own effect filter, the reference beside ours
SETTLE_S = 6.0
CLIP_FPS = 5  # well below OBS's 30 fps: a frame is handed over once, however often it is drawn
CLIP_FRAMES = 20


def face_canvas(width: int, height: int, background: np.ndarray | None = None) -> np.ndarray:
    """The astronaut centred (full height) on `background` (BGR; grey when None)."""
    face = cv2.imread(str(ROOT / "models" / "samples" / "astronaut.png"))
    canvas = (np.full((height, width, 3), 128, np.uint8) if background is None
              else background.copy())
    scaled = cv2.resize(face, (height, height), interpolation=cv2.INTER_AREA)
    x = (width - height) // 2
    canvas[:, x:x + height] = scaled
    return canvas


def color_background(width: int, height: int) -> np.ndarray:
    """Saturated hues left to right, dark to light top to bottom: colour errors show."""
    hue = np.linspace(0, 179, width, dtype=np.float32)[None, :].repeat(height, 0)
    value = np.linspace(60, 250, height, dtype=np.float32)[:, None].repeat(width, 1)
    hsv = cv2.merge([hue, np.full_like(hue, 200), value]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def write_bench_images(folder: Path) -> dict[str, Path]:
    """The astronaut centred on grey canvases of the benchmark sizes."""
    paths = {}
    for name, (width, height) in SIZES.items():
        paths[name] = Path(folder) / f"{name}.png"
        cv2.imwrite(str(paths[name]), face_canvas(width, height))
    return paths


def write_clip(path: Path, width: int, height: int, fourcc: str = "mp4v",
               color: bool = True) -> Path:
    """A still clip (CLIP_FRAMES frames at CLIP_FPS) of the astronaut on a colourful
    background (grey levels if not `color`); mp4v decodes to I420 (BT.709, limited range)
    in OBS's media source."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), CLIP_FPS,
                             (width, height), color)
    if not writer.isOpened():
        raise RuntimeError(f"cv2 cannot write {fourcc} to {path}")
    frame = face_canvas(width, height, color_background(width, height))
    if not color:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    for _ in range(CLIP_FRAMES):
        writer.write(frame)
    writer.release()
    return path


def write_bench_clips(folder: Path) -> dict[str, Path]:
    """Clips of the benchmark sizes, named clip360 / clip720."""
    return {name.replace("bench", "clip"): write_clip(Path(folder) / f"{name}.mp4", *size)
            for name, size in SIZES.items()}


def builtin_filter() -> dict:
    """OBS's Color Correction filter, disabled, with a visible change when enabled."""
    return {"id": "color_filter_v2", "versioned_id": "color_filter_v2", "name": BUILTIN,
            "enabled": False, "settings": {"saturation": 0.5}}


def measure(obs: ObsSession, scene_name: str, source: str, settle_s: float = SETTLE_S) -> dict:
    """Figures for `source` (alone on program) with its filter on, then off, then with
    OBS's Color Correction filter alone, each over `settle_s` seconds."""
    obs.client.set_current_program_scene(scene_name)
    obs.client.set_source_filter_enabled(source, "Face Swap", True)
    before = obs.wait_filter(source, lambda f: f["swapping"] and f["frames_out"] > 5, 120,
                             f"{source} swapping")
    time.sleep(settle_s)
    status = obs.status()
    on = dict(obs.filter_status(source), obs_frame_ms=status["obs_frame_ms"])
    counts = {k: on[k] - before[k] for k in ("frames_not_grabbed", "frames_in", "frames_out")}
    obs.client.set_source_filter_enabled(source, "Face Swap", False)
    time.sleep(settle_s)
    off = {"obs_frame_ms": obs.status()["obs_frame_ms"]}
    obs.client.set_source_filter_enabled(source, BUILTIN, True)
    time.sleep(settle_s)
    builtin = {"obs_frame_ms": obs.status()["obs_frame_ms"]}
    obs.client.set_source_filter_enabled(source, BUILTIN, False)
    obs.client.set_source_filter_enabled(source, "Face Swap", True)
    size = "x".join(map(str, on["size"]))
    r, p, s = on["render_ms"], on["parent_render_ms"], on["stage_ms"]
    if on["grab"].startswith("async"):
        c, v = on["copy_ms"], on["convert_ms"]
        grab = (f"filter_video copy p50 {c['p50']:.2f} / p95 {c['p95']:.2f}, conversion "
                f"thread p50 {v['p50']:.1f}")
    else:
        grab = (f"parent render p50 {p['p50']:.2f}, gs_stage_texture p50 {s['p50']:.2f} / "
                f"p95 {s['p95']:.2f}")
    line = (f"{source} {size} [{on['grab']}]: video_render p50 {r['p50']:.2f} / p95 "
            f"{r['p95']:.2f} ms (n={r['n']}; {grab}); in {settle_s:.0f} s: "
            f"{counts['frames_in']} frames handed over, {counts['frames_not_grabbed']} left alone, "
            f"{counts['frames_out']} swapped; worker {on['fps']} fps, "
            f"{on['model']} latency p50 {on['latency_ms']['p50']} ms; OBS avg frame "
            f"{on['obs_frame_ms']:.2f} ms with the filter, {off['obs_frame_ms']:.2f} ms without, "
            f"{builtin['obs_frame_ms']:.2f} ms with OBS's {BUILTIN} filter instead")
    return {"with_filter": on, "without_filter": off, "builtin_filter": builtin, "line": line}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texrender", action="store_true",
                        help="media sources through the texrender path too")
    parser.add_argument("--model", help="swap model (default: the built-in persona)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: automatic)")
    args = parser.parse_args(argv)
    env = {"FACE_SWAP_ASYNC_FRAMES": "0"} if args.texrender else {}
    settings = {"label": False, "threads": args.threads,
                **({"model": str(Path(args.model).resolve())} if args.model else {})}
    with tempfile.TemporaryDirectory(prefix="obs_bench_") as tmp:
        files = {**write_bench_images(Path(tmp)), **write_bench_clips(Path(tmp))}
        sources, scenes = [], []
        for name, path in files.items():
            source = name.capitalize()
            make = media_source if path.suffix == ".mp4" else image_source
            sources.append(make(source, path, [face_swap_filter(settings=settings),
                                               builtin_filter()]))
            scenes.append(scene(f"Scene {name}", [scene_item(source, 1, scale=0.5)]))
        with ObsSession(Path(tmp), sources + scenes, env=env) as obs:
            wait_for(lambda: obs.status_file.exists(), 60, "status file")
            for name in files:
                print(measure(obs, f"Scene {name}", name.capitalize())["line"], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

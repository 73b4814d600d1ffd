"""`python -m core bench`: how fast the real-time path is, stage by stage, on this machine.

Frames go through the same SwapService (worker thread, one-slot mailbox, pipeline) that
the OBS filter uses. Per-stage times come from the pipeline; the swap network is also
timed alone on the same session, so `overhead_ratio` (end-to-end frame time / model time)
says how much the engine adds around the model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from core import SAMPLES_DIR, runtime
from core.commands.bench_dfm import BenchDfmConfig, ensure_bench_dfm, macs
from core.commands.options import add_tuning, bounded, frame_size, setting, tuned
from core.errors import InputError
from core.imageio import check_input_file, read_bgr, read_video_frames
from core.service import SwapService, default_factory
from core.settings import SwapSettings
from core.worker import percentile

HELP = "benchmark the swap path: per-stage ms, fps, latency, model share"
SYNTHETIC_IMAGE = SAMPLES_DIR / "astronaut.png"
BENCH_DFM = "bench-dfm"  # --model alias: the generated bench DFM in the user cache
SYNTHETIC_FRAMES = 16  # distinct synthetic frames, cycled
HEADTURN_PORTRAITS = (SAMPLES_DIR / "astronaut.png",
                      SAMPLES_DIR / "grace_hopper.jpg")
HEADTURN_SHEET = Path("out") / "headturn" / "contact_sheet.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="persona:default",
                        help=f"registry name, model path, or {BENCH_DFM!r} (generated SAEHD-224"
                             "-like DFM with random weights)")
    parser.add_argument("--reference", default="", help="reference portrait (persona/inswapper)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda:N, tensorrt:N, dml:N, coreml")
    parser.add_argument("--threads", type=setting("threads"), default=0,
                        help="CPU threads (0 = default)")
    parser.add_argument("--size", type=frame_size, default=(1280, 720),
                        help="frame size WxH (default 1280x720, at most 7680x4320)")
    parser.add_argument("--frames", type=bounded(int, 1, 1_000_000), default=100,
                        help="frames to measure")
    parser.add_argument("--warmup", type=bounded(int, 0, 1000), default=3,
                        help="frames run before measuring")
    parser.add_argument("--input", help="image or video file instead of the synthetic frame")
    parser.add_argument("--input-fps", type=bounded(float, 0.0, 10_000.0), default=0.0,
                        help="feed frames at this rate like a camera (frames are dropped when "
                             "the swap is slower); default: next frame when the last is done")
    parser.add_argument("--model-runs", type=bounded(int, 0, 10_000), default=20,
                        help="runs of the swap network alone for model_ms")
    parser.add_argument("--no-label", action="store_true", help="skip the disclosure label")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_tuning(parser)
    parser.add_argument("--headturn", action="store_true",
                        help="head-turn benchmark: rendered heads turning through yaw "
                             "-80..80 and pitch -45..45, live path against the truth")
    parser.add_argument("--portrait", action="append", default=[], metavar="IMG",
                        help="--headturn: a portrait to turn (repeatable; default: the two "
                             "test photos)")
    parser.add_argument("--photos", metavar="DIR",
                        help="--headturn: real labelled photos instead of renders (a folder "
                             "with truth.json, e.g. ../shared/data/real_turns)")
    parser.add_argument("--step", type=bounded(float, 0.5, 15.0), default=2.0,
                        help="--headturn: degrees between frames (default 2: 60°/s at 30 fps)")
    parser.add_argument("--sheet", default=str(HEADTURN_SHEET),
                        help="--headturn: where the contact sheet PNG goes")
    parser.add_argument("--identity", metavar="DIR",
                        help="identity-lock benchmark (faces=enrolled) on a labelled set, e.g. "
                             "../shared/data/identity; with --input VIDEO also a live clip")
    parser.add_argument("--occlusion", metavar="DIR",
                        help="occlusion benchmark (hands kept in front) on a labelled set, e.g. "
                             "../shared/data/occlusion; with --input VIDEO the live cost")
    parser.add_argument("--clean-clip", metavar="VIDEO",
                        help="--occlusion: lay the set's objects over this clip's uncovered "
                             "face once learned (objects kept on the live path)")
    parser.add_argument("--streams", type=stream_counts, default=None, metavar="N[,N...]",
                        help="with --device triton://HOST:PORT: that many concurrent streams "
                             "on the server's model (e.g. 1,2,4), throughput and latency")
    parser.add_argument("--seconds", type=bounded(float, 1.0, 600.0), default=5.0,
                        help="--streams: seconds per row (default 5)")
    parser.add_argument("--make-bench-dfm", nargs="?", const="", metavar="FOLDER",
                        help="write the bench DFM (default folder: the user cache), print its "
                             "path and exit")


def synthetic_frames(size: tuple[int, int], count: int = SYNTHETIC_FRAMES) -> list[np.ndarray]:
    """BGR frames with a real photo of a face (about a third of the frame high) drifting a
    little from frame to frame, so detection, tracking and swap all do real work."""
    photo = read_bgr(SYNTHETIC_IMAGE, "synthetic input (pass --input FILE instead)")
    width, height = size
    side = max(32, min(int(height * 0.8), width))
    photo = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(count):
        frame = np.full((height, width, 3), 96, np.uint8)
        phase = 2 * np.pi * i / count
        x = int((width - side) / 2 + 0.03 * width * np.sin(phase))
        y = int((height - side) / 2 + 0.02 * height * np.cos(phase))
        x, y = min(max(x, 0), width - side), min(max(y, 0), height - side)
        frame[y:y + side, x:x + side] = photo
        frames.append(frame)
    return frames


def file_frames(path: str, size: tuple[int, int] | None, limit: int) -> list[np.ndarray]:
    """Frames of an image or video file (BGR), resized to `size` when given."""
    check_input_file(Path(path), "input")
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    frames = [image] if image is not None else read_video_frames(path, limit)
    if not frames:
        raise InputError(f"cannot read {path} as an image or a video")
    if size:
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    return frames


def _stats(values: list[float]) -> dict[str, float]:
    """p50, p95 and the mean (what a stage that runs now and then, the identity guard,
    costs per frame amortised)."""
    return {"p50_ms": round(percentile(values, 50), 3), "p95_ms": round(percentile(values, 95), 3),
            "mean_ms": round(float(np.mean(values)) if values else 0.0, 3)}


class _Capture:
    """A pipeline factory that keeps the pipeline it built (to time its model alone)."""

    def __init__(self) -> None:
        self.pipeline: Any = None

    def __call__(self, settings: SwapSettings) -> Any:
        self.pipeline = default_factory(settings)
        return self.pipeline


def _run_closed(service: SwapService, frames: list[np.ndarray], count: int,
                timings: list[dict[str, float]], latency: list[float],
                between: Callable[[int], float] | None = None) -> float:
    """Submit, wait for that frame's result, repeat; returns elapsed seconds, not counting
    the time spent in `between(i)` (called after frame i, while the worker is idle)."""
    start = time.perf_counter()
    paused = 0.0
    for i in range(count):
        if between is not None and i:
            paused += between(i)
        seq = service.submit(frames[i % len(frames)])
        result = service.wait_result(after_seq=seq - 1, timeout=120)
        if result is None:
            raise InputError(f"no result within 120 s for frame {i}")
        timings.append(service.status()["timings"])
        latency.append(result.latency_ms)
    return time.perf_counter() - start - paused


def _run_open(service: SwapService, frames: list[np.ndarray], count: int, fps: float,
              timings: list[dict[str, float]], latency: list[float]) -> float:
    """Submit at `fps` like a camera while sampling each new result's stage times."""
    done = threading.Event()

    before = service.latest_result()  # the warm-up's: not one of these frames

    def sample() -> None:
        seen = before.seq if before is not None else 0
        while not done.is_set():
            result = service.wait_result(after_seq=seen, timeout=0.2)
            if result is not None:
                seen = result.seq
                timings.append(service.status()["timings"])
                latency.append(result.latency_ms)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    seq = 0
    for i in range(count):
        seq = service.submit(frames[i % len(frames)])
        time.sleep(max(0.0, start + (i + 1) / fps - time.perf_counter()))
    service.wait_result(after_seq=seq - 1, timeout=120)
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join(1.0)
    return elapsed


class _ModelAlone:
    """Times the swap network alone on the pipeline's own session, interleaved with the
    frames, so a machine whose speed drifts (shared cores, thermal) affects both sides of
    the overhead ratio alike. No network (the persona): nothing to time."""

    def __init__(self, pipeline: Any, runs: int, frames: int) -> None:
        self.session = getattr(getattr(pipeline, "swapper", None), "session", None)
        self.times: list[float] = []
        self.every = max(1, frames // max(1, runs))
        self.runs = runs
        if self.session is not None and runs > 0:
            self.feed = runtime.dummy_feed(self.session, seed=0)
            runtime.time_runs(self.session, self.feed, 1)

    @property
    def active(self) -> bool:
        return self.session is not None and self.runs > 0

    def run(self, count: int = 1) -> float:
        """Time `count` runs; returns the seconds spent."""
        if not self.active or count < 1:
            return 0.0
        start = time.perf_counter()
        self.times += runtime.time_runs(self.session, self.feed, count)
        return time.perf_counter() - start

    def between(self, frame: int) -> float:
        if frame % self.every == 0 and len(self.times) < self.runs:
            return self.run()
        return 0.0


def run_bench(settings: SwapSettings, frames: list[np.ndarray], count: int, warmup: int = 3,
              input_fps: float = 0.0, model_runs: int = 20) -> dict[str, Any]:
    """Measure `count` frames through a SwapService; returns the report (see module doc)."""
    if count < 1:
        raise ValueError(f"frame count must be >= 1, got {count}")
    capture = _Capture()
    start = time.perf_counter()
    service = SwapService(settings, fmt="bgr", pipeline_factory=capture)
    try:
        service.wait_loaded()
        build_ms = (time.perf_counter() - start) * 1000.0
        _run_closed(service, frames, warmup, [], [])
        alone = _ModelAlone(capture.pipeline, model_runs, count)
        before = service.status()
        timings: list[dict[str, float]] = []
        latency: list[float] = []
        if input_fps > 0:
            alone.run(model_runs // 2)
            elapsed = _run_open(service, frames, count, input_fps, timings, latency)
            alone.run(model_runs - model_runs // 2)
        else:
            elapsed = _run_closed(service, frames, count, timings, latency, alone.between)
        after = service.status()
    finally:
        service.stop()
    done = after["frames_out"] - before["frames_out"]
    stage_names = [k for k in (timings[0] if timings else {}) if k != "total"]
    stages = {name: _stats([t.get(name, 0.0) for t in timings]) for name in stage_names}
    totals = [t.get("total", 0.0) for t in timings]
    mean_total = float(np.mean(totals)) if totals else 0.0
    for name in stage_names:
        share = np.mean([t.get(name, 0.0) for t in timings]) / mean_total if mean_total else 0.0
        stages[name]["share"] = round(float(share), 3)
    stages["total"] = {**_stats(totals), "share": 1.0}
    swapped = sum(1 for t in timings if t.get("swap", 0.0) > 0.0)
    # No swap network (the persona): no model time, so no model share or overhead ratio.
    model_ms = percentile(alone.times, 50) if alone.times else None
    # end to end: submit -> result (hand-over included) when frames go one at a time; with a
    # camera-like input, waiting behind the frame in flight is not overhead: pipeline total
    end_to_end = percentile(totals if input_fps > 0 else latency, 50)
    height, width = frames[0].shape[:2]
    return {
        "model": after["model"],
        "provider": after["provider"],
        "device": settings.device,
        "device_note": after["device_note"],
        "threads": settings.threads or runtime.default_threads(),
        "size": f"{width}x{height}",
        "frames": done,
        "frames_with_swap": swapped,
        "input_fps": input_fps or None,
        "fps": round(done / elapsed, 2) if elapsed > 0 else 0.0,
        "stages": stages,
        "latency_ms": {"p50": round(percentile(latency, 50), 2),
                       "p95": round(percentile(latency, 95), 2)},
        "model_ms": round(model_ms, 3) if model_ms else None,
        "model_share": round(model_ms / end_to_end, 3) if model_ms and end_to_end else None,
        "overhead_ratio": round(end_to_end / model_ms, 3) if model_ms else None,
        "dropped": after["dropped"] - before["dropped"],
        "errors": after["errors"] - before["errors"],
        "last_error": after["last_error"],
        "build_ms": round(build_ms, 1),
        **_served_versus_local(settings, model_ms),
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "onnxruntime": ort.__version__},
    }


def _served_versus_local(settings: SwapSettings, model_ms: float | None) -> dict[str, Any]:
    """For a model on an inference server: the same model file run in this process (CPU),
    timed in the same run, and how many times that the served model takes."""
    from core.target import Target

    if not Target(settings.device).served:
        return {}
    from core.commands.bench_streams import local_ms

    local = local_ms(settings.model)
    return {"in_process_ms": round(local, 3) if local else None,
            "served_ratio": round(model_ms / local, 2) if local and model_ms else None}


def print_table(report: dict[str, Any]) -> None:
    print(f"model {report['model']} on {report['provider'] or 'CPU (OpenCV)'} "
          f"({report['device']}, {report['threads']} threads), {report['size']}, "
          f"{report['frames']} frames ({report['frames_with_swap']} with a face swapped)")
    if report["device_note"]:
        print(f"note: {report['device_note']}")
    print(f"{'stage':<12}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}{'share':>8}")
    for name, s in report["stages"].items():
        print(f"{name:<12}{s['p50_ms']:>10.2f}{s['p95_ms']:>10.2f}{s['mean_ms']:>10.2f}"
              f"{s['share'] * 100:>7.1f}%")
    print(f"fps {report['fps']:.2f}   latency p50 {report['latency_ms']['p50']:.1f} ms, "
          f"p95 {report['latency_ms']['p95']:.1f} ms   dropped {report['dropped']}   "
          f"errors {report['errors']}")
    if report["model_ms"] is None:
        print("no swap network (persona): model share and overhead ratio do not apply")
    else:
        print(f"model alone {report['model_ms']:.2f} ms (onnx session alone), "
              f"{report['model_share'] * 100:.1f}% of a frame, overhead ratio "
              f"{report['overhead_ratio']:.3f}")
    if report.get("served_ratio"):
        print(f"the same model in this process (CPU): {report['in_process_ms']:.2f} ms; "
              f"served: {report['served_ratio']:.2f}x that")
    if report["errors"]:
        print(f"last error: {report['last_error']}")


def run(args: argparse.Namespace) -> int:
    if args.make_bench_dfm is not None:
        folder = args.make_bench_dfm or None
        path = ensure_bench_dfm(folder)
        if not args.json:
            print(path)
        else:
            gmacs = macs(onnx.load(str(path))) / 1e9
            print(json.dumps({"path": str(path), "gmacs": round(gmacs, 2)}))
        return 0
    if args.headturn:
        return _headturn(args)
    if args.identity:
        return _identity(args)
    if args.occlusion:
        return _occlusion(args)
    if args.clean_clip:
        raise InputError("--clean-clip needs --occlusion DIR (the objects laid over it)")
    if args.streams:
        return _streams(args)
    size = args.size
    model = args.model
    if model == BENCH_DFM:
        model = str(ensure_bench_dfm(config=BenchDfmConfig()))
    frames = file_frames(args.input, size, args.frames) if args.input else synthetic_frames(size)
    settings = tuned(SwapSettings(model=model, reference=args.reference, device=args.device,
                                  threads=args.threads, label=not args.no_label), args)
    report = run_bench(settings, frames, args.frames, args.warmup, args.input_fps,
                       args.model_runs)
    return _show(args, report, print_table)


def _show(args: argparse.Namespace, report: dict, printer) -> int:
    """Print a report as one JSON object (--json) or as `printer` lays it out."""
    if args.json:
        print(json.dumps(report))
    else:
        printer(report)
    return 0


def stream_counts(text: str) -> list[int]:
    """"1,2,4" -> [1, 2, 4]; each 1..32."""
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected stream counts like 1,2,4, got {text!r}") from None
    if not counts or not all(1 <= n <= 32 for n in counts):
        raise argparse.ArgumentTypeError(f"stream counts must be within 1..32, got {text!r}")
    return counts


def _streams(args: argparse.Namespace) -> int:
    from core.commands import bench_streams
    from core.target import Target

    if not Target(args.device).served:
        raise InputError("--streams needs --device triton://HOST:PORT (an inference server)")
    report = bench_streams.run_streams(args.device, args.model, args.streams, args.seconds)
    return _show(args, report, bench_streams.print_streams)


def _identity(args: argparse.Namespace) -> int:
    from core.commands import bench_identity

    settings = tuned(SwapSettings(model=args.model, reference=args.reference,
                                  device=args.device, threads=args.threads), args)
    report = bench_identity.run_identity(settings, Path(args.identity),
                                         Path(args.input) if args.input else None)
    return _show(args, report, bench_identity.print_report)


def _occlusion(args: argparse.Namespace) -> int:
    from core.commands import bench_occlusion

    settings = tuned(SwapSettings(model=args.model, reference=args.reference,
                                  device=args.device, threads=args.threads), args)
    sheet = Path(args.sheet).with_name("occlusion.png") if args.sheet == \
        str(HEADTURN_SHEET) else Path(args.sheet)
    report = bench_occlusion.run_occlusion(settings, Path(args.occlusion), sheet,
                                           Path(args.input) if args.input else None,
                                           Path(args.clean_clip) if args.clean_clip else None)
    return _show(args, report, bench_occlusion.print_report)


def _headturn(args: argparse.Namespace) -> int:
    from core.commands import bench_headturn

    model = str(ensure_bench_dfm(config=BenchDfmConfig())) if args.model == BENCH_DFM \
        else args.model
    settings = tuned(SwapSettings(model=model, reference=args.reference, device=args.device,
                                  threads=args.threads), args)
    if args.photos:
        from core.commands import bench_photos

        sheet = Path(args.sheet).with_name("real_turns.png") if args.sheet == \
            str(HEADTURN_SHEET) else Path(args.sheet)
        report = bench_photos.run_photos(settings, Path(args.photos), sheet)
        return _show(args, report, bench_photos.print_report)
    portraits = [Path(p) for p in args.portrait] or list(HEADTURN_PORTRAITS)
    try:
        report = bench_headturn.run_headturn(settings, portraits, args.step, Path(args.sheet))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return _show(args, report, bench_headturn.print_report)

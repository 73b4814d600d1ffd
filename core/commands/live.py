"""`python -m core live`: swap a webcam, a screen region or a video file in real time.

Capture runs on its own thread and hands frames to a SwapService (never waiting for the
model); the main thread shows each new result with an fps/latency overlay in a window, a
video file and/or a virtual camera. A video file is read at its own frame rate, like a
camera, so a slow model drops frames instead of slowing the clock.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from core.commands.options import add_tuning, bounded, frame_size, setting, tuned
from core.commands.stopping import stop_requests
from core.errors import FaceSwapError, InputError, one_line
from core.imageio import check_input_file, make_folder, partial_path
from core.pacing import Pacer
from core.service import SwapService
from core.settings import FACE_SELECTIONS, SwapSettings
from core.worker import Result

HELP = "live swap: webcam / screen region / video in, window / file / virtual camera out"
DEFAULT_OUTPUT = Path("out") / "live.mp4"
WINDOW = "face swap (q to quit)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--camera", type=bounded(int, 0, 63), default=0,
                        help="webcam index (default 0)")
    source.add_argument("--screen", metavar="X,Y,W,H", help="capture a screen region (mss)")
    source.add_argument("--input", help="video file played in real time")
    parser.add_argument("--model", default="persona:default", help="registry name or path")
    parser.add_argument("--reference", default="", help="reference portrait (persona/inswapper)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda:N, tensorrt:N, dml:N, coreml")
    parser.add_argument("--threads", type=setting("threads"), default=0,
                        help="CPU threads (0 = default)")
    parser.add_argument("--faces", default="largest", choices=FACE_SELECTIONS)
    parser.add_argument("--size", type=frame_size, help="camera capture size WxH (camera only)")
    parser.add_argument("--output", help=f"write the result video here (default without a "
                                         f"window: {DEFAULT_OUTPUT})")
    parser.add_argument("--no-window", action="store_true", help="no preview window")
    parser.add_argument("--virtual-camera", action="store_true",
                        help="send the result to a virtual camera (needs pyvirtualcam)")
    parser.add_argument("--delay-ms", type=bounded(float, 0.0, 10_000.0), default=0.0,
                        help="output pacing: show each frame this long after capture, evenly "
                             "spaced (match with an audio delay); 0 = as soon as ready")
    parser.add_argument("--seconds", type=bounded(float, 0.0, 1e7), default=0.0,
                        help="stop after this long")
    parser.add_argument("--frames", type=bounded(int, 0, 10**9), default=0,
                        help="stop after this many captures")
    parser.add_argument("--no-overlay", action="store_true", help="no fps/latency text")
    add_tuning(parser)


class Source(Protocol):
    """A frame source: read() -> frame in `fmt` or None at the end."""

    fmt: str
    fps: float
    realtime: bool  # True: the caller paces read() (a file or the screen, not a device)

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


class CaptureSource:
    """OpenCV VideoCapture: a webcam index or a video file."""

    fmt = "bgr"

    def __init__(self, target: int | str, size: tuple[int, int] | None = None) -> None:
        if isinstance(target, str):
            check_input_file(Path(target), "input")
        self.capture = cv2.VideoCapture(target)
        if not self.capture.isOpened():
            what = f"camera {target}" if isinstance(target, int) else f"video {target}"
            raise InputError(f"cannot open {what}")
        if size:
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        self.fps = self.capture.get(cv2.CAP_PROP_FPS) or 30.0
        self.realtime = isinstance(target, str)
        self._first: np.ndarray | None = None
        if self.realtime:  # a file OpenCV "opens" may still hold no frame (a text file)
            ok, self._first = self.capture.read()
            if not ok:
                self.capture.release()
                raise InputError(f"cannot read any frame from {target} (not a video OpenCV "
                                 "can decode)")

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        ok, frame = self.capture.read()
        return frame if ok else None

    def close(self) -> None:
        self.capture.release()


class ScreenSource:
    """A screen region through mss (BGRA, no conversion)."""

    fmt = "bgra"

    def __init__(self, region: str, fps: float = 30.0) -> None:
        try:
            x, y, w, h = (int(v) for v in region.split(","))
        except ValueError:
            raise InputError(f"bad --screen {region!r}; expected X,Y,W,H") from None
        if w < 16 or h < 16:
            raise InputError(f"--screen region {w}x{h} too small")
        import mss

        try:
            self.grabber = mss.mss()
            self.grabber.grab({"left": x, "top": y, "width": w, "height": h})
        except Exception as exc:  # mss raises its own ScreenShotError and OS errors
            raise InputError(f"cannot capture the screen region {region}: "
                             f"{one_line(exc)}") from None
        self.region = {"left": x, "top": y, "width": w, "height": h}
        self.fps = fps
        self.realtime = True

    def read(self) -> np.ndarray | None:
        return np.array(self.grabber.grab(self.region))

    def close(self) -> None:
        self.grabber.close()


def gui_available() -> bool:
    """False for opencv-python-headless (no highgui backend), or without a display."""
    try:
        cv2.namedWindow("__probe__", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("__probe__")
        return True
    except cv2.error:
        return False


def open_virtual_camera(width: int, height: int, fps: float):
    try:
        import pyvirtualcam
    except ImportError:
        raise FaceSwapError("--virtual-camera needs pyvirtualcam: pip install "
                            "'obs-face-swap[virtualcam]' (and a virtual camera device)") from None
    try:
        return pyvirtualcam.Camera(width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR)
    except Exception as exc:  # no backend / device: pyvirtualcam raises RuntimeError
        raise FaceSwapError(f"cannot open a virtual camera: {exc}") from None


def overlay(frame: np.ndarray, status: dict) -> np.ndarray:
    """A copy of `frame` with state, fps and latency drawn top-left."""
    out = frame.copy()
    text = (f"{status['state']}  {status['fps']:.1f} fps  "
            f"latency {status['latency_ms']['p50']:.0f}/{status['latency_ms']['p95']:.0f} ms  "
            f"drop {status['dropped']}")
    channels = frame.shape[2]
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
    cv2.rectangle(out, (4, 4), (16 + width, 14 + height + base), (0, 0, 0, 255)[:channels], -1)
    cv2.putText(out, text, (10, 10 + height), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                (0, 255, 0, 255)[:channels], 1, cv2.LINE_AA)
    return out


def _capture_loop(source: Source, service: SwapService, stop: threading.Event,
                  max_frames: int) -> None:
    start, count = time.perf_counter(), 0
    while not stop.is_set():
        frame = source.read()
        if frame is None:
            break
        service.submit(frame)
        count += 1
        if max_frames and count >= max_frames:
            break
        if source.realtime:
            time.sleep(max(0.0, start + count / source.fps - time.perf_counter()))
    stop.set()


def _drained(service: SwapService, seen: int) -> bool:
    """True when every captured frame was processed or dropped and the newest was shown."""
    status = service.status()
    latest = service.latest_result()
    return status["frames_out"] + status["dropped"] >= status["frames_in"] and \
        (latest is None or latest.seq <= seen)


def open_source(args: argparse.Namespace) -> Source:
    if args.screen:
        return ScreenSource(args.screen)
    if args.input:
        return CaptureSource(args.input)
    return CaptureSource(args.camera, args.size)


class TimedWriter:
    """Video file at the source's frame rate that keeps real time: a frame dropped by a slow
    model is filled by repeating the previous one, so the file neither runs fast nor short.
    Written beside its path and renamed over it when released: the path only ever holds a
    finished, playable file (also after Ctrl-C or SIGTERM)."""

    def __init__(self, path: str, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        make_folder(self.path.parent)
        self.partial = partial_path(self.path)
        self.writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                      size)
        if not self.writer.isOpened():
            raise InputError(f"cannot write video {path}")
        self.fps, self.start, self.written = fps, None, 0
        self.last: np.ndarray | None = None

    def write(self, frame: np.ndarray, t_in: float) -> None:
        """Write `frame` (captured at perf_counter time `t_in`) into its slot(s)."""
        if self.start is None:
            self.start = t_in
        slot = int(round((t_in - self.start) * self.fps))
        while self.last is not None and self.written < slot:  # dropped: the last one stays
            self.writer.write(self.last)
            self.written += 1
        self.writer.write(frame)
        self.written += 1
        self.last = frame

    def release(self) -> None:
        self.writer.release()
        if self.written and self.partial.exists():
            os.replace(self.partial, self.path)
        self.partial.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    window = not args.no_window
    if window and not gui_available():
        print("note: this OpenCV has no GUI (opencv-python-headless or no display): no preview "
              "window; writing the result to a file instead")
        window = False
    output = args.output or (None if window or args.virtual_camera else str(DEFAULT_OUTPUT))
    settings = tuned(SwapSettings(model=args.model, reference=args.reference,
                                  device=args.device, threads=args.threads, faces=args.faces),
                     args)
    source = open_source(args)
    service = SwapService(settings, fmt=source.fmt)
    pacer: Pacer[Result] = Pacer(args.delay_ms)
    stop = threading.Event()
    capture = threading.Thread(target=_capture_loop, args=(source, service, stop, args.frames),
                               name="face-swap-capture", daemon=True)
    writer = camera = None
    shown, seen = 0, 0
    try:
        service.wait_loaded()  # frames would only pass through
    except FaceSwapError:
        service.stop()
        source.close()
        raise
    started = time.perf_counter()
    capture.start()
    try:
        with stop_requests() as requested:
            while not requested:
                result = service.wait_result(after_seq=seen, timeout=0.05)
                if result is not None:
                    seen = result.seq
                    pacer.push(result, result.t_in)
                due = pacer.pop()
                if due is not None:
                    status = service.status()
                    frame = due.frame if args.no_overlay else overlay(due.frame, status)
                    bgr = frame if frame.shape[2] == 3 else \
                        cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
                    if output and writer is None:
                        writer = TimedWriter(output, source.fps, (bgr.shape[1], bgr.shape[0]))
                    if writer is not None:
                        writer.write(bgr, due.t_in)
                    if args.virtual_camera:
                        camera = camera or open_virtual_camera(bgr.shape[1], bgr.shape[0],
                                                               source.fps)
                        camera.send(bgr)
                    if window:
                        cv2.imshow(WINDOW, bgr)
                        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                            break
                    shown += 1
                elapsed = time.perf_counter() - started
                if args.seconds and elapsed >= args.seconds:
                    break
                if stop.is_set() and pacer.next_due() is None and _drained(service, seen):
                    break
    finally:
        stop.set()
        capture.join(1.0)
        status = service.status()
        service.stop()
        source.close()
        if writer is not None:
            writer.release()  # a finished, playable file, also when stopped by a signal
        if camera is not None:
            camera.close()
        if window:
            cv2.destroyAllWindows()
    print(f"{status['model'] or status['requested_model']} on {status['provider'] or '-'}: "
          f"{status['frames_in']} captured, {shown} shown, {status['dropped']} dropped, "
          f"{status['errors']} errors, {status['fps']:.1f} fps, latency p50 "
          f"{status['latency_ms']['p50']:.0f} ms p95 {status['latency_ms']['p95']:.0f} ms"
          + (f", {pacer.late} late for the pacing delay" if pacer.enabled else "")
          + (f" -> {output}" if output else ""))
    if status["device_note"]:
        print(f"note: {status['device_note']}")
    requested.raise_it()
    if status["state"] == "error":
        raise FaceSwapError(status["last_error"])
    if status["errors"] and status["errors"] >= status["frames_out"]:
        raise FaceSwapError(f"every frame failed: {status['last_error']}")
    return 0

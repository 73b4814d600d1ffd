"""One frame through every stage: track -> select -> swap -> merge -> on-lost -> label.

The CLI, the benchmark and the OBS worker all run this one class, so they swap the same
way and report the same per-stage timings. The input frame is never modified: it is
copied once and every stage writes into the copy, only inside the face ROI and the label.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.devices import device_note
from core.face import Face
from core.frame import check_frame
from core.label import draw_label
from core.merge import merge
from core.registry import load_swapper, resolve
from core.settings import REBUILD_FIELDS, SwapSettings
from core.swap.base import SwapOutput, Swapper
from core.track import FaceTracker, select_faces

# Settings that need a new swapper or tracker (a rebuild); all others apply live.
STAGES = ("detect", "landmarks", "track", "copy", "align", "swap", "merge", "lost", "label",
          "total")
PIXEL_BLOCKS = 10  # pixelate: blocks across the face, coarse enough to hide identity
PIXELATE_MARGIN = 0.25  # pixelate: extra face size added on each side of the face box


@dataclass
class _Swapped:
    """The last frame's swap results, for on_lost = "hold" / "pixelate"."""

    faces: list[Face]
    outputs: list[SwapOutput]
    time: float
    shape: tuple[int, ...]  # the frame's shape: swaps of another resolution do not apply


def build_swapper(settings: SwapSettings) -> Swapper:
    """The swapper for settings.model via the registry; FaceSwapError when unusable."""
    extra = [Path(settings.models_dir).expanduser()] if settings.models_dir else []
    entry = resolve(settings.model, extra_dirs=extra)
    return load_swapper(entry, settings.device, settings.threads, settings.reference)


def pixelate(frame: np.ndarray, face: Face, blocks: int = PIXEL_BLOCKS) -> None:
    """Coarse mosaic over `face`'s box plus a margin, in place, only inside that box."""
    margin = PIXELATE_MARGIN * face.size
    height, width = frame.shape[:2]
    x0 = max(int(face.box[0] - margin), 0)
    y0 = max(int(face.box[1] - margin), 0)
    x1 = min(int(np.ceil(face.box[2] + margin)), width)
    y1 = min(int(np.ceil(face.box[3] + margin)), height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    region = frame[y0:y1, x0:x1]
    side = max(x1 - x0, y1 - y0) / blocks
    small = cv2.resize(region, (max(1, round((x1 - x0) / side)), max(1, round((y1 - y0) / side))),
                       interpolation=cv2.INTER_AREA)
    region[...] = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)


class Pipeline:
    """A loaded tracker + swapper applied frame by frame.

    `timings` holds the last frame's milliseconds per stage (see STAGES); "align" is the
    swapper's own alignment time when it reports one (else it is part of "swap").
    """

    def __init__(self, settings: SwapSettings) -> None:
        self.settings = settings
        self.swapper = build_swapper(settings)
        self.tracker = FaceTracker(settings, device=settings.device, threads=settings.threads)
        # the swap network's provider; a persona has none, so the landmark model's
        self.provider: str = (self.swapper.provider
                              or self.tracker.mesh.session.get_providers()[0])
        self.device_note: str = device_note(settings.device, self.provider)
        self.model_name: str = self.swapper.name
        self.timings: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.faces: list[Face] = []  # the faces swapped in the last frame
        self._last: _Swapped | None = None

    def update(self, settings: SwapSettings) -> bool:
        """Apply settings that need no reload; False (nothing applied) when a rebuild is due."""
        if any(getattr(settings, f) != getattr(self.settings, f) for f in REBUILD_FIELDS):
            return False
        self.settings = settings
        self.tracker.update(settings)
        return True

    def reset(self) -> None:
        """Forget tracked faces and the held swap (a new video or a scene cut)."""
        self.tracker.reset()
        self.faces = []
        self._last = None

    def process(self, frame: np.ndarray, fmt: str, timestamp: float | None = None) -> np.ndarray:
        """The swapped copy of `frame` (same shape and layout); `timestamp` in seconds
        (default: the monotonic clock) times the "hold" behaviour and the smoothing."""
        start = time.perf_counter()
        check_frame(frame, fmt)
        now = time.monotonic() if timestamp is None else float(timestamp)
        settings = self.settings
        timings = dict.fromkeys(STAGES, 0.0)
        if self._last is not None and self._last.shape != frame.shape:
            self.reset()  # new resolution: old tracks, held swaps and pixelated boxes are void

        faces = self.tracker.process(frame, fmt, timestamp=now)
        for stage, key in (("detect", "detect"), ("landmarks", "landmarks"), ("track", "smooth")):
            timings[stage] = self.tracker.timings.get(key, 0.0)
        selected = select_faces(faces, settings, (frame.shape[1], frame.shape[0]))

        t = time.perf_counter()
        out = frame.copy()
        timings["copy"] = (time.perf_counter() - t) * 1000.0
        outputs = []
        for face in selected:
            t = time.perf_counter()
            swapped = self.swapper.swap(frame, fmt, face, settings)
            timings["swap"] += (time.perf_counter() - t) * 1000.0
            timings["align"] += getattr(self.swapper, "timings", {}).get("align", 0.0)
            t = time.perf_counter()
            merge(out, fmt, face, swapped, settings)
            timings["merge"] += (time.perf_counter() - t) * 1000.0
            outputs.append(swapped)
        timings["swap"] -= timings["align"]
        self.faces = selected

        t = time.perf_counter()
        if selected:
            self._last = _Swapped(selected, outputs, now, frame.shape)
        elif self._last is not None:
            self._on_lost(out, fmt, now, settings)
        timings["lost"] = (time.perf_counter() - t) * 1000.0

        if settings.label:
            t = time.perf_counter()
            draw_label(out, fmt, settings.label_corner)
            timings["label"] = (time.perf_counter() - t) * 1000.0
        timings["total"] = (time.perf_counter() - start) * 1000.0
        self.timings = timings
        return out

    def _on_lost(self, out: np.ndarray, fmt: str, now: float, settings: SwapSettings) -> None:
        """No face to swap this frame: show the original, hold the last swap, or pixelate."""
        last, mode = self._last, settings.on_lost
        if mode == "hold" and (now - last.time) * 1000.0 <= settings.hold_ms:
            for face, swapped in zip(last.faces, last.outputs, strict=True):
                merge(out, fmt, face, swapped, settings)
        elif mode == "pixelate":
            for face in last.faces:
                pixelate(out, face)

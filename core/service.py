"""SwapService: the real-time face swap as a service a host (OBS, the CLI) feeds frames into.

The host submits frames and draws the newest result; it never waits for a model. A Worker
thread runs the current Pipeline. Settings that need no reload are applied live on the
worker thread between two frames. Settings that need a new model or device are built in a
background thread, warmed up on the newest real frame (so first-call costs are paid off
the stream), and swapped in between two frames; until then the old pipeline keeps running
(or frames pass through unchanged). A failed build keeps the old pipeline and reports the
error. Builds are coalesced: settings changed during a build are applied to its result,
or trigger one more build, never a pile of parallel ones; a model on an inference server
that failed to load is tried again every RETRY_BUILD_S. With a model on an inference
server a frame's requests go out from the pipeline's request thread and the worker tracks
the next frame meanwhile (Pipeline.begin / finish, core.worker.Later).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from core import devices, runtime
from core.errors import FaceSwapError, one_line
from core.frame import check_frame, color_channels
from core.settings import SwapSettings
from core.target import Target
from core.worker import Later, Result, Worker

if TYPE_CHECKING:  # imported late at run time (default_factory)
    from core.pipeline import Pipeline

# states a service reports: "loading" -> "ready" | "error" (see status())
WARMUP_SIZE = (640, 360)  # dummy warm-up frame when no real frame has arrived yet
RETRY_BUILD_S = 5.0  # a model on an inference server that failed to load: tried again


def default_factory(settings: SwapSettings) -> Pipeline:
    """core.pipeline.Pipeline(settings), imported late so a broken install is a status error."""
    try:
        from core.pipeline import Pipeline
    except ImportError as exc:
        raise FaceSwapError(f"swap pipeline unavailable: {exc}") from None
    return Pipeline(settings)


class SwapService:
    """Frames in, newest swapped frame out; models load and switch in the background."""

    def __init__(self, settings: SwapSettings, fmt: str = "rgba",
                 pipeline_factory: Callable[[SwapSettings], Pipeline] | None = None) -> None:
        if not isinstance(settings, SwapSettings):
            raise ValueError(f"settings must be SwapSettings, got {type(settings).__name__}")
        check_frame(np.zeros((2, 2, 4 if fmt in ("rgba", "bgra") else 3), np.uint8), fmt)
        self.fmt = fmt
        self._factory = pipeline_factory or default_factory
        self._lock = threading.Lock()
        self._pipeline: Pipeline | None = None  # the installed, fully built and warmed-up pipeline
        self._requested = settings  # newest settings asked for
        self._requested_gen = 0
        self._building = False
        self._state = "loading"
        self._build_error = ""
        self._warning = ""  # a reload that failed while the model before it keeps running
        self._reloading = False
        self._build_ms = 0.0
        self._last_input: np.ndarray | None = None
        self._stopped = False
        self._builder: threading.Thread | None = None
        self._worker = Worker(self._process, name="face-swap-worker")
        self._start_build()

    # --- host side -----------------------------------------------------------------------
    def submit(self, frame: np.ndarray) -> int | None:
        """Hand over a frame (the service owns it now); never blocks, newest wins. Returns
        its input sequence number (results carry it), None if the service is stopped."""
        if self._stopped:
            return None
        check_frame(frame, self.fmt)
        self._last_input = frame
        try:
            return self._worker.submit(frame)
        except RuntimeError:  # stopped by another thread just now: the frame is not wanted
            return None

    def wait_loaded(self, timeout: float | None = None) -> None:
        """Block until the model is loaded. For hosts with nothing to show meanwhile (files,
        benchmarks): frames sent during a load only pass through. FaceSwapError with the
        load's error if it failed, or if it takes longer than `timeout` seconds (None: as
        long as it takes - a first TensorRT engine build can take minutes)."""
        deadline = None if timeout is None else time.perf_counter() + timeout
        while (status := self.status())["state"] == "loading":
            if deadline is not None and time.perf_counter() > deadline:
                raise FaceSwapError(f"model {status['requested_model']} still loading after "
                                    f"{timeout:.0f} s")
            time.sleep(0.01)
        if status["state"] == "error":
            raise FaceSwapError(status["last_error"])

    def wants_frame(self, within_s: float) -> bool:
        """Whether a frame submitted now is worth it (see Worker.wants_frame): hosts skip
        grabbing frames a slow model would never see."""
        return self._worker.wants_frame(within_s)

    def last_input(self) -> np.ndarray | None:
        """The newest frame submitted (the service's own; read it, do not change it)."""
        return self._last_input

    def last_seq(self) -> int:
        """Sequence number of the newest frame submitted (results carry it); 0 before any."""
        return self._worker.last_seq

    def latest_result(self) -> Result | None:
        """Newest output with its sequence number, times and ok flag (see core.worker)."""
        return self._worker.latest()

    def wait_result(self, after_seq: int = 0, timeout: float | None = None) -> Result | None:
        """Block until a result newer than input `after_seq` (for the CLI and tests)."""
        return self._worker.wait_result(after_seq, timeout)

    def apply(self, settings: SwapSettings) -> None:
        """Use `settings` from now on: live if the pipeline can, else by a background build."""
        if not isinstance(settings, SwapSettings):
            raise ValueError(f"settings must be SwapSettings, got {type(settings).__name__}")
        with self._lock:
            if self._stopped:
                return
            self._requested = settings
            self._requested_gen += 1
            self._reloading = False  # new settings: their build's errors are errors
            gen = self._requested_gen
            if self._building:
                return  # the running build picks the newest settings up when it finishes
            if self._pipeline is None:
                self._start_build_locked()
                return
        self._worker.call_soon(lambda: self._apply_live(settings, gen))

    def reload(self) -> None:
        """Build the current settings again (the model file changed on disk). Unlike a new
        setting, a failed reload keeps the running model, with a warning in status()."""
        with self._lock:
            if self._stopped or self._building or self._pipeline is None:
                return
            self._reloading = True
            self._requested_gen += 1
            self._start_build_locked()

    def status(self) -> dict[str, Any]:
        """Everything a host shows: state, model, provider, speed, counts, errors."""
        stats = self._worker.stats()
        with self._lock:
            pipeline, state, requested = self._pipeline, self._state, self._requested
            build_error, build_ms, warning = self._build_error, self._build_ms, self._warning
        provider = pipeline.provider if pipeline is not None else ""
        path = pipeline.swapper.path if pipeline is not None else None
        return {
            "state": state,
            "model": pipeline.model_name if pipeline is not None else "",
            # the file the running model was loaded from ("" for packaged personas)
            "model_file": str(path or ""),
            "requested_model": requested.model,
            "device": requested.device,
            "provider": provider,
            "threads": requested.threads or runtime.default_threads(),
            "device_note": devices.device_note(requested.device, provider),
            "fps": round(stats.fps, 2),
            "latency_ms": {"p50": round(stats.latency_p50_ms, 2),
                           "p95": round(stats.latency_p95_ms, 2)},
            "process_ms": {"p50": round(stats.process_p50_ms, 2),
                           "p95": round(stats.process_p95_ms, 2)},
            "busy_ms": round(stats.busy_ms, 1),  # the frame in process so far (a stall)
            "frames_in": stats.frames_in,
            "frames_out": stats.frames_out,
            "dropped": stats.dropped,
            "errors": stats.errors,
            "last_error": build_error if state == "error" else stats.last_error,
            # a reload that failed, or settings that cannot do what they say (Pipeline.warning)
            "warning": warning or (pipeline.warning if pipeline is not None else ""),
            "build_ms": round(build_ms, 1),
            "timings": dict(pipeline.timings) if pipeline is not None else {},
        }

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop the worker, joined within `timeout` s (True if it ended). A build still running
        after that is discarded when it ends; the rest of `timeout` is spent waiting for it."""
        deadline = time.perf_counter() + timeout
        with self._lock:
            self._stopped = True
            builder = self._builder
        # stopping first, so the worker sees a cancelled frame as cut short, not as an error;
        # then the frame in flight and a warm-up in progress end at their next graph node
        self._worker.stop(timeout=0.0)
        runtime.cancel_runs(self._worker.thread)
        if builder is not None:
            runtime.cancel_runs(builder)
        stopped = self._worker.stop(max(0.0, deadline - time.perf_counter()))
        if builder is not None and builder is not threading.current_thread():
            builder.join(max(0.0, deadline - time.perf_counter()))
        if self._pipeline is not None:
            self._pipeline.close(max(0.0, deadline - time.perf_counter()))
        return stopped

    # --- internals -----------------------------------------------------------------------
    def _process(self, frame: np.ndarray) -> np.ndarray | Later | None:
        pipeline = self._pipeline  # read once: a swap never lands in the middle of a frame
        if pipeline is None:
            return None  # loading, or no usable model: published unchanged, not processed
        if not pipeline.overlaps:
            return pipeline.process(frame, self.fmt)
        swapping = pipeline.begin(frame, self.fmt)  # the next frame is tracked while it is out
        return Later(swapping.future, partial(pipeline.finish, swapping))

    def _apply_live(self, settings: SwapSettings, gen: int) -> None:
        """On the worker thread: live update, or a rebuild when the pipeline says so."""
        with self._lock:
            if gen != self._requested_gen or self._pipeline is None or self._building:
                return  # superseded by newer settings, or a build will take care of them
            pipeline = self._pipeline
        if pipeline.update(settings):
            with self._lock:
                if self._state == "error":  # the live settings are valid again
                    self._state, self._build_error = "ready", ""
            return
        with self._lock:
            if gen == self._requested_gen and not self._building and not self._stopped:
                self._start_build_locked()

    def _start_build(self) -> None:
        with self._lock:
            self._start_build_locked()

    def _start_build_locked(self, retry: bool = False) -> None:
        self._building = True
        if not retry:  # a retry keeps showing the error it tries to get past
            self._state = "loading"
        self._builder = threading.Thread(target=self._build_loop, name="face-swap-build",
                                         daemon=True)
        self._builder.start()

    def _retry_later(self, gen: int) -> None:
        """A model on an inference server did not load (the server down, the model not
        loaded there yet): build it again in RETRY_BUILD_S unless newer settings came, so
        the swap starts by itself once the server can serve it."""
        def retry() -> None:
            with self._lock:
                if not self._stopped and gen == self._requested_gen and not self._building \
                        and self._state == "error":
                    self._start_build_locked(retry=True)

        timer = threading.Timer(RETRY_BUILD_S, retry)
        timer.daemon = True
        timer.start()

    def _warm_up(self, pipeline: Pipeline) -> None:
        frame = self._last_input
        if frame is None:
            frame = np.zeros((WARMUP_SIZE[1], WARMUP_SIZE[0], color_channels(self.fmt)),
                             np.uint8)
        pipeline.process(frame, self.fmt)

    def _build_loop(self) -> None:
        """Build for the newest settings until a build matches them, then install it."""
        with self._lock:
            settings, gen = self._requested, self._requested_gen
        while True:
            start = time.perf_counter()
            try:
                pipeline = self._factory(settings)
                self._warm_up(pipeline)
                error = ""
            except Exception as exc:  # any failure must leave the old pipeline running
                pipeline, error = None, one_line(exc)
            elapsed = (time.perf_counter() - start) * 1000.0
            while True:
                with self._lock:
                    if self._stopped:
                        self._building = False
                        return
                    if gen == self._requested_gen:
                        if pipeline is None and self._reloading and self._pipeline is not None:
                            self._state, self._building = "ready", False
                            self._warning = (f"the model file changed and cannot be loaded "
                                             f"({error}): still running the one before")
                        elif pipeline is None:
                            self._state, self._build_error, self._building = "error", error, False
                            if Target(settings.device).served:
                                self._retry_later(gen)
                        else:
                            self._install_locked(pipeline, elapsed)
                        self._reloading = False
                        return
                    settings, gen = self._requested, self._requested_gen
                # settings changed during the build: live-apply them to the new pipeline if
                # it can take them (checked again under the lock), else build once more
                if pipeline is None or not self._try_update(pipeline, settings):
                    break

    @staticmethod
    def _try_update(pipeline: Pipeline, settings: SwapSettings) -> bool:
        try:
            return bool(pipeline.update(settings))
        except Exception:  # a pipeline that cannot take the settings gets rebuilt
            return False

    def _install_locked(self, pipeline: Pipeline, build_ms: float) -> None:
        self._pipeline = pipeline  # one reference assignment: the next frame uses it whole
        self._state, self._build_error, self._build_ms = "ready", "", build_ms
        self._warning = ""
        self._worker.reset_timings()  # latency of this model, not of frames passed through
        self._building = False

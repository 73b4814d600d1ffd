"""A background thread between a frame source and a consumer that never builds a queue.

The source `submit()`s frames into a one-slot mailbox (a newer frame replaces an unprocessed
one, which counts as dropped); the thread processes the newest frame and publishes the
newest result. So added latency is bounded by one frame plus processing, however slow the
processing is. A frame whose processing raises passes through unchanged and the error is
counted: one bad frame never stops the stream. State the process callable reads can be
changed between two frames on the worker's own thread (call_soon); SwapService installs a
newly loaded model by one reference assignment that the next frame reads.
The process callable must return a new array and leave its input untouched (that is what
makes the pass-through on error truthful), or None when it has nothing to make of the frame
(no model loaded yet): the input is then published unchanged, marked not `processed`.
It may also return `Later`: the slow part of the frame (requests to an inference server)
runs elsewhere, the thread takes the next frame meanwhile (its tracking overlaps the
requests) and publishes the first when its part is done - at most DEPTH frames at once,
results in input order. The next frame is taken just late enough that its own part (its
tracking) ends as the request before it comes back: the freshest frame at the same pace.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np

from core.errors import one_line

DEPTH = 2  # frames in process at once when outputs come Later: one out, the next tracked


@dataclass(frozen=True)
class Later:
    """An output still in the making: `future` runs off the worker thread (None: nothing
    runs), then `finish()` makes the output frame on the worker thread."""

    future: Future | None
    finish: Callable[[], np.ndarray]

    @property
    def ready(self) -> bool:
        return self.future is None or self.future.done()


Process = Callable[[np.ndarray], "np.ndarray | Later | None"]


@dataclass(frozen=True)
class _Out:
    """A frame whose output comes Later, while it is out."""

    later: Later
    source: np.ndarray  # the input frame: published unchanged if the Later fails
    seq: int
    t_in: float  # submitted (the worker's clock)
    start: float  # taken by the thread
    sent: float  # its process call returned


@dataclass(frozen=True)
class Result:
    """One published output frame and where it came from."""

    frame: np.ndarray
    seq: int  # sequence number of the input frame (1, 2, ... in submit order)
    t_in: float  # the worker's clock when the input was submitted
    t_out: float  # ... when the result was published
    ok: bool  # False: processing raised and `frame` is the input, unchanged
    processed: bool = True  # False: nothing processed it (`frame` is the input, unchanged)

    @property
    def latency_ms(self) -> float:
        return (self.t_out - self.t_in) * 1000.0


@dataclass(frozen=True)
class WorkerStats:
    """Counters since start; fps and percentiles over recent frames."""

    frames_in: int
    frames_out: int
    dropped: int  # frames replaced in the mailbox before the thread took them
    errors: int
    last_error: str
    fps: float
    latency_p50_ms: float
    latency_p95_ms: float
    process_p50_ms: float
    process_p95_ms: float
    busy_ms: float  # how long the frame in process has run so far (0 when idle)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def percentile(values: list[float] | deque[float], q: float) -> float:
    """q-th percentile (0..100) of `values`; 0.0 for none (nothing measured yet)."""
    return float(np.percentile(np.fromiter(values, float), q)) if values else 0.0


class Worker:
    """One processing thread fed by a one-slot mailbox; see the module docstring."""

    FPS_WINDOW_S = 10.0  # outputs older than this do not count (a stalled stream reads 0)
    FPS_SAMPLES = 30  # fps over the last 30 outputs: responsive at 60 fps, stable at 2 fps

    def __init__(self, process: Process, name: str = "face-swap-worker",
                 history: int = 120, clock: Callable[[], float] = time.perf_counter) -> None:
        """`clock`: seconds, what every time here is read from (tests step a clock of their
        own; a host never passes one)."""
        if not callable(process):
            raise ValueError(f"process must be callable, got {type(process).__name__}")
        self._process = process
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: tuple[np.ndarray, int, float] | None = None
        self._calls: deque[Callable[[], None]] = deque()
        self._latest: Result | None = None
        self._stopping = False
        self._seq = 0
        self._frames_in = self._frames_out = self._dropped = self._errors = 0
        self._last_error = ""
        self._latency: deque[float] = deque(maxlen=history)
        self._process_ms: deque[float] = deque(maxlen=history)
        self._out_times: deque[float] = deque()
        # clock() since when the thread cannot take a frame (one in process, or DEPTH
        # Later), None while it can; how long that lasted last time: the guess for the next
        self._busy_since: float | None = None
        self._last_s = 0.0
        self._later: deque[_Out] = deque()
        self._begin_s = self._out_s = 0.0  # the last Later: its process call, then its wait
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    # --- producer side -------------------------------------------------------------------
    def submit(self, frame: np.ndarray) -> int:
        """Hand over a frame (the worker owns it now); never blocks. Returns its sequence no."""
        if not isinstance(frame, np.ndarray):
            raise ValueError(f"frame must be a numpy array, got {type(frame).__name__}")
        now = self._clock()
        with self._cond:
            if self._stopping:
                raise RuntimeError("worker is stopped")
            self._seq += 1
            self._frames_in += 1
            if self._pending is not None:
                self._dropped += 1
            self._pending = (frame, self._seq, now)
            self._cond.notify_all()
            return self._seq

    def wants_frame(self, within_s: float) -> bool:
        """Whether a frame made now is worth handing over: the worker takes it within
        `within_s` (it is idle or, if its frame takes as long as the last one did, done with
        it by then) and no frame younger than `within_s` is already waiting for it. A producer
        skips making frames that would only be replaced in the mailbox: a slow model takes
        one frame in many, and grabbing or converting the others costs CPU it needs. The age
        rule bounds the cost when a frame runs longer than the last: one frame per `within_s`
        instead of every frame until the worker is done."""
        with self._cond:
            now = self._clock()
            if self._pending is not None and now - self._pending[2] < within_s:
                return False
            if self._busy_since is None:
                return self._take_at() - now <= within_s
            return self._last_s - (now - self._busy_since) <= within_s

    def _take_at(self) -> float:
        """When the thread takes the next frame (clock(); under the lock): at once, or
        while a Later is out, when its own process call would end as that one is done."""
        if not self._later:
            return 0.0
        if len(self._later) >= DEPTH:
            return float("inf")
        return self._later[-1].sent + self._out_s - self._begin_s

    def reset_timings(self) -> None:
        """Forget the latency and processing-time history (not the counters): a host that
        switches what `process` does (a new model, or one after frames passed through while
        it loaded) reports the new one's times, not a mix."""
        with self._cond:
            self._latency.clear()
            self._process_ms.clear()

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the worker thread before the next frame (state changes without locks)."""
        with self._cond:
            self._calls.append(fn)
            self._cond.notify_all()

    # --- consumer side -------------------------------------------------------------------
    def latest(self) -> Result | None:
        """The newest published result (None before the first)."""
        return self._latest

    def wait_result(self, after_seq: int = 0, timeout: float | None = None) -> Result | None:
        """Block until a result newer than input `after_seq` exists; None on timeout/stop."""
        deadline = None if timeout is None else time.monotonic() + timeout  # real time
        with self._cond:
            while self._latest is None or self._latest.seq <= after_seq:
                if self._stopping:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._latest

    def stats(self) -> WorkerStats:
        with self._cond:
            now = self._clock()
            while self._out_times and now - self._out_times[0] > self.FPS_WINDOW_S:
                self._out_times.popleft()
            times = list(self._out_times)
            fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and \
                times[-1] > times[0] else 0.0
            latency, proc = list(self._latency), list(self._process_ms)
            started = [self._later[0].start] if self._later else []
            if self._busy_since is not None:
                started.append(self._busy_since)
            busy = (now - min(started)) * 1000.0 if started else 0.0
            return WorkerStats(self._frames_in, self._frames_out, self._dropped, self._errors,
                               self._last_error, fps, percentile(latency, 50),
                               percentile(latency, 95), percentile(proc, 50),
                               percentile(proc, 95), busy)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def last_seq(self) -> int:
        """Sequence number of the newest frame handed over (0 before the first)."""
        return self._seq

    @property
    def thread(self) -> threading.Thread:
        """The thread that runs `process` (a host may cancel its model runs at stop)."""
        return self._thread

    def stop(self, timeout: float = 1.0) -> bool:
        """Stop taking frames and join the thread; True if it ended within `timeout` seconds."""
        with self._cond:
            self._stopping = True
            self._pending = None
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- the thread ----------------------------------------------------------------------
    def _record_error(self, where: str, exc: BaseException) -> None:
        with self._cond:
            self._errors += 1
            self._last_error = f"{where}{one_line(exc)}"

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._calls and \
                        not (self._later and self._later[0].later.ready):
                    wait = self._take_at() - self._clock()
                    if self._pending is not None and wait <= 0:
                        break
                    self._cond.wait(wait if self._pending is not None and math.isfinite(wait)
                                    else None)
                if self._stopping:
                    return
                calls = list(self._calls)
                self._calls.clear()
                now = self._clock()
                done = None
                if self._later and self._later[0].later.ready:
                    done = self._later.popleft()
                    self._out_s = now - done.sent
                item = None
                if done is None and self._take_at() <= now:
                    item, self._pending = self._pending, None
                process = self._process
                if item is not None:
                    self._busy_since = now
            for fn in calls:
                try:
                    fn()
                except Exception as exc:  # a failed control call must not kill the stream
                    self._record_error("control: ", exc)
            if done is not None:
                self._handle(done.later.finish, done.source, done.seq, done.t_in,
                             done.start)
            elif item is not None:
                frame, seq, t_in = item
                self._handle(partial(process, frame), frame, seq, t_in, now)

    def _handle(self, run: Callable[[], np.ndarray | Later | None], source: np.ndarray,
                seq: int, t_in: float, start: float) -> None:
        """Publish the output of `run()` (`source`, the input frame, when there is none or it
        raises), or queue it when it comes Later."""
        ok = processed = True
        try:
            out = run()
            if isinstance(out, Later):
                sent = self._clock()
                with self._cond:
                    self._later.append(_Out(out, source, seq, t_in, start, sent))
                    self._begin_s = sent - start
                    # full: it takes a frame again when the oldest is done
                    self._busy_since = None if len(self._later) < DEPTH else \
                        self._later[0].start
                if out.future is not None:  # wake the thread when its part is done
                    out.future.add_done_callback(self._wake)
                return
            if out is None:
                out, processed = source, False
            elif not isinstance(out, np.ndarray):
                raise TypeError(f"process returned {type(out).__name__}, not a numpy array")
        except Exception as exc:  # isolate the stream from any failure in one frame
            with self._cond:
                stopping = self._stopping
            if stopping:
                return  # cut short by stop (a host cancels its model runs): not an error
            self._record_error(f"frame {seq}: ", exc)
            out, ok, processed = source, False, False
        end = self._clock()
        result = Result(out, seq, t_in, end, ok, processed)
        with self._cond:
            self._latest = result
            self._frames_out += 1
            self._latency.append(result.latency_ms)
            self._process_ms.append((end - start) * 1000.0)
            if self._busy_since is not None:
                self._last_s = end - self._busy_since
            self._busy_since = None
            self._out_times.append(end)
            if len(self._out_times) > self.FPS_SAMPLES:
                self._out_times.popleft()
            self._cond.notify_all()

    def _wake(self, _future: Future) -> None:
        with self._cond:
            self._cond.notify_all()

"""SwapService on the real Pipeline (built-in persona, shipped detector and FaceMesh).

A thin subclass of the real Pipeline records which instance processed each frame, whether
its construction had finished, and on which thread, so a model switch can be checked
frame by frame while frames flow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np
import pytest
from conftest import DATA
from doubles import build_dfm, build_slow_chain, save

from core import runtime
from core.errors import FaceSwapError
from core.pipeline import Pipeline
from core.service import SwapService
from core.settings import SwapSettings

SETTINGS = SwapSettings(label=False)


class Recorded(Pipeline):
    """The real Pipeline, plus a log of (instance tag, fully built?, thread name) per frame."""

    def __init__(self, settings, log, tag, gate=None):
        self.complete = False
        self.tag = tag
        self.log = log
        super().__init__(settings)
        if gate is not None:
            assert gate.wait(20), "test gate never opened"
        self.complete = True

    def process(self, frame, fmt, timestamp=None):
        self.log.append((self.tag, self.complete, threading.current_thread().name))
        return super().process(frame, fmt, timestamp)


class Factory:
    """Builds Recorded pipelines, counting builds; an optional gate holds a build open."""

    def __init__(self):
        self.log: list[tuple[int, bool, str]] = []
        self.built: list[SwapSettings] = []
        self.gate: threading.Event | None = None

    def __call__(self, settings):
        self.built.append(settings)
        return Recorded(settings, self.log, len(self.built), self.gate)


@contextmanager
def serving(settings: SwapSettings = SETTINGS, factory: Factory | None = None
            ) -> Iterator[SwapService]:
    """A service for one test, stopped (promptly) however the test ends; a build the
    factory's gate holds open is released first."""
    service = SwapService(settings, fmt="rgba", pipeline_factory=factory)
    try:
        yield service
    finally:
        if factory is not None and factory.gate is not None:
            factory.gate.set()
        assert service.stop()


@pytest.fixture(scope="module")
def frame(astronaut) -> np.ndarray:
    return np.ascontiguousarray(cv2.cvtColor(astronaut, cv2.COLOR_RGB2RGBA))


def wait_state(service, state, frame=None, timeout=30.0):
    """Feed frames (if given) until status()["state"] == state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.status()["state"] == state:
            return service.status()
        if frame is not None:
            service.submit(frame.copy())
        time.sleep(0.02)
    raise AssertionError(f"state stayed {service.status()['state']!r}: {service.status()}")


def run_frames(service, frame, count):
    """Closed loop: submit, wait for that frame's result. Returns the results."""
    results = []
    for _ in range(count):
        service.submit(frame.copy())
        seq = service.status()["frames_in"]
        result = service.wait_result(after_seq=seq - 1, timeout=20)
        assert result is not None and result.seq == seq
        results.append(result)
    return results


def test_loads_in_background_then_swaps(frame):
    with serving() as service:
        assert service.status()["state"] in ("loading", "ready")
        status = wait_state(service, "ready")
        assert status["model"] == "persona:default" and status["provider"]
        results = run_frames(service, frame, 5)
        assert all(r.ok for r in results)
        last = results[-1].frame
        assert last.shape == frame.shape and last.dtype == np.uint8
        assert np.abs(last.astype(int) - frame).sum() > 0  # the face was swapped
        status = service.status()
        assert status["frames_out"] >= 5 and status["errors"] == 0 and status["dropped"] == 0
        assert status["fps"] > 0 and status["latency_ms"]["p95"] >= status["latency_ms"]["p50"]
        assert status["timings"]["total"] > 0 and status["last_error"] == ""


def test_frames_pass_through_while_loading(frame):
    factory = Factory()
    factory.gate = threading.Event()
    with serving(factory=factory) as service:
        for _ in range(3):
            sent = frame.copy()
            service.submit(sent)
            result = service.wait_result(after_seq=service.status()["frames_in"] - 1, timeout=5)
            assert result is not None and result.frame is sent  # unchanged, not delayed
        assert service.status()["state"] == "loading"
        assert service.status()["model"] == ""
        factory.gate.set()
        wait_state(service, "ready")
        assert not np.array_equal(run_frames(service, frame, 2)[-1].frame, frame)
        # the times reported are the model's, not those of the frames passed through
        process_ms = service.status()["process_ms"]
        assert process_ms["p50"] > 1.0, process_ms


def test_wait_loaded_returns_once_ready_and_raises_the_load_error():
    factory = Factory()
    factory.gate = threading.Event()
    with serving(factory=factory) as service:
        with pytest.raises(FaceSwapError, match="still loading after 0 s"):
            service.wait_loaded(timeout=0.2)  # the gate holds the build open
        factory.gate.set()
        service.wait_loaded(timeout=30)
        assert service.status()["state"] == "ready"
    with (serving(SETTINGS.with_changes(model="no-such-model")) as service,
          pytest.raises(FaceSwapError, match="no-such-model")):
        service.wait_loaded(timeout=30)


def test_unknown_model_is_an_error_state_and_passes_frames_through(frame):
    with serving(SETTINGS.with_changes(model="no-such-model")) as service:
        status = wait_state(service, "error")
        assert "no-such-model" in status["last_error"]
        assert "\n" not in status["last_error"]
        result = run_frames(service, frame, 1)[0]
        assert np.array_equal(result.frame, frame)
        # published unchanged and marked so: a host never draws it as a swap (privacy)
        assert result.ok and not result.processed
        service.apply(SETTINGS)  # the user fixes the model: it loads
        assert wait_state(service, "ready")["model"] == "persona:default"


def test_failed_switch_keeps_the_running_model(frame):
    with serving() as service:
        wait_state(service, "ready")
        service.apply(SETTINGS.with_changes(model="no-such-model"))
        status = wait_state(service, "error", frame)
        assert status["model"] == "persona:default" and "no-such-model" in status["last_error"]
        result = run_frames(service, frame, 1)[0]
        assert result.ok and not np.array_equal(result.frame, frame)  # still swapping


def test_live_settings_apply_without_a_rebuild(frame):
    factory = Factory()
    with serving(factory=factory) as service:
        wait_state(service, "ready")
        before = run_frames(service, frame, 2)[-1].frame
        service.apply(SETTINGS.with_changes(opacity=0.3))
        after = run_frames(service, frame, 2)[-1].frame  # the update runs before these frames
        assert len(factory.built) == 1
        assert service.status()["state"] == "ready"
        # a weaker swap sits closer to the original frame
        assert np.abs(after.astype(int) - frame).sum() < np.abs(before.astype(int) - frame).sum()


def test_model_switch_while_frames_flow_is_atomic(frame):
    """A new reference portrait needs a rebuild: frames keep flowing through the old
    pipeline, the new one only ever sees frames after its construction and warm-up, and
    no frame in the closed loop goes without a result."""
    factory = Factory()
    with serving(factory=factory) as service:
        wait_state(service, "ready")
        factory.gate = threading.Event()
        service.apply(SETTINGS.with_changes(reference=str(DATA / "grace_hopper.jpg")))
        run_frames(service, frame, 3)  # the build is held open: old pipeline serves
        assert service.status()["state"] == "loading"
        factory.gate.set()
        results = []
        deadline = time.monotonic() + 30
        while service.status()["state"] != "ready" and time.monotonic() < deadline:
            results += run_frames(service, frame, 1)
        results += run_frames(service, frame, 3)
        seqs = [r.seq for r in results]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap
        assert all(r.ok for r in results)
        assert len(factory.built) == 2
        assert all(complete for _, complete, _ in factory.log)  # never a half-built model
        live = [tag for tag, _, thread in factory.log if thread == "face-swap-worker"]
        switch = live.index(2)
        assert live == [1] * switch + [2] * (len(live) - switch)
        warmups = [tag for tag, _, thread in factory.log if thread == "face-swap-build"]
        assert warmups == [1, 2]  # each pipeline was warmed up before going live


def test_settings_changed_during_a_build_are_coalesced(frame):
    factory = Factory()
    factory.gate = threading.Event()
    with serving(factory=factory) as service:
        for opacity in (0.9, 0.8, 0.7):
            service.apply(SETTINGS.with_changes(opacity=opacity))
        factory.gate.set()
        wait_state(service, "ready", frame)
        assert len(factory.built) == 1  # the live-able changes went onto the first build
        run_frames(service, frame, 1)
        assert service._pipeline.settings.opacity == 0.7


def test_unavailable_device_is_reported_not_hidden(frame):
    with serving(SETTINGS.with_changes(device="cuda:7")) as service:
        status = wait_state(service, "ready")
        assert "cuda:7" in status["device_note"] and "CPU" in status["device_note"]


def test_stop_is_prompt_and_final(frame):
    service = SwapService(SETTINGS, fmt="rgba")
    wait_state(service, "ready")
    service.submit(frame.copy())
    assert service.stop(timeout=1.0)
    assert service.submit(frame.copy()) is None  # ignored after stop: never raises
    service.apply(SETTINGS.with_changes(model="no-such-model"))
    assert service.status()["requested_model"] == "persona:default"  # nothing after stop


class SlowModelPipeline(Pipeline):
    """The real Pipeline behind a model that takes seconds a frame (a chain of MatMuls run
    through core.runtime like every model of the engine)."""

    def __init__(self, settings, session, started):
        super().__init__(settings)
        self.session, self.started, self.frames = session, started, 0

    def process(self, frame, fmt, timestamp=None):
        self.frames += 1
        if self.frames > 1:  # the service's warm-up frame is quick
            self.started.set()
            runtime.run(self.session, {"x": np.ones((256, 256), np.float32)})
        return super().process(frame, fmt, timestamp)


def test_stop_cancels_the_slow_frame_in_flight(frame, tmp_path):
    """Removing a filter (or quitting OBS) mid-frame must not wait out a slow model: the run
    ends at its next graph node and the worker thread is gone within the stop's timeout."""
    path = save(build_slow_chain(nodes=3000, size=256), tmp_path / "slow.onnx")
    session = runtime.get_session(path, "cpu", threads=1)
    # one whole run, timed here: the stop must take well under it on any machine
    full = runtime.time_runs(session, {"x": np.ones((256, 256), np.float32)}, 1)[0] / 1000.0
    started = threading.Event()
    service = SwapService(SETTINGS, fmt="rgba",
                          pipeline_factory=lambda s: SlowModelPipeline(s, session, started))
    service.wait_loaded(timeout=60)
    service.submit(frame.copy())
    assert started.wait(10)
    time.sleep(full / 10)
    begun = time.perf_counter()
    assert service.stop(timeout=full / 2), f"worker still inside the model after {full / 2:.1f} s"
    assert time.perf_counter() - begun < full / 2  # measured 1-2 ms of a 1.1-1.7 s run
    status = service.status()  # a frame cut short by stop is not an error
    assert status["errors"] == 0 and status["last_error"] == "", status


def test_bad_arguments(frame):
    with pytest.raises(ValueError, match="format"):
        SwapService(SETTINGS, fmt="yuv")
    with pytest.raises(ValueError, match="SwapSettings"):
        SwapService({"model": "x"})  # type: ignore[arg-type]
    with serving() as service:
        with pytest.raises(ValueError, match="shape"):
            service.submit(frame[..., :3].copy())
        wait_state(service, "ready")


def test_a_model_file_replaced_in_place_is_reloaded_and_a_broken_one_kept_out(tmp_path,
                                                                              frame):
    model = save(build_dfm(224), tmp_path / "model.dfm")
    with serving(SETTINGS.with_changes(model=str(model))) as service:
        wait_state(service, "ready", frame)
        # overwritten with junk: the reload fails, the running model stays, with a warning
        model.write_bytes(b"not a model any more")
        service.reload()
        status = _wait(lambda: service.status()["warning"] and service.status())
        assert "changed and cannot be loaded" in status["warning"]
        assert status["model"] == "model" and status["state"] == "ready"
        result = run_frames(service, frame, 1)[0]
        assert result.ok and result.processed and not np.array_equal(result.frame, frame)
        # a working file again: reloaded, the warning gone
        save(build_dfm(224, morph=True), model)
        service.reload()
        _wait(lambda: not service.status()["warning"] and service.status()["state"] == "ready")


def _wait(check, timeout: float = 30.0):
    """Poll `check()` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out")

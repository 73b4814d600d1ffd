"""Worker: one-slot mailbox, newest wins, fault isolation, clean stop, atomic switch.

The processing is a real onnxruntime session of a tiny graph (frame + k as uint8), so a
result tells which model produced it. Frames carry their sequence number in pixel 0.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from core import runtime
from core.pacing import Pacer
from core.worker import Later, Worker


def add_frame_model(path, value: int) -> str:
    """Real ONNX graph: uint8 HxWx3 frame -> frame + value (as float, cast back to uint8)."""
    x = helper.make_tensor_value_info("frame", TensorProto.UINT8, ["H", "W", 3])
    y = helper.make_tensor_value_info("out", TensorProto.UINT8, ["H", "W", 3])
    c = helper.make_tensor("c", TensorProto.FLOAT, [1], [float(value)])
    nodes = [helper.make_node("Cast", ["frame"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["f", "c"], ["s"]),
             helper.make_node("Cast", ["s"], ["out"], to=TensorProto.UINT8)]
    graph = helper.make_graph(nodes, "addframe", [x], [y], [c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def onnx_process(path: str):
    session = runtime.get_session(path, "cpu", 1)
    return lambda frame: session.run(None, {"frame": frame})[0]


class SteppedClock:
    """A clock the test steps (Worker's `clock`): frame times without sleeping."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def full_turn(worker: Worker) -> None:
    """Return once the worker thread has been round its loop twice since now: whatever it
    would take or begin without being told more, it has (call_soon runs at the top of a
    round; a call made from one round runs in the next)."""
    done = threading.Event()
    worker.call_soon(lambda: worker.call_soon(done.set))
    assert done.wait(5)


def frame_for(seq: int) -> np.ndarray:
    """A small frame that carries its sequence number (mod 100) in every pixel."""
    return np.full((8, 8, 3), seq % 100, np.uint8)


@pytest.fixture()
def plus1(tmp_path):
    return onnx_process(add_frame_model(tmp_path / "plus1.onnx", 1))


def test_slow_consumer_drops_old_frames_and_newest_wins(plus1):
    """A steady stream into a worker that takes four frames' time per frame: each time it is
    done it takes the newest frame; the ones between were replaced in the mailbox."""
    processed: list[int] = []
    taken, release = threading.Semaphore(0), threading.Semaphore(0)

    def slow(frame):
        processed.append(int(frame[0, 0, 0]))
        taken.release()
        assert release.acquire(timeout=5)
        return plus1(frame)

    worker = Worker(slow)
    try:
        worker.submit(frame_for(1))
        assert taken.acquire(timeout=5)
        for seq in range(2, 41):
            worker.submit(frame_for(seq))
            if seq % 4 == 1:  # four frames later the one in process is done
                release.release()
                assert taken.acquire(timeout=5)  # ... and the newest taken
        release.release()  # 37's end: 40 is taken
        assert taken.acquire(timeout=5)
        release.release()
        last = worker.wait_result(after_seq=39, timeout=5)
        assert last is not None and last.seq == 40  # the newest frame is always processed
        assert int(last.frame[0, 0, 0]) == 41
        assert processed == [*range(1, 38, 4), 40]
        stats = worker.stats()
        # no queue: every frame was either processed once or replaced in the mailbox
        assert stats.frames_in == 40 and stats.dropped == 40 - len(processed)
        assert stats.frames_out + stats.dropped == stats.frames_in
    finally:
        release.release()
        assert worker.stop()


def test_latency_is_one_frame_plus_processing(plus1):
    """Frames arriving while one is processed collapse to the newest: it is processed next."""
    gate = threading.Event()
    started = threading.Event()
    seen: list[int] = []

    def gated(frame):
        seen.append(int(frame[0, 0, 0]))
        started.set()
        gate.wait(5)
        return plus1(frame)

    worker = Worker(gated)
    try:
        worker.submit(frame_for(1))
        assert started.wait(5)
        for seq in range(2, 7):
            worker.submit(frame_for(seq))
        gate.set()
        last = worker.wait_result(after_seq=5, timeout=5)
        assert last is not None and last.seq == 6
        assert seen == [1, 6]  # frames 2..5 never waited in a queue
        assert worker.stats().dropped == 4
    finally:
        assert worker.stop()


def test_exception_in_a_frame_passes_it_through_and_is_counted(plus1):
    calls = {"n": 0}

    def flaky(frame):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise RuntimeError(f"model exploded on call {calls['n']}\nsecond line")
        return plus1(frame)

    worker = Worker(flaky)
    try:
        failed = 0
        for seq in range(1, 31):
            frame = frame_for(seq)
            worker.submit(frame)
            result = worker.wait_result(after_seq=seq - 1, timeout=5)
            assert result is not None and result.seq == seq
            if result.ok:
                assert int(result.frame[0, 0, 0]) == seq % 100 + 1
            else:
                failed += 1
                assert result.frame is frame  # passed through unchanged
        stats = worker.stats()
        assert failed == stats.errors == 10
        assert stats.frames_out == 30
        assert stats.last_error == "frame 30: RuntimeError: model exploded on call 30"
        assert worker.running
    finally:
        assert worker.stop()


def test_nothing_to_make_of_a_frame_publishes_it_unprocessed():
    worker = Worker(lambda frame: None)
    try:
        frame = np.zeros((4, 4, 3), np.uint8)
        seq = worker.submit(frame)
        result = worker.wait_result(after_seq=seq - 1, timeout=5)
        assert result.frame is frame and result.ok and not result.processed
        assert worker.stats().errors == 0
    finally:
        worker.stop()


def test_non_array_result_is_an_error_not_a_crash():
    worker = Worker(lambda frame: [frame])
    try:
        worker.submit(frame_for(1))
        result = worker.wait_result(timeout=5)
        assert result is not None and not result.ok
        assert "returned list" in worker.stats().last_error
    finally:
        assert worker.stop()


def test_stop_joins_promptly_even_mid_frame(plus1):
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slowish(frame):
        started.set()
        assert release.wait(5)  # a frame's work
        finished.set()
        return plus1(frame)

    worker = Worker(slowish)
    worker.submit(frame_for(1))
    assert started.wait(5)  # the frame is being processed
    assert not worker.stop(timeout=0.0)  # stopping; the frame in hand is not cut off
    release.set()
    assert worker.stop(timeout=1.0)
    assert finished.is_set()  # stop waited for the frame in hand, which had started
    assert not worker.running
    with pytest.raises(RuntimeError, match="stopped"):
        worker.submit(frame_for(2))
    assert worker.wait_result(after_seq=5, timeout=0.1) is None


def test_idle_worker_stops(plus1):
    worker = Worker(plus1)
    assert worker.stop(timeout=1.0)


def test_atomic_switch_while_frames_flow(plus1, tmp_path):
    """A model built in the background goes live between two frames: every frame gets a
    result (no gap), each from exactly one complete model, old before new, never mixed."""
    current = [plus1]  # what the worker runs: switched on its own thread by call_soon
    worker = Worker(lambda frame: current[0](frame))
    built = threading.Event()

    def build():
        path = add_frame_model(tmp_path / "plus2.onnx", 2)
        session = runtime.get_session(path, "cpu", 1)
        runtime.warm_up(session)
        worker.call_soon(lambda: current.__setitem__(
            0, lambda frame: session.run(None, {"frame": frame})[0]))
        built.set()

    builder = threading.Thread(target=build)
    models: list[int] = []
    try:
        seq = 0
        while seq < 2000:
            seq += 1
            if seq == 5:
                builder.start()
            frame = frame_for(seq)
            worker.submit(frame)
            result = worker.wait_result(after_seq=seq - 1, timeout=5)
            assert result is not None and result.seq == seq and result.ok
            models.append(int(result.frame[0, 0, 0]) - seq % 100)
            if built.is_set() and models[-1] == 2 and models.count(2) >= 5:
                break
        builder.join(5)
        assert set(models) == {1, 2}
        switch = models.index(2)
        assert models == [1] * switch + [2] * (len(models) - switch)
        assert worker.stats().dropped == 0
    finally:
        assert worker.stop()


def test_call_soon_runs_on_the_worker_thread_between_frames(plus1):
    worker = Worker(plus1, name="test-worker")
    names: list[str] = []
    done = threading.Event()

    def probe():
        names.append(threading.current_thread().name)
        done.set()

    try:
        worker.call_soon(probe)
        assert done.wait(5)  # runs even with no frames flowing
        assert names == ["test-worker"]
        worker.call_soon(lambda: 1 / 0)
        worker.submit(frame_for(3))
        assert worker.wait_result(timeout=5) is not None
        assert worker.stats().last_error.startswith("control: ZeroDivisionError")
    finally:
        assert worker.stop()


def test_wants_frame_predicts_when_a_busy_worker_takes_the_next_frame(plus1):
    """A producer asks before making a frame; the answer comes from recent frame times."""
    gate, started = threading.Event(), threading.Event()
    calls = []
    clock = SteppedClock()

    def slow(frame):
        calls.append(1)
        if len(calls) == 1:
            clock.advance(0.3)  # a typical frame: 0.3 s
        else:
            started.set()
            assert gate.wait(5)
        return plus1(frame)

    worker = Worker(slow, clock=clock)
    try:
        assert worker.wants_frame(0.0)  # idle
        worker.submit(frame_for(1))
        assert worker.wait_result(after_seq=0, timeout=5) is not None
        assert worker.wants_frame(0.0)  # idle again
        worker.submit(frame_for(2))
        assert started.wait(5)
        assert not worker.wants_frame(0.05)  # a ~0.3 s frame has only just begun
        assert worker.wants_frame(1.0)
        gate.set()
        assert worker.wait_result(after_seq=1, timeout=5) is not None
        assert worker.wants_frame(0.0)
    finally:
        gate.set()
        assert worker.stop()


def test_a_frame_running_late_is_fed_one_frame_per_lead_not_every_frame(plus1):
    """Past its predicted end a busy worker would take a frame at once, but a frame already
    waiting and younger than the lead is fresh enough: the producer makes one frame per lead
    instead of one per tick until the worker is done."""
    gate, started = threading.Event(), threading.Event()
    calls = []
    clock = SteppedClock()

    def late(frame):
        calls.append(1)
        if len(calls) == 2:  # the first is quick, the second runs past that guess
            started.set()
            assert gate.wait(5)
        return plus1(frame)

    worker = Worker(late, clock=clock)
    try:
        worker.submit(frame_for(1))
        assert worker.wait_result(after_seq=0, timeout=5) is not None
        worker.submit(frame_for(2))
        assert started.wait(5)
        clock.advance(0.05)
        assert worker.wants_frame(0.2)  # overdue: a frame is wanted now
        worker.submit(frame_for(3))
        assert not worker.wants_frame(0.2)  # frame 3 waits and is fresh
        clock.advance(0.3)
        assert worker.wants_frame(0.2)  # frame 3 is older than the lead: replace it
        gate.set()
        assert worker.wait_result(after_seq=2, timeout=5) is not None
    finally:
        gate.set()
        assert worker.stop()


def test_stats_after_a_run(plus1):
    worker = Worker(plus1)
    try:
        for seq in range(1, 11):
            worker.submit(frame_for(seq))
            worker.wait_result(after_seq=seq - 1, timeout=5)
        stats = worker.stats()
        assert stats.frames_in == stats.frames_out == 10
        assert stats.fps > 0 and stats.latency_p95_ms >= stats.latency_p50_ms > 0
        assert stats.process_p50_ms > 0
        assert set(stats.as_dict()) >= {"fps", "dropped", "errors", "last_error"}
    finally:
        assert worker.stop()


def test_bad_arguments():
    with pytest.raises(ValueError, match="callable"):
        Worker(42)  # type: ignore[arg-type]
    worker = Worker(lambda f: f)
    try:
        with pytest.raises(ValueError, match="numpy array"):
            worker.submit([1, 2, 3])  # type: ignore[arg-type]
    finally:
        worker.stop()


def test_pacer_releases_at_capture_time_plus_delay():
    pacer: Pacer[str] = Pacer(delay_ms=100)
    # results arrive unevenly (20 ms, 90 ms, 10 ms after capture) for captures 33 ms apart
    pacer.push("a", t_in=0.000, now=0.020)
    pacer.push("b", t_in=0.033, now=0.123)
    pacer.push("c", t_in=0.066, now=0.076)
    assert pacer.pop(now=0.099) is None
    assert pacer.pop(now=0.100) == "a"
    assert pacer.pop(now=0.120) is None
    assert pacer.next_due() == pytest.approx(0.133)
    assert pacer.pop(now=0.133) == "b"
    assert pacer.pop(now=0.200) == "c"  # evenly spaced: 100 ms after each capture
    assert pacer.late == 0
    pacer.push("d", t_in=0.2, now=0.35)  # later than its due time: released at once, counted
    assert pacer.pop(now=0.35) == "d" and pacer.late == 1


def test_pacer_skips_to_newest_due_and_off_means_immediate():
    pacer: Pacer[int] = Pacer(delay_ms=50)
    for i in range(5):
        pacer.push(i, t_in=i * 0.01, now=i * 0.01)
    assert pacer.pop(now=1.0) == 4
    off: Pacer[int] = Pacer()
    assert not off.enabled
    off.push(7, t_in=0.0, now=0.0)
    assert off.pop(now=0.0) == 7
    with pytest.raises(ValueError, match="delay"):
        Pacer(delay_ms=-1)


def test_outputs_that_come_later_overlap_the_next_frame_and_keep_their_order(plus1):
    """A process that returns Later (a request out to a server) frees the thread for the
    next frame - its tracking - while the request runs; results come in input order, at most
    DEPTH frames are in process, and a failed request passes its own input through."""
    requests = ThreadPoolExecutor(1)
    events: list[str] = []
    release = {seq: threading.Event() for seq in (1, 2, 3)}
    begun = {seq: threading.Event() for seq in (1, 2, 3)}
    requested = threading.Event()

    def request(frame):
        events.append(f"request {frame[0, 0, 0]}")
        requested.set()
        release[int(frame[0, 0, 0])].wait(5)
        if frame[0, 0, 0] == 3:
            raise RuntimeError("server gone")
        return plus1(frame)

    def begin(frame):
        events.append(f"begin {frame[0, 0, 0]}")
        begun[int(frame[0, 0, 0])].set()
        future = requests.submit(request, frame)
        return Later(future, future.result)

    worker = Worker(begin)
    try:
        worker.submit(frame_for(1))
        assert begun[1].wait(5) and requested.wait(5)
        worker.submit(frame_for(2))
        assert begun[2].wait(5)
        worker.submit(frame_for(3))  # two in process: it waits in the mailbox
        full_turn(worker)
        assert worker.latest() is None and not begun[3].is_set()
        assert events == ["begin 1", "request 1", "begin 2"]  # 2 began while 1 was out
        results = []
        for seq in (1, 2, 3):
            release[seq].set()
            results.append(worker.wait_result(after_seq=seq - 1, timeout=5))
        assert [r.seq for r in results] == [1, 2, 3]
        assert [int(r.frame[0, 0, 0]) for r in results] == [2, 3, 3]  # 3 failed: its input
        assert [r.ok for r in results] == [True, True, False]
        assert worker.stats().errors == 1 and "server gone" in worker.stats().last_error
    finally:
        for event in release.values():
            event.set()
        assert worker.stop()
        requests.shutdown()


def test_while_a_request_is_out_the_next_frame_is_taken_just_in_time(plus1):
    """Once the thread knows a request takes 0.6 s and its own part next to nothing, it
    takes the next frame near the end of the request: a frame handed over meanwhile replaces
    an older one, so the freshest frame is tracked and latency does not grow."""
    requests = ThreadPoolExecutor(2)
    clock = SteppedClock()
    release = {seq: threading.Event() for seq in (1, 2, 4)}
    began = {seq: threading.Event() for seq in (1, 2, 3, 4)}
    begun: list[int] = []

    def request(frame):
        assert release[int(frame[0, 0, 0])].wait(5)
        return plus1(frame)

    def begin(frame):
        begun.append(int(frame[0, 0, 0]))
        began[int(frame[0, 0, 0])].set()
        future = requests.submit(request, frame)
        return Later(future, future.result)

    worker = Worker(begin, clock=clock)
    try:
        worker.submit(frame_for(1))
        assert began[1].wait(5)
        full_turn(worker)  # its request is out (sent at the clock's time)
        clock.advance(0.6)
        release[1].set()
        assert worker.wait_result(after_seq=0, timeout=5).seq == 1  # learns: 0.6 s out
        worker.submit(frame_for(2))
        assert began[2].wait(5)
        full_turn(worker)
        worker.submit(frame_for(3))
        full_turn(worker)
        assert not began[3].is_set()  # the thread is free, but 2 has 0.6 s to go
        clock.advance(0.15)
        worker.submit(frame_for(4))  # 3 is still waiting: replaced
        full_turn(worker)
        assert begun == [1, 2]
        clock.advance(0.45)  # 2 is about done: the next frame is taken now, while it is out
        full_turn(worker)
        assert began[4].wait(5) and begun == [1, 2, 4]
        release[2].set()
        release[4].set()
        assert worker.wait_result(after_seq=3, timeout=5).seq == 4
        assert worker.stats().dropped == 1
    finally:
        for event in release.values():
            event.set()
        assert worker.stop()
        requests.shutdown()

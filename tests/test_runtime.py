"""Session cache, device parsing/enumeration and the visible CPU fallback, on real onnxruntime."""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import onnx
import pytest
from doubles import build_slow_chain, save
from onnx import TensorProto, helper

from core import devices, runtime
from core.cli import main
from core.errors import ModelFileError


def add_model(path, value: float) -> str:
    """A real ONNX graph y = x + value over a dynamic-batch (N, 4) float input."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    c = helper.make_tensor("c", TensorProto.FLOAT, [1], [value])
    graph = helper.make_graph([helper.make_node("Add", ["x", "c"], ["y"])], "add", [x], [y], [c])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


@pytest.fixture()
def model(tmp_path):
    return add_model(tmp_path / "add.onnx", 1.0)  # a fresh path: a session of its own


def test_session_runs_and_is_shared(model):
    a = runtime.get_session(model, "cpu", 1)
    b = runtime.get_session(model, "CPU", 1)
    assert a is b
    assert runtime.get_session(model, "cpu", 2) is not a  # threads are part of the key
    out = a.run(None, {"x": np.zeros((2, 4), np.float32)})[0]
    assert np.array_equal(out, np.ones((2, 4), np.float32))


def test_replaced_file_is_reloaded(model):
    first = runtime.get_session(model, "cpu", 1)
    add_model(model, 5.0)
    os.utime(model, ns=(1, 1))  # a different mtime even on coarse-clock filesystems
    second = runtime.get_session(model, "cpu", 1)
    assert second is not first
    assert second.run(None, {"x": np.zeros((1, 4), np.float32)})[0][0, 0] == 5.0


def test_cpu_session_reports_provider_without_reason(model):
    session, info = runtime.open_session(model, "cpu", 1)
    assert info.provider == session.get_providers()[0] == "CPUExecutionProvider"
    assert info.device == "cpu" and info.reason == ""
    assert info.first_run_ms == 0.0  # only GPU sessions are run once at load
    assert runtime.session_info(session) == info


def _missing_cuda() -> str:
    """A CUDA device this machine does not have (cuda:0 on a CPU-only machine)."""
    have = [d for d in devices.list_devices() if d.kind == "cuda"]
    return f"cuda:{len(have)}"


def test_unavailable_device_falls_back_to_cpu_with_reason(model):
    wanted = _missing_cuda()
    placement = devices.resolve(wanted)
    assert placement.device.kind == "cpu" and placement.reason
    assert wanted in placement.reason and "CPU" in placement.reason
    session, info = runtime.open_session(model, wanted, 1)
    assert session.get_providers()[0] == "CPUExecutionProvider"
    assert info.requested == wanted and info.device == "cpu"
    assert info.reason == placement.reason and info.first_run_ms == 0.0
    assert session.run(None, {"x": np.zeros((1, 4), np.float32)})[0][0, 0] == 1.0


def test_gpu_build_without_a_gpu_blames_the_device_not_the_build(monkeypatch):
    """onnxruntime-gpu where no driver answers (checked for real with a GPU build on this
    machine; CI has the CPU build, so only its provider list is stood in here)."""
    if any(d.kind == "cuda" for d in devices.list_devices()):
        pytest.skip("this machine has a CUDA device")
    monkeypatch.setattr(devices.ort, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                                 "CPUExecutionProvider"])
    reason = devices.resolve("cuda:0").reason
    assert "no cuda device answered" in reason and "CPU" in reason
    assert "not available in this onnxruntime build" not in reason
    if not devices._tensorrt_present():
        assert "libnvinfer" in devices.resolve("tensorrt:0").reason


@pytest.mark.parametrize("text", ["gpu", "cuda:x", "cpu:1", "", "cuda:-1"])
def test_malformed_device_is_a_clear_error(text, model):
    with pytest.raises(devices.DeviceError, match="device"):
        devices.parse_device(text)
    with pytest.raises(devices.DeviceError):
        runtime.open_session(model, text, 1)


def test_parse_device_forms():
    assert devices.parse_device("cuda") == ("cuda", 0)
    assert devices.parse_device(" TensorRT:2 ") == ("tensorrt", 2)
    assert devices.parse_device("coreml") == ("coreml", 0)
    with pytest.raises(ValueError):
        devices.parse_device(0)  # type: ignore[arg-type]


def test_device_list_starts_with_cpu_and_has_unique_ids():
    listed = devices.list_devices()
    assert listed[0].id == "cpu" and listed[0].provider == "CPUExecutionProvider"
    assert listed[0].name
    assert len({d.id for d in listed}) == len(listed)
    for d in listed:
        assert devices.parse_device(d.id) == (d.kind, d.index)


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        runtime.get_session(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(ModelFileError, match="cannot load model"):
        runtime.get_session(bad)


@pytest.fixture(scope="module")
def slow_session(tmp_path_factory):
    path = save(build_slow_chain(size=256), tmp_path_factory.mktemp("slow") / "chain.onnx")
    return runtime.get_session(path, "cpu", threads=1)


def test_cancel_runs_ends_a_run_part_way_and_only_on_that_thread(slow_session, model):
    feed = {"x": np.ones((256, 256), np.float32)}
    outcome: dict[str, object] = {}

    def worker() -> None:
        start = time.perf_counter()
        try:
            runtime.run(slow_session, feed)
            outcome["error"] = None
        except Exception as exc:
            outcome["error"] = str(exc)
        outcome["seconds"] = time.perf_counter() - start
        try:
            runtime.run(slow_session, feed)  # a cancelled thread never runs a model again
        except Exception as exc:
            outcome["later"] = str(exc)

    full = runtime.time_runs(slow_session, feed, 1)[0] / 1000.0  # this thread: not cancelled
    thread = threading.Thread(target=worker)
    thread.start()
    time.sleep(full / 10)
    runtime.cancel_runs(thread)
    thread.join(full + 10)
    assert "terminate" in str(outcome["error"]), outcome
    took = outcome["seconds"]
    # measured 0.10 of the run three times (the full / 10 slept before cancelling, and no more)
    assert took < full / 2, f"cancelled after {took:.2f} s of a {full:.2f} s run"
    assert "terminate" in str(outcome["later"])
    ones = np.ones((1, 4), np.float32)
    assert runtime.run(runtime.get_session(model), {"x": ones})[0][0, 0] == 2.0  # others go on


def test_warm_up_fills_dynamic_dims(model):
    session = runtime.get_session(model, "cpu", 1)
    assert runtime.dummy_feed(session)["x"].shape == (1, 4)  # the dynamic batch dim set to 1
    assert runtime.warm_up(session, runs=2) > 0.0


def test_default_threads_leaves_cores_free():
    cores = os.cpu_count() or 1
    assert 1 <= runtime.default_threads() <= max(1, cores // 2)


def test_devices_command_json(capsys):
    assert main(["devices", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["devices"][0]["id"] == "cpu"
    assert "CPUExecutionProvider" in listed["providers"]


def test_devices_command_checks_a_device(capsys):
    wanted = _missing_cuda()
    assert main(["devices", "--check", wanted]) == 1
    out = capsys.readouterr().out
    assert "using CPU" in out and wanted in out

"""The swap network on an NVIDIA Triton Inference Server (core/triton.py), against a real
local Triton (nvidia-pytriton's tritonserver, tests/triton_env.py) serving the ONNX doubles
through onnxruntime: the same signature checks and pixels as the local models, one-line
errors, and a swap that resumes by itself after the server went away."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import DATA, write_face_clip
from doubles import build_arcface, build_dfm, build_inswapper, save
from obs.harness import (
    ObsSession,
    face_swap_filter,
    image_source,
    missing_tools,
    scene,
    scene_item,
    wait_for,
)
from test_cli_swap import one_line_error, run_cli
from triton_env import TritonServer, self_signed
from tritonclient.grpc import model_config_pb2 as pb

from core import ROOT, triton
from core.errors import FaceSwapError
from core.imageio import read_video_frames
from core.pipeline import Pipeline
from core.service import RETRY_BUILD_S, SwapService
from core.settings import SwapSettings
from core.target import Target
from core.triton import ServerError

ASTRONAUT = DATA / "astronaut.png"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("triton_models")
    save(build_dfm(224), folder / "double_224.dfm")
    save(build_dfm(224), folder / "double_224_slow.dfm")  # answers 0.5 s late
    save(build_dfm(224), folder / "double_224_gone.dfm")  # unloaded by a test
    save(build_dfm(224, morph=True), folder / "double_amp_224.dfm")
    save(build_inswapper(), folder / "inswapper_double.onnx")
    save(build_arcface(), folder / "arcface_double.onnx")
    return folder


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    running = TritonServer(models, tmp_path_factory.mktemp("triton") / "server.log").start()
    yield running
    running.stop()


@pytest.mark.parametrize("model, options", [("double_224", []),
                                            ("double_amp_224", ["--set", "morph=0.3"])])
def test_a_served_dfm_swaps_as_the_same_file_does_locally(server, models, tmp_path, model,
                                                          options):
    remote, local = tmp_path / "remote.png", tmp_path / "local.png"
    done = run_cli("swap", str(ASTRONAUT), "-o", str(remote), "--model", model,
                   "--device", server.device, *options)
    assert done.returncode == 0, done.stderr
    done = run_cli("swap", str(ASTRONAUT), "-o", str(local), "--model",
                   str(next(models.glob(f"{model}.*"))), *options)
    assert done.returncode == 0, done.stderr
    out, ref, original = (cv2.imread(str(p)) for p in (remote, local, ASTRONAUT))
    np.testing.assert_array_equal(out, ref)
    assert (out != original).any(axis=2).mean() > 0.02  # a face was swapped


def test_a_served_video_swap_matches_the_local_one(server, models, tmp_path):
    """A video through a served model - swap_video begins each frame (its tracking) while
    the last one's request is out - comes out frame for frame as the same file run locally
    makes it."""
    clip = write_face_clip(tmp_path / "clip.avi", 12, fourcc="MJPG", drift=4)
    outputs = {}
    for where, model, device in (("remote", "double_224", ["--device", server.device]),
                                 ("local", str(models / "double_224.dfm"), [])):
        outputs[where] = tmp_path / f"{where}.avi"
        done = run_cli("swap", str(clip), "-o", str(outputs[where]), "--model", model,
                       *device)
        assert done.returncode == 0, done.stderr
    remote, local = (read_video_frames(outputs[w]) for w in ("remote", "local"))
    assert len(remote) == len(local) == 12
    for served, here in zip(remote, local, strict=True):
        np.testing.assert_array_equal(served, here)
    source = read_video_frames(clip, 1)[0]
    assert (remote[0] != source).any(axis=2).mean() > 0.02  # a face was swapped


def test_the_server_model_is_checked_like_a_file(server):
    one_line_error(run_cli("swap", str(ASTRONAUT), "-o", "/tmp/never.png", "--model",
                           "nothere", "--device", server.device),
                   f"model 'nothere' is not available on {server.device}")
    one_line_error(run_cli("swap", str(ASTRONAUT), "-o", "/tmp/never.png", "--model",
                           "arcface_double", "--device", server.device),
                   "arcface_double on triton://")
    one_line_error(run_cli("swap", str(ASTRONAUT), "-o", "/tmp/never.png", "--model",
                           "inswapper_double", "--device", server.device),
                   "it needs the same file here too")


def test_a_served_inswapper_swaps_as_the_same_file_does_locally(server, models, tmp_path):
    """The swap network runs on the server; the reference identity is computed here from
    the local file's emap and its ArcFace embedder."""
    remote, local = tmp_path / "remote.png", tmp_path / "local.png"
    common = ["--reference", str(DATA / "grace_hopper.jpg"), "--set", f"models_dir={models}"]
    done = run_cli("swap", str(ASTRONAUT), "-o", str(remote), "--model", "inswapper_double",
                   "--device", server.device, *common)
    assert done.returncode == 0, done.stderr
    done = run_cli("swap", str(ASTRONAUT), "-o", str(local), "--model", "inswapper_double",
                   *common)
    assert done.returncode == 0, done.stderr
    out, ref, original = (cv2.imread(str(p)) for p in (remote, local, ASTRONAUT))
    np.testing.assert_array_equal(out, ref)
    assert (out != original).any(axis=2).mean() > 0.01


def test_a_slow_server_hits_the_request_deadline(server):
    """A request past ?timeout_ms= is an error at once (a dropped frame live), never a wait."""
    one_line_error(run_cli("swap", str(ASTRONAUT), "-o", "/tmp/never.png", "--model",
                           "double_224_slow", "--device", f"{server.device}?timeout_ms=200"),
                   "Deadline Exceeded")
    pipeline = Pipeline(SwapSettings(model="double_224_slow", label=False,
                                     device=f"{server.device}?timeout_ms=1500"))
    frame = np.ascontiguousarray(cv2.imread(str(ASTRONAUT))[..., ::-1])
    pipeline.process_still(frame, "rgb")  # within a longer deadline it swaps
    assert pipeline.timings["network"] >= 500


def test_the_next_frame_is_tracked_while_the_request_is_out(server):
    """With a model on a server, begin() sends the request from the request thread and
    returns: the next frame's tracking runs meanwhile, and the frames finish in order with
    the pixels a frame-by-frame run makes."""
    settings = SwapSettings(model="double_224_slow", label=False,
                            device=f"{server.device}?timeout_ms=3000")
    frame = np.ascontiguousarray(cv2.imread(str(ASTRONAUT))[..., ::-1])
    moved = np.ascontiguousarray(np.roll(frame, 6, axis=1))
    pipeline = Pipeline(settings)
    assert pipeline.overlaps
    first = pipeline.begin(frame, "rgb", timestamp=0.0)
    second = pipeline.begin(moved, "rgb", timestamp=1 / 30)  # tracked: 0.5 s of request left
    assert first.future is not None and not first.future.done()
    assert second.tracked and second.tracked[0].box[0] > first.tracked[0].box[0]
    outputs = [pipeline.finish(first), pipeline.finish(second)]
    assert pipeline.timings["network"] >= 500
    one_by_one = Pipeline(settings)
    for output, image, timestamp in zip(outputs, (frame, moved), (0.0, 1 / 30), strict=True):
        np.testing.assert_array_equal(output, one_by_one.process(image, "rgb", timestamp))


def test_models_on_a_server_that_allows_listing(server):
    """Each listed model is identified from its metadata as a file is: usable swap models
    with what they are, the others with the reason."""
    done = run_cli("models", "--device", server.device, "--json")
    assert done.returncode == 0, done.stderr
    models = {m["name"]: m for m in json.loads(done.stdout)["models"]}
    assert sorted(models) == ["arcface_double", "double_224", "double_224_gone",
                              "double_224_slow", "double_amp_224", "inswapper_double"]
    assert models["double_amp_224"]["kind"] == "dfm" and models["double_amp_224"]["morph"]
    assert "is not a swap model" in models["arcface_double"]["reason"]
    assert "needs the same file here too" in models["inswapper_double"]["reason"]
    done = run_cli("models", "--device", server.device)
    assert done.returncode == 0, done.stderr
    assert "  double_224  DFM 224px\n" in done.stdout


def test_a_model_unloaded_on_the_server_shows_its_error(server):
    """Unloaded while a stream uses it: frames fail (pass through, counted) with the model's
    error as the status; it leaves the listing and a new swap says it is not available."""
    import tritonclient.grpc as grpc

    settings = SwapSettings(model="double_224_gone", device=server.device, label=False)
    frame = np.ascontiguousarray(cv2.imread(str(ASTRONAUT))[..., ::-1])
    service = SwapService(settings, fmt="rgb")
    try:
        service.wait_loaded(60)
        result = service.wait_result(service.submit(frame) - 1, timeout=30)
        assert result.ok and (result.frame != frame).any()
        control = grpc.InferenceServerClient(server.device.removeprefix("triton://"))
        control.unload_model("double_224_gone")
        control.close()
        result = service.wait_result(service.submit(frame) - 1, timeout=30)
        assert not result.ok and (result.frame == frame).all()
        error = service.status()["last_error"]
        assert f"{server.device} model double_224_gone: " in error and "\n" not in error
    finally:
        service.stop()
    done = run_cli("models", "--device", server.device, "--json")
    assert "double_224_gone" not in {m["name"] for m in json.loads(done.stdout)["models"]}
    one_line_error(run_cli("swap", str(ASTRONAUT), "-o", "/tmp/never.png", "--model",
                           "double_224_gone", "--device", server.device),
                   f"model 'double_224_gone' is not available on {server.device}")


def test_unreachable_or_malformed_servers_are_one_line_errors(server):
    gone = f"triton://127.0.0.1:{server.ports[1] + 50}"
    one_line_error(run_cli("swap", str(ASTRONAUT), "-o", "/tmp/never.png", "--model",
                           "double_224", "--device", gone),
                   f"the inference server {gone} refused the connection: is it running?")
    one_line_error(run_cli("models", "--device", gone), "refused the connection: is it running?")
    one_line_error(run_cli("swap", str(ASTRONAUT), "-o", "/tmp/never.png", "--model",
                           "double_224", "--device", "triton://nohost"), "bad server address")
    one_line_error(run_cli("devices", "--check", server.device), "use `models --device`")


def test_network_time_is_its_own_stage(server):
    pipeline = Pipeline(SwapSettings(model="double_224", device=server.device, label=False))
    frame = np.ascontiguousarray(cv2.imread(str(ASTRONAUT))[..., ::-1])
    pipeline.process(frame, "rgb")
    assert pipeline.faces and pipeline.timings["network"] > 0
    assert pipeline.provider == server.device  # what the status line shows
    assert pipeline.swapper.session.transport == "shared memory"  # the server is on this host
    assert Target(server.device).local == "cpu"  # detection and landmarks stay here


def test_the_swap_resumes_by_itself_after_the_server_returns(server):
    pipeline = Pipeline(SwapSettings(model="double_224", device=server.device, label=False))
    frame = np.ascontiguousarray(cv2.imread(str(ASTRONAUT))[..., ::-1])
    swapped = pipeline.process_still(frame, "rgb")
    server.stop()
    try:
        with pytest.raises(ServerError, match=f"^{server.device} model double_224: "):
            pipeline.process_still(frame, "rgb")
    finally:
        server.start()
    np.testing.assert_array_equal(pipeline.process_still(frame, "rgb"), swapped)
    assert pipeline.swapper.session.transport == "shared memory"  # registered again


def test_a_model_whose_server_was_down_at_load_starts_when_it_returns(server):
    """The server is down when the model loads: the service says so, keeps trying every
    RETRY_BUILD_S, and swaps by itself once the server is back."""
    frame = np.ascontiguousarray(cv2.imread(str(ASTRONAUT))[..., ::-1])
    server.stop()
    service = SwapService(SwapSettings(model="double_224", device=server.device, label=False),
                          fmt="rgb")
    try:
        try:
            with pytest.raises(FaceSwapError, match="refused the connection: is it running"):
                service.wait_loaded(30)
        finally:
            server.start()
        assert wait_for(lambda: service.status()["state"] == "ready",
                        RETRY_BUILD_S * 2 + 30, "the model loaded after the server came back")
        result = service.wait_result(service.submit(frame) - 1, timeout=30)
        assert result.ok and (result.frame != frame).any()
    finally:
        service.stop()


def _config(path: Path):
    """A config.pbtxt parsed strictly into Triton's own ModelConfig (unknown fields fail)."""
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(encoding="utf-8"), pb.ModelConfig())


def test_triton_repo_writes_configs_triton_accepts(models, tmp_path):
    out = tmp_path / "repo"
    done = run_cli("triton-repo", str(models / "double_224.dfm"),
                   str(models / "double_amp_224.dfm"), str(models / "inswapper_double.onnx"),
                   "--out", str(out), "--max-batch", "16", "--instances", "2")
    assert done.returncode == 0, done.stderr
    dfm = _config(out / "double_224" / "config.pbtxt")
    assert dfm.backend == "onnxruntime" and dfm.max_batch_size == 16
    assert [(t.name, list(t.dims)) for t in dfm.input] == [("in_face:0", [224, 224, 3])]
    assert [t.name for t in dfm.output] == ["out_face_mask:0", "out_celeb_face:0",
                                            "out_celeb_face_mask:0"]
    assert dfm.dynamic_batching.max_queue_delay_microseconds > 0
    assert dfm.instance_group[0].kind == pb.ModelInstanceGroup.KIND_GPU
    assert dfm.instance_group[0].count == 2
    amp = _config(out / "double_amp_224" / "config.pbtxt")  # morph_value has no batch axis
    assert amp.max_batch_size == 0 and not amp.HasField("dynamic_batching")
    assert [list(t.dims) for t in amp.input] == [[-1, 224, 224, 3], [1]]
    swapper = _config(out / "inswapper_double" / "config.pbtxt")
    assert {t.name for t in swapper.input} == {"target", "source"}
    assert (out / "double_224" / "1" / "model.onnx").read_bytes() == \
        (models / "double_224.dfm").read_bytes()
    one_line_error(run_cli("triton-repo", str(models / "arcface_double.onnx"), "--out",
                           str(out)), "is an ArcFace embedder, not a swap model")
    one_line_error(run_cli("triton-repo", str(models / "double_224.dfm"), "--out", str(out),
                           "--max-batch", "0"), "--max-batch must be within")


def test_an_obs_filter_runs_its_model_on_the_server(server, tmp_path):
    """In a real OBS: the script's "Inference servers" become Device entries; a filter on
    the server swaps (the server as its provider); one whose server does not answer shows
    the error and, in privacy mode, covers the source."""
    if missing_tools():
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"needs {' and '.join(missing_tools())} (obs-studio, xvfb)")
    gone = f"triton://127.0.0.1:{server.ports[1] + 60}"
    served = {"model": "double_224", "device": server.device, "label": False}
    sources = [
        image_source("Served", ASTRONAUT, [face_swap_filter(settings=served)]),
        image_source("Gone", ASTRONAUT, [face_swap_filter(
            settings={**served, "device": gone, "on_lost": "pixelate"})]),
        image_source("Plain", ASTRONAUT),
        scene("Main", [scene_item("Served", 1, scale=0.5),
                       scene_item("Gone", 2, x=320, scale=0.5)]),
        scene("References", [scene_item("Plain", 1)]),
    ]
    servers = [{"value": server.device}, {"value": "triton://no-port"}]
    session = ObsSession(tmp_path / "obs", sources, {"inference_servers": servers})
    with session:
        wait_for(lambda: session.status_file.exists() and session.status(), 60, "status file")
        status = session.wait_filter("Served", lambda f: f["swapping"] and f["frames_out"] > 3,
                                     120, "Served swapping on the server")
        assert status["provider"] == server.device
        plain = session.screenshot("Plain")
        assert (session.screenshot("Served") != plain).any(axis=2).mean() > 0.02
        status = session.wait_filter("Gone", lambda f: f["problem"], 60, "Gone's error")
        assert "refused the connection: is it running?" in status["problem"]
        covered = wait_for(lambda: (shot := session.screenshot("Gone")) is not None
                           and (shot != plain).any(axis=2).mean() > 0.8, 20, "Gone covered")
        assert covered
        served_item = f"double_224  (DFM 224px, on {server.device})"

        def panels():
            before = session.status().get("test_properties", {}).get("built", 0)
            session.client.trigger_hot_key_by_name("face_swap.test_properties")
            return wait_for(lambda: (r := session.status().get("test_properties", {}))
                            .get("built", 0) > before and r, 30, "the panels")

        # the server's models join the model list once the scan has asked it
        report = wait_for(lambda: served_item in (r := panels())["Served/Face Swap"][
            "properties"]["model"]["items"] and r, 60, "the server's models listed")
        items = report["Served/Face Swap"]["properties"]["device"]["items"]
        assert f"{server.device}  (inference server)" in items
        errors = report["script"]["properties"]["server_errors"]  # under the servers' list
        assert errors["visible"] and "bad server address 'triton://no-port'" in errors["label"]
        # the server goes away mid-stream: the error shows, privacy covers, and the swap
        # comes back by itself with the server
        session.client.set_source_filter_settings("Served", "Face Swap",
                                                  {"on_lost": "pixelate"})
        server.stop()
        try:
            status = session.wait_filter("Served", lambda f: f["problem"], 10,
                                         "Served's error after the server stopped")
            assert server.device in status["problem"]
            wait_for(lambda: (session.screenshot("Served") != plain).any(axis=2).mean() > 0.8,
                     20, "Served covered while its server is down")
        finally:
            server.start()
        session.wait_filter("Served", lambda f: f["swapping"] and not f["problem"], 60,
                            "Served swapping again")
    session.assert_clean_exit()


def _served_counts(server, model: str) -> tuple[int, int]:
    """(inferences, executions) of `model` from the server's Prometheus metrics: more
    inferences than executions means requests were batched together."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{server.ports[2]}/metrics", timeout=10) as r:
        text = r.read().decode()
    counts = {}
    for name in ("nv_inference_count", "nv_inference_exec_count"):
        line = next(x for x in text.splitlines() if x.startswith(f'{name}{{model="{model}"'))
        counts[name] = int(float(line.rsplit(" ", 1)[1]))
    return counts["nv_inference_count"], counts["nv_inference_exec_count"]


def test_several_streams_are_batched_by_the_server(server, models):
    before = _served_counts(server, "double_224")
    done = run_cli("bench", "--device", server.device, "--model", "double_224",
                   "--streams", "1,4", "--seconds", "2", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    one, four = report["rows"]
    assert (one["streams"], four["streams"]) == (1, 4) and one["requests"] > 0
    inferences, executions = (a - b for a, b in zip(_served_counts(server, "double_224"),
                                                    before, strict=True))
    assert inferences >= one["requests"] + four["requests"]
    assert executions < inferences  # some requests ran together (dynamic batching)
    assert report["local_ms"] is None  # no local file named double_224 here
    one_line_error(run_cli("bench", "--model", "double_224", "--streams", "2"),
                   "--streams needs --device triton://")


def test_tls_with_certificates_both_ways(models, tmp_path_factory):
    """tritons:// with ?ca= trusting the server's self-signed certificate and cert=&key= a
    client certificate the server requires; without either, or with plain gRPC against the
    TLS port, a one-line error. This server also keeps PyTriton's default restrictions: no
    model listing (said in one line) and no shared memory (tensors over the network)."""
    folder = tmp_path_factory.mktemp("triton_tls")
    cert, key = self_signed(folder)
    client_cert, client_key = self_signed(folder, "client")
    secure = TritonServer(models, folder / "server.log", tls=(cert, key), restricted=True,
                          client_ca=client_cert).start()
    trusted = f"{secure.device}?ca={cert}&cert={client_cert}&key={client_key}"
    try:
        out = folder / "out.png"
        done = run_cli("swap", str(ASTRONAUT), "-o", str(out), "--model", "double_224",
                       "--device", trusted)
        assert done.returncode == 0, done.stderr
        assert (cv2.imread(str(out)) != cv2.imread(str(ASTRONAUT))).any(axis=2).mean() > 0.02
        session = triton.RemoteSession(triton.parse(trusted), "double_224")
        assert session.transport == "network"
        assert triton.parse(trusted).device == trusted  # settings keep every option
        done = run_cli("models", "--device", trusted, "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["models"] is None and "does not allow listing" in report["note"]
        for device in (secure.device, f"{secure.device}?ca={cert}",
                       secure.device.replace("tritons://", "triton://")):
            one_line_error(run_cli("swap", str(ASTRONAUT), "-o", str(out), "--model",
                                   "double_224", "--device", device),
                           "the inference server")
    finally:
        secure.stop()
    one_line_error(run_cli("models", "--device", f"triton://127.0.0.1:1?ca={cert}"),
                   "ca= in")
    one_line_error(run_cli("models", "--device", "tritons://127.0.0.1:1?ca=/nonexistent.pem"),
                   "CA certificate not found")
    one_line_error(run_cli("models", "--device", f"tritons://127.0.0.1:1?cert={client_cert}"),
                   "cert= and key= in")
    one_line_error(run_cli("models", "--device", "triton://127.0.0.1:1?timeout_ms=5"),
                   "timeout_ms in")


def test_bench_times_the_served_model_beside_the_same_file_here(server, models):
    done = subprocess.run([sys.executable, "-m", "core", "bench", "--device", server.device,
                           "--model", "double_224", "--frames", "5", "--model-runs", "5",
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "FACESWAP_MODELS": str(models)})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["stages"]["network"]["p50_ms"] > 0 and report["frames_with_swap"] == 5
    assert report["in_process_ms"] > 0 and report["served_ratio"] > 0

"""The CUDA path agrees with the CPU path: runs only where cuda:0 is usable.

CI has no GPU, so these skip there; run them on a machine with an NVIDIA GPU and
onnxruntime-gpu (`install/setup.sh --gpu`): `.venv/bin/python -m pytest tests/test_gpu.py`.
They load the shipped detector and FaceMesh, DFM and inswapper test doubles, the SAEHD-like
bench DFM and the whole persona pipeline on cuda:0 and compare each with the same work on
the CPU.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import DATA
from doubles import build_arcface, build_dfm, build_inswapper, expected_dfm, save

from core import devices, runtime
from core.align import cut
from core.commands.bench_dfm import ensure_bench_dfm
from core.detect import FaceDetector
from core.frame import to_bgr
from core.landmarks import FaceMesh, roi_from_landmarks
from core.pipeline import Pipeline
from core.service import SwapService
from core.settings import SwapSettings
from core.stills import landmarks_for_image
from core.swap.dfm import DFMSwapper
from core.swap.framing import crop_matrix
from core.swap.inswapper import InswapperSwapper

CUDA = "cuda:0"
CUDA_PROVIDER = "CUDAExecutionProvider"

pytestmark = pytest.mark.skipif(
    bool(devices.resolve(CUDA).reason),
    reason=f"{CUDA} not usable here (needs an NVIDIA GPU and onnxruntime-gpu)")


@pytest.fixture(scope="module")
def face(astronaut):
    found = landmarks_for_image(astronaut)
    assert found is not None
    return found


def test_shipped_models_run_on_cuda_and_agree_with_cpu(astronaut, face):
    on_gpu, on_cpu = FaceDetector("full", device=CUDA), FaceDetector("full")
    session = next(iter(on_gpu._models.values()))[0]
    assert session.get_providers()[0] == CUDA_PROVIDER
    gpu_boxes = [d.box for d in on_gpu.detect(astronaut, "rgb")]
    cpu_boxes = [d.box for d in on_cpu.detect(astronaut, "rgb")]
    assert len(gpu_boxes) == len(cpu_boxes) == 1
    np.testing.assert_allclose(gpu_boxes[0], cpu_boxes[0], atol=1.0)  # px

    roi = roi_from_landmarks(face.landmarks)
    mesh_gpu, mesh_cpu = FaceMesh(CUDA), FaceMesh()
    assert mesh_gpu.session.get_providers()[0] == CUDA_PROVIDER
    points_gpu, presence_gpu = mesh_gpu.run(astronaut, "rgb", roi)
    points_cpu, presence_cpu = mesh_cpu.run(astronaut, "rgb", roi)
    eyes = float(np.linalg.norm(face.points5[0] - face.points5[1]))
    assert np.abs(points_gpu[:, :2] - points_cpu[:, :2]).max() < 0.01 * eyes
    assert abs(presence_gpu - presence_cpu) < 0.01


def test_dfm_double_on_cuda_keeps_the_contract(tmp_path, astronaut, face):
    swapper = DFMSwapper(save(build_dfm(224), tmp_path / "plain.dfm"), device=CUDA)
    assert swapper.provider == CUDA_PROVIDER
    out = swapper.swap(astronaut, "rgb", face, SwapSettings())
    crop = cut(astronaut, crop_matrix(face.landmarks, 224), 224).crop
    bgr = to_bgr(crop, "rgb").astype(np.float32) / 255.0
    expected = np.clip(expected_dfm(bgr[None])[0][..., ::-1] * 255.0, 0, 255)
    assert np.abs(out.crop.astype(np.float32) - expected).max() <= 1.5


def test_inswapper_double_on_cuda_matches_cpu(tmp_path, astronaut, face):
    model = save(build_inswapper(), tmp_path / "inswapper_128.onnx")
    embedder = save(build_arcface(), tmp_path / "w600k_r50.onnx")
    reference = str(DATA / "grace_hopper.jpg")
    gpu = InswapperSwapper(model, embedder, landmarks_for_image, reference=reference, device=CUDA)
    cpu = InswapperSwapper(model, embedder, landmarks_for_image, reference=reference)
    assert gpu.provider == CUDA_PROVIDER
    assert gpu.embedder.get_providers()[0] == CUDA_PROVIDER
    np.testing.assert_allclose(gpu.source, cpu.source, atol=1e-3)
    a = gpu.swap(astronaut, "rgb", face, SwapSettings()).crop.astype(int)
    b = cpu.swap(astronaut, "rgb", face, SwapSettings()).crop.astype(int)
    assert np.abs(a - b).max() <= 2


def test_bench_dfm_network_on_cuda_matches_cpu(tmp_path):
    path = ensure_bench_dfm(tmp_path)
    gpu = runtime.get_session(path, CUDA)
    cpu = runtime.get_session(path)
    assert gpu.get_providers()[0] == CUDA_PROVIDER
    # run once at load (algorithm search), so the first live frame does not pay for it
    assert runtime.session_info(gpu).first_run_ms > 0
    assert runtime.session_info(cpu).first_run_ms == 0
    feed = runtime.dummy_feed(cpu, seed=0)
    for got, want in zip(gpu.run(None, feed), cpu.run(None, feed), strict=True):
        assert got.shape == want.shape
        # TF32 convolutions on the GPU: ~1e-3 of the [0, 1] output range
        assert np.abs(got - want).max() < 2e-2


def test_persona_pipeline_on_cuda_matches_cpu(astronaut):
    frame = np.ascontiguousarray(cv2.cvtColor(astronaut, cv2.COLOR_RGB2RGBA))
    settings = SwapSettings(label=False)
    gpu = Pipeline(settings.with_changes(device=CUDA))
    cpu = Pipeline(settings)
    assert gpu.provider == CUDA_PROVIDER and gpu.device_note == ""
    for _ in range(3):  # the tracker settles the same way on both
        out_gpu = gpu.process(frame.copy(), "rgba")
        out_cpu = cpu.process(frame.copy(), "rgba")
    changed = np.abs(out_cpu.astype(int) - frame).max(axis=2) > 8
    assert changed.sum() > 2000  # the face was swapped
    diff = np.abs(out_gpu.astype(int) - out_cpu.astype(int))
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 8


def test_service_moves_between_cpu_and_cuda_while_running(astronaut):
    frame = np.ascontiguousarray(cv2.cvtColor(astronaut, cv2.COLOR_RGB2RGBA))
    service = SwapService(SwapSettings(label=False), fmt="rgba")

    def settled(provider: str) -> dict:
        for _ in range(400):
            service.submit(frame.copy())
            result = service.wait_result(after_seq=service.status()["frames_in"] - 1,
                                         timeout=20)
            status = service.status()
            if result is not None and result.ok and status["provider"] == provider:
                return status
        raise AssertionError(f"never ran on {provider}: {service.status()}")

    try:
        assert settled("CPUExecutionProvider")["device_note"] == ""
        service.apply(SwapSettings(label=False, device=CUDA))
        status = settled(CUDA_PROVIDER)
        assert status["device"] == CUDA and status["device_note"] == ""
        assert status["errors"] == 0
        service.apply(SwapSettings(label=False))
        assert settled("CPUExecutionProvider")["errors"] == 0
    finally:
        assert service.stop(timeout=2.0)

"""Bench DFM contract, `python -m core bench` and `python -m core live` end to end.

The bench DFM is exercised at a small width (resolution 64) so tests stay fast; the
default SAEHD-224 configuration is checked through its FLOP count formula.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, write_face_clip

from core import runtime
from core.cli import main
from core.commands.bench import synthetic_frames
from core.commands.bench_dfm import BenchDfmConfig, build_bench_dfm, ensure_bench_dfm, macs
from core.commands.options import frame_size
from core.imageio import read_video_frames
from core.registry import identify
from core.stills import landmarks_for_image
from core.track import FaceTracker

SMALL = BenchDfmConfig(resolution=64, ae_dims=32, e_dims=8, d_dims=8, d_mask_dims=4)


@pytest.fixture(scope="module")
def small_dfm(tmp_path_factory) -> Path:
    return ensure_bench_dfm(tmp_path_factory.mktemp("bench"), SMALL)


def test_bench_dfm_has_the_dfm_contract(small_dfm):
    signature = identify(small_dfm)
    assert (signature.kind, signature.resolution, signature.morph) == ("dfm", 64, False)
    session = runtime.get_session(small_dfm, "cpu", 1)
    assert [i.name for i in session.get_inputs()] == ["in_face:0"]
    assert [o.name for o in session.get_outputs()] == [
        "out_face_mask:0", "out_celeb_face:0", "out_celeb_face_mask:0"]
    batch = np.random.default_rng(1).random((2, 64, 64, 3), dtype=np.float32)
    masks, face, celeb_mask = session.run(None, {"in_face:0": batch})
    assert masks.shape == celeb_mask.shape == (2, 64, 64, 1) and face.shape == (2, 64, 64, 3)
    for out in (masks, face, celeb_mask):  # sigmoid outputs, not constant
        assert out.dtype == np.float32 and out.min() > 0.0 and out.max() < 1.0 and out.std() > 0
    # batch items are independent (NHWC handled as a batch, not mixed)
    single = session.run(None, {"in_face:0": batch[1:]})[1]
    np.testing.assert_allclose(single[0], face[1], rtol=1e-4, atol=1e-5)


def test_bench_dfm_amp_variant_uses_morph(tmp_path):
    config = BenchDfmConfig(resolution=64, ae_dims=16, e_dims=4, d_dims=4, d_mask_dims=2,
                            morph=True)
    path = ensure_bench_dfm(tmp_path, config)
    signature = identify(path)
    assert signature.kind == "dfm" and signature.morph
    session = runtime.get_session(path, "cpu", 1)
    x = np.full((1, 64, 64, 3), 0.5, np.float32)
    low = session.run(None, {"in_face:0": x, "morph_value:0": np.array([0.0], np.float32)})[1]
    high = session.run(None, {"in_face:0": x, "morph_value:0": np.array([1.0], np.float32)})[1]
    assert not np.allclose(low, high)


def test_bench_dfm_is_deterministic_and_cached(tmp_path):
    a = build_bench_dfm(SMALL)
    b = build_bench_dfm(SMALL)
    assert a.SerializeToString() == b.SerializeToString()
    path = ensure_bench_dfm(tmp_path, SMALL)
    mtime = path.stat().st_mtime_ns
    assert ensure_bench_dfm(tmp_path, SMALL) == path and path.stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob("*.tmp"))


def expected_macs(c: BenchDfmConfig) -> int:
    """The architecture re-derived by hand: encoder, inter, face decoder, two mask decoders."""
    r, e, ae, d, m = c.resolution, c.e_dims, c.ae_dims, c.d_dims, c.d_mask_dims
    total = sum((r >> (i + 1)) ** 2 * (e << i) * (3 if i == 0 else e << (i - 1)) * 25
                for i in range(4))
    inter = (r // 16) ** 2 * 8 * e * ae + ae * (r // 32) ** 2 * 2 * ae \
        + (r // 32) ** 2 * 8 * ae * 2 * ae * 9
    total += inter * (2 if c.morph else 1)
    ch = 2 * ae
    for level in range(3):
        out, res = d << (3 - level), (r // 16) << level
        total += res * res * 4 * out * ch * 9 + 2 * (2 * res) ** 2 * out * out * 9
        ch = out
    total += (r // 2) ** 2 * 12 * ch * 9
    for _ in range(2):
        ch = 2 * ae
        for i in range(4):
            out, res = m << (3 - i), (r // 16) << i
            total += res * res * 4 * out * ch * 9
            ch = out
        total += r * r * ch
    return total


def test_graph_compute_matches_the_saehd_architecture():
    assert macs(build_bench_dfm(SMALL)) == expected_macs(SMALL)
    default = BenchDfmConfig()
    assert (default.resolution, default.ae_dims, default.e_dims, default.d_dims) == \
        (224, 256, 64, 64)
    assert 20e9 < expected_macs(default) < 40e9  # SAEHD 224 df-ud class: ~27 GMAC per face


def test_bench_dfm_config_validation():
    with pytest.raises(ValueError, match="multiple of 32"):
        BenchDfmConfig(resolution=100)
    with pytest.raises(ValueError, match="ae_dims"):
        BenchDfmConfig(ae_dims=0)


def test_synthetic_frames_hold_a_detectable_face():
    frames = synthetic_frames((640, 360), count=4)
    assert all(f.shape == (360, 640, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[1])  # the face moves a little
    tracker = FaceTracker()
    assert len(tracker.process(frames[0], "bgr")) == 1


def test_frame_size_option():
    assert frame_size("1280x720") == (1280, 720)
    for bad in ("1280", "axb", "10x10", "100000x100000"):
        with pytest.raises(argparse.ArgumentTypeError):
            frame_size(bad)


def _bench_json(capsys, *args) -> dict:
    assert main(["bench", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_persona_json(capsys):
    report = _bench_json(capsys, "--size", "320x240", "--frames", "4", "--warmup", "1")
    assert report["model"] == "persona:default" and report["frames"] == 4
    assert report["frames_with_swap"] == 4 and report["errors"] == 0
    assert report["fps"] > 0 and report["latency_ms"]["p95"] >= report["latency_ms"]["p50"] > 0
    assert {"detect", "landmarks", "swap", "merge", "total"} <= set(report["stages"])
    for stage in report["stages"].values():
        assert stage["p95_ms"] >= stage["p50_ms"] >= 0
    assert report["model_ms"] is None and report["overhead_ratio"] is None  # no network


def test_bench_dfm_json_reports_model_and_overhead(capsys, small_dfm):
    report = _bench_json(capsys, "--model", str(small_dfm), "--size", "320x240",
                         "--frames", "3", "--warmup", "1", "--model-runs", "3")
    assert report["provider"] == "CPUExecutionProvider"
    assert report["model_ms"] > 0 and 0 < report["model_share"] <= 1
    assert report["overhead_ratio"] > 0 and report["frames_with_swap"] == 3
    assert report["stages"]["swap"]["p50_ms"] > 0


def test_bench_table_and_device_fallback(capsys):
    assert main(["bench", "--size", "320x240", "--frames", "3", "--warmup", "1",
                 "--device", "cuda:5"]) == 0
    out = capsys.readouterr().out
    assert "stage" in out and "fps" in out and "overhead ratio" in out
    assert "cuda:5 unavailable, using CPU" in out


def test_bench_open_loop_drops_what_the_worker_cannot_take(capsys):
    """Like a camera: frames come at --input-fps whether or not the worker is free, so a
    faster input than the pipeline drops frames (a closed loop never does); every frame is
    either swapped and sampled once, or dropped."""
    report = _bench_json(capsys, "--size", "320x240", "--frames", "8", "--warmup", "1",
                         "--input-fps", "10000")
    assert report["input_fps"] == 10000 and report["errors"] == 0
    assert report["dropped"] >= 1 and report["frames"] + report["dropped"] == 8
    assert report["frames_with_swap"] == report["frames"]  # the warm-up is not sampled


def test_bench_file_input_and_errors(capsys, tmp_path):
    report = _bench_json(capsys, "--input", str(DATA / "grace_hopper.jpg"), "--size", "300x350",
                         "--frames", "2", "--warmup", "1")
    assert report["size"] == "300x350" and report["frames"] == 2
    assert main(["bench", "--input", str(tmp_path / "missing.png")]) == 2
    assert main(["bench", "--model", "no-such-model", "--frames", "1"]) == 2
    assert "no-such-model" in capsys.readouterr().err


def test_make_bench_dfm_prints_path(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("core.commands.bench_dfm.BenchDfmConfig", lambda: SMALL)
    assert main(["bench", "--make-bench-dfm", str(tmp_path)]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.parent == tmp_path and identify(path).kind == "dfm"


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """A 20-frame 10 fps video of a moving real face."""
    return write_face_clip(tmp_path_factory.mktemp("video") / "face.mp4", 20)


def test_live_from_a_video_file_writes_swapped_frames(capsys, tmp_path, video):
    out = tmp_path / "live.mp4"
    assert main(["live", "--input", str(video), "--output", str(out), "--no-window"]) == 0
    printed = capsys.readouterr().out
    assert "20 captured" in printed and "0 errors" in printed
    written = read_video_frames(out)
    source = read_video_frames(video)
    assert 1 <= len(written) <= 20
    assert written[-1].shape == source[-1].shape
    # the face itself changed (the fps overlay alone would change the frame's mean too)
    x0, y0, x1, y1 = landmarks_for_image(source[-1][..., ::-1]).box.astype(int)
    change = np.abs(written[-1].astype(int) - source[-1]).max(axis=2)[y0:y1, x0:x1]
    assert change.mean() > 8


def test_live_without_gui_says_so_and_falls_back_to_a_file(capsys, tmp_path, video,
                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["live", "--input", str(video), "--frames", "3", "--delay-ms", "50"]) == 0
    printed = capsys.readouterr().out
    if "no GUI" not in printed:
        pytest.skip("this OpenCV has a GUI backend")
    assert (tmp_path / "out" / "live.mp4").is_file()
    assert "late for the pacing delay" in printed


def test_live_input_errors(capsys, tmp_path):
    assert main(["live", "--input", str(tmp_path / "none.mp4"), "--no-window"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["live", "--screen", "0,0,5", "--no-window"]) == 2
    assert "X,Y,W,H" in capsys.readouterr().err
    image = str(DATA / "astronaut.png")
    assert main(["live", "--input", image, "--model", "nope", "--no-window"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb for a screen to capture")
def test_live_screen_region_under_xvfb(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "screen.mp4"
    code = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 640x480x24", sys.executable, "-m", "core", "live",
         "--screen", "0,0,320,240", "--frames", "3", "--output", str(out), "--no-window"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert code.returncode == 0, code.stderr
    frames = read_video_frames(out)
    assert frames and frames[0].shape == (240, 320, 3)


def test_live_virtual_camera_without_pyvirtualcam_is_a_clear_error(capsys, video):
    try:
        import pyvirtualcam  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("pyvirtualcam is installed: the error path cannot be shown")
    assert main(["live", "--input", str(video), "--virtual-camera", "--no-window",
                 "--frames", "2"]) == 2
    assert "pyvirtualcam" in capsys.readouterr().err


def test_live_file_output_keeps_real_time_when_frames_drop(tmp_path):
    from core.commands.live import TimedWriter

    path = tmp_path / "live.mp4"
    writer = TimedWriter(str(path), 10.0, (64, 48))
    frames = [np.full((48, 64, 3), v, np.uint8) for v in (0, 120, 240)]
    for frame, t in zip(frames, (5.0, 5.1, 5.5), strict=True):  # 0.2-0.4 s of drops
        writer.write(frame, t)
    writer.release()
    levels = [int(round(frame.mean() / 120.0)) for frame in read_video_frames(path)]
    assert levels == [0, 1, 1, 1, 1, 2]  # 0.5 s at 10 fps + the last frame; gaps repeated

"""Files in and out of the command line under hostile conditions: outputs are atomic (Ctrl-C
and SIGTERM leave a playable partial video or nothing, never a broken file), oversized
pictures are refused before they are decoded, truncated inputs give one warning line, and a
model producing NaN or infinite values is an error (exit 2), not a "swap"."""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import pytest
from conftest import write_face_clip
from doubles import build_dfm, save

from core import ROOT
from core.imageio import partial_path, read_video_frames

DATA = ROOT / "models" / "samples"


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def lines(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """240 frames of a drifting face: long enough to be stopped half way."""
    return write_face_clip(tmp_path_factory.mktemp("long") / "long.avi", 240, fps=30,
                           fourcc="MJPG")


def start_writing(*argv: str, out: Path) -> subprocess.Popen:
    """`python -m core ARGV` started, once its output is being written (beside `out`)."""
    process = subprocess.Popen([sys.executable, "-m", "core", *argv], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = partial_path(out)
    deadline = time.monotonic() + 120
    while not (partial.exists() and partial.stat().st_size > 50_000):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the command never started writing"
        time.sleep(0.05)
    assert not out.exists()  # nothing at the output path while it is written
    return process


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_video_swap_leaves_a_playable_partial_video(long_clip, tmp_path, sig, code):
    out = tmp_path / "out.mp4"
    process = start_writing("swap", str(long_clip), "-o", str(out), "--no-label", out=out)
    partial = partial_path(out)
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    stopped = [line for line in lines(err) if line.startswith("stopped after")]
    assert len(stopped) == 1 and str(out) in stopped[0], err
    frames = int(stopped[0].split()[2])
    assert 0 < frames < 240
    assert len(read_video_frames(out)) == frames  # playable: every frame it says is there
    assert not partial.exists()


def test_a_failing_video_swap_leaves_no_output(long_clip, tmp_path):
    nan = save(build_dfm(96, poison=float("nan")), tmp_path / "nan.dfm")
    out = tmp_path / "out.mp4"
    result = run_cli("swap", str(long_clip), "-o", str(out), "--model", str(nan))
    assert result.returncode == 2
    errors = [line for line in lines(result.stderr) if line.startswith("error: ")]
    assert errors == ["error: model nan produced NaN values in its face output"], result.stderr
    assert not out.exists() and not partial_path(out).exists()


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_a_model_producing_non_finite_values_is_an_error(tmp_path, poison):
    model = save(build_dfm(96, poison=poison), tmp_path / "broken.dfm")
    out = tmp_path / "out.png"
    result = run_cli("swap", str(DATA / "astronaut.png"), "-o", str(out), "--model", str(model))
    assert result.returncode == 2, result.stderr
    assert lines(result.stderr)[-1].startswith("error: model broken produced")
    assert "values in its" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that says it is width x height (a few hundred bytes: a decompression bomb's
    header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def test_an_oversized_picture_is_refused_before_decoding(tmp_path):
    bomb = _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    start = time.monotonic()
    result = run_cli("detect", str(bomb))
    assert result.returncode == 2 and time.monotonic() - start < 30  # measured 1.5-2.0 s
    assert lines(result.stderr) == [f"error: cannot read image {bomb}: 30000x30000 is more "
                                    "than the 268,435,456 pixels allowed"]


def test_a_truncated_jpeg_gives_one_warning_and_is_used(tmp_path):
    jpeg = tmp_path / "photo.jpg"
    cv2.imwrite(str(jpeg), cv2.imread(str(DATA / "astronaut.png")))
    data = jpeg.read_bytes()
    jpeg.write_bytes(data[: len(data) * 2 // 3])
    result = run_cli("detect", str(jpeg))
    assert result.returncode == 0, result.stderr
    assert lines(result.stderr) == [f"warning: {jpeg} is truncated: using the part that "
                                    "decoded (512x512 image)"]
    assert "1 face(s)" in result.stdout


def test_a_truncated_video_gives_one_warning(long_clip, tmp_path):
    cut = tmp_path / "cut.avi"
    data = long_clip.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    result = run_cli("swap", str(cut), "-o", str(out), "--no-label")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in lines(result.stderr) if line.startswith("warning: ")]
    assert len(warnings) == 1 and "ends early: read" in warnings[0], result.stderr
    assert "of the 240 frames its header announces" in warnings[0]
    assert "[mjpeg" not in result.stderr and "[avi" not in result.stderr  # FFmpeg kept quiet
    assert out.exists()


def test_a_stopped_live_run_finishes_its_video(long_clip, tmp_path):
    out = tmp_path / "live.mp4"
    process = start_writing("live", "--input", str(long_clip), "--no-window", "--output",
                            str(out), out=out)
    partial = partial_path(out)
    process.send_signal(signal.SIGTERM)
    stdout, err = process.communicate(timeout=60)
    assert process.returncode == 143, err
    assert "captured" in stdout and f"-> {out}" in stdout  # the summary still comes
    assert len(read_video_frames(out)) > 0 and not partial.exists()

"""Every command checks its options up front: a bad value is one line and exit code 2, never
a traceback or a hang (issue: bench --threads -3, --size 100000x100000, --set threads=100000,
live --input on a text file named .png)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core import ROOT
from core.cli import main

PHOTO = str(ROOT / "models" / "samples" / "astronaut.png")

CASES = [
    (["bench", "--threads", "-3"], "--threads: -3 is not within 0..64"),
    (["bench", "--size", "100000x100000"], "--size: 100000x100000 is not within 64x64..7680x4320"),
    (["bench", "--size", "big"], "--size: 'big': expected WxH"),
    (["bench", "--frames", "0"], "--frames: 0 is not within 1..1e+06"),
    (["bench", "--headturn", "--step", "0.1"], "--step: 0.1 is not within 0.5..15"),
    (["bench", "--clean-clip", PHOTO], "--clean-clip needs --occlusion DIR"),
    (["live", "--delay-ms", "-1"], "--delay-ms: -1 is not within 0..10000"),
    (["live", "--threads", "x"], "--threads: 'x' is not an int"),
    (["detect", "--bench", "--repeat", "0"], "--repeat: 0 is not within 1..100000"),
    (["detect", "--bench", "--sizes", "640x480,10x10"], "--sizes: 10x10 is not within"),
    (["swap", PHOTO, "-o", "/tmp/x.png", "--set", "threads=100000"],
     "threads=100000; must be within 0..64"),
    (["swap", PHOTO, "-o", "/tmp/x.png", "--set", "max_faces=0"], "max_faces=0; must be"),
]


@pytest.mark.parametrize(("argv", "needle"), CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_bad_options_are_one_line_and_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err


def test_a_text_file_named_png_is_no_video(tmp_path):
    fake = tmp_path / "clip.png"
    fake.write_text("not a picture, not a video")
    result = subprocess.run([sys.executable, "-m", "core", "live", "--input", str(fake),
                             "--no-window", "--output", str(tmp_path / "o.mp4")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot read any frame from" in lines[0], lines
    assert not (tmp_path / "o.mp4").exists()


def test_the_real_entry_point_prints_no_traceback():
    result = subprocess.run([sys.executable, "-m", "core", "bench", "--threads", "-3"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: bench: argument --threads: -3 is not within 0..64"]

"""`python -m core detect`: output shape, exit codes, and the bench mode."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import DATA

from core import ROOT
from core.cli import main


def test_json_output_for_the_astronaut(capsys):
    assert main(["detect", str(DATA / "astronaut.png"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["width"], out["height"]) == (512, 512)
    assert len(out["faces"]) == 1
    face = out["faces"][0]
    x0, y0, x1, y1 = face["box"]
    # measured (177.7, 66.7, 273.4, 175.0): each edge 25-28 px (a quarter face) inside
    assert 150 < x0 < x1 < 300 and 40 < y0 < y1 < 200
    assert 0.5 < face["score"] <= 1.0  # measured 1.0
    assert len(face["points5"]) == 5 and len(face["landmarks"]) == 468
    assert all(len(p) == 3 for p in face["landmarks"])
    assert set(face["pose"]) == {"yaw", "pitch", "roll"}


def test_text_output_has_no_landmarks(capsys):
    assert main(["detect", str(DATA / "grace_hopper.jpg")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("512x600, 1 face(s)")
    assert "points5" in out[1] and "yaw" in out[1] and len(out) == 2


def test_unreadable_input_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    for path in (bad, tmp_path / "missing.jpg"):
        result = subprocess.run([sys.executable, "-m", "core", "detect", str(path)], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and lines[0].startswith("error:")


def test_missing_image_argument(capsys):
    assert main(["detect"]) == 2
    assert "IMAGE" in capsys.readouterr().err


def test_bench_prints_every_stage(capsys):
    assert main(["detect", "--bench", "--sizes", "320x240", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    for stage in ("detect short", "detect full", "landmarks", "smoothing", "align arcface128",
                  "align wholeface224", "tracking path"):
        assert stage in out
    assert main(["detect", "--bench", "--sizes", "big"]) == 2

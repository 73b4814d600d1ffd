"""`python -m core swap` and `demo`: images, videos, and one-line user errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import ROOT, devices
from core.cli import main
from core.imageio import read_video_frames

DATA = Path(__file__).resolve().parent.parent / "models" / "samples"


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    """The real entry point in a fresh interpreter: proves no traceback reaches the user."""
    return subprocess.run([sys.executable, "-m", "core", *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def one_line_error(result: subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert "Traceback" not in result.stderr


def test_unreadable_input_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "photo.png"
    bad.write_text("not a picture")
    one_line_error(run_cli("swap", str(bad), "-o", str(tmp_path / "out.png")),
                   "cannot read input image")


def test_unknown_model_exits_2_with_one_line(tmp_path):
    one_line_error(run_cli("swap", str(DATA / "astronaut.png"), "-o", str(tmp_path / "o.png"),
                           "--model", "no-such-model"), "unknown model")


def test_missing_input_and_unusable_model_exit_2(tmp_path, capsys):
    assert main(["swap", str(tmp_path / "nothing.mp4"), "-o", str(tmp_path / "o.mp4")]) == 2
    assert "no such file" in capsys.readouterr().err
    junk = tmp_path / "model.onnx"
    junk.write_bytes(b"\x00" * 64)
    code = main(["swap", str(DATA / "astronaut.png"), "-o", str(tmp_path / "o.png"),
                 "--model", str(junk)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "model" in err[0]


def test_image_without_face_exits_2(tmp_path, capsys):
    ramp = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    path = tmp_path / "wall.png"
    cv2.imwrite(str(path), cv2.merge([ramp, ramp[:, ::-1], np.full_like(ramp, 90)]))
    assert main(["swap", str(path), "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no face found" in err[0]
    assert not (tmp_path / "o.png").exists()


def test_image_swap_with_reference(tmp_path, capsys):
    out = tmp_path / "swapped.jpg"
    code = main(["swap", str(DATA / "grace_hopper.jpg"), "-o", str(out),
                 "--reference", str(DATA / "astronaut.png")])
    assert code == 0 and "persona:astronaut" in capsys.readouterr().out
    source = cv2.imread(str(DATA / "grace_hopper.jpg"))
    result = cv2.imread(str(out))
    assert result.shape == source.shape
    assert np.abs(result.astype(int) - source.astype(int)).mean() > 0.5


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory, astronaut) -> Path:
    """8 frames, 256x192: the astronaut's face drifting right, written with OpenCV."""
    path = tmp_path_factory.mktemp("clip") / "tiny.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (256, 192))
    bgr = np.ascontiguousarray(astronaut[..., ::-1])
    for i in range(8):
        writer.write(np.ascontiguousarray(bgr[20:212, 100 + 3 * i:356 + 3 * i]))
    writer.release()
    return path


def test_video_swap_writes_every_frame(tiny_clip, tmp_path, capsys):
    out = tmp_path / "swapped.mp4"
    assert main(["swap", str(tiny_clip), "-o", str(out), "--no-label"]) == 0
    captured = capsys.readouterr()
    assert "audio is not copied" in captured.err
    assert "8/8 frames" in captured.out
    frames = read_video_frames(out)
    assert len(frames) == 8 and frames[0].shape == (192, 256, 3)
    source = read_video_frames(tiny_clip, 1)[0]
    # The face changed; a far corner (background) did not beyond codec noise. Measured 24.4
    # in the face; 2.75 in the corner, exactly what re-encoding the untouched source with
    # mp4v gives (OpenCV's FFmpeg, opencv-python-headless 5.0.0.93; 3.4-3.5 in the P-frames
    # after it). The bound was 3 (8 % off); 3.6 is ~1.3x the noise, a changed background
    # (a cover, a misplaced face) is far above it.
    assert np.abs(frames[0][40:120, 90:170].astype(int) - source[40:120, 90:170]).mean() > 3
    assert np.abs(frames[0][150:, :40].astype(int) - source[150:, :40]).mean() < 3.6


def test_video_to_unsupported_container_exits_2(tiny_clip, tmp_path, capsys):
    assert main(["swap", str(tiny_clip), "-o", str(tmp_path / "out.gifv")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_demo_writes_video_and_before_after(tmp_path):
    result = run_cli("demo", "--out", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    video, picture = tmp_path / "demo" / "demo.mp4", tmp_path / "demo" / "before_after.png"
    assert str(video) in result.stdout and str(picture) in result.stdout
    assert len(read_video_frames(video)) == 75  # the demo clip, every frame
    assert "demo: swapped 75/75 frames" in result.stdout
    image = cv2.imread(str(picture))
    assert image is not None and image.shape[1] > 2 * 600


@pytest.mark.parametrize("case", ["directory", "same-file", "folder-is-a-file", "bad-setting"])
def test_path_and_setting_mistakes_exit_2_with_one_line(tmp_path, capsys, case):
    photo = tmp_path / "photo.png"
    photo.write_bytes((DATA / "astronaut.png").read_bytes())
    (tmp_path / "file").write_text("x")
    argv, needle = {
        "directory": ([str(tmp_path), "-o", str(tmp_path / "o.png")], "is a directory"),
        "same-file": ([str(photo), "-o", str(photo)], "is the input file"),
        "folder-is-a-file": ([str(photo), "-o", str(tmp_path / "file" / "o.png")],
                             "cannot create output folder"),
        "bad-setting": ([str(photo), "-o", str(tmp_path / "o.png"), "--set", "blur=-5"],
                        "blur=-5.0; must be within"),
    }[case]
    assert main(["swap", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert photo.read_bytes() == (DATA / "astronaut.png").read_bytes()  # input untouched


def test_unavailable_device_is_a_visible_note(tmp_path, capsys):
    if not devices.resolve("cuda:0").reason:
        pytest.skip("this machine has a usable CUDA device")
    assert main(["swap", str(DATA / "astronaut.png"), "-o", str(tmp_path / "o.png"),
                 "--device", "cuda:0"]) == 0
    err = capsys.readouterr().err
    assert "note: cuda:0 unavailable, using CPU" in err


def _canvas(width: int, height: int, placements: list[tuple[str, int, int, int]]) -> np.ndarray:
    """A plain canvas with test photos pasted at (x, y), each scaled to `side` px."""
    canvas = np.full((height, width, 3), 90, np.uint8)
    for name, x, y, side in placements:
        photo = cv2.resize(cv2.imread(str(DATA / name)), (side, side),
                           interpolation=cv2.INTER_AREA)
        canvas[y:y + side, x:x + side] = photo
    return canvas


def test_a_small_face_in_a_big_picture_is_swapped_as_detect_finds_it(tmp_path, capsys):
    """The still path scans like `detect` (every tile), not like the live tracker (one tile
    per round): a 512 px portrait in the corner of a 4K picture is found and swapped."""
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), _canvas(3840, 2160, [("astronaut.png", 3300, 1600, 512)]))
    assert main(["detect", str(big), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["faces"]
    assert len(found) == 1
    out = tmp_path / "out.png"
    assert main(["swap", str(big), "-o", str(out), "--no-label"]) == 0
    assert "swapped 1 face(s)" in capsys.readouterr().out
    before, after = cv2.imread(str(big)), cv2.imread(str(out))
    x0, y0, x1, y1 = (int(v) for v in found[0]["box"])
    assert np.any(before[y0:y1, x0:x1] != after[y0:y1, x0:x1], axis=2).mean() > 0.3


def test_all_faces_detect_finds_are_swapped(tmp_path, capsys):
    names = ["astronaut.png", "grace_hopper.jpg"] * 3
    group = tmp_path / "group.png"
    cv2.imwrite(str(group), _canvas(1800, 1200, [(n, 600 * (i % 3), 600 * (i // 3), 560)
                                                 for i, n in enumerate(names)]))
    assert main(["detect", str(group), "--json"]) == 0
    found = len(json.loads(capsys.readouterr().out)["faces"])
    assert found == 6  # more than the live tracker's max_faces (4)
    assert main(["swap", str(group), "-o", str(tmp_path / "o.png"), "--faces", "all"]) == 0
    assert f"swapped {found} face(s)" in capsys.readouterr().out
    assert main(["swap", str(group), "-o", str(tmp_path / "o.png"), "--faces", "id",
                 "--set", "face_id=9"]) == 2
    assert "no face with id 9 in" in capsys.readouterr().err  # not "no face found"


def test_dfm_crop_options_from_the_command_line(tmp_path):
    """DeepFaceLive's aligner options (`--set face_coverage=...`, ...) reach the .dfm: the
    model is given another crop, so it draws another face. (The double flips the face about
    the crop's centre line, so a crop moved sideways shows in the picture; a crop that is only
    larger gives the same picture back: tests/test_framing.py checks each option on the
    model's output itself.)"""
    from doubles import build_dfm, save

    model = save(build_dfm(224), tmp_path / "double.dfm")
    outputs = {}
    for name, pairs in (("default", []), ("shifted", ["align_x_offset=0.15"]),
                        ("wider", ["face_coverage=3.5", "align_x_offset=-0.1"])):
        out = tmp_path / f"{name}.png"
        extra = [arg for pair in pairs for arg in ("--set", pair)]
        assert main(["swap", str(DATA / "astronaut.png"), "-o", str(out), "--model",
                     str(model), *extra]) == 0
        outputs[name] = cv2.imread(str(out)).astype(int)
    for name in ("shifted", "wider"):
        changed = (np.abs(outputs[name] - outputs["default"]).max(axis=2) > 20).sum()
        assert changed > 1000, f"{name}: {changed} pixels changed"


def test_a_face_that_could_not_be_swapped_is_an_error_unless_allowed(tmp_path, capsys):
    """In a privacy mode the identity guard pixelates a face its persona does not hide (here
    the astronaut with her own portrait as the persona: tests/test_guard.py): a still that
    was not swapped says so, and writes nothing unless asked to."""
    args = ["swap", str(DATA / "astronaut.png"), "--set", "on_lost=pixelate",
            "--reference", str(DATA / "astronaut.png")]
    assert main([*args, "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "face 0 of" in err[0] and "identity guard" in err[0], err
    assert not (tmp_path / "o.png").exists()
    assert main([*args, "-o", str(tmp_path / "o.png"), "--allow-unswapped"]) == 0
    captured = capsys.readouterr()
    assert "warning: face 0 of" in captured.err and (tmp_path / "o.png").exists()
    assert "swapped 0 face(s)" in captured.out

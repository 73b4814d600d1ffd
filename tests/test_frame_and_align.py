"""Frame layout checks and the alignment maths that every swapper relies on."""

import numpy as np
import pytest
from conftest import BAD_FRAMES

from core.align import (
    ARCFACE_112,
    align,
    arcface_template,
    invert,
    similarity,
    whole_face_template,
)
from core.frame import check_frame, from_rgb, to_bgr, to_rgb


@pytest.mark.parametrize("frame, fmt, reason", BAD_FRAMES)
def test_bad_frames_raise_one_line_value_error(frame, fmt, reason):
    with pytest.raises(ValueError, match=reason):
        check_frame(frame, fmt)


def test_channel_reorder_round_trip():
    rgba = np.array([[[10, 20, 30, 255]]], np.uint8)
    bgra = rgba[..., [2, 1, 0, 3]]
    assert to_rgb(bgra, "bgra").tolist() == [[[10, 20, 30]]]
    assert to_bgr(rgba, "rgba").tolist() == [[[30, 20, 10]]]
    assert from_rgb(to_rgb(bgra, "bgra"), "bgra").tolist() == [[[30, 20, 10]]]


def test_arcface_128_template_is_112_shifted_by_8px():
    np.testing.assert_allclose(arcface_template(128) - ARCFACE_112, [[8, 0]] * 5, atol=1e-5)
    np.testing.assert_allclose(arcface_template(224), ARCFACE_112 * 2, atol=1e-4)


def test_similarity_recovers_rotation_scale_translation():
    theta = np.deg2rad(-37.0)
    rot = 1.7 * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    src = ARCFACE_112 @ rot.T + [13.0, -4.0]
    matrix = similarity(src, ARCFACE_112)
    np.testing.assert_allclose(src @ matrix[:, :2].T + matrix[:, 2], ARCFACE_112, atol=1e-3)


def test_similarity_rejects_degenerate_points():
    with pytest.raises(ValueError, match="degenerate"):
        similarity(np.ones((5, 2)), ARCFACE_112)


def test_align_crop_and_inverse_map_points_back():
    yy, xx = np.mgrid[0:300, 0:400]
    frame = np.stack([xx % 256, yy % 256, (xx + yy) % 256, np.full_like(xx, 255)], -1)
    frame = frame.astype(np.uint8)
    points = ARCFACE_112 * 1.5 + [120.0, 60.0]
    aligned = align(frame, points, arcface_template(128), 128)
    assert aligned.crop.shape == (128, 128, 4)
    inverse = invert(aligned.matrix)
    back = arcface_template(128) @ inverse[:, :2].T + inverse[:, 2]
    np.testing.assert_allclose(back, points, atol=1e-3)
    # the crop pixel on the nose template point shows the frame's gradient at the nose point
    cx, cy = np.round(arcface_template(128)[2]).astype(int)
    x, y = inverse @ [cx, cy, 1.0]
    assert abs(int(aligned.crop[cy, cx, 0]) - x) <= 1.0
    assert abs(int(aligned.crop[cy, cx, 1]) - y) <= 1.0


def test_whole_face_template_is_centred_and_scales_with_size():
    t224, t448 = whole_face_template(224), whole_face_template(448)
    np.testing.assert_allclose(t448, t224 * 2, atol=1e-3)
    assert abs((t224[0, 0] + t224[1, 0]) / 2 - 112) < 1e-3
    wider = whole_face_template(224, coverage=0.8)
    assert np.ptp(wider[:, 0]) < np.ptp(t224[:, 0])

"""core.merge: one paste-back for every swapper; nothing outside the feathered mask changes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from doubles import synthetic_face

from core.align import align, invert, whole_face_template
from core.face import FACE_OVAL
from core.frame import from_rgb
from core.merge import crop_mask, merge, transfer_color
from core.settings import SwapSettings
from core.swap.base import SwapOutput

SIZE = 224
RED = (255, 0, 0)


def _frame(fmt: str, height: int = 360, width: int = 480, seed: int = 0) -> np.ndarray:
    channels = 4 if fmt in ("rgba", "bgra") else 3
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), np.uint8)


def _output(frame: np.ndarray, face, color=RED, mask: np.ndarray | None = None) -> SwapOutput:
    aligned = align(frame, face.points5, whole_face_template(SIZE), SIZE)
    crop = np.empty((SIZE, SIZE, 3), np.uint8)
    crop[:] = color
    return SwapOutput(crop=crop, matrix=aligned.matrix, mask=mask)


def _frame_mask(face, out: SwapOutput, settings: SwapSettings, shape) -> np.ndarray:
    """The final mask warped into the frame, computed independently of merge's ROI logic."""
    mask = crop_mask(face, out, settings)
    return cv2.warpAffine(mask, invert(out.matrix), (shape[1], shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@pytest.mark.parametrize("fmt", ["rgb", "bgr", "rgba", "bgra"])
def test_outside_mask_bit_identical_inside_changed(fmt):
    frame = _frame(fmt)
    face = synthetic_face(240, 180, 150, angle_deg=12)
    out = _output(frame, face)
    settings = SwapSettings(color_transfer="none")
    result = frame.copy()
    roi = merge(result, fmt, face, out, settings)
    assert roi is not None
    warped = _frame_mask(face, out, settings, frame.shape)
    outside = warped == 0
    assert outside.mean() > 0.7
    np.testing.assert_array_equal(result[outside], frame[outside])
    if frame.shape[2] == 4:
        np.testing.assert_array_equal(result[..., 3], frame[..., 3])
    x0, y0, x1, y1 = roi
    untouched = np.ones(frame.shape[:2], bool)
    untouched[y0:y1, x0:x1] = False
    np.testing.assert_array_equal(result[untouched], frame[untouched])
    # Inside: the frame's own layout holds pure red, whatever the channel order.
    inside = warped > 0.999
    assert inside.sum() > 5000
    expected = from_rgb(np.array(RED, np.uint8), fmt)
    np.testing.assert_array_equal(result[inside][:, :3],
                                  np.broadcast_to(expected, (int(inside.sum()), 3)))


def test_mask_stays_near_the_face_hull():
    """Independent of the mask code: pixels well beyond the face oval never change."""
    frame = _frame("rgb")
    face = synthetic_face(240, 180, 120)
    settings = SwapSettings(color_transfer="none", erode=0.0, blur=10.0)
    result = frame.copy()
    merge(result, "rgb", face, _output(frame, face), settings)
    oval = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(oval, np.round(face.landmarks[FACE_OVAL, :2]).astype(np.int32), 1)
    reach = int(0.1 * face.size * 1.2) + 3  # the blur radius in frame px, plus rounding
    near = cv2.dilate(oval, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)).astype(bool)
    np.testing.assert_array_equal(result[~near], frame[~near])
    assert (result[oval.astype(bool)] != frame[oval.astype(bool)]).any(axis=1).mean() > 0.9


def test_opacity_blends_and_zero_opacity_changes_nothing():
    frame = _frame("rgb")
    face = synthetic_face(240, 180, 150)
    out = _output(frame, face)
    half = frame.copy()
    merge(half, "rgb", face, out, SwapSettings(color_transfer="none", opacity=0.5))
    warped = _frame_mask(face, out, SwapSettings(color_transfer="none"), frame.shape)
    inside = warped > 0.999
    expected = (frame[inside].astype(np.float32) + np.array(RED, np.float32)) / 2
    assert np.abs(half[inside] - expected).max() <= 1.0
    none = frame.copy()
    assert merge(none, "rgb", face, out, SwapSettings(opacity=0.0)) is None
    np.testing.assert_array_equal(none, frame)


def test_model_mask_is_multiplied_with_the_hull():
    frame = _frame("bgr")
    face = synthetic_face(240, 180, 150)
    model_mask = np.zeros((SIZE, SIZE), np.float32)
    model_mask[:, SIZE // 2:] = 1.0  # right half of the crop only
    out = _output(frame, face, mask=model_mask)
    settings = SwapSettings(color_transfer="none", blur=2.0, erode=0.0)
    both = frame.copy()
    merge(both, "bgr", face, out, settings)
    hull = frame.copy()
    merge(hull, "bgr", face, out, settings.with_changes(mask="hull"))
    changed_both = (both != frame).any(axis=2)
    changed_hull = (hull != frame).any(axis=2)
    cx = 240
    assert changed_both[:, : cx - 10].sum() == 0  # left of the face centre: model mask is 0
    assert changed_both[:, cx + 10:].sum() > 2000
    assert changed_hull[:, : cx - 10].sum() > 2000
    with pytest.raises(ValueError, match="mask='oval'"):
        settings.with_changes(mask="oval")


def test_mask_sources_multiply_what_they_name():
    """Each `mask` value multiplies the masks it names (the model's mask of your face, its
    mask of the swapped face, the face outline); a model mask the swapper lacks is left out."""
    face = synthetic_face(240, 180, 150)
    out = _output(_frame("bgr"), face)
    source = np.zeros((SIZE, SIZE), np.float32)
    source[:, SIZE // 2:] = 1.0  # the right half of the crop
    celeb = np.zeros((SIZE, SIZE), np.float32)
    celeb[SIZE // 2:] = 1.0  # the lower half
    out.mask, out.celeb_mask = source, celeb
    plain = SwapSettings(erode=0.0, blur=0.0)
    hull = crop_mask(face, out, plain.with_changes(mask="hull")) > 0.5
    expect = {"hull": hull, "source": source > 0.5, "celeb": celeb > 0.5,
              "model": (source * celeb) > 0.5, "source_hull": hull & (source > 0.5),
              "celeb_hull": hull & (celeb > 0.5), "both": hull & (source * celeb > 0.5)}
    inner = (slice(2, -2), slice(2, -2))  # the crop's border is always faded out
    for mode, want in expect.items():
        got = crop_mask(face, out, plain.with_changes(mask=mode)) > 0.5
        assert (got[inner] == want[inner]).mean() > 0.99, mode
    out.mask = out.celeb_mask = None  # no model masks: the outline, whatever is asked
    for mode in expect:
        got = crop_mask(face, out, plain.with_changes(mask=mode)) > 0.5
        assert (got == hull).all(), mode


def test_interpolation_and_color_compression_change_only_the_face():
    frame = _frame("rgb")
    face = synthetic_face(240, 180, 150)
    ramp = np.linspace(0, 255, SIZE, dtype=np.float32)
    out = _output(frame, face)
    out.crop = np.stack([np.add.outer(ramp, ramp) / 2, np.tile(ramp, (SIZE, 1)),
                         np.tile(ramp[:, None], (1, SIZE))], -1).astype(np.uint8)
    settings = SwapSettings(color_transfer="none")
    results = {}
    for name, change in (("plain", {}), ("lanczos", {"interpolation": "lanczos4"}),
                         ("bicubic", {"interpolation": "bicubic"}),
                         ("compressed", {"color_compression": 119.0})):
        result = frame.copy()
        merge(result, "rgb", face, out, settings.with_changes(**change))
        results[name] = result
    outside = _frame_mask(face, out, settings, frame.shape) == 0
    for name, result in results.items():
        np.testing.assert_array_equal(result[outside], frame[outside])
        if name != "plain":
            assert (result != results["plain"]).any(axis=2).sum() > 500, name
    # 127 - 119 = 8 levels per channel: inside the face the colours come in 8 steps
    inside = _frame_mask(face, out, settings, frame.shape) == 1.0
    face_px = results["compressed"][inside]
    assert len(np.unique(face_px[:, 1])) <= 8 < len(np.unique(results["plain"][inside][:, 1]))


def test_erode_and_blur_scale_with_the_face():
    frame = _frame("rgb", 720, 960)
    changed = {}
    for size in (100, 200):
        face = synthetic_face(480, 360, size)
        for erode in (-5.0, 0.0, 10.0):
            result = frame.copy()
            settings = SwapSettings(color_transfer="none", erode=erode, blur=0.0)
            merge(result, "rgb", face, _output(frame, face), settings)
            changed[size, erode] = (result != frame).any(axis=2).sum()
    for size in (100, 200):
        assert changed[size, -5.0] > changed[size, 0.0] > changed[size, 10.0]
    # Percent of face size: the same settings give the same relative area at any face size.
    ratios = [changed[s, 10.0] / changed[s, 0.0] for s in (100, 200)]
    assert abs(ratios[0] - ratios[1]) < 0.05  # measured 0.0008


def test_face_offset_and_scale_move_the_swapped_face():
    frame = _frame("rgb", 480, 640)
    face = synthetic_face(320, 240, 140)

    def centroid_and_area(**kw):
        result = frame.copy()
        settings = SwapSettings(color_transfer="none", **kw)
        merge(result, "rgb", face, _output(frame, face), settings)
        ys, xs = np.nonzero((result != frame).any(axis=2))
        return np.array([xs.mean(), ys.mean()]), xs.size

    base_c, base_a = centroid_and_area()
    moved_c, _ = centroid_and_area(face_offset_x=0.2, face_offset_y=-0.1)
    np.testing.assert_allclose(moved_c - base_c, [0.2 * face.size, -0.1 * face.size], atol=2.0)
    big_c, big_a = centroid_and_area(face_scale=1.2)
    np.testing.assert_allclose(big_c, base_c, atol=2.0)
    assert 1.3 < big_a / base_a < 1.6  # measured 1.440: 1.2 ** 2 to 0.03 %


def test_face_partly_outside_the_frame():
    frame = _frame("rgba")
    face = synthetic_face(10, 20, 150)
    result = frame.copy()
    roi = merge(result, "rgba", face, _output(frame, face), SwapSettings())
    assert roi is not None and roi[0] == 0 and roi[1] == 0
    assert (result != frame).any()
    np.testing.assert_array_equal(result[..., 3], frame[..., 3])


def _textured(color, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 12, (SIZE, SIZE, 3))
    return np.clip(np.array(color, np.float64) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("mode", ["rct", "hist"])
def test_color_transfer_matches_the_target_inside_the_mask(mode):
    swap = _textured((200, 60, 50), 1)  # reddish swapped face
    target = _textured((90, 150, 110), 2)  # greenish live face
    mask = np.zeros((SIZE, SIZE), np.float32)
    cv2.circle(mask, (SIZE // 2, SIZE // 2), 80, 1.0, -1)
    target[mask == 0] = (0, 0, 255)  # outside the mask must not count
    result = transfer_color(swap, target, mask, mode)
    inside = mask > 0.5
    before = np.abs(swap[inside].mean(0) - target[inside].mean(0)).max()
    after = np.abs(result[inside].astype(float).mean(0) - target[inside].mean(0)).max()
    assert before > 80 and after < 4  # measured 110 -> 2.87 (rct), 0.10 (hist)
    assert transfer_color(swap, target, mask, "none") is swap
    with pytest.raises(ValueError, match="colour transfer"):
        transfer_color(swap, target, mask, "lab")


def test_color_transfer_uses_the_aligned_original_in_merge():
    """rct inside merge pulls a red swap towards the live face's colours (frame layout aware)."""
    for fmt in ("rgb", "bgra"):
        live_rgb = np.array((90, 150, 110), np.uint8)
        frame = np.empty((360, 480, 4 if fmt == "bgra" else 3), np.uint8)
        frame[..., :3] = from_rgb(live_rgb, fmt)
        frame[..., 3:] = 200
        face = synthetic_face(240, 180, 150)
        out = _output(frame, face, color=RED)
        out.crop[:] = _textured((200, 60, 50), 3)
        result = frame.copy()
        merge(result, fmt, face, out, SwapSettings(color_transfer="rct"))
        inside = _frame_mask(face, out, SwapSettings(), frame.shape) > 0.999
        mean_rgb = from_rgb(result[inside][:, :3].astype(float), fmt).mean(0)
        np.testing.assert_allclose(mean_rgb, live_rgb, atol=6)  # measured exact (0.000)


def test_bad_inputs_are_value_errors():
    frame = _frame("rgb")
    face = synthetic_face(240, 180, 150)
    out = _output(frame, face)
    with pytest.raises(ValueError, match="opacity"):
        merge(frame, "rgb", face, out, SwapSettings(opacity=1.5))
    with pytest.raises(ValueError, match="swap crop"):
        merge(frame, "rgb", face, SwapOutput(out.crop[..., :2].copy(), out.matrix), SwapSettings())
    with pytest.raises(ValueError, match="mask shape"):
        merge(frame, "rgb", face, SwapOutput(out.crop, out.matrix, np.ones((3, 3), np.float32)),
              SwapSettings())
    with pytest.raises(ValueError, match="format"):
        merge(frame, "rgba", face, out, SwapSettings())
    with pytest.raises(ValueError, match="face_scale"):
        merge(frame, "rgb", face, out, SwapSettings(face_scale=0.0))


def test_mask_is_zero_on_the_crop_border_when_the_face_overflows_the_crop():
    """A tight ArcFace crop cuts the face oval: the crop's edge must not show as a hard seam."""
    from core.align import arcface_template

    frame = _frame("rgb")
    face = synthetic_face(240, 180, 150)
    aligned = align(frame, face.points5, arcface_template(128), 128)
    out = SwapOutput(crop=np.zeros((128, 128, 3), np.uint8), matrix=aligned.matrix)
    mask = crop_mask(face, out, SwapSettings(erode=0.0, blur=5.0))
    assert mask.max() > 0.99
    for edge in (mask[0], mask[-1], mask[:, 0], mask[:, -1]):
        assert not edge.any()


def test_a_backdrop_is_drawn_as_it_is_and_does_not_steer_the_colour_transfer():
    """A swap with a backdrop (the persona over the filled background): the face is colour
    matched to the live face from its own pixels only, then drawn over the backdrop by its
    coverage; the backdrop is drawn as it is."""
    live_rgb = np.array((90, 150, 110), np.uint8)
    frame = cv2.resize(_textured(live_rgb, 5), (480, 360), interpolation=cv2.INTER_NEAREST)
    face = synthetic_face(240, 180, 150)
    out = _output(frame, face)
    out.crop[:] = _textured((200, 60, 50), 4)  # a red face ...
    centre = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(centre, (SIZE // 2, SIZE // 2), 50, 255, -1)
    out.coverage = centre.astype(np.float32) / 255  # ... covering a disc
    out.crop[centre == 0] = 255  # not shown, and must not count
    out.backdrop = np.empty_like(out.crop)
    out.backdrop[:] = (20, 20, 240)  # over a blue backdrop
    out.mask = np.ones((SIZE, SIZE), np.float32)
    result = frame.copy()
    settings = SwapSettings(color_transfer="rct", mask="source", erode=0.0, blur=0.0)
    merge(result, "rgb", face, out, settings)
    to_frame = invert(out.matrix)
    disc = cv2.warpAffine(centre, to_frame, (480, 360), flags=cv2.INTER_NEAREST)
    inside = cv2.warpAffine(np.full((SIZE, SIZE), 255, np.uint8), to_frame, (480, 360),
                            flags=cv2.INTER_NEAREST)
    kernel = np.ones((5, 5), np.uint8)
    face_px = cv2.erode(disc, kernel) > 0
    backdrop_px = cv2.erode(cv2.subtract(inside, disc), kernel) > 0
    np.testing.assert_allclose(result[backdrop_px].mean(0), (20, 20, 240), atol=1)  # as drawn
    # the face alone matched to the live colour (with the backdrop counted: far off)
    np.testing.assert_allclose(result[face_px].mean(0), live_rgb, atol=6)
    out.coverage = out.coverage[:10]
    with pytest.raises(ValueError, match="backdrop"):
        merge(result, "rgb", face, out, settings)

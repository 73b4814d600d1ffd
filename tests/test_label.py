"""Disclosure label: drawn only on its rectangle, in the chosen corner, scaled, per layout."""

from __future__ import annotations

import numpy as np
import pytest

from core.label import draw_label, label_height, label_rect, size_for_output
from core.settings import CORNERS


def gray(width: int, height: int, channels: int = 3) -> np.ndarray:
    return np.full((height, width, channels), 128, np.uint8)


@pytest.mark.parametrize("corner", CORNERS)
def test_label_written_only_inside_its_corner_rect(corner):
    frame = gray(1280, 720)
    x0, y0, x1, y1 = draw_label(frame, "rgb", corner)
    changed = np.any(frame != 128, axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.size > 0
    assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
    left, top = corner.endswith("left"), corner.startswith("top")
    assert (x1 < 640) == left and (y1 < 360) == top
    # Light text on a dark box: both must be present to be legible.
    box = frame[y0:y1, x0:x1]
    assert (box.max(axis=2) > 200).sum() > 20 and (box.max(axis=2) < 40).sum() > 20


def test_label_scales_with_frame_size():
    small = label_rect(640, 360, "rgb")
    large = label_rect(1920, 1080, "rgb")
    assert (large[3] - large[1]) > 2 * (small[3] - small[1])
    assert label_height(160, 90) >= 16  # never unreadably small
    assert label_rect(1920, 1080, "rgb")[2] <= 1920


def test_label_channel_order_and_alpha():
    rgb, bgra = gray(640, 360), gray(640, 360, 4)
    bgra[..., 3] = 0
    rect = draw_label(rgb, "rgb")
    assert draw_label(bgra, "bgra") == rect
    x0, y0, x1, y1 = rect
    np.testing.assert_array_equal(bgra[y0:y1, x0:x1, :3], rgb[y0:y1, x0:x1, ::-1])
    assert np.all(bgra[y0:y1, x0:x1, 3] == 255)  # the box is opaque even on a clear source
    outside = bgra.copy()
    outside[y0:y1, x0:x1] = 0
    assert np.all(outside[..., 3] == 0)


def test_label_rejects_unknown_corner_and_bad_frame():
    with pytest.raises(ValueError, match="corner"):
        draw_label(gray(64, 64), "rgb", "middle")
    with pytest.raises(ValueError, match="format"):
        draw_label(gray(64, 64), "rgba")


def test_a_small_source_in_a_big_output_gets_a_legible_label():
    """A 320x180 webcam in a 1280x720 output, shown 1:1: the label's box at least half as
    tall as on a full-output source (3 % of 720 = 22 px, not 16), never over 25 %."""
    size = size_for_output(6.0, (320, 180), (1280, 720))
    assert size == pytest.approx(12.0) and label_height(320, 180, size) == 22
    assert size_for_output(6.0, (1920, 1080), (1920, 1080)) == 6.0  # fills the output
    assert size_for_output(6.0, (1920, 1080), (1280, 720)) == 6.0  # bigger than the output
    assert size_for_output(6.0, (64, 36), (1920, 1080)) == 25.0  # capped
    assert size_for_output(6.0, (0, 0), (1280, 720)) == 6.0  # no frame yet
    # a scene item scaling the source down: sized for what it is shown at
    assert size_for_output(6.0, (1280, 720), (1280, 720), scale=0.25) == pytest.approx(12.0)
    assert size_for_output(6.0, (320, 180), (1280, 720), scale=2.0) == pytest.approx(6.0)

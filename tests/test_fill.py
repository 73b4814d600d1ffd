"""core.fill: a hole filled from around it, known pixels kept exactly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.fill import fill_by_reflection, fill_from_around


def test_known_pixels_are_kept_and_the_hole_takes_the_colours_beside_it():
    image = np.zeros((120, 160, 3), np.uint8)
    image[:, :80] = (200, 100, 50)
    image[:, 80:] = (20, 40, 250)
    hole = np.zeros((120, 160), np.uint8)
    cv2.circle(hole, (80, 60), 40, 255, -1)
    image[hole > 0] = (0, 255, 0)  # what the hole hides must not show
    filled = fill_from_around(image, hole)
    np.testing.assert_array_equal(filled[hole == 0], image[hole == 0])
    assert filled.shape == image.shape and filled.dtype == np.uint8
    # inside the hole, near each side, that side's colour; green nowhere
    np.testing.assert_allclose(filled[60, 45], (200, 100, 50), atol=12)
    np.testing.assert_allclose(filled[60, 115], (20, 40, 250), atol=12)
    assert filled[hole > 0, 1].max() < 120


def test_nothing_to_fill_changes_nothing_and_nothing_known_hides_it_all():
    image = np.random.default_rng(0).integers(0, 256, (32, 48, 3), np.uint8)
    np.testing.assert_array_equal(fill_from_around(image, np.zeros((32, 48), np.uint8)), image)
    hidden = fill_from_around(image, np.ones((32, 48), np.uint8))
    assert len(np.unique(hidden.reshape(-1, 3), axis=0)) == 1  # one colour: the mean


def test_a_tiny_picture_with_one_known_pixel_fills_with_it():
    """The pyramid stops at 2 px: a hole no level reaches takes the known pixels' mean."""
    image = np.zeros((3, 3, 3), np.uint8)
    image[0, 0] = (10, 200, 30)
    hole = np.ones((3, 3), np.uint8)
    hole[0, 0] = 0
    np.testing.assert_array_equal(fill_from_around(image, hole), np.broadcast_to(
        np.uint8([10, 200, 30]), (3, 3, 3)))


def _striped_hole(width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertical stripes (2 of 6 columns bright), columns 40-59 a grey hole, left of it the
    source."""
    image = np.zeros((60, width, 3), np.uint8)
    image[:, ::6] = 250
    image[:, 1::6] = 250
    hole = np.zeros((60, width), np.uint8)
    hole[:, 40:60] = 255
    image[hole != 0] = 128
    source = np.zeros_like(hole)
    source[:, :40] = 255
    return image, hole, source


@pytest.mark.parametrize("width", [80, 81])  # an odd size too: the map is worked out at half
def test_the_mirror_continues_what_is_beside_the_hole_with_its_texture(width):
    """Each hole pixel takes the pixel mirrored across the source's edge (stripes go on, not
    a smooth grey), exactly; where the mirror would land past the source (a strip thinner
    than the hole) its share falls to 0."""
    image, hole, source = _striped_hole(width)
    mirrored, share = fill_by_reflection(image, hole, source)
    rows = slice(10, 50)  # away from the top and bottom, where the edge ends
    for column in range(40, 56):  # the edge is between columns 39 and 40
        assert np.array_equal(mirrored[rows, column], image[rows, 79 - column]), column
        assert share[rows, column].min() > 0.99
    assert (share[hole == 0] == 0).all()
    thin = np.zeros_like(hole)
    thin[:, 34:40] = 255  # a 6 px strip of source: the hole's far side mirrors past it
    _, share = fill_by_reflection(image, hole, thin)
    assert share[rows, 55].max() < 0.01 and share[rows, 41].min() > 0.99


def test_the_mirror_takes_none_of_the_holes_own_colours():
    """A mirror landing on the edge between source and hole samples the source only (the
    hole is what must not show)."""
    image, hole, source = _striped_hole(80)
    image[hole != 0] = 255  # a bright silhouette
    image[hole == 0] = 0  # a dark surrounding
    mirrored, _ = fill_by_reflection(image, hole, source)
    assert mirrored[hole != 0].max() == 0


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_the_mirror_on_nothing_or_a_tiny_picture_changes_nothing(size):
    image = np.full((size, size, 3), 90, np.uint8)
    hole = np.zeros((size, size), np.uint8)
    hole[0, 0] = 255
    for hole_, source in ((hole, 255 - hole), (np.zeros_like(hole), 255 - hole),
                          (hole, np.zeros_like(hole))):
        mirrored, share = fill_by_reflection(image, hole_, source)
        assert mirrored.shape == image.shape and share.shape == hole.shape
        assert (share <= 1.0).all() and (share >= 0.0).all()

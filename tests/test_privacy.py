"""The one rule for what shows where no swap is drawn (core.privacy), and its mosaics."""

from __future__ import annotations

import numpy as np
import pytest

from core import privacy
from core.privacy import COVER, HOLD, ORIGINAL, PIXELATE_FACE, lost_view

# (on_lost, ms since the last swap there or None, face position known) -> view; hold_ms 500.
# The engine asks with face_known True while it tracks the face (or lost it <= 1 s ago);
# the OBS filter, when the engine has no answer, always with face_known False.
TABLE = [
    ("original", None, False, ORIGINAL),
    ("original", 100.0, True, ORIGINAL),
    ("original", 99999.0, False, ORIGINAL),
    ("hold", 100.0, True, HOLD),
    ("hold", 100.0, False, HOLD),  # the filter holds the last swap it drew
    ("hold", 500.0, True, HOLD),
    ("hold", 501.0, True, PIXELATE_FACE),  # hold is up: as pixelate
    ("hold", 501.0, False, COVER),
    ("hold", None, True, PIXELATE_FACE),  # never swapped (e.g. past a pose limit at once)
    ("hold", None, False, COVER),  # model loading, nothing drawn yet
    ("pixelate", 0.0, True, PIXELATE_FACE),
    ("pixelate", 5000.0, True, PIXELATE_FACE),  # still tracked, e.g. turned past a limit
    ("pixelate", 100.0, False, COVER),  # engine error: nobody knows where the face is
    ("pixelate", None, False, COVER),
]


@pytest.mark.parametrize(("on_lost", "lost_ms", "known", "view"), TABLE)
def test_lost_view_table(on_lost, lost_ms, known, view):
    assert lost_view(on_lost, lost_ms, 500, known) == view


def test_only_original_ever_shows_the_real_picture():
    for on_lost in ("hold", "pixelate"):
        for lost_ms in (None, 0.0, 400.0, 600.0, 1e9):
            for known in (True, False):
                assert lost_view(on_lost, lost_ms, 500, known) != ORIGINAL


def test_cover_is_a_coarse_mosaic_of_the_whole_frame():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (360, 640, 4), dtype=np.uint8)
    covered = frame.copy()
    privacy.cover(covered)
    side = privacy.cover_block_px(640, 360)
    assert side == 36.0
    colors = np.unique(covered[..., :3].reshape(-1, 3), axis=0)
    assert len(colors) <= (640 // 36 + 2) * (360 // 36 + 2)
    # each block is its area's mean: the mosaic keeps the picture's overall colour
    assert abs(covered[..., :3].mean() - frame[..., :3].mean()) < 1.0
    np.testing.assert_array_equal(covered[..., 3], frame[..., 3])  # the source's alpha


def test_pixelate_face_touches_only_the_face_area():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    out = frame.copy()
    box = np.array([100.0, 50.0, 160.0, 130.0], np.float32)
    privacy.pixelate_face(out, box, 60.0)
    x0, y0, x1, y1 = privacy.face_area(box, 60.0, frame.shape)
    assert (x0, y0, x1, y1) == (85, 35, 175, 145)
    inside = np.zeros(frame.shape[:2], bool)
    inside[y0:y1, x0:x1] = True
    np.testing.assert_array_equal(out[~inside], frame[~inside])
    colors = np.unique(out[inside].reshape(-1, 3), axis=0)
    assert len(colors) <= (privacy.FACE_BLOCKS + 1) ** 2

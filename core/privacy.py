"""What a viewer sees where no swap is drawn: one rule for the engine and the OBS filter.

Two places have to decide it. The engine (core.pipeline) knows where faces are: a face that
is lost, turned past a pose limit or not swappable this frame gets the `on_lost` view at its
last known position. The OBS filter knows when the engine has no answer at all (a model
loading or failed, an engine error, a stalled worker, a source just shown again): then no
face position is known and a privacy mode covers the whole source. Both ask `lost_view`.

- "original": the real picture (the only mode that may show the real face);
- "hold": the last swap for `hold_ms`, then as "pixelate";
- "pixelate": a coarse mosaic over the face, or over the whole source when no face
  position is known (never seen, or lost for longer than FACE_MEMORY_MS).
"""

from __future__ import annotations

import cv2
import numpy as np

ORIGINAL, HOLD, PIXELATE_FACE, COVER = "original", "hold", "pixelate_face", "cover"
FACE_MEMORY_MS = 1000.0  # a lost face's last position is trusted this long, then: cover
# pixelate: blocks across the face box and its margin. 6, not 10: dlib's recogniser still
# knew 11 % of the real photos at 45-60 degrees of yaw (../shared/data/real_turns) behind 10
# blocks, 4 % behind 6; a dark beard and hair outlived 10 blocks on the renders
FACE_BLOCKS = 6
FACE_MARGIN = 0.25  # pixelate: extra face size added on each side of the face box
COVER_BLOCKS = 10  # cover: blocks across the source's shorter side


def lost_view(on_lost: str, lost_ms: float | None, hold_ms: float, face_known: bool) -> str:
    """The view where no swap is drawn: ORIGINAL, HOLD, PIXELATE_FACE or COVER.

    lost_ms: how long ago a swap was last drawn there (None: never); face_known: whether
    the caller knows where that face is now (tracked, or lost at most FACE_MEMORY_MS ago;
    the OBS filter never knows).
    """
    if on_lost == "original":
        return ORIGINAL
    if on_lost == "hold" and lost_ms is not None and lost_ms <= hold_ms:
        return HOLD
    return PIXELATE_FACE if face_known else COVER


def cover_block_px(width: int, height: int) -> float:
    """Side of one cover block in px: COVER_BLOCKS across the shorter side."""
    return max(1.0, min(width, height) / COVER_BLOCKS)


def _mosaic(region: np.ndarray, side: float, smooth: bool = False) -> None:
    """Replace `region`'s colours in place by the mean colours of `side`-px blocks, or a
    smooth blend of them (`smooth`); an alpha channel is the source's and stays as it is."""
    height, width = region.shape[:2]
    color = np.ascontiguousarray(region[..., :3])
    small = cv2.resize(color, (max(1, round(width / side)), max(1, round(height / side))),
                       interpolation=cv2.INTER_AREA)
    region[..., :3] = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR
                                 if smooth else cv2.INTER_NEAREST)


def face_area(box: np.ndarray, size: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The face box (x0, y0, x1, y1) grown by FACE_MARGIN x `size`, clipped to the frame."""
    margin = FACE_MARGIN * size
    height, width = shape[:2]
    return (max(int(box[0] - margin), 0), max(int(box[1] - margin), 0),
            min(int(np.ceil(box[2] + margin)), width), min(int(np.ceil(box[3] + margin)), height))


def pixelate_face(frame: np.ndarray, box: np.ndarray, size: float, smooth: bool = False) -> None:
    """Coarse mosaic over a face box plus a margin, in place, only inside that area;
    `smooth`: blurred instead of blocks (a guest, settings.guests == "blur")."""
    x0, y0, x1, y1 = face_area(box, size, frame.shape)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    _mosaic(frame[y0:y1, x0:x1], max(x1 - x0, y1 - y0) / FACE_BLOCKS, smooth)


def cover(frame: np.ndarray) -> None:
    """Mosaic over the whole frame, in place (what the OBS filter's shader draws too)."""
    height, width = frame.shape[:2]
    _mosaic(frame, cover_block_px(width, height))

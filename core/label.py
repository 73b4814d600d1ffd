"""The "AI face swap" disclosure label: a small, always-legible box in one frame corner.

Why in the engine: the CLI, the OBS filter and recordings all get it, on by default. The
label is rendered once per frame size / corner / layout and then copied onto its small
rectangle, so per frame it costs one tiny array copy and never touches the rest.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from core.frame import check_frame, color_channels, from_rgb
from core.settings import CORNERS, SwapSettings

LABEL_TEXT = "AI face swap"
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BACKGROUND = (24, 24, 24)  # RGB
_FOREGROUND = (255, 255, 255)


DEFAULT_SIZE = SwapSettings.label_size  # % of the frame's shorter side


MIN_OUTPUT_SHARE = 0.5  # a label is at least half as tall as on a source filling the output
MAX_SIZE = 25.0  # % of the source's shorter side (SwapSettings' range)


def size_for_output(size: float, source: tuple[int, int], output: tuple[int, int],
                    scale: float = 1.0) -> float:
    """The label size (% of the source's shorter side) that keeps it legible where it is
    seen: a source shown smaller than the output (canvas) it is streamed in - a webcam in a
    corner, shown 1:1 or scaled down by its scene item (`scale`) - gets a label at least
    MIN_OUTPUT_SHARE as tall as on a source filling the output; never over MAX_SIZE.
    E.g. 6 % on a 320x180 webcam at 1:1 in a 1280x720 output: 12 %, a 22 px box (at 6 % it
    was 16 px, text 9 px high); a 1280x720 camera scaled to 0.25 there: 12 % as well."""
    shown_short, output_short = min(source) * scale, min(output)
    if shown_short <= 0 or output_short <= shown_short:
        return size
    return min(MAX_SIZE, max(size, size * MIN_OUTPUT_SHARE * output_short / shown_short))


def label_height(width: int, height: int, size: float = DEFAULT_SIZE) -> int:
    """Box height: `size` % of the shorter side, at least 16 px (still readable when small)."""
    return max(16, int(round(size / 100.0 * min(width, height))))


@functools.lru_cache(maxsize=16)
def _patch(width: int, height: int, fmt: str, text: str, size: float) -> np.ndarray:
    """The rendered label in `fmt` layout (opaque alpha); read-only, shared by all frames."""
    box_h = min(label_height(width, height, size), height)
    thickness = max(1, box_h // 14)
    scale = cv2.getFontScaleFromHeight(_FONT, int(box_h * 0.55), thickness)
    (text_w, text_h), _ = cv2.getTextSize(text, _FONT, scale, thickness)
    pad = max(2, box_h // 4)
    box_w = min(text_w + 2 * pad, width)
    rgb = np.empty((box_h, box_w, 3), np.uint8)
    rgb[...] = _BACKGROUND
    baseline_y = (box_h + text_h) // 2
    cv2.putText(rgb, text, (pad, baseline_y), _FONT, scale, _FOREGROUND, thickness, cv2.LINE_AA)
    patch = np.empty((box_h, box_w, color_channels(fmt)), np.uint8)
    patch[..., :3] = from_rgb(rgb, fmt)
    if patch.shape[2] == 4:
        patch[..., 3] = 255
    patch.setflags(write=False)
    return patch


def label_rect(width: int, height: int, fmt: str, corner: str = "bottom-right",
               text: str = LABEL_TEXT, size: float = DEFAULT_SIZE) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the label in a width x height frame: a margin from `corner`."""
    if corner not in CORNERS:
        raise ValueError(f"label corner {corner!r}; expected one of {', '.join(CORNERS)}")
    box_h, box_w = _patch(width, height, fmt, text, size).shape[:2]
    margin = min(box_h // 2, width - box_w, height - box_h)
    x0 = margin if corner.endswith("left") else width - box_w - margin
    y0 = margin if corner.startswith("top") else height - box_h - margin
    return x0, y0, x0 + box_w, y0 + box_h


def draw_label(frame: np.ndarray, fmt: str, corner: str = "bottom-right",
               text: str = LABEL_TEXT, size: float = DEFAULT_SIZE) -> tuple[int, int, int, int]:
    """Draw the label into `frame` in place; returns the only rectangle that was written."""
    check_frame(frame, fmt)
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = label_rect(width, height, fmt, corner, text, size)
    frame[y0:y1, x0:x1] = _patch(width, height, fmt, text, size)
    return x0, y0, x1, y1

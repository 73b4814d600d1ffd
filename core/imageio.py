"""Reading images and video frames: one place that turns an unreadable file into a one-line
InputError."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.errors import FaceSwapError, InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def check_input_file(path: Path, what: str) -> None:
    """InputError naming `what` unless `path` is an existing regular file."""
    if path.is_dir():
        raise InputError(f"cannot read {what} {path}: it is a directory")
    if not path.is_file():
        raise InputError(f"cannot read {what} {path}: no such file")


def make_folder(folder: Path) -> None:
    """Create an output folder (and parents); FaceSwapError naming it when that fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FaceSwapError(f"cannot create output folder {folder}: {exc.strerror}") from None


def read_bgr(path: str | Path, what: str = "image") -> np.ndarray:
    """BGR uint8 image; InputError naming `what` and the file when it cannot be used."""
    path = Path(path)
    check_input_file(path, what)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise InputError(f"cannot read {what} {path}: not an image OpenCV can decode")
    if min(image.shape[:2]) < 2:
        height, width = image.shape[:2]
        raise InputError(f"cannot use {what} {path}: {width}x{height} is too small")
    return image


def read_rgb(path: str | Path, what: str = "image") -> np.ndarray:
    """RGB uint8 image (contiguous); same errors as read_bgr."""
    return np.ascontiguousarray(read_bgr(path, what)[..., ::-1])


def read_video_frames(path: str | Path, limit: int | None = None) -> list[np.ndarray]:
    """The first `limit` (default: all) frames of a video file, BGR; [] if none decode."""
    capture = cv2.VideoCapture(str(path))
    frames: list[np.ndarray] = []
    try:
        while limit is None or len(frames) < limit:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    return frames

"""Reading images and video frames: one place that turns an unreadable file into a one-line
InputError.

Images are decoded with Pillow, which reads the size from the header first (a picture past
MAX_IMAGE_PIXELS is refused before it is decoded: a 30000x30000 PNG of under a megabyte
would need gigabytes) and reports a truncated file as an exception rather than as libjpeg or
libpng lines on stderr; a truncated image is then decoded as far as it goes, with one
TruncatedInput warning. Formats Pillow does not know go to OpenCV, whose own pixel limit is
set to the same value (core/__init__.py).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from core import MAX_IMAGE_PIXELS
from core.errors import FaceSwapError, InputError, TruncatedInput

Image.MAX_IMAGE_PIXELS = None  # the limit is checked here, as an error, not a warning

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


def _decode(path: Path, what: str) -> np.ndarray | None:
    """RGB uint8 through Pillow (EXIF orientation applied, as OpenCV does); None when Pillow
    does not know the format."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise InputError(f"cannot read {what} {path}: {width}x{height} is more than "
                                 f"the {MAX_IMAGE_PIXELS:,} pixels allowed")
            try:
                image.load()
            except OSError as exc:  # truncated: decode what is there, and say so
                if "truncated" not in str(exc):
                    raise InputError(f"cannot read {what} {path}: {exc}") from None
                ImageFile.LOAD_TRUNCATED_IMAGES = True
                try:
                    image = Image.open(path)
                    image.load()
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES = False
                warnings.warn(TruncatedInput(f"{path} is truncated: using the part that "
                                             f"decoded ({width}x{height} image)"), stacklevel=3)
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    except UnidentifiedImageError:
        return None


def partial_path(output: Path) -> Path:
    """Where an output file is written until it is complete (then renamed over `output`):
    beside it, hidden, with the same extension (writers pick the format by it)."""
    return output.with_name(f".{output.stem}.partial{output.suffix}")


def read_bgr(path: str | Path, what: str = "image") -> np.ndarray:
    """BGR uint8 image; InputError naming `what` and the file when it cannot be used."""
    path = Path(path)
    check_input_file(path, what)
    rgb = _decode(path, what)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR) if rgb is None else \
        np.ascontiguousarray(rgb[..., ::-1])
    if image is None or image.size == 0:
        raise InputError(f"cannot read {what} {path}: not an image file that can be decoded")
    if min(image.shape[:2]) < 2:
        height, width = image.shape[:2]
        raise InputError(f"cannot use {what} {path}: {width}x{height} is too small")
    return image


def read_rgb(path: str | Path, what: str = "image") -> np.ndarray:
    """RGB uint8 image (contiguous); same errors as read_bgr."""
    return np.ascontiguousarray(read_bgr(path, what)[..., ::-1])


def write_sheet(path: Path, rgb: np.ndarray) -> str:
    """Write a contact sheet (RGB) as an image file, its folder made; the path written.
    InputError when it cannot be written."""
    make_folder(path.parent)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise InputError(f"cannot write the contact sheet {path}")
    return str(path)


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

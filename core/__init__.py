"""Face swap engine: detect, landmark, track, align, swap, merge. No OBS imports."""

import os
from pathlib import Path

# Third-party noise off stderr (a user error is one line): FFmpeg's own log (AV_LOG_QUIET),
# OpenCV's warnings; read before cv2's first use, so set before anything imports it.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
# Images are refused past this many pixels before they are decoded (core.imageio); OpenCV's
# own guard is set to the same limit.
MAX_IMAGE_PIXELS = 16384 * 16384
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))

__version__ = "0.1.0"

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"
# public-domain sample photos: bench input, head-turn portraits, test images
SAMPLES_DIR = MODELS_DIR / "samples"

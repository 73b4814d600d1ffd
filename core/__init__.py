"""Face swap engine: detect, landmark, track, align, swap, merge. No OBS imports."""

from pathlib import Path

__version__ = "0.1.0"

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"

"""What every swapper returns, so that one merge serves all model families."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from core.errors import ModelOutputError
from core.face import Face
from core.settings import SwapSettings


@dataclass
class SwapOutput:
    """A swapped face crop and how it maps back into the frame."""

    crop: np.ndarray  # (S, S, 3) uint8 RGB: the swapped face in crop space
    matrix: np.ndarray  # (2, 3) float32 affine: frame px -> crop px
    mask: np.ndarray | None = None  # (S, S) float32 0..1: the model's mask of your face
    celeb_mask: np.ndarray | None = None  # its mask of the swapped face (.dfm); None: none
    outline: float = 0.0  # it covers this x the face size past the live face oval (the
    # persona: an outline left showing gives the person away), so the outline mask grows too
    backdrop: np.ndarray | None = None  # (S, S, 3) uint8 RGB drawn behind the swapped face,
    # as it is (no colour transfer): the persona's, the live surroundings filled where the
    # live face reached past the persona's
    coverage: np.ndarray | None = None  # (S, S) float32 0..1: how much of each pixel is the
    # swapped face (crop) rather than the backdrop; with a backdrop only


class Swapper(Protocol):
    """One loaded model (or persona). Built once, called per face per frame."""

    name: str
    path: Path | None  # the model file (or persona image) it was loaded from; None: packaged
    provider: str  # onnxruntime provider actually running it ("" when no model)
    # default (max yaw, max pitch) in degrees past which its swaps break down; 90 = none
    pose_limits: tuple[float, float]
    timings: dict[str, float]  # its own stages of the last swap, ms ("align" is merged in)

    def swap(self, frame: np.ndarray, fmt: str, face: Face, settings: SwapSettings) -> SwapOutput:
        """Swap one face of `frame` (layout `fmt`); must not modify `frame`."""
        ...


def check_finite(model: str, **outputs: np.ndarray) -> None:
    """ModelOutputError naming the model and output when any value is NaN or infinite: a
    broken model must fail its frame (and show as an error), never "swap" garbage."""
    for name, values in outputs.items():
        if not np.isfinite(values).all():
            kind = "NaN" if np.isnan(values).any() else "infinite"
            raise ModelOutputError(f"model {model} produced {kind} values in its {name} output")

"""What every swapper returns, so that one merge serves all model families, and what a
model family is (core.swap.families lists them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from core.errors import ModelOutputError
from core.face import Face
from core.settings import SwapSettings
from core.signatures import Signature, Tensor

if TYPE_CHECKING:
    from core.swap.families import ModelEntry

# Face-swap networks are trained on faces that mostly look at the camera. Past about 50
# degrees of yaw and 40 of pitch a turned face no longer fits the frontal layout (measured
# with its five points: their residual after the best fit passes 25 % of the eye distance,
# against 9-18 % for frontal faces; `bench --headturn`, README "Head turns"), so the crop no
# longer shows a face as in training. A .dfm is framed from more points (core.swap.framing)
# but was trained on the same frontal faces: a network's default limits.
NETWORK_POSE_LIMITS = (50.0, 40.0)
NO_POSE_LIMITS = (90.0, 90.0)

FaceFinder = Callable[[np.ndarray], Face | None]  # a still RGB image's largest face


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


# a graph's signature check: (inputs, outputs, the last initializer's dims where known) ->
# this family's Signature (or an "unusable" one saying what is wrong), None: not this family
Check = Callable[[Sequence[Tensor], Sequence[Tensor], Sequence[int] | None], Signature | None]


@dataclass(frozen=True)
class Family:
    """One model family: everything the registry, the signature check, the OBS panel and the
    Triton export need to know about it, in one place (core.swap.families lists them)."""

    kind: str  # the ModelEntry / Signature kind
    words: str  # how messages name one ("a DFM")
    describe: Callable[[ModelEntry], str]  # one line for listings, of a usable entry
    # (entry, device, threads, reference image, face finder) -> Swapper; None: not a swap
    # model on its own (an embedder another family uses)
    load: Callable[[ModelEntry, str, int, str, FaceFinder], Any] | None = None
    check: Check | None = None  # None: not a model file (the persona)
    pose_limits: tuple[float, float] = NO_POSE_LIMITS  # default (max yaw, max pitch)
    controls: tuple[str, ...] = ()  # OBS panel controls that apply to this family only
    suffix: str = ""  # a file suffix only this family uses (".dfm")
    servable: bool = False  # an inference server (core.triton) can run its files
    companion: str = ""  # the kind of file it needs beside it (inswapper: "arcface")
    # (model file, candidate companions) -> the one it pairs with, or None
    pair: Callable[[Path, list[Path]], Path | None] | None = None
    no_companion: str = ""  # the reason an entry is unusable without one
    # served, what of it must still be here as a file ("" = the server alone runs it)
    served_needs_file: str = ""

    @property
    def swapper(self) -> bool:
        return self.load is not None


def checked_signature(family: Family, inputs: Sequence[Tensor], outputs: Sequence[Tensor],
                      model: str, emap_dims: Sequence[int] | None = None) -> Signature:
    """A loaded session's signature when it is of `family`, else ModelFileError naming
    what the model is: the same check a file gets in the registry."""
    from core.swap.families import classify, expect  # (the families import this module)

    return expect(family, classify(inputs, outputs, emap_dims), model)

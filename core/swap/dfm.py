"""DeepFaceLab / DeepFaceLive .dfm models: NHWC BGR [0,1] whole-face crops, outputs by position.

A .dfm is a plain ONNX file. Its input resolution is read from the model (224 or 320 are
common), the crop is framed as DeepFaceLive frames it (core.swap.framing, with its aligner's
options), and AMP models get the user's morph value. The two model masks become the
SwapOutput mask used by core.merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core import adjust
from core.align import cut
from core.face import Face
from core.frame import check_frame, to_bgr
from core.runtime import get_session, round_trip_ms, run
from core.settings import SwapSettings
from core.signatures import UNUSABLE, Signature, Tensor, brief, tensors
from core.swap.base import (
    NETWORK_POSE_LIMITS,
    FaceFinder,
    Family,
    SwapOutput,
    check_finite,
    checked_signature,
)
from core.swap.framing import Framing, crop_matrix
from core.target import Target

if TYPE_CHECKING:
    from core.swap.families import ModelEntry


class DFMSwapper:
    """One loaded .dfm model; `swap` runs it on one face."""

    pose_limits = NETWORK_POSE_LIMITS

    def __init__(self, path: str | Path, device: str = "cpu", threads: int = 0) -> None:
        served = Target(device).served  # `path` is then a model name on that server
        self.path: Path | None = None if served else Path(path)
        self.name = str(path) if served else Path(path).stem
        self.session = get_session(path, device, threads)
        signature = checked_signature(FAMILY, tensors(self.session.get_inputs()),
                                      tensors(self.session.get_outputs()),
                                      self.name if served else Path(path).name)
        self.resolution = signature.resolution
        self.input_name = signature.inputs[0]
        self.morph_name = signature.inputs[1] if signature.morph else None
        self.provider = self.session.get_providers()[0]
        # the pipeline times the swap as a whole; a model on an inference server also
        # reports its round trips ("network")
        self.timings: dict[str, float] = {}

    def _infer(self, face_bgr: np.ndarray, morph: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(face mask, celeb face BGR, celeb mask), float32, for one R x R BGR 0..1 crop."""
        feed = {self.input_name: np.ascontiguousarray(face_bgr, np.float32)[None]}
        if self.morph_name is not None:
            if not 0.0 <= morph <= 1.0:
                raise ValueError(f"morph must be within 0..1, got {morph}")
            feed[self.morph_name] = np.array([morph], np.float32)
        face_mask, celeb, celeb_mask = run(self.session, feed)  # by position
        self.timings["network"] = self.timings.get("network", 0.0) + \
            round_trip_ms(self.session)
        check_finite(self.name, face=celeb, face_mask=face_mask, celeb_mask=celeb_mask)
        return (face_mask[0, ..., 0].astype(np.float32), celeb[0].astype(np.float32),
                celeb_mask[0, ..., 0].astype(np.float32))

    def run(self, crop_bgr: np.ndarray, settings: SwapSettings
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(celeb face RGB uint8, face mask, celeb mask) for one R x R BGR uint8 crop, with
        DeepFaceLive's swapper options: pre-sharpen and pre-gamma on the crop, two passes,
        post-gamma on the face (gammas given R, G, B; the crop is BGR)."""
        s = settings
        self.timings = {}
        crop = adjust.presharpen(crop_bgr.astype(np.float32) * np.float32(1 / 255), s.presharpen)
        crop = adjust.gamma(crop, (s.pre_gamma_b, s.pre_gamma_g, s.pre_gamma_r))
        face_mask, celeb, celeb_mask = self._infer(crop, s.morph)
        if s.two_pass:  # the swapped face once more; your face's mask stays the first one
            _, celeb, celeb_mask = self._infer(np.clip(celeb, 0.0, 1.0), s.morph)
        celeb = adjust.gamma(celeb, (s.post_gamma_b, s.post_gamma_g, s.post_gamma_r))
        rgb = np.clip(celeb[..., ::-1] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(rgb), face_mask, celeb_mask

    def swap(self, frame: np.ndarray, fmt: str, face: Face, settings: SwapSettings) -> SwapOutput:
        check_frame(frame, fmt)
        matrix = crop_matrix(face.landmarks, self.resolution, Framing.of(settings),
                             yaw_deg=face.pose[0])
        aligned = cut(frame, matrix, self.resolution)
        rgb, face_mask, celeb_mask = self.run(to_bgr(aligned.crop, fmt), settings)
        return SwapOutput(crop=rgb, matrix=aligned.matrix, mask=face_mask, celeb_mask=celeb_mask)


def signature(inputs: Sequence[Tensor], outputs: Sequence[Tensor],
              emap_dims: Sequence[int] | None = None) -> Signature | None:
    """A .dfm's graph: in_face (N,R,R,3) NHWC [+ morph_value], outputs face mask (1ch), celeb
    face (3ch), celeb mask (1ch); None where it is no DFM at all."""
    if not inputs or "in_face" not in inputs[0].name:
        return None
    shape = inputs[0].shape
    if len(inputs) > 2:
        return Signature(UNUSABLE, f"DFM-like but has {len(inputs)} inputs (a DFM has 1 or 2)")
    if len(shape) != 4 or shape[3] != 3 or not isinstance(shape[1], int) or shape[1] != shape[2] \
            or shape[1] <= 0:
        return Signature(UNUSABLE, f"DFM-like but in_face is {list(shape)}, expected "
                                   "(N,R,R,3) NHWC")
    if len(inputs) == 2 and "morph_value" not in inputs[1].name:
        return Signature(UNUSABLE, f"DFM-like but second input is {inputs[1].name!r}, "
                                   "expected morph_value")
    channels = [(o.shape or (None,))[-1] for o in outputs]
    if len(outputs) != 3 or channels != [1, 3, 1]:
        return Signature(UNUSABLE, f"DFM-like but outputs are {brief(outputs)}; expected "
                                   "face mask (1ch), celeb face (3ch), celeb mask (1ch)")
    return Signature("dfm", resolution=int(shape[1]), morph=len(inputs) == 2,
                     inputs=tuple(v.name for v in inputs))


def _describe(entry: ModelEntry) -> str:
    return f"DFM {entry.resolution}px" + (", AMP (morph)" if entry.morph else "")


def _load(entry: ModelEntry, device: str, threads: int, reference: str,
          find_face: FaceFinder) -> DFMSwapper:
    return DFMSwapper(entry.path or entry.name, device=device, threads=threads)


FAMILY = Family("dfm", "a DFM", _describe, _load, signature, NETWORK_POSE_LIMITS,
                controls=("group_dfm",), suffix=".dfm", servable=True)

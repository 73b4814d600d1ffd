"""DeepFaceLab / DeepFaceLive .dfm models: NHWC BGR [0,1] whole-face crops, outputs by position.

A .dfm is a plain ONNX file. Its input resolution is read from the model (224 or 320 are
common), the crop is framed as DeepFaceLive frames it (core.framing, with its aligner's
options), and AMP models get the user's morph value. The two model masks become the
SwapOutput mask used by core.merge.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core import adjust, triton
from core.align import cut
from core.face import Face
from core.frame import check_frame, to_bgr
from core.framing import Framing, crop_matrix
from core.runtime import get_session, run
from core.settings import SwapSettings
from core.signatures import classify, expect, tensors
from core.swap.base import SwapOutput, check_finite

# Face-swap networks are trained on faces that mostly look at the camera. Past about 50
# degrees of yaw and 40 of pitch a turned face no longer fits the frontal layout (measured
# with its five points: their residual after the best fit passes 25 % of the eye distance,
# against 9-18 % for frontal faces; `bench --headturn`, README "Head turns"), so the crop no
# longer shows a face as in training. A .dfm is framed from more points (core.framing) but
# was trained on the same frontal faces: it gets the same limits.
POSE_LIMITS = (50.0, 40.0)


class DFMSwapper:
    """One loaded .dfm model; `swap` runs it on one face."""

    pose_limits = POSE_LIMITS

    def __init__(self, path: str | Path, device: str = "cpu", threads: int = 0) -> None:
        served = triton.is_server(device)  # `path` is then a model name on that server
        self.path: Path | None = None if served else Path(path)
        self.name = str(path) if served else Path(path).stem
        self.session = get_session(path, device, threads)
        signature = expect("dfm", classify(tensors(self.session.get_inputs()),
                                           tensors(self.session.get_outputs())),
                           self.name if served else Path(path).name)
        self.resolution = signature.resolution
        self.input_name = signature.inputs[0]
        self.morph_name = signature.inputs[1] if signature.morph else None
        self.provider = self.session.get_providers()[0]
        # the pipeline times the swap as a whole; a model on an inference server also
        # reports its round trips ("network")
        self.timings: dict[str, float] = {}

    @property
    def has_morph(self) -> bool:
        return self.morph_name is not None

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
            triton.round_trip_ms(self.session)
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

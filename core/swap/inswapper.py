"""InsightFace inswapper_128: an ArcFace identity of the reference photo drives the swap.

The identity vector is fed as `source` = normalise(normalise(ArcFace(reference)) @ emap),
where `emap` is the model's last graph initializer. Both the emap (one read of a large
file) and each reference's identity are computed once and cached, so live frames only run
the 128 px swap itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from core import triton
from core.align import align, arcface_template
from core.errors import InputError, ModelFileError
from core.face import Face
from core.frame import check_frame, to_rgb
from core.imageio import read_rgb
from core.lru import LruCache
from core.modelfiles import file_version
from core.runtime import get_session, run
from core.settings import SwapSettings
from core.signatures import classify, expect, tensors
from core.swap.base import SwapOutput, check_finite
from core.swap.dfm import POSE_LIMITS

CACHED = 8  # emaps and reference embeddings kept (by file versions)
_emaps: LruCache[np.ndarray] = LruCache(CACHED)
# ArcFace embeddings per (embedder version, reference version); each model applies its emap
_embeddings: LruCache[np.ndarray] = LruCache(CACHED)


def load_emap(path: str | Path) -> np.ndarray:
    """The 512x512 emap (last initializer) of an inswapper model, read once per file version."""
    path = Path(path)
    key = file_version(path)
    emap = _emaps.get(key)
    if emap is None:
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # protobuf raises DecodeError and friends
            raise ModelFileError(f"cannot read {path.name}: {exc}") from None
        if not model.graph.initializer:
            raise ModelFileError(f"{path.name} has no initializers, so no emap")
        emap = numpy_helper.to_array(model.graph.initializer[-1]).astype(np.float32)
        if emap.shape != (512, 512):
            raise ModelFileError(f"{path.name}: last initializer is {emap.shape}, "
                                 "expected the 512x512 emap")
        _emaps.put(key, emap)
    return emap


def _normalise(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm < 1e-12:
        raise ValueError("cannot normalise a zero embedding")
    return (vector / norm).astype(np.float32)


class InswapperSwapper:
    """inswapper_128 + its ArcFace embedder, bound to one reference identity."""

    size = 128
    pose_limits = POSE_LIMITS  # an ArcFace-aligned 128 px crop: the same 5-point limits

    def __init__(self, path: str | Path, embedder: str | Path, reference: str = "",
                 device: str = "cpu", threads: int = 0) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self.embedder_path = Path(embedder)
        # On an inference server (core.triton) only the swap network runs there, as the
        # model of the file's name; the emap comes from the file, the embedder runs here.
        self.session = get_session(self.name if triton.is_server(device) else self.path,
                                   device, threads)
        self.embedder = get_session(self.embedder_path, triton.local_device(device), threads)
        self.provider = self.session.get_providers()[0]
        self.timings: dict[str, float] = {}  # the pipeline times the swap; "network" here
        self.emap = load_emap(self.path)
        signature = expect("inswapper", classify(tensors(self.session.get_inputs()),
                                                 tensors(self.session.get_outputs()),
                                                 self.emap.shape), self.path.name)
        self.target_name, self.source_name = signature.inputs
        self.template = arcface_template(self.size)
        self.source = self.set_reference(reference)

    def embed(self, image_rgb: np.ndarray, points5: np.ndarray) -> np.ndarray:
        """L2-normalised ArcFace embedding (512,) of the face at `points5` in an RGB image."""
        crop = align(image_rgb, points5, arcface_template(112), 112).crop
        blob = (crop.astype(np.float32) - 127.5) / 127.5
        blob = np.ascontiguousarray(blob.transpose(2, 0, 1)[None])
        name = self.embedder.get_inputs()[0].name
        return _normalise(run(self.embedder, {name: blob})[0].reshape(-1))

    def identity(self, embedding: np.ndarray) -> np.ndarray:
        """The model's `source` input (1, 512) for a normalised ArcFace embedding."""
        return _normalise(embedding.reshape(1, -1) @ self.emap)

    def set_reference(self, reference: str) -> np.ndarray:
        """Load (or reuse from cache) the identity of the face in `reference`; returns it."""
        if not reference:  # never a silent stand-in identity: the user picks whose face
            raise InputError("inswapper needs a reference photo of the face to apply "
                             "(--reference IMAGE, or the filter's Reference image)")
        path = Path(reference)
        if not path.is_file():
            raise InputError(f"reference image not found: {reference}")
        key = (file_version(self.embedder_path), file_version(path))
        embedding = _embeddings.get(key)
        if embedding is None:
            from core.stills import landmarks_for_image

            image = read_rgb(path, "reference image")
            face = landmarks_for_image(image)
            if face is None:
                raise InputError(f"no face found in reference image {path.name}")
            embedding = self.embed(image, face.points5)
            _embeddings.put(key, embedding)
        self.source = self.identity(embedding)  # this model's emap, never another's
        return self.source

    def run(self, crop_rgb: np.ndarray) -> np.ndarray:
        """Swapped 128 px RGB uint8 face for one aligned 128 px RGB uint8 crop."""
        blob = np.ascontiguousarray(
            (crop_rgb.astype(np.float32) * np.float32(1 / 255)).transpose(2, 0, 1)[None])
        out = run(self.session, {self.target_name: blob, self.source_name: self.source})[0]
        self.timings = {"network": triton.round_trip_ms(self.session)}
        check_finite(self.name, face=out)
        rgb = np.clip(out[0].transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(rgb)

    def swap(self, frame: np.ndarray, fmt: str, face: Face, settings: SwapSettings) -> SwapOutput:
        check_frame(frame, fmt)
        aligned = align(frame, face.points5, self.template, self.size)
        return SwapOutput(crop=self.run(to_rgb(aligned.crop, fmt)), matrix=aligned.matrix)

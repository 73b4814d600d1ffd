"""InsightFace inswapper_128: an ArcFace identity of the reference photo drives the swap.

The identity vector is fed as `source` = normalise(normalise(ArcFace(reference)) @ emap),
where `emap` is the model's last graph initializer. Both the emap (one read of a large
file) and each reference's identity are computed once and cached, so live frames only run
the 128 px swap itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import numpy_helper

from core.align import align, arcface_template
from core.errors import InputError, ModelFileError
from core.face import Face
from core.frame import check_frame, to_rgb
from core.imageio import read_rgb
from core.lru import LruCache
from core.modelfiles import file_version
from core.runtime import get_session, round_trip_ms, run
from core.settings import SwapSettings
from core.signatures import UNUSABLE, Signature, Tensor, tensors
from core.swap.base import (
    NETWORK_POSE_LIMITS,
    FaceFinder,
    Family,
    SwapOutput,
    check_finite,
    checked_signature,
)
from core.target import Target

if TYPE_CHECKING:
    from core.swap.families import ModelEntry

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
    pose_limits = NETWORK_POSE_LIMITS  # an ArcFace-aligned 128 px crop: five points

    def __init__(self, path: str | Path, embedder: str | Path, find_face: FaceFinder,
                 reference: str = "", device: str = "cpu", threads: int = 0) -> None:
        self.path = Path(path)
        self.name = self.path.stem
        self.embedder_path = Path(embedder)
        # On an inference server (core.triton) only the swap network runs there, as the
        # model of the file's name; the emap comes from the file, the embedder runs here.
        target = Target(device)
        self.session = get_session(self.name if target.served else self.path, device, threads)
        self.embedder = get_session(self.embedder_path, target.local, threads)
        self.provider = self.session.get_providers()[0]
        self.timings: dict[str, float] = {}  # the pipeline times the swap; "network" here
        self.emap = load_emap(self.path)
        signature = checked_signature(FAMILY, tensors(self.session.get_inputs()),
                                      tensors(self.session.get_outputs()), self.path.name,
                                      self.emap.shape)
        self.target_name, self.source_name = signature.inputs
        self.template = arcface_template(self.size)
        self.find_face = find_face  # the reference photo's face
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
            image = read_rgb(path, "reference image")
            face = self.find_face(image)
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
        self.timings = {"network": round_trip_ms(self.session)}
        check_finite(self.name, face=out)
        rgb = np.clip(out[0].transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(rgb)

    def swap(self, frame: np.ndarray, fmt: str, face: Face, settings: SwapSettings) -> SwapOutput:
        check_frame(frame, fmt)
        aligned = align(frame, face.points5, self.template, self.size)
        return SwapOutput(crop=self.run(to_rgb(aligned.crop, fmt)), matrix=aligned.matrix)


def signature(inputs: Sequence[Tensor], outputs: Sequence[Tensor],
              emap_dims: Sequence[int] | None = None) -> Signature | None:
    """inswapper_128's graph: a (N,3,128,128) target and a (N,512) source in, a
    (N,3,128,128) face out, its last initializer the 512x512 emap."""
    if len(inputs) != 2 or len(outputs) != 1:
        return None
    image = [v for v in inputs if len(v.shape) == 4 and list(v.shape[1:]) == [3, 128, 128]]
    vector = [v for v in inputs if len(v.shape) == 2 and v.shape[1] == 512]
    if not image or not vector or list(outputs[0].shape[1:]) != [3, 128, 128]:
        return None
    if emap_dims is not None and list(emap_dims) != [512, 512]:
        return Signature(UNUSABLE, "inswapper-like but its last initializer is not the "
                                   "512x512 emap")
    return Signature("inswapper", resolution=128, inputs=(image[0].name, vector[0].name))


def embedder_signature(inputs: Sequence[Tensor], outputs: Sequence[Tensor],
                       emap_dims: Sequence[int] | None = None) -> Signature | None:
    """An ArcFace embedder's graph: a (N,3,112,112) face in, a (N,512) embedding out."""
    if len(inputs) != 1 or len(outputs) != 1:
        return None
    if list(inputs[0].shape[1:]) == [3, 112, 112] and list(outputs[0].shape[1:]) == [512]:
        return Signature("arcface", resolution=112, inputs=(inputs[0].name,))
    return None


def pair_embedder(path: Path, embedders: list[Path]) -> Path | None:
    """The ArcFace embedder beside the inswapper if any, else the first one scanned
    (w600k_r50, the one inswapper was trained with, first)."""
    beside = [e for e in embedders if e.parent == path.parent]
    pool = beside or embedders
    preferred = [e for e in pool if "w600k" in e.name.lower()]
    return (preferred or pool or [None])[0]


def _describe(entry: ModelEntry) -> str:
    return f"inswapper {entry.resolution}px, embedder {entry.embedder.name}"


def _load(entry: ModelEntry, device: str, threads: int, reference: str,
          find_face: FaceFinder) -> InswapperSwapper:
    return InswapperSwapper(entry.path, entry.embedder, find_face, reference=reference,
                            device=device, threads=threads)


FAMILY = Family("inswapper", "an inswapper", _describe, _load, signature,
                NETWORK_POSE_LIMITS, servable=True, companion="arcface", pair=pair_embedder,
                no_companion="inswapper without an ArcFace embedder (put w600k_r50.onnx "
                             "beside it)",
                served_needs_file="its emap, and the ArcFace embedder beside it")
EMBEDDER = Family("arcface", "an ArcFace embedder",
                  lambda entry: "ArcFace embedder (used by inswapper)",
                  check=embedder_signature)

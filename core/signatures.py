"""What kind of model a graph is, from the names and shapes of its inputs and outputs: one
check per model family (DFM incl. AMP, inswapper, ArcFace embedder), used for a model file on
disk (core.registry, from its ONNX graph) and for a loaded session (the swappers, from
onnxruntime's description), so both refuse the same things with the same one-line reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import ModelFileError

Dim = int | str | None  # a size, a named (dynamic) dimension, or unknown


@dataclass(frozen=True)
class Tensor:
    """One graph input or output."""

    name: str
    shape: tuple[Dim, ...]


@dataclass(frozen=True)
class Signature:
    """A graph's kind ("dfm", "inswapper", "arcface", "unusable", or "" for none of ours) and
    what the swap code needs to feed it."""

    kind: str
    reason: str = ""  # why "unusable"
    resolution: int = 0
    morph: bool = False  # a DFM with a morph_value input (AMP)
    inputs: tuple[str, ...] = ()  # DFM: face[, morph]; inswapper: target, source


def tensors(described) -> list[Tensor]:
    """Tensor entries from onnxruntime's NodeArg list (name, shape)."""
    return [Tensor(v.name, tuple(v.shape)) for v in described]


def brief(values: Sequence[Tensor]) -> str:
    return ", ".join(f"{v.name}{list(v.shape)}" for v in values)


def _dfm(inputs: Sequence[Tensor], outputs: Sequence[Tensor]) -> Signature | None:
    if not inputs or "in_face" not in inputs[0].name:
        return None
    shape = inputs[0].shape
    if len(inputs) > 2:
        return Signature("unusable", f"DFM-like but has {len(inputs)} inputs (a DFM has 1 or 2)")
    if len(shape) != 4 or shape[3] != 3 or not isinstance(shape[1], int) or shape[1] != shape[2] \
            or shape[1] <= 0:
        return Signature("unusable", f"DFM-like but in_face is {list(shape)}, expected "
                                     "(N,R,R,3) NHWC")
    if len(inputs) == 2 and "morph_value" not in inputs[1].name:
        return Signature("unusable", f"DFM-like but second input is {inputs[1].name!r}, "
                                     "expected morph_value")
    channels = [(o.shape or (None,))[-1] for o in outputs]
    if len(outputs) != 3 or channels != [1, 3, 1]:
        return Signature("unusable", f"DFM-like but outputs are {brief(outputs)}; expected "
                                     "face mask (1ch), celeb face (3ch), celeb mask (1ch)")
    return Signature("dfm", resolution=int(shape[1]), morph=len(inputs) == 2,
                     inputs=tuple(v.name for v in inputs))


def _inswapper(inputs: Sequence[Tensor], outputs: Sequence[Tensor],
               emap_dims: Sequence[int] | None) -> Signature | None:
    if len(inputs) != 2 or len(outputs) != 1:
        return None
    image = [v for v in inputs if len(v.shape) == 4 and list(v.shape[1:]) == [3, 128, 128]]
    vector = [v for v in inputs if len(v.shape) == 2 and v.shape[1] == 512]
    if not image or not vector or list(outputs[0].shape[1:]) != [3, 128, 128]:
        return None
    if emap_dims is not None and list(emap_dims) != [512, 512]:
        return Signature("unusable", "inswapper-like but its last initializer is not the "
                                     "512x512 emap")
    return Signature("inswapper", resolution=128, inputs=(image[0].name, vector[0].name))


def _arcface(inputs: Sequence[Tensor], outputs: Sequence[Tensor]) -> Signature | None:
    if len(inputs) != 1 or len(outputs) != 1:
        return None
    if list(inputs[0].shape[1:]) == [3, 112, 112] and list(outputs[0].shape[1:]) == [512]:
        return Signature("arcface", resolution=112, inputs=(inputs[0].name,))
    return None


def classify(inputs: Sequence[Tensor], outputs: Sequence[Tensor],
             emap_dims: Sequence[int] | None = None) -> Signature:
    """The kind of a graph; `emap_dims`: its last initializer's dims where known (an
    inswapper's emap)."""
    for found in (_dfm(inputs, outputs), _inswapper(inputs, outputs, emap_dims),
                  _arcface(inputs, outputs)):
        if found is not None:
            return found
    text = f"foreign signature: inputs {brief(inputs)}; outputs {brief(outputs)}"
    return Signature("unusable", text if len(text) <= 160 else text[:157] + "...")


KIND_WORDS = {"dfm": "a DFM", "inswapper": "an inswapper", "arcface": "an ArcFace embedder"}


def expect(kind: str, signature: Signature, model: str) -> Signature:
    """`signature` when it is of `kind`, else ModelFileError naming what the model is."""
    if signature.kind == kind:
        return signature
    what = signature.reason or f"it is {KIND_WORDS[signature.kind]}"
    raise ModelFileError(f"{model} is not {KIND_WORDS[kind]}: {what}")

"""A graph's signature: the names and shapes of its inputs and outputs, and what kind of
model they make it. Each model family checks its own (core.swap.families.classify runs them),
for a model file on disk (core.registry, from its ONNX graph) and for a loaded session (the
swappers, from onnxruntime's description), so both refuse the same things with the same
one-line reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Dim = int | str | None  # a size, a named (dynamic) dimension, or unknown
UNUSABLE = "unusable"  # the kind of a graph no family can use


@dataclass(frozen=True)
class Tensor:
    """One graph input or output."""

    name: str
    shape: tuple[Dim, ...]


@dataclass(frozen=True)
class Signature:
    """A graph's kind (a family's, core.swap.families, or UNUSABLE) and what the swap code
    needs to feed it."""

    kind: str
    reason: str = ""  # why UNUSABLE
    resolution: int = 0
    morph: bool = False  # a DFM with a morph_value input (AMP)
    inputs: tuple[str, ...] = ()  # DFM: face[, morph]; inswapper: target, source


def tensors(described) -> list[Tensor]:
    """Tensor entries from onnxruntime's NodeArg list (name, shape)."""
    return [Tensor(v.name, tuple(v.shape)) for v in described]


def brief(values: Sequence[Tensor]) -> str:
    return ", ".join(f"{v.name}{list(v.shape)}" for v in values)

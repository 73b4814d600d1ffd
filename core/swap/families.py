"""The model families, listed once: a new family is one module exporting a Family
(core.swap.base) and one line in FAMILIES. The registry, the signature check of files and
loaded sessions, the OBS panel and the Triton export read what they need from here, and
nothing outside core/swap branches on a family's name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import ModelFileError
from core.signatures import UNUSABLE, Signature, Tensor, brief
from core.swap import dfm, inswapper, persona
from core.swap.base import Family

FAMILIES: tuple[Family, ...] = (persona.FAMILY, dfm.FAMILY, inswapper.FAMILY,
                                inswapper.EMBEDDER)
_BY_KIND = {f.kind: f for f in FAMILIES}
assert len(_BY_KIND) == len(FAMILIES) and UNUSABLE not in _BY_KIND


def of(kind: str) -> Family | None:
    """The family of a kind; None for "unusable" (and anything unknown)."""
    return _BY_KIND.get(kind)


def by_suffix(name: str) -> Family | None:
    """The family a file name's suffix alone implies (".dfm"), else None."""
    return next((f for f in FAMILIES if f.suffix and name.lower().endswith(f.suffix)), None)


def swappers() -> tuple[Family, ...]:
    return tuple(f for f in FAMILIES if f.swapper)


@dataclass(frozen=True)
class ModelEntry:
    """One swap model, embedder, persona or unusable file as the registry sees it."""

    name: str  # what --model / the OBS dropdown uses: "persona:<stem>" or the file stem
    kind: str  # a family's kind, or "unusable"
    # model file or persona image; None for the packaged default persona and for a model
    # that runs on an inference server (the server knows it by `name`)
    path: Path | None = None
    reason: str = ""  # why the file is unusable; "" when usable
    resolution: int = 0  # swap crop size (DFM: from the model input; inswapper: 128)
    morph: bool = False  # DFM with a morph_value input (AMP)
    embedder: Path | None = None  # the companion file paired with it (inswapper: ArcFace)

    @property
    def family(self) -> Family | None:
        return of(self.kind)

    @property
    def usable(self) -> bool:
        return not self.reason and self.family is not None

    @property
    def is_swapper(self) -> bool:
        return self.usable and self.family.swapper

    def describe(self) -> str:
        """One line for listings."""
        if not self.usable:
            return f"unusable: {self.reason}"
        return self.family.describe(self)

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("path", "embedder"):
            data[key] = str(data[key]) if data[key] is not None else None
        data["usable"] = self.usable
        return data


def classify(inputs: Sequence[Tensor], outputs: Sequence[Tensor],
             emap_dims: Sequence[int] | None = None) -> Signature:
    """The kind of a graph, by each family's check; `emap_dims`: its last initializer's
    dims where known (an inswapper's emap)."""
    for family in FAMILIES:
        found = family.check(inputs, outputs, emap_dims) if family.check else None
        if found is not None:
            return found
    text = f"foreign signature: inputs {brief(inputs)}; outputs {brief(outputs)}"
    return Signature(UNUSABLE, text if len(text) <= 160 else text[:157] + "...")


def expect(family: Family, signature: Signature, model: str) -> Signature:
    """`signature` when it is of `family`, else ModelFileError naming what the model is."""
    if signature.kind == family.kind:
        return signature
    what = signature.reason or f"it is {_BY_KIND[signature.kind].words}"
    raise ModelFileError(f"{model} is not {family.words}: {what}")

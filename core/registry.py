"""Model discovery: find .dfm/.onnx files and personas, identify each by its ONNX signature.

Names on disk lie (a renamed inswapper, a half-downloaded .dfm), so every file is
identified from its graph inputs, outputs and initializers. Unusable files stay in the
listing with a one-line reason, so a user can see why their model does not appear.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import onnx

from core import MODELS_DIR
from core.errors import ModelFileError
from core.imageio import IMAGE_SUFFIXES
from core.lru import LruCache
from core.modelfiles import BUILTIN_DIR, MODEL_SUFFIXES, file_version
from core.signatures import UNUSABLE, Dim, Signature, Tensor
from core.swap import families
from core.swap.families import ModelEntry, classify
from core.swap.persona import FAMILY as PERSONA
from core.swap.persona import PERSONAS_DIR

ENV_VAR = "FACESWAP_MODELS"  # os.pathsep-separated extra model folders


SIGNATURES_CACHED = 256  # model files whose identification is remembered (by path, version)
_signature_cache: LruCache[Signature] = LruCache(SIGNATURES_CACHED)


def _dims(value: onnx.ValueInfoProto) -> tuple[Dim, ...]:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return ()
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in tensor.shape.dim)


def _read_signature(path: Path) -> Signature:
    try:
        with open(path, "rb") as f:
            head = f.read(1)
    except OSError as exc:
        return Signature(UNUSABLE, f"cannot read file: {exc.strerror or exc}")
    if not head:
        return Signature(UNUSABLE, "empty file")
    if head != b"\x08":  # every ONNX file starts with field 1 (ir_version), varint
        return Signature(UNUSABLE, "not an ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # protobuf DecodeError and friends
        return Signature(UNUSABLE, "truncated or corrupt ONNX file (protobuf decode failed)")
    graph = model.graph
    if not graph.input or not graph.output:
        return Signature(UNUSABLE, "truncated or corrupt ONNX file (no graph inputs/outputs)")
    weights = {t.name for t in graph.initializer}
    inputs = [Tensor(v.name, _dims(v)) for v in graph.input if v.name not in weights]
    outputs = [Tensor(v.name, _dims(v)) for v in graph.output]
    emap = list(graph.initializer[-1].dims) if graph.initializer else []
    return classify(inputs, outputs, emap)


def identify(path: str | Path) -> Signature:
    """Kind of one model file, cached per (path, mtime, size) so rescans stay cheap."""
    path = Path(path)
    try:
        key = file_version(path)
    except OSError as exc:
        return Signature(UNUSABLE, f"cannot read file: {exc.strerror or exc}")
    found = _signature_cache.get(key)
    if found is None:
        found = _read_signature(path)
        _signature_cache.put(key, found)
    return found


_user_dirs: tuple[Path, ...] = ()


def set_user_dirs(folders: Iterable[str | Path]) -> None:
    """Process-wide user model folders (the OBS script's "Models folder" setting)."""
    global _user_dirs
    _user_dirs = tuple(Path(f).expanduser() for f in folders if str(f).strip())


def model_dirs(extra_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """models/, $FACESWAP_MODELS, the user folders, then `extra_dirs` (CLI), deduplicated."""
    candidates = [MODELS_DIR, *os.environ.get(ENV_VAR, "").split(os.pathsep), *_user_dirs,
                  *extra_dirs]
    seen: list[Path] = []
    for entry in candidates:
        if not str(entry).strip():
            continue
        folder = Path(entry).expanduser().resolve()
        if folder not in seen:
            seen.append(folder)
    return seen


def persona_images(folder: Path = PERSONAS_DIR) -> dict[str, Path]:
    """Persona name -> portrait for every image in models/personas/ (name = file stem)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}


def _personas() -> list[ModelEntry]:
    found = persona_images()
    entries = {"default": ModelEntry("persona:default", PERSONA.kind, found.get("default"))}
    for stem, path in found.items():
        entries.setdefault(stem, ModelEntry(f"persona:{stem}", PERSONA.kind, Path(path)))
    return list(entries.values())


def _model_files(folders: list[Path]) -> list[Path]:
    builtin = BUILTIN_DIR.resolve()
    files: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() not in MODEL_SUFFIXES or not path.is_file():
                continue
            resolved = path.resolve()
            if builtin in resolved.parents or resolved in files:
                continue
            files.append(resolved)
    return files


def _entry(path: Path, name: str, files: list[Path]) -> ModelEntry:
    """The entry of one model file; a family that needs a file beside it (an inswapper's
    embedder) is paired with one of `files` here."""
    sig = identify(path)
    family = families.of(sig.kind)
    if family is None or not family.companion:
        return ModelEntry(name, sig.kind, path, sig.reason, sig.resolution, sig.morph)
    companion = family.pair(path, [p for p in files if identify(p).kind == family.companion])
    if companion is None:
        return ModelEntry(name, sig.kind, path, family.no_companion, sig.resolution)
    return ModelEntry(name, sig.kind, path, "", sig.resolution, sig.morph, embedder=companion)


def scan(extra_dirs: Iterable[str | Path] = ()) -> list[ModelEntry]:
    """Personas, then every .dfm/.onnx file in the model folders (builtin detectors excluded)."""
    files = _model_files(model_dirs(extra_dirs))
    entries = _personas()
    taken = {e.name for e in entries}
    for path in files:
        name = path.stem
        if name in taken:
            name = f"{path.parent.name}/{path.stem}"
        taken.add(name)
        entries.append(_entry(path, name, files))
    return entries


def resolve(name_or_path: str, extra_dirs: Iterable[str | Path] = ()) -> ModelEntry:
    """The usable swap model for a registry name or a file path; ModelFileError otherwise."""
    text = str(name_or_path).strip()
    if not text:
        raise ModelFileError("no model given; run `python -m core models` to list them")
    path = Path(text).expanduser()
    if path.suffix.lower() in MODEL_SUFFIXES or path.is_file():
        folders = model_dirs(extra_dirs)
        if not path.is_file() and not path.is_absolute():  # a file name: in a models folder
            path = next((d / path for d in folders if (d / path).is_file()), path)
        if not path.is_file():
            where = [str(path)] if path.is_absolute() else \
                [str(Path.cwd() / path), *(str(d / path) for d in folders)]
            raise ModelFileError(f"model file not found: {text} (looked for {', '.join(where)})")
        candidates: list[Path] = []
        family = families.of(identify(path).kind)
        if family is not None and family.companion:  # only then look for one: beside it
            beside = [p.resolve() for p in sorted(path.parent.iterdir())  # (not recursively)
                      if p.suffix.lower() in MODEL_SUFFIXES and p.is_file()]
            candidates = [*beside, *_model_files(folders)]
        entry = _entry(path.resolve(), path.stem, candidates)
    else:
        entries = {e.name: e for e in scan(extra_dirs)}
        entry = entries.get(text) or entries.get(f"persona:{text}" if ":" not in text else "")
        if entry is None:
            names = ", ".join(e.name for e in entries.values() if e.is_swapper)
            folders = ", ".join(str(d) for d in model_dirs(extra_dirs))
            raise ModelFileError(f"unknown model {text!r}; available: {names} (models "
                                 f"searched in {folders})")
    if not entry.usable:
        raise ModelFileError(f"model {entry.name} ({entry.path}) is unusable: {entry.reason}")
    if not entry.is_swapper:
        raise ModelFileError(f"{entry.name} is {entry.family.words}, not a swap model; "
                             "pick the model that uses it")
    return entry


def resolve_on_server(model: str, device: str,
                      extra_dirs: Iterable[str | Path] = ()) -> ModelEntry:
    """The usable swap model `model` on the inference server `device` (core.triton),
    identified from the server's model metadata by the same signature check as a file. A
    served inswapper is the local file of that name (its emap and the ArcFace embedder
    beside it stay here; the swapper checks the served graph against them)."""
    from core import triton
    from core.signatures import tensors

    name = model.strip()
    if not name:
        raise ModelFileError(f"no model given; name a model on {device}")
    inputs, outputs = triton.model_args(device, name)
    signature = classify(tensors(inputs), tensors(outputs))
    where = f"{name} on {triton.parse(device).id}"
    family = families.of(signature.kind)
    if family is None or not family.swapper:
        raise ModelFileError(f"{where} is not a swap model: "
                             f"{signature.reason or 'it is ' + family.words}")
    if family.served_needs_file:
        try:
            local = resolve(name, extra_dirs)
        except ModelFileError:
            local = None
        if local is None or local.kind != family.kind:
            raise ModelFileError(f"{where} is {family.words}: it needs the same file here too "
                                 f"({family.served_needs_file}): put {name}.onnx in a models "
                                 "folder")
        return local
    return ModelEntry(name, signature.kind, resolution=signature.resolution,
                      morph=signature.morph)  # no file here: the server's model `name`


def scan_server(device: str, extra_dirs: Iterable[str | Path] = ()) -> list[ModelEntry]:
    """Every model the server `device` lists, identified as resolve_on_server does (one it
    cannot use is listed with its reason, as an unusable file is); ServerError where the
    server cannot be reached or does not allow listing."""
    from core import triton

    entries = []
    for name in triton.list_models(device):
        try:
            entries.append(resolve_on_server(name, device, extra_dirs))
        except ModelFileError as exc:
            entries.append(ModelEntry(name, UNUSABLE, reason=str(exc)))
    return entries


def load_swapper(entry: ModelEntry, device: str = "cpu", threads: int = 0,
                 reference: str = ""):
    """Build the Swapper for a resolved entry (its family's loader); a reference photo's
    face is found as any still's (core.stills)."""
    from core.stills import landmarks_for_image

    if not entry.is_swapper:
        raise ModelFileError(f"{entry.name} is not a usable swap model: "
                             f"{entry.reason or entry.kind}")
    return entry.family.load(entry, device, threads, reference, landmarks_for_image)

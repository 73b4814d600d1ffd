"""Scene-based model switching.

The script setting "Scene -> model" maps a scene name to a model; when that scene goes on
program, the Face Swap filters of the sources in it (nested scenes and groups included)
switch to that model; their other settings stay their own. Mapped
models are prepared in advance - sessions and portraits load into the engine's shared
caches in a background thread - and SwapService keeps the old model swapping until the
new pipeline is live, so a switch shows neither frozen nor unswapped frames
(obs_script.preparer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from core import registry
from core.modelfiles import MODEL_SUFFIXES
from core.settings import SwapSettings
from obs_script import libobs as L
from obs_script import obsdata
from obs_script.preparer import Preparer, prepare_key


def parse_mapping(lines: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """'Scene name = model' lines -> {scene: model}, plus one message per bad line."""
    mapping: dict[str, str] = {}
    errors = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        scene, sep, model = text.rpartition("=")
        if not sep or not scene.strip() or not model.strip():
            errors.append(f"ignored {text!r}: expected 'Scene name = model'")
            continue
        mapping[scene.strip()] = model.strip()
    return mapping, errors


def model_problem(model: str, entries: list[registry.ModelEntry] | None) -> str:
    """Why a mapped model cannot be used ('' when it can, or cannot be told yet): a model
    the scan found unusable (named so, with the reason), not a swap model, or neither a
    model the scan found (`entries`, None while the first scan runs) nor a file."""
    if entries is None:
        return ""
    path = Path(model).expanduser()
    for entry in entries:
        if entry.name in (model, f"persona:{model}") or (
                entry.path is not None and path.is_absolute() and entry.path == path):
            if entry.is_swapper:
                return ""
            if not entry.usable:
                return f"model {model!r} is unusable: {entry.reason}"
            return f"model {model!r} is not a swap model ({entry.describe()})"
    if path.suffix.lower() in MODEL_SUFFIXES or path.is_absolute():
        found = path.is_file() or (not path.is_absolute() and any(
            (folder / path).is_file() for folder in registry.model_dirs()))
        return "" if found else f"model file {model} not found"
    return f"unknown model {model!r}"


class SceneSwitcher:
    """Applies the scene -> model mapping; `live()` is registration.live_instances."""

    def __init__(self, live: Callable[[], AbstractContextManager[list]]) -> None:
        self.live = live
        self.mapping: dict[str, str] = {}
        self.errors: list[str] = []  # mistakes in the mapping (bad lines, models not usable)
        self.problems: dict[str, str] = {}  # scene -> why its model is not applied
        self.held = ""  # the program scene whose switch waits for the first model scan
        self._parse_errors: list[str] = []
        self._logged: set[str] = set()
        self.scene = ""
        self.preparer = Preparer()

    def set_mapping(self, lines: Iterable[str]) -> None:
        """Apply the "Scene = model" lines; their mistakes go to `errors` and the log."""
        self.mapping, self._parse_errors = parse_mapping(lines)
        self.check_models()
        for scene, model in self.mapping.items():
            self.prepare(model, scene)

    def check_models(self) -> None:
        """Name mapped models the scan does not know (again after each scan); each new
        mistake is logged once."""
        from obs_script.catalog import CATALOG  # scanned in the background, not on the UI

        known = CATALOG.entries()
        self.problems = {scene: problem for scene, model in self.mapping.items()
                         if (problem := model_problem(model, known))}
        if known is None:  # the first scan runs: nothing mapped is applied before it ends
            self.problems = {scene: "the model list is not scanned yet"
                             for scene in self.mapping}
        unknown = [f"scene '{scene}': {problem}" for scene, problem in self.problems.items()
                   if known is not None]
        self.errors = [*self._parse_errors, *unknown]
        for error in self.errors:
            if error not in self._logged:
                self._logged.add(error)
                L.log(L.LOG_WARNING, f"Scene -> model: {error}")
        if known is not None and self.held and self.held == self.scene:
            self.held = ""  # the switch refused while the first scan ran: apply it now
            self.apply_current()

    def targets(self, model: str, scene: str) -> list[SwapSettings]:
        """The settings the filters shown in `scene` will switch to (each filter keeps its
        device, threads and reference, which the engine's caches are keyed by); every
        filter's when the scene is not found, the defaults when there is no filter."""
        shown: set[int] | None = None
        scene_source = L.obs_get_source_by_name(scene.encode()) if scene else None
        if scene_source:
            try:
                shown = L.scene_sources(scene_source)
            finally:
                L.obs_source_release(scene_source)
        with self.live() as filters:
            settings = [f.settings for f in filters
                        if shown is None or L.obs_filter_get_parent(f.source) in shown]
        wanted = [s.with_changes(model=model) for s in settings]
        unique = {prepare_key(s): s for s in wanted}
        return list(unique.values()) or [SwapSettings(model=model)]

    def prepare(self, model: str, scene: str = "") -> None:
        for settings in self.targets(model, scene):
            self.preparer.prepare(settings)

    def apply_current(self) -> None:
        """Apply the mapping of the scene on program (after a scan decided its model; runs
        on the scan thread: libobs's source updates are thread-safe, as obs-websocket's use
        from its own threads relies on)."""
        source = L.obs_get_source_by_name(self.scene.encode()) if self.scene else None
        if source:
            try:
                self.scene_changed(self.scene, source)
            finally:
                L.obs_source_release(source)

    def scene_changed(self, scene: str, scene_source: int) -> None:
        """Program scene is now `scene`: switch the filters shown in it to its model. A
        mapping that failed its check is never applied: the filters keep the model they
        swap with, so a typo cannot put an unswapped frame on program."""
        self.scene = scene
        model = self.mapping.get(scene)
        if not model:
            return
        if scene in self.problems:
            from obs_script.catalog import CATALOG

            self.held = scene if CATALOG.swapper_names() is None else ""
            L.log(L.LOG_WARNING, f"scene '{scene}': not switched to {model} "
                                 f"({self.problems[scene]}); its filters keep their model")
            return
        shown = L.scene_sources(scene_source)
        switched = 0
        with self.live() as filters:
            for flt in filters:
                if L.obs_filter_get_parent(flt.source) in shown and flt.settings.model != model:
                    obsdata.update_source(flt.source, model=model)
                    switched += 1
        L.log(L.LOG_INFO, f"scene '{scene}': {switched} filter(s) switched to {model}")

    def preview_changed(self, scene: str) -> None:
        """Studio mode: the scene about to go live gets its model prepared now."""
        model = self.mapping.get(scene)
        if model:
            self.prepare(model, scene)

    def stop(self) -> None:
        self.preparer.stop()

"""Scene-based model switching and the script's hotkeys.

The script setting "Scene -> model" maps a scene name to a model; when that scene goes on
program, the Face Swap filters of the sources in it (nested scenes and groups included)
switch to that model; their other settings stay their own. Mapped
models are prepared in advance - sessions and portraits load into the engine's shared
caches in a background thread - and SwapService keeps the old model swapping until the
new pipeline is live, so a switch shows neither frozen nor unswapped frames.

Hotkeys (Settings > Hotkeys, saved with the script) act on the Face Swap filters of the
sources now on program (all filters when none is): toggle swap on/off, next / previous
model.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from core import registry
from core.errors import FaceSwapError, one_line
from core.settings import REBUILD_FIELDS, SwapSettings
from obs_script import libobs as L
from obs_script import obsdata

HOTKEYS = {"face_swap.toggle": "Face Swap: toggle swap on/off",
           "face_swap.next_model": "Face Swap: next model",
           "face_swap.previous_model": "Face Swap: previous model"}


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


def model_problem(model: str, known: list[str] | None) -> str:
    """Why a mapped model cannot be used ('' when it can, or cannot be told yet): not a
    model the scan found (`known`, None while the first scan runs) and no such file."""
    if known is None or model in known or f"persona:{model}" in known:
        return ""
    path = Path(model).expanduser()
    if path.suffix.lower() in registry.MODEL_SUFFIXES or path.is_absolute():
        found = path.is_file() or (not path.is_absolute() and any(
            (folder / path).is_file() for folder in registry.model_dirs()))
        return "" if found else f"model file {model} not found"
    return f"unknown model {model!r}"


def step_model(names: list[str], current: str, step: int) -> str:
    """The model `step` places after `current` in `names`, wrapping around."""
    if not names:
        raise ValueError("no models to step through")
    index = names.index(current) if current in names else (-1 if step > 0 else 0)
    return names[(index + step) % len(names)]


def _build_swapper(settings: SwapSettings) -> object:
    from core.pipeline import build_swapper  # warms core.runtime's session cache

    return build_swapper(settings)


def prepare_key(settings: SwapSettings) -> tuple:
    """What build_swapper loads by (and the engine caches sessions and portraits by)."""
    return tuple(getattr(settings, name) for name in REBUILD_FIELDS)


class Preparer:
    """One background thread that loads models into the engine's caches ahead of use.

    `build` (build_swapper by default) is what warms the caches; any exception it raises is
    recorded per model and logged once, and the thread goes on with the next request."""

    def __init__(self, build: Callable[[SwapSettings], object] = _build_swapper) -> None:
        self._build = build
        self._queue: queue.Queue[SwapSettings | None] = queue.Queue()
        self._done: set[tuple] = set()
        self.errors: dict[str, str] = {}
        self.prepared: list[SwapSettings] = []  # what was built, in order
        self._thread = threading.Thread(target=self._run, name="face-swap-prepare", daemon=True)
        self._thread.start()

    def prepare(self, settings: SwapSettings) -> None:
        self._queue.put(settings)

    def _run(self) -> None:
        while (settings := self._queue.get()) is not None:
            try:
                self._prepare(settings)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _prepare(self, settings: SwapSettings) -> None:
        key = prepare_key(settings)
        if key in self._done:
            return
        try:
            self._build(settings)
        except FaceSwapError as exc:  # the user's model: shown in the status, not logged
            self.errors[settings.model] = str(exc)
            return
        except Exception as exc:  # a bug or a broken install: keep preparing the rest
            message = one_line(exc)
            if self.errors.get(settings.model) != message:
                L.log(L.LOG_WARNING, f"preparing {settings.model} failed: {message}")
            self.errors[settings.model] = message
            return
        self._done.add(key)
        self.prepared.append(settings)
        self.errors.pop(settings.model, None)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every request so far is handled (tests); True if they were in time."""
        end = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= end:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout: float = 2.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)


class SceneSwitcher:
    """Applies the scene -> model mapping; `live()` is registration.live_instances."""

    def __init__(self, live: Callable[[], AbstractContextManager[list]]) -> None:
        self.live = live
        self.mapping: dict[str, str] = {}
        self.errors: list[str] = []  # mistakes in the mapping (bad lines, unknown models)
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

        known = CATALOG.swapper_names()
        unknown = [f"scene '{scene}': {problem}" for scene, model in self.mapping.items()
                   if (problem := model_problem(model, known))]
        self.errors = [*self._parse_errors, *unknown]
        for error in self.errors:
            if error not in self._logged:
                self._logged.add(error)
                L.log(L.LOG_WARNING, f"Scene -> model: {error}")

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

    def scene_changed(self, scene: str, scene_source: int) -> None:
        """Program scene is now `scene`: switch the filters shown in it to its model."""
        self.scene = scene
        model = self.mapping.get(scene)
        if not model:
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

    @staticmethod
    def on_program(filters: list) -> list:
        """The filters whose source is on program output, or every filter if none is."""
        shown = [f for f in filters if L.obs_source_active(L.obs_filter_get_parent(f.source))]
        return shown or filters

    def toggle(self) -> None:
        with self.live() as filters:
            for flt in self.on_program(filters):
                L.obs_source_set_enabled(flt.source, not L.obs_source_enabled(flt.source))

    def step(self, step: int) -> None:
        from obs_script.catalog import CATALOG  # scanned in the background, not on the UI

        names = CATALOG.swapper_names()
        if names is None:
            L.log(L.LOG_INFO, "model list still being scanned: try the hotkey again")
            return
        with self.live() as filters:
            for flt in self.on_program(filters):
                model = step_model(names, flt.settings.model, step)
                obsdata.update_source(flt.source, model=model)

    def hotkey_actions(self) -> dict[str, Callable[[], None]]:
        return {"face_swap.toggle": self.toggle,
                "face_swap.next_model": lambda: self.step(1),
                "face_swap.previous_model": lambda: self.step(-1)}

    def stop(self) -> None:
        self.preparer.stop()

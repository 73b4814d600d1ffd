"""SwapSettings <-> a filter's obs_data_t: the settings keys are SwapSettings' field names.

One mapping in both directions keeps the engine's defaults the single source of truth:
a filter added with no settings at all gets SwapSettings() (built-in persona on the CPU),
except that it starts in privacy mode (FILTER_DEFAULTS): a new filter never shows the real
face where it cannot swap. A filter saved before that (SETTINGS_VERSION 1, when "show the
real face" was the default) keeps what it had (`migrate`).
"""

from __future__ import annotations

import json

from core.errors import FaceSwapError
from core.presets import PRESET_FIELDS, Presets
from core.settings import SwapSettings, field_types
from obs_script import libobs as L

DEFAULTS = SwapSettings()
# what a new filter starts with: the engine's defaults, in privacy mode
FILTER_DEFAULTS = DEFAULTS.with_changes(on_lost="pixelate")
SETTINGS_VERSION_KEY = b"settings_version"
SETTINGS_VERSION = 2  # 2: new filters start in privacy mode; 1 (no key): "original" did
_TYPES = field_types()
# value type -> (obs_data set-default, obs_data get, Python -> C, C -> Python, obs_data set)
_ACCESS = {
    bool: (L.obs_data_set_default_bool, L.obs_data_get_bool, bool, bool, L.obs_data_set_bool),
    int: (L.obs_data_set_default_int, L.obs_data_get_int, int, int, L.obs_data_set_int),
    float: (L.obs_data_set_default_double, L.obs_data_get_double, float, float,
            L.obs_data_set_double),
    str: (L.obs_data_set_default_string, L.obs_data_get_string, str.encode, L.text,
          L.obs_data_set_string),
}
PRESETS_KEY = b"model_presets"  # per-model presets (core.presets JSON), saved with the filter


def write_defaults(data: int) -> None:
    """Register FILTER_DEFAULTS on `data` (what an unset key reads as)."""
    for name, kind in _TYPES.items():
        set_default, _, to_c, _, _ = _ACCESS[kind]
        set_default(data, name.encode(), to_c(getattr(FILTER_DEFAULTS, name)))


def migrate(data: int) -> None:
    """Bring a filter's stored settings to SETTINGS_VERSION (when it is created): one that
    holds settings but no version was saved by an earlier release, where an unset on_lost
    meant "original", so that is written out; a new filter (nothing stored) keeps the new
    defaults. The version is stored either way, so this runs once per filter."""
    if L.obs_data_get_int(data, SETTINGS_VERSION_KEY) >= SETTINGS_VERSION:
        return
    stored = json.loads(L.text(L.obs_data_get_json(data)) or "{}")
    if stored and not L.obs_data_has_user_value(data, b"on_lost"):
        L.obs_data_set_string(data, b"on_lost", DEFAULTS.on_lost.encode())
    L.obs_data_set_int(data, SETTINGS_VERSION_KEY, SETTINGS_VERSION)


def read(data: int) -> SwapSettings:
    """The SwapSettings stored in `data`; ValueError naming a bad value (e.g. faces='x')."""
    values: dict[str, object] = {}
    for name, kind in _TYPES.items():
        _, get, _, from_c, _ = _ACCESS[kind]
        values[name] = from_c(get(data, name.encode()))
    if not str(values["model"]).strip():
        values["model"] = FILTER_DEFAULTS.model
    if not str(values["device"]).strip():
        values["device"] = FILTER_DEFAULTS.device
    return SwapSettings(**values)


def write(data: int, settings: SwapSettings, names: tuple[str, ...]) -> None:
    """Store some of `settings` in `data` (what the panel then shows)."""
    for name in names:
        _, _, to_c, _, set_value = _ACCESS[_TYPES[name]]
        set_value(data, name.encode(), to_c(getattr(settings, name)))


def read_presets(data: int) -> Presets:
    """The filter's per-model presets; none when the stored text is unusable (it is only a
    convenience: a broken entry must not stop the filter)."""
    try:
        return Presets.from_json(L.text(L.obs_data_get_string(data, PRESETS_KEY)))
    except FaceSwapError:
        return Presets()


def write_presets(data: int, presets: Presets) -> None:
    L.obs_data_set_string(data, PRESETS_KEY, presets.to_json().encode())


def with_presets(data: int, settings: SwapSettings, before: str | None) -> SwapSettings:
    """A model chosen (in the panel, by a hotkey or a scene) brings its preset, which is
    written into `data` so the panel shows it; otherwise the values set are kept as the
    model's preset (core.presets; saved with the filter's settings). `before`: the model
    the filter had (None: a new filter)."""
    presets = read_presets(data)
    if before is not None and settings.model != before:
        settings = presets.recall(settings)
        write(data, settings, PRESET_FIELDS)
    if presets.remember(settings):
        write_presets(data, presets)
    return settings


def update_source(source: int, **changes: object) -> None:
    """obs_source_update with a few string keys (UI thread; fires the filter's update)."""
    data = L.obs_data_create()
    try:
        for key, value in changes.items():
            L.obs_data_set_string(data, key.encode(), str(value).encode())
        L.obs_source_update(source, data)
    finally:
        L.obs_data_release(data)

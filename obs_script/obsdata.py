"""SwapSettings <-> a filter's obs_data_t: the settings keys are SwapSettings' field names.

One mapping in both directions keeps the engine's defaults the single source of truth:
a filter added with no settings at all gets SwapSettings() (built-in persona on the CPU).
"""

from __future__ import annotations

from core.errors import FaceSwapError
from core.presets import Presets
from core.settings import SwapSettings, field_types
from obs_script import libobs as L

DEFAULTS = SwapSettings()
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
    """Register SwapSettings' defaults on `data` (what an unset key reads as)."""
    for name, kind in _TYPES.items():
        set_default, _, to_c, _, _ = _ACCESS[kind]
        set_default(data, name.encode(), to_c(getattr(DEFAULTS, name)))


def read(data: int) -> SwapSettings:
    """The SwapSettings stored in `data`; ValueError naming a bad value (e.g. faces='x')."""
    values: dict[str, object] = {}
    for name, kind in _TYPES.items():
        _, get, _, from_c, _ = _ACCESS[kind]
        values[name] = from_c(get(data, name.encode()))
    if not str(values["model"]).strip():
        values["model"] = DEFAULTS.model
    if not str(values["device"]).strip():
        values["device"] = DEFAULTS.device
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


def update_source(source: int, **changes: object) -> None:
    """obs_source_update with a few string keys (UI thread; fires the filter's update)."""
    data = L.obs_data_create()
    try:
        for key, value in changes.items():
            L.obs_data_set_string(data, key.encode(), str(value).encode())
        L.obs_source_update(source, data)
    finally:
        L.obs_data_release(data)

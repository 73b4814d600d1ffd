"""SwapSettings <-> a filter's obs_data_t: the settings keys are SwapSettings' field names.

One mapping in both directions keeps the engine's defaults the single source of truth:
a filter added with no settings at all gets SwapSettings() (built-in persona on the CPU).
"""

from __future__ import annotations

from dataclasses import fields

from core.settings import SwapSettings
from obs_script import libobs as L

DEFAULTS = SwapSettings()
_KINDS = {f.name: type(getattr(DEFAULTS, f.name)) for f in fields(SwapSettings)}


def write_defaults(data: int) -> None:
    """Register SwapSettings' defaults on `data` (what an unset key reads as)."""
    for name, kind in _KINDS.items():
        key, value = name.encode(), getattr(DEFAULTS, name)
        if kind is bool:
            L.obs_data_set_default_bool(data, key, value)
        elif kind is int:
            L.obs_data_set_default_int(data, key, value)
        elif kind is float:
            L.obs_data_set_default_double(data, key, value)
        else:
            L.obs_data_set_default_string(data, key, value.encode())


def read(data: int) -> SwapSettings:
    """The SwapSettings stored in `data`; ValueError naming a bad value (e.g. faces='x')."""
    values: dict[str, object] = {}
    for name, kind in _KINDS.items():
        key = name.encode()
        if kind is bool:
            values[name] = bool(L.obs_data_get_bool(data, key))
        elif kind is int:
            values[name] = int(L.obs_data_get_int(data, key))
        elif kind is float:
            values[name] = float(L.obs_data_get_double(data, key))
        else:
            values[name] = L.text(L.obs_data_get_string(data, key))
    if not str(values["model"]).strip():
        values["model"] = DEFAULTS.model
    if not str(values["device"]).strip():
        values["device"] = DEFAULTS.device
    return SwapSettings(**values)


def update_source(source: int, **changes: object) -> None:
    """obs_source_update with a few string keys (UI thread; fires the filter's update)."""
    data = L.obs_data_create()
    try:
        for key, value in changes.items():
            L.obs_data_set_string(data, key.encode(), str(value).encode())
        L.obs_source_update(source, data)
    finally:
        L.obs_data_release(data)

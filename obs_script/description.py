"""Keeps the script's description (Tools > Scripts) current after the script has loaded.

OBS asks a Python script for `script_description()` once, at load, and shows that text
each time the script is selected in the Scripts window. Ours carries things that change
later - the model list once the background scan is done, scene-mapping mistakes, engine
problems - so the status thread rewrites the text OBS keeps (the `desc` string of the
script's `struct obs_script`, OBS 26-32: type, loaded, settings, path, file, desc) with
libobs' own dstr_copy, on the UI thread, whenever it changes. The layout is checked first:
the `path` and `desc` strings found there must be the very pointers OBS's own getters
return, or nothing is written. The Scripts window reads the text when the script is
selected, so an open window shows the change once the script is selected again.
"""

from __future__ import annotations

import ctypes as C

from obs_script import libobs as L
from obs_script import registration


class _Dstr(C.Structure):
    _fields_ = [("array", C.c_void_p), ("len", C.c_size_t), ("capacity", C.c_size_t)]


class _Script(C.Structure):
    """The leading fields of `struct obs_script` (obs-scripting-internal.h)."""

    _fields_ = [("type", C.c_int), ("loaded", C.c_bool), ("settings", C.c_void_p),
                ("path", _Dstr), ("file", _Dstr), ("desc", _Dstr)]


def _getter(scripting: C.CDLL, name: str):
    """A char* getter of obs_script_t that returns the pointer itself (not a copy)."""
    return C.CFUNCTYPE(C.c_void_p, C.c_void_p)((name, scripting))


def _layout_ok(scripting: C.CDLL, script: int) -> bool:
    fields = _Script.from_address(script)
    return (bool(fields.path.array)
            and fields.path.array == _getter(scripting, "obs_script_get_path")(script)
            and fields.desc.array == _getter(scripting, "obs_script_get_description")(script))


class DescriptionKeeper:
    """Rewrites the description when `text` changes (call `offer` from any thread)."""

    def __init__(self, module) -> None:
        self.module = module
        self.text = ""
        self.writes = 0
        self.problem = ""  # why it cannot be written here ("" when it can)

    def offer(self, text: str) -> None:
        """Queue a rewrite on the UI thread if `text` differs from what OBS shows."""
        if text != self.text and not self.problem:
            self.text = text
            registration.queue_ui(lambda: self._write(text))

    def _write(self, text: str) -> None:
        if text != self.text:
            return  # a newer text is queued behind this one
        try:
            scripting = L.scripting_library()
            script = L.script_pointer(self.module)
        except (OSError, AttributeError, ValueError) as exc:
            self.problem = f"script description not updatable: {exc}"
            L.log(L.LOG_WARNING, self.problem)
            return
        if not script or not _layout_ok(scripting, script):
            self.problem = "script description not updatable: unknown obs_script layout"
            L.log(L.LOG_WARNING, self.problem)
            return
        L.dstr_copy(C.addressof(_Script.from_address(script).desc), text.encode())
        self.writes += 1


def shown(module) -> str:
    """The description OBS shows for the script now (what its Scripts window reads)."""
    getter = _getter(L.scripting_library(), "obs_script_get_description")
    pointer = getter(L.script_pointer(module))
    return L.text(C.string_at(pointer)) if pointer else ""

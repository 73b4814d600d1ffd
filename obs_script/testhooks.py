"""Test-only hotkeys (registered when FACE_SWAP_TEST_HOOKS=1), so end-to-end tests can do
through obs-websocket's TriggerHotkeyByName what a user does in OBS's dialogs:

- face_swap.test_reload_scripts: what Tools > Scripts > Reload Scripts does for us;
- face_swap.test_properties: build every filter's properties panel as OBS's properties
  window does, and publish what it holds (and the script's description) in the status
  file under "test_properties".
Both run on OBS's UI thread, like the dialogs they stand in for.
"""

from __future__ import annotations

import ctypes as C
import os
import sys
from collections.abc import Callable

from obs_script import libobs as L
from obs_script import registration

ENV_VAR = "FACE_SWAP_TEST_HOOKS"


def enabled() -> bool:
    return os.environ.get(ENV_VAR) == "1"


def _scripting_library() -> C.CDLL:
    """OBS's scripting library, already loaded in this process (its soname differs by
    build: libobs-scripting.so.1 in Debian's OBS 29/30, .so.0 in OBS 32)."""
    names = {"win32": ["obs-scripting.dll"], "darwin": ["libobs-scripting.dylib"]}
    process = [] if sys.platform == "win32" else [None]  # CDLL(None) is POSIX-only
    return L.find_library(
        [*process, *names.get(sys.platform, ["libobs-scripting.so.0", "libobs-scripting.so.1"])],
        "obs_script_reload", "OBS's scripting library")


def reload_script(module) -> None:
    """obs_script_reload() on this script's obs_script_t (from the module's capsule)."""
    scripting = _scripting_library()
    scripting.obs_script_reload.argtypes = [C.c_void_p]
    get_pointer = C.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = C.c_void_p, [C.py_object, C.c_char_p]
    scripting.obs_script_reload(get_pointer(module.__script_data__, None))


def describe_properties(source: int) -> dict:
    """{property name: {"visible", "items" (list labels)}} of a source's properties, plus
    its status text."""
    props = L.obs_source_properties(source)
    found = {}
    try:
        prop = C.c_void_p(L.obs_properties_first(props))
        while prop.value:
            items = [L.text(L.obs_property_list_item_name(prop, i))
                     for i in range(L.obs_property_list_item_count(prop))]
            found[L.text(L.obs_property_name(prop))] = {
                "visible": bool(L.obs_property_visible(prop)), "items": items}
            if not L.obs_property_next(C.byref(prop)):
                break
    finally:
        L.obs_properties_destroy(props)
    data = L.obs_source_get_settings(source)
    try:
        status = L.text(L.obs_data_get_string(data, b"status"))
    finally:
        L.obs_data_release(data)
    return {"properties": found, "status": status}


def actions(module, report: dict, description: Callable[[], str]
            ) -> dict[str, Callable[[], None]]:
    """Hotkey name -> action for the test hooks."""
    def properties() -> None:
        report.clear()
        with registration.live_instances() as filters:
            report.update({f"{f.parent_name}/{f.name}": describe_properties(f.source)
                           for f in filters})
        report["description"] = description()

    return {"face_swap.test_reload_scripts":
            lambda: registration.queue_ui(lambda: reload_script(module)),
            "face_swap.test_properties": lambda: registration.queue_ui(properties)}

"""Test-only hotkeys, loaded by the script when OBS's environment names this file in
FACE_SWAP_TEST_HOOKS (tests/obs/harness.py), so end-to-end tests can do through
obs-websocket's TriggerHotkeyByName what a user does in OBS's dialogs:

- face_swap.test_reload_scripts: what Tools > Scripts > Reload Scripts does for us;
- face_swap.test_properties: build every filter's properties panel as OBS's properties
  window does, and publish what it holds (and the script's description and settings panel
  as the Scripts window reads them) in the status file under "test_properties" (with
  "built", a count);
- face_swap.test_script_settings: apply the script settings in the JSON file
  $FACE_SWAP_TEST_INPUT as the Scripts window does when a user edits them
  (obs_script_update).
All run on OBS's UI thread, like the dialogs they stand in for.

Loading them also arms a stack dump: on SIGUSR1, OBS's Python threads write where they are
to the file $FACE_SWAP_TEST_STACKS (faulthandler, from a C signal handler, so it works
while every Python thread is blocked). The harness sends it to an OBS that does not exit in
time, before killing it, and shows the dump in the failure.
"""

from __future__ import annotations

import ctypes as C
import faulthandler
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

from obs_script import libobs as L
from obs_script import registration

INPUT_VAR = "FACE_SWAP_TEST_INPUT"
STACKS_VAR = "FACE_SWAP_TEST_STACKS"
_stacks = None  # the dump's file, open while the hooks are loaded


def arm_stack_dump() -> None:
    """On SIGUSR1, dump every Python thread's stack to the file $FACE_SWAP_TEST_STACKS."""
    global _stacks
    path = os.environ.get(STACKS_VAR, "")
    if not path:
        return
    if _stacks is None:
        _stacks = Path(path).open("w", encoding="utf-8")  # noqa: SIM115 (open while loaded)
    faulthandler.register(signal.SIGUSR1, file=_stacks, all_threads=True)


def reload_script(module) -> None:
    """obs_script_reload() on this script's obs_script_t (from the module's capsule)."""
    scripting = L.scripting_library()
    scripting.obs_script_reload.argtypes = [C.c_void_p]
    scripting.obs_script_reload(L.script_pointer(module))


def _describe(props: int, group: str, found: dict) -> None:
    prop = C.c_void_p(L.obs_properties_first(props))
    while prop.value:
        kind = L.obs_property_get_type(prop)
        name = L.text(L.obs_property_name(prop))
        entry = {"visible": bool(L.obs_property_visible(prop)), "group": group, "type": kind,
                 "label": L.text(L.obs_property_description(prop)),
                 "tooltip": L.text(L.obs_property_long_description(prop)),
                 "items": [L.text(L.obs_property_list_item_name(prop, i))
                           for i in range(L.obs_property_list_item_count(prop))]}
        if kind == L.OBS_PROPERTY_INT:
            entry["range"] = [L.obs_property_int_min(prop), L.obs_property_int_max(prop)]
        elif kind == L.OBS_PROPERTY_FLOAT:
            entry["range"] = [L.obs_property_float_min(prop), L.obs_property_float_max(prop)]
        found[name] = entry
        if kind == L.OBS_PROPERTY_GROUP:
            _describe(L.obs_property_group_content(prop), name, found)
        if not L.obs_property_next(C.byref(prop)):
            break


def _described(props: int) -> dict:
    """{property name: {...}} of `props` (destroyed here)."""
    found: dict = {}
    try:
        _describe(props, "", found)
    finally:
        L.obs_properties_destroy(props)
    return found


def describe_properties(source: int) -> dict:
    """{property name: {"visible", "group", "type", "label", "tooltip", "items", "range"}}
    of a source's properties (groups included, in panel order), its status text, and the
    text each text or path property shows ("texts")."""
    found = _described(L.obs_source_properties(source))
    data = L.obs_source_get_settings(source)
    try:
        texts = {name: L.text(L.obs_data_get_string(data, name.encode()))
                 for name, entry in found.items()
                 if entry["type"] in (L.OBS_PROPERTY_TEXT, L.OBS_PROPERTY_PATH)}
    finally:
        L.obs_data_release(data)
    return {"properties": found, "order": list(found), "status": texts.get("status", ""),
            "texts": texts}


def _script_call(module, name: str) -> int:
    """`name`(script) of OBS's scripting library on this script: a pointer, as the Scripts
    window gets it."""
    function = getattr(L.scripting_library(), name)
    function.restype, function.argtypes = C.c_void_p, [C.c_void_p]
    return function(L.script_pointer(module)) or 0


def script_panel(module) -> dict:
    """The script's description and settings panel, as the Scripts window shows them."""
    text = _script_call(module, "obs_script_get_description")
    return {"description": L.text(C.string_at(text)) if text else "",
            "properties": _described(_script_call(module, "obs_script_get_properties"))}


def apply_script_settings(module) -> None:
    """obs_script_update(script, settings from $FACE_SWAP_TEST_INPUT): string lists become
    editable-list arrays, other values strings (what the script's settings hold)."""
    import obspython as obs

    values = json.loads(Path(os.environ[INPUT_VAR]).read_text(encoding="utf-8"))
    data = obs.obs_data_create()
    try:
        for key, value in values.items():
            if isinstance(value, list):
                array = obs.obs_data_array_create()
                for line in value:
                    item = obs.obs_data_create()
                    obs.obs_data_set_string(item, "value", line)
                    obs.obs_data_array_push_back(array, item)
                    obs.obs_data_release(item)
                obs.obs_data_set_array(data, key, array)
                obs.obs_data_array_release(array)
            else:
                obs.obs_data_set_string(data, key, str(value))
        scripting = L.scripting_library()
        scripting.obs_script_update.argtypes = [C.c_void_p, C.c_void_p]
        scripting.obs_script_update(L.script_pointer(module), int(data))
    finally:
        obs.obs_data_release(data)


def actions(module, report: dict) -> dict[str, Callable[[], None]]:
    """Hotkey name -> action for the test hooks (and the stack dump armed)."""
    arm_stack_dump()

    def properties() -> None:
        with registration.live_instances() as filters:
            fresh = {f"{f.parent_name}/{f.name}": describe_properties(f.source)
                     for f in filters}
        fresh["script"] = script_panel(module)
        fresh["built"] = report.get("built", 0) + 1  # tells a test the report it asked for
        report.clear()  # the status thread copies it whole (dict()), never mid-update
        report.update(fresh)

    return {"face_swap.test_reload_scripts":
            lambda: registration.queue_ui(lambda: reload_script(module)),
            "face_swap.test_properties": lambda: registration.queue_ui(properties),
            "face_swap.test_script_settings":
            lambda: registration.queue_ui(lambda: apply_script_settings(module))}

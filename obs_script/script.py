"""The script's side of OBS (Tools > Scripts): load/unload, description, script settings.

face_swap.py forwards OBS's script_* calls here. A load attaches a fresh Host to the
registration (which registers the filter once per process), starts the status poller,
hotkeys and scene events; an unload undoes all of it, so a "Reload Scripts" leaves no
threads behind and the filters continue with the reloaded code.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import threading
import time

import obspython as obs

from core import registry
from obs_script import clearing, obsdata, properties, registration, swap_filter
from obs_script import libobs as L
from obs_script.catalog import CATALOG
from obs_script.hotkeys import HOTKEYS, Hotkeys
from obs_script.scenes import SceneSwitcher
from obs_script.servers import SERVERS, parse_lines
from obs_script.status import StatusWriter, default_path
from obs_script.swap_filter import FaceSwapFilter

# The render callback must take the GIL from a busy worker; Python hands it over only every
# switch interval (default 5 ms). 1 ms bounds that wait; restored on unload.
SWITCH_INTERVAL_S = 0.001
MAPPING_KEY = "scene_models"
MODELS_DIR_KEY = "models_dir"
SERVERS_KEY = "inference_servers"


class Host:
    """What the registration forwards libobs' callbacks to while this code is loaded."""

    def __init__(self) -> None:
        self.scenes = SceneSwitcher(registration.live_instances)
        self.models_dir: tuple[str, ...] | None = None  # applied "Models folder" (None: not yet)
        self.status_path = default_path()
        self.test_report: dict = {}  # filled by the test hooks only (HOOKS_ENV)
        self.writer = StatusWriter(self.collect, self.status_path)

    @staticmethod
    def defaults(data: int) -> None:
        obsdata.write_defaults(data)

    @staticmethod
    def make(key: int, source: int, data: int) -> FaceSwapFilter:
        return FaceSwapFilter(key, source, data)

    def collect(self) -> dict:
        state = registration.STATE
        with registration.live_instances() as live:
            polled = [f.poll() for f in live]
        registration.queue_ui(measure_scales)  # for the next poll's label size
        return {"time": time.time(), "obs_version": L.text(L.obs_get_version_string()),
                "pid": os.getpid(), "loads": state.loads, "registrations": state.registrations,
                "scene": self.scenes.scene, "scene_models": self.scenes.mapping,
                "mapping_errors": self.scenes.errors, "prepare_errors": self.scenes.preparer.errors,
                "obs_frame_ms": L.obs_get_average_frame_time_ns() / 1e6,
                "threads": sorted(t.name for t in threading.enumerate()),
                "filters": polled,
                **({"test_properties": dict(self.test_report)} if self.test_report else {})}

    def stop(self) -> None:
        self.writer.stop()
        self.scenes.stop()


def measure_scales() -> None:
    """Each filter's `label.shown_scale`: the smallest scale any scene shows its source at (the
    label is sized for it, core.label.size_for_output). UI thread: the frontend's scene
    list is read there."""
    with registration.live_instances() as live:
        parents = {flt: L.obs_filter_get_parent(flt.source) for flt in live}
    if not parents:  # no filter: no scene walk every poll
        return
    scenes = obs.obs_frontend_get_scenes()
    try:
        scales = L.shown_scales([int(scene) for scene in scenes], set(parents.values()))
    finally:
        obs.source_list_release(scenes)
    for flt, parent in parents.items():
        flt.label.shown_scale = scales.get(parent, 1.0)


_host: Host | None = None
_saved_switch_interval: float | None = None
_hotkeys: dict[str, int] = {}


def engine_report() -> str:
    """The description's engine lines: versions and devices, or what is broken. Facts that
    hold while the script is loaded: the Scripts window cannot refresh its description, so
    what changes later (models, mapping and server mistakes) is shown where it updates."""
    lines = []
    problem = L.version_problem()
    if problem:
        lines.append(f"<b style='color:#d33'>Warning:</b> {problem}")
    try:
        import onnxruntime as ort

        from core import devices

        found = [d.label for d in devices.list_devices()]
        lines.append(f"Engine ready: onnxruntime {ort.__version__}, Python "
                     f"{sys.version.split()[0]}")
        lines.append("Devices: " + "; ".join(found))
    except Exception as exc:  # show any import/driver failure instead of failing the load
        lines.append(f"<b style='color:#d33'>Engine error:</b> {type(exc).__name__}: {exc}")
    return "<br>".join(lines)


def script_description() -> str:
    return ("<b>Face Swap</b> - adds the <i>Face Swap</i> filter to every video source "
            "(Filters > +). Each filter's panel shows its status, the models found and the "
            "devices; mistakes in the settings below show under them. Figures: "
            f"{default_path()}.<br>OBS {L.text(L.obs_get_version_string())}<br>"
            + engine_report())


def _hotkey(name: str, action) -> None:
    def pressed(down: bool) -> None:
        if down:
            action()
    description = HOTKEYS.get(name, name)
    _hotkeys[name] = obs.obs_hotkey_register_frontend(name, description, pressed)


HOOKS_ENV = "FACE_SWAP_TEST_HOOKS"  # the tests' hooks file (tests/obs/hooks.py), if any


def _test_hooks():
    """The end-to-end tests' hotkeys module named by HOOKS_ENV in OBS's environment (it
    stands in for OBS's dialogs; never set for a user), or None."""
    path = os.environ.get(HOOKS_ENV, "")
    if not path:
        return None
    spec = importlib.util.spec_from_file_location("face_swap_test_hooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script_load(settings, module) -> None:
    global _host, _saved_switch_interval
    if _saved_switch_interval is None:
        _saved_switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    _host = Host()  # script_update below applies the models folder and starts the scan
    registration.attach(_host)
    actions = Hotkeys(registration.live_instances).actions()
    hooks = _test_hooks()
    if hooks is not None:
        actions.update(hooks.actions(module, _host.test_report))
    for name, action in actions.items():
        _hotkey(name, action)
        saved = obs.obs_data_get_array(settings, name)
        obs.obs_hotkey_load(_hotkeys[name], saved)
        obs.obs_data_array_release(saved)
    obs.obs_frontend_add_event_callback(_on_event)
    script_update(settings)
    L.log(L.LOG_INFO, f"script loaded (load #{registration.STATE.loads}, Python "
                      f"{platform.python_version()} from {sys.base_prefix}, status file "
                      f"{_host.status_path})")
    if problem := L.version_problem():
        L.log(L.LOG_WARNING, problem)


def script_unload() -> None:
    global _host, _saved_switch_interval
    if _host is not None:
        _host.stop()
        _host = None
    registration.detach()
    # close() only signals the filters' threads: wait for them (bounded), so an unload or
    # "Reload Scripts" leaves nothing of this code running
    if not swap_filter.join_reapers():
        L.log(L.LOG_WARNING, "some filter threads did not stop in time")
    CATALOG.wait(timeout=5.0)
    if _saved_switch_interval is not None:
        sys.setswitchinterval(_saved_switch_interval)
        _saved_switch_interval = None
    _hotkeys.clear()
    L.log(L.LOG_INFO, "script unloaded")


def script_save(settings) -> None:
    for name, hotkey in _hotkeys.items():
        saved = obs.obs_hotkey_save(hotkey)
        obs.obs_data_set_array(settings, name, saved)
        obs.obs_data_array_release(saved)


def _list_lines(settings, key: str = MAPPING_KEY) -> list[str]:
    """An editable list's lines from the script's settings ("Scene -> model", servers)."""
    array = obs.obs_data_get_array(settings, key)
    lines = []
    for i in range(obs.obs_data_array_count(array)):
        item = obs.obs_data_array_item(array, i)
        lines.append(obs.obs_data_get_string(item, "value"))
        obs.obs_data_release(item)
    obs.obs_data_array_release(array)
    return lines


def script_update(settings) -> None:
    if _host is None:
        return
    _host.scenes.set_mapping(_list_lines(settings))
    servers = SERVERS.devices
    SERVERS.set_lines(_list_lines(settings, SERVERS_KEY))
    for error in SERVERS.errors:
        L.log(L.LOG_WARNING, f"Inference servers: {error}")
    folder = obs.obs_data_get_string(settings, MODELS_DIR_KEY).strip()
    rescan = SERVERS.devices != servers  # their models join the model lists
    if (folder,) != _host.models_dir:
        _host.models_dir = (folder,)
        registry.set_user_dirs([folder])
        rescan = True
    if rescan:
        CATALOG.refresh(then=_after_scan)


def _after_scan() -> None:
    """A model scan finished: open panels get the new list, the mapping is checked again."""
    properties.refresh_panels()
    if _host is not None:
        _host.scenes.check_models()


def _show_mistakes(props, _prop=None, settings=None) -> bool:
    """The mapping's and the server list's mistakes under each list, at once: both lists'
    modified callback (the panel is refreshed from these same properties when it returns
    True) and the panel's build."""
    if _host is None:
        return False
    if settings is not None:
        _host.scenes.set_mapping(_list_lines(settings))
    server_errors = parse_lines(_list_lines(settings, SERVERS_KEY))[1] \
        if settings is not None else SERVERS.errors
    for key, errors in (("mapping_errors", _host.scenes.errors),
                        ("server_errors", server_errors)):
        info = obs.obs_properties_get(props, key)
        obs.obs_property_set_description(info, "Not applied: " + "; ".join(errors)
                                         if errors else "")
        obs.obs_property_set_visible(info, bool(errors))
    return True


def _mistakes_info(props, key: str):
    """The warning line under a list where its mistakes show (hidden while there are none)."""
    info = obs.obs_properties_add_text(props, key, "", obs.OBS_TEXT_INFO)
    obs.obs_property_text_set_info_type(info, obs.OBS_TEXT_INFO_WARNING)
    obs.obs_property_text_set_info_word_wrap(info, True)
    return info


def _string_list(props, key: str, label: str, tooltip: str):
    """An editable list of strings with its tooltip."""
    prop = obs.obs_properties_add_editable_list(props, key, label,
                                                obs.OBS_EDITABLE_LIST_TYPE_STRINGS, None, None)
    obs.obs_property_set_long_description(prop, tooltip)
    return prop


def script_properties():
    props = obs.obs_properties_create()
    folder = obs.obs_properties_add_path(props, MODELS_DIR_KEY,
                                         "Models folder (your .dfm / inswapper files)",
                                         obs.OBS_PATH_DIRECTORY, None, None)
    obs.obs_property_set_long_description(
        folder, "A folder of your own .dfm and inswapper models, searched besides the "
                "project's models/ folder and the folders in FACESWAP_MODELS.")
    mapping = _string_list(
        props, MAPPING_KEY, "Scene -> model (one 'Scene name = model' per line)",
        "When a scene goes on program, the Face Swap filters in it switch to its model, e.g. "
        "'Just Chatting = persona:default'. Mistakes show below and in the log as soon as a "
        "line is entered.")
    obs.obs_property_set_modified_callback(mapping, _show_mistakes)
    _mistakes_info(props, "mapping_errors")
    servers = _string_list(
        props, SERVERS_KEY, "Inference servers (one triton://HOST:PORT per line)",
        "NVIDIA Triton servers that can run the swap network (e.g. a GPU PC: "
        "triton://192.168.1.20:8001). Each becomes a Device of every Face Swap filter; pick "
        "it there with a model the server has (by the same name). Detection and landmarks "
        "stay on this PC. Frames go only to servers listed here.")
    obs.obs_property_set_modified_callback(servers, _show_mistakes)
    _mistakes_info(props, "server_errors")
    _show_mistakes(props)
    return props


def _on_event(event) -> None:
    if _host is None:
        return
    if event in (obs.OBS_FRONTEND_EVENT_SCRIPTING_SHUTDOWN,
                 obs.OBS_FRONTEND_EVENT_SCENE_COLLECTION_CHANGING):
        clearing.hold_destruction()  # OBS exits, or switches collections: it clears
        return
    if event in (obs.OBS_FRONTEND_EVENT_SCENE_CHANGED, obs.OBS_FRONTEND_EVENT_FINISHED_LOADING,
                 obs.OBS_FRONTEND_EVENT_PREVIEW_SCENE_CHANGED):
        preview = event == obs.OBS_FRONTEND_EVENT_PREVIEW_SCENE_CHANGED
        scene = (obs.obs_frontend_get_current_preview_scene() if preview
                 else obs.obs_frontend_get_current_scene())
        if not scene:
            return
        try:
            name = obs.obs_source_get_name(scene)
            if preview:
                _host.scenes.preview_changed(name)
            else:
                _host.scenes.scene_changed(name, int(scene))
        finally:
            obs.obs_source_release(scene)

"""The filter's properties panel (UI thread): what the streamer sets, and a status line.

Built with ctypes (raw obs_properties_t pointers): obspython's button callbacks need a
"current script", which a libobs source callback does not have. Button and modified
callbacks are registration's stable trampolines, keyed by the filter instance.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core import devices, registry
from core.settings import COLOR_TRANSFERS, CORNERS, FACE_SELECTIONS, ON_LOST, SwapSettings
from obs_script import libobs as L
from obs_script import registration
from obs_script.catalog import CATALOG

if TYPE_CHECKING:
    from obs_script.filter import FaceSwapFilter

IMAGE_FILTER = b"Images (*.png *.jpg *.jpeg *.webp *.bmp);;All files (*.*)"
FACE_LABELS = {"largest": "Largest face", "all": "All faces", "centre": "Face nearest the centre",
               "id": "Tracked face id"}
COLOR_LABELS = {"none": "None", "rct": "Reinhard (LAB)", "hist": "Histogram match"}
LOST_LABELS = {"original": "Show the original", "hold": "Hold the last swap",
               "pixelate": "Pixelate the face"}

_entries: dict[str, registry.ModelEntry] = {}  # last scan, for the model-changed callback


def status_line(status: dict | None) -> tuple[str, int]:
    """One line for the panel and its info type (normal / warning / error)."""
    if not status:
        return "starting...", L.OBS_TEXT_INFO_NORMAL
    if status.get("problem"):
        return f"Passing through - {status['problem']}", L.OBS_TEXT_INFO_ERROR
    if status["state"] == "loading" and not status["model"]:
        return f"Loading {status['requested_model']}...", L.OBS_TEXT_INFO_NORMAL
    lat, ren = status["latency_ms"], status["render_ms"]
    line = (f"{status['state']} | {status['model']} on {status['provider']} | "
            f"{status['fps']:.1f} fps | latency p50 {lat['p50']:.0f} / p95 {lat['p95']:.0f} ms | "
            f"dropped {status['dropped']} | render p50 {ren['p50']:.2f} / p95 {ren['p95']:.2f} ms")
    if status.get("last_error"):
        line += f" | last error: {status['last_error']}"
    failures = {k: n for k, n in (status.get("callback_errors") or {}).items() if n}
    if failures:  # exceptions in the per-frame callbacks: details in OBS's log
        line += " | render errors: " + ", ".join(f"{k} {n}" for k, n in failures.items())
    if status.get("device_note"):
        line += f" | {status['device_note']}"
    if failures or status.get("device_note"):
        return line, L.OBS_TEXT_INFO_WARNING
    return line, L.OBS_TEXT_INFO_NORMAL


def _list(props: int, key: str, label: str) -> int:
    return L.obs_properties_add_list(props, key.encode(), label.encode(), L.OBS_COMBO_TYPE_LIST,
                                     L.OBS_COMBO_FORMAT_STRING)


def _add_items(prop: int, items: dict[str, str]) -> None:
    for value, label in items.items():
        L.obs_property_list_add_string(prop, label.encode(), value.encode())


def refresh_panels() -> None:
    """Ask OBS (on its UI thread) to rebuild the open properties of every Face Swap filter:
    how a finished background scan reaches a panel built from the older list."""
    def update() -> None:
        with registration.live_instances() as filters:
            sources = [f.source for f in filters]
        for source in sources:
            L.obs_source_update_properties(source)
    registration.queue_ui(update)


def _fill_models(prop: int, current: str) -> None:
    _entries.clear()
    names = []
    scanned = CATALOG.entries()
    if scanned is None:  # the first scan is still running: the built-in persona meanwhile
        default = SwapSettings().model
        L.obs_property_list_add_string(prop, f"{default}  (built-in persona)".encode(),
                                       default.encode())
        index = L.obs_property_list_add_string(prop, b"scanning models...", b"")
        L.obs_property_list_item_disable(prop, index, True)
        names.append(default)
    for entry in scanned or ():
        if entry.kind == "arcface":
            continue  # an embedder is picked with its inswapper, never on its own
        _entries[entry.name] = entry
        index = L.obs_property_list_add_string(
            prop, f"{entry.name}  ({entry.describe()})".encode(), entry.name.encode())
        if not entry.usable:
            L.obs_property_list_item_disable(prop, index, True)
        names.append(entry.name)
    if current and current not in names:
        L.obs_property_list_add_string(prop, f"{current}  (file or unknown name)".encode(),
                                       current.encode())


def _fill_devices(prop: int, current: str, status: dict | None) -> None:
    listed = []
    active = (status or {}).get("provider", "")
    for device in devices.list_devices():
        mark = f"  [active: {active}]" if device.id == current and active else ""
        L.obs_property_list_add_string(prop, f"{device.label}{mark}".encode(),
                                       device.id.encode())
        listed.append(device.id)
    if current not in listed:
        L.obs_property_list_add_string(prop, f"{current}  (not on this machine)".encode(),
                                       current.encode())


def _write_status(flt: FaceSwapFilter, props: int) -> None:
    """The status line's text lives in the settings key "status" (how OBS shows info text)."""
    line, kind = status_line(flt.last_status)
    data = L.obs_source_get_settings(flt.source)
    try:
        L.obs_data_set_string(data, b"status", line.encode())
    finally:
        L.obs_data_release(data)
    prop = L.obs_properties_get(props, b"status")
    if prop:
        L.obs_property_text_set_info_type(prop, kind)


def _morph_visible(props: int, model: str) -> None:
    entry = _entries.get(model)
    prop = L.obs_properties_get(props, b"morph")
    if prop:
        L.obs_property_set_visible(prop, bool(entry and entry.morph))


def build(flt: FaceSwapFilter) -> int:
    """A new obs_properties_t for `flt` (libobs owns and destroys it)."""
    props = L.obs_properties_create()
    key, s = flt.key, flt.settings

    model = _list(props, "model", "Model")
    _fill_models(model, s.model)
    L.obs_property_set_long_description(
        model, b"Personas need no model file; .dfm and inswapper files come from models/ "
               b"or the folders in FACESWAP_MODELS.")
    L.obs_property_set_modified_callback2(model, registration.modified("model"), key)
    L.obs_properties_add_button2(props, b"refresh_models", b"Refresh model list",
                                 registration.button("refresh_models"), key)
    L.obs_properties_add_path(props, b"reference", b"Reference image", L.OBS_PATH_FILE,
                              IMAGE_FILTER, None)

    device = _list(props, "device", "Device")
    _fill_devices(device, s.device, flt.last_status)
    faces = _list(props, "faces", "Faces to swap")
    _add_items(faces, {k: FACE_LABELS[k] for k in FACE_SELECTIONS})
    L.obs_properties_add_int(props, b"face_id", b"Face id (for 'Tracked face id')", 0, 99, 1)
    L.obs_properties_add_float_slider(props, b"morph", b"Morph (AMP models)", 0.0, 1.0, 0.01)
    _morph_visible(props, s.model)

    for name, label, low, high, step in (("erode", "Mask erode (% of face)", -20.0, 40.0, 0.5),
                                         ("blur", "Mask blur (% of face)", 0.0, 50.0, 0.5)):
        L.obs_properties_add_float_slider(props, name.encode(), label.encode(), low, high, step)
    color = _list(props, "color_transfer", "Colour transfer")
    _add_items(color, {k: COLOR_LABELS[k] for k in COLOR_TRANSFERS})
    L.obs_properties_add_float_slider(props, b"opacity", b"Opacity", 0.0, 1.0, 0.01)
    L.obs_properties_add_float_slider(props, b"smoothing", b"Smoothing", 0.0, 1.0, 0.01)
    L.obs_properties_add_int_slider(props, b"detect_interval", b"Detect every N frames", 1, 60, 1)
    lost = _list(props, "on_lost", "When the face is lost")
    _add_items(lost, {k: LOST_LABELS[k] for k in ON_LOST})
    L.obs_properties_add_float_slider(props, b"hold_ms", b"Hold time (ms)", 0.0, 5000.0, 50.0)
    L.obs_properties_add_bool(props, b"keep_eyes", b"Keep live eyes (persona)")
    L.obs_properties_add_bool(props, b"keep_mouth", b"Keep live mouth (persona)")
    L.obs_properties_add_bool(props, b"label", b"Show 'AI face swap' disclosure label")
    corner = _list(props, "label_corner", "Label corner")
    _add_items(corner, {k: k.replace("-", " ").capitalize() for k in CORNERS})

    L.obs_properties_add_text(props, b"status", b"Status", L.OBS_TEXT_INFO)
    L.obs_properties_add_button2(props, b"refresh_status", b"Refresh status",
                                 registration.button("refresh_status"), key)
    _write_status(flt, props)
    return props


def on_property(flt: FaceSwapFilter, name: str, props: int, prop: int,
                settings: int | None) -> bool:
    """Button / modified callbacks; True asks OBS to refresh the panel."""
    if name == "model" and settings:
        _morph_visible(props, L.text(L.obs_data_get_string(settings, b"model")))
        return True
    if name == "refresh_models":  # rescan in the background; the panel is rebuilt after it
        CATALOG.refresh(then=refresh_panels)
        model = L.obs_properties_get(props, b"model")
        L.obs_property_list_clear(model)
        _fill_models(model, flt.settings.model)
        return True
    if name == "refresh_status":
        _write_status(flt, props)
        return True
    return False

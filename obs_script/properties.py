"""The filter's properties panel (UI thread): what the streamer sets, and a live status line.

The status sits at the top; the controls come in groups (Model, .dfm models, Who is
swapped, Face and mask, Colour and blend, Tracking and head turns, Privacy and label), each
with a tooltip in plain words.
OBS (29-32) draws no help icon beside a slider - its tooltip sits on the number box only -
so a slider's label carries the hint itself ("Opacity (1 = opaque)").
Controls that do not apply are hidden (`visibility`), re-evaluated when the setting they
depend on changes. Slider ranges are the engine's valid ranges (core.settings).

Built with ctypes (raw obs_properties_t pointers): obspython's button callbacks need a
"current script", which a libobs source callback does not have. Button and modified
callbacks are registration's stable trampolines, keyed by the filter instance. The status
line refreshes itself: the status thread asks OBS to rebuild an open panel when it changes
(`StatusPush`), so nothing needs a button press.
"""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core import devices, registry
from core.settings import (
    COLOR_TRANSFERS,
    CORNERS,
    FACE_SELECTIONS,
    GUESTS,
    INTERPOLATIONS,
    MASK_MODES,
    ON_LOST,
    RANGES,
)
from core.swap import families
from core.swap.base import NO_POSE_LIMITS
from obs_script import enrolment, registration
from obs_script import libobs as L
from obs_script.catalog import CATALOG
from obs_script.servers import SERVERS

if TYPE_CHECKING:
    from obs_script.swap_filter import FaceSwapFilter

IMAGE_FILTER = b"Images (*.png *.jpg *.jpeg *.webp *.bmp);;All files (*.*)"
FACE_LABELS = {"largest": "Largest face", "all": "All faces", "centre": "Face nearest the centre",
               "id": "One face, by its number", "enrolled": "Only enrolled people"}
GUEST_LABELS = {"show": "Leave them as they are", "blur": "Blur their faces"}
MASK_LABELS = {"both": "Model masks and face outline", "hull": "Face outline only",
               "model": "Model masks only", "source": "Model's mask of your face",
               "celeb": "Model's mask of the swapped face",
               "source_hull": "Model's mask of your face and face outline",
               "celeb_hull": "Model's mask of the swapped face and face outline"}
INTERPOLATION_LABELS = {"bilinear": "Bilinear", "bicubic": "Bicubic (sharper)",
                        "lanczos4": "Lanczos (sharpest)"}
COLOR_LABELS = {"none": "None", "rct": "Match average colour and contrast",
                "hist": "Match colour histogram"}
LOST_LABELS = {"original": "Show the real face",
               "hold": "Hold the last swap, then pixelate",
               "pixelate": "Pixelate (privacy)"}
GAMMA_CHANNELS = (("r", "red"), ("g", "green"), ("b", "blue"))
PUSH_MIN_S = 1.0  # an open panel is rebuilt for a new status at most once a second ...
EDIT_QUIET_S = 3.0  # ... and not until this long after the user last changed a setting


@dataclass(frozen=True)
class Control:
    """One setting in the panel: its kind, label, tooltip and range."""

    name: str
    kind: str  # "list", "bool", "int", "float", "path"
    label: str
    tooltip: str
    step: float = 1.0
    suffix: str = ""
    items: dict[str, str] | None = None  # list value -> label (None: filled at build time)

    @property
    def bounds(self) -> tuple[float, float]:
        """A number's slider range: the engine's valid range (core.settings.RANGES)."""
        return ENGINE_RANGES[self.name]


ENGINE_RANGES = {name: (low, high) for name, low, high in RANGES}
DEFAULT_LIMITS = "; ".join(
    f"{f.kind}: " + ("none" if f.pose_limits == NO_POSE_LIMITS
                     else f"{f.pose_limits[0]:.0f}° / {f.pose_limits[1]:.0f}°")
    for f in families.swappers())  # each family's own limits (yaw / pitch)
GROUPS: dict[str, tuple[str, list[Control]]] = {
    "group_model": ("Model", [
        Control("model", "list", "Model",
                "Who you become. Personas need no model file. DeepFaceLab .dfm and InsightFace "
                "inswapper files are found in the project's models/ folder, the folders in "
                "FACESWAP_MODELS and the script's \"Models folder\" (Tools > Scripts); use "
                "\"Refresh model list\" after adding files."),
        Control("reference", "path", "Reference photo",
                "A portrait of the face to wear: the persona's face, or the identity for "
                "inswapper. Empty: the model's own (the built-in persona for personas)."),
        Control("device", "list", "Device",
                "Where the swap network runs: the CPU, a GPU, or an inference server from "
                "the script's \"Inference servers\" (Tools > Scripts; the model of the same "
                "name on that server). A GPU that cannot run the model falls back to the CPU "
                "and the status says so; a server that does not answer is an error."),
        Control("threads", "int", "CPU threads (0 = automatic)",
                "CPU threads for the models. 0 = automatic (half the cores, leaving the "
                "rest to OBS and its encoder).", 1),
        Control("morph", "float", "Morph (0 = you, 1 = the model)",
                "AMP .dfm models only: how far the face moves towards the model's identity "
                "(0 = yours, 1 = fully the model's).", 0.01),
    ]),
    "group_dfm": (".dfm models (as in DeepFaceLive)", [
        Control("face_coverage", "float", "Face coverage (crop size)",
                "How much around your face the model sees: the crop's side in face units "
                "(DeepFaceLive's \"Face coverage\", 2.2 there too). Use what the model "
                "was made for.", 0.05),
        Control("align_x_offset", "float", "Crop shift right (negative = left)",
                "Moves the crop right (negative: left), in face units.", 0.01),
        Control("align_y_offset", "float", "Crop shift down (negative = up)",
                "Moves the crop down (negative: up), in face units. 0 frames it as "
                "DeepFaceLive does by default.", 0.01),
        Control("exclude_moving_parts", "bool", "Ignore moving parts",
                "Frame the crop by the parts of the face that keep still (nose, cheeks), so "
                "talking and blinking do not shake it."),
        Control("head_mode", "bool", "Head mode",
                "For models made on whole heads: a wider crop, moved up, that follows the "
                "head as it turns."),
        Control("freeze_z_rotation", "bool", "Keep the crop level",
                "The crop does not tilt with your head (DeepFaceLive's \"Freeze Z "
                "rotation\")."),
        Control("presharpen", "float", "Pre-sharpen (0 = off)",
                "Sharpens your face before the model sees it, for a soft camera "
                "(0 = off).", 0.1),
        *(Control(f"pre_gamma_{c}", "float", f"Pre-gamma {name} (1 = as is)",
                  f"Brightens (above 1) or darkens the {name} of your face before the model "
                  "sees it.", 0.01) for c, name in GAMMA_CHANNELS),
        *(Control(f"post_gamma_{c}", "float", f"Post-gamma {name} (1 = as is)",
                  f"Brightens (above 1) or darkens the {name} of the face the model "
                  "returns.", 0.01) for c, name in GAMMA_CHANNELS),
        Control("two_pass", "bool", "Two passes",
                "Runs the swapped face through the model once more: a stronger likeness, "
                "at twice the model's time."),
    ]),
    "group_who": ("Who is swapped", [
        Control("faces", "list", "Faces to swap",
                "Which faces get swapped when several are in view. \"Only enrolled people\": "
                "a face recogniser swaps the people enrolled below (you, a co-host) and "
                "never a guest, wherever they stand.", items=FACE_LABELS),
        Control("face_id", "int", "Face number (0 = first found)",
                "With \"One face, by its number\": the face to swap. Faces are numbered "
                "0, 1, ... as they appear and keep their number while tracked.", 1),
        Control("max_faces", "int", "Most faces followed (each costs time)",
                "How many faces are followed at once (each costs time per frame); with \"All "
                "faces\", how many are swapped.", 1),
        Control("guests", "list", "Guests",
                "Faces of people not enrolled: left as they are, or blurred. In a privacy "
                "mode a face not yet recognised (it came in turned away) is pixelated until "
                "it is.", items=GUEST_LABELS),
        Control("enrol_model", "list", "Their model",
                "The model the next person enrolled is swapped with (e.g. two hosts, two "
                "personas). Chosen before enrolling."),
        Control("enrol_photo", "path", "Enrol from a photo",
                "A photo of the person alone, looking at the camera: enrolled as one more "
                "person. Only the face's measurements are kept in the settings, never the "
                "photo. Two or three photos in different light recognise best."),
    ]),
    "group_face": ("Face and mask", [
        Control("mask", "list", "Mask",
                "Where the swapped face is blended in: the model's own mask, the outline of "
                "your face from its landmarks, or both together.", items=MASK_LABELS),
        Control("erode", "float", "Mask shrink (negative = grow)",
                "Shrinks the mask inwards (negative: grows it), in % of the face size.", 0.5, " %"),
        Control("blur", "float", "Mask softness (0 = hard edge)",
                "Feathers the mask's edge, in % of the face size.", 0.5, " %"),
        Control("face_scale", "float", "Face scale (1 = same size)",
                "Scales the swapped face about your face's centre (1 = same size).", 0.01),
        Control("face_offset_x", "float", "Face shift right (negative = left)",
                "Moves the swapped face right (negative: left), in face sizes.", 0.01),
        Control("face_offset_y", "float", "Face shift down (negative = up)",
                "Moves the swapped face down (negative: up), in face sizes.", 0.01),
        Control("keep_eyes", "bool", "Keep your own eyes",
                "Persona only: your real eyes show through, so blinks and glances are "
                "yours."),
        Control("keep_mouth", "bool", "Keep your own mouth",
                "Persona only: the inside of your mouth shows through, so speech looks "
                "natural."),
        Control("keep_hands", "bool", "Keep hands in front",
                "A hand over your face (waving, scratching, covering your mouth) stays in "
                "front of the swapped face. Hands are looked for only around faces."),
        Control("keep_objects", "bool", "Keep objects in front",
                "A mic, a cup or a phone in front of your face stays in front of the "
                "swapped face: the filter learns how your face looks while nothing covers "
                "it (half a second) and keeps what differs."),
    ]),
    "group_color": ("Colour and blend", [
        Control("color_transfer", "list", "Colour matching",
                "Matches the swapped face's colours to your lighting.", items=COLOR_LABELS),
        Control("opacity", "float", "Opacity (1 = opaque)",
                "How much of the swapped face shows (1 = all of it).", 0.01),
        Control("interpolation", "list", "Resampling",
                "How the swapped face is resized into the picture.",
                items=INTERPOLATION_LABELS),
        Control("color_compression", "float", "Colour compression (0 = off)",
                "Fewer colour levels in the swapped face, like a compressed stream, so it "
                "does not look cleaner than the picture around it (0 = off).", 0.5),
    ]),
    "group_tracking": ("Tracking and head turns", [
        Control("smoothing", "float", "Smoothing (0 = off, more = steadier)",
                "Steadies the face between frames (0 = off; more is steadier but lags "
                "fast moves).", 0.01),
        Control("detect_interval", "int", "Look for new faces every",
                "Full face detection at least this often; in between faces are followed, "
                "which is cheaper.", 1, " frames"),
        Control("max_yaw", "float", "Turn limit left/right (0 = the model's)",
                "Past this head turn the swap fades into \"When the face is lost\". 0 = the "
                f"model's own limit, left-right / up-down ({DEFAULT_LIMITS}).", 1.0, "°"),
        Control("max_pitch", "float", "Turn limit up/down (0 = the model's)",
                "Past this head tilt up or down the swap fades into \"When the face is "
                "lost\". 0 = the model's own limit (see the turn limit above).", 1.0, "°"),
        Control("fade_ms", "int", "Fade time (0 = at once)",
                "How long the swap takes to fade out or in when a face is lost, found, or "
                "turns past a limit (0 = at once).", 10, " ms"),
    ]),
    "group_privacy": ("Privacy and label", [
        Control("on_lost", "list", "When the face is lost",
                "What viewers see where no swap can be drawn: a face lost or turned past a "
                "limit, a model loading or failing. \"Pixelate\" and \"Hold\" never show "
                "your real face: where the face's place is unknown the whole source is "
                "pixelated.", items=LOST_LABELS),
        Control("hold_ms", "int", "Hold time (then pixelated)",
                "With \"Hold\": how long the last swap stays before the face is "
                "pixelated.", 50, " ms"),
        Control("identity_guard", "bool", "Identity guard",
                "With \"Pixelate\" or \"Hold\": a few times a second a face recogniser "
                "compares the swap with your real face; where it would still recognise you "
                "(a head turned far, a persona too like you) the face is pixelated instead."),
        Control("label", "bool", "Show the 'AI face swap' label",
                "A small disclosure label on the picture. Keep it on unless your audience "
                "already knows."),
        Control("label_corner", "list", "Label corner", "Where the label sits.",
                items={k: k.replace("-", " ").capitalize() for k in CORNERS}),
        Control("label_size", "float", "Label size (of the shorter side)",
                "Label height in % of the source's shorter side. 6 stays legible with the "
                "source scaled to a quarter of a 1080p canvas.", 0.5, " %"),
    ]),
}
CONTROLS = {c.name: c for _, controls in GROUPS.values() for c in controls}
ENROL_CONTROLS = ("guests", "enrol_model", "enrol_photo", "enrol_now", "enrolled",
                  "forget_people")  # shown with faces = "enrolled"
# settings whose value decides whether other controls apply
TRIGGERS = ("model", "faces", "on_lost", "label")
assert set(FACE_LABELS) == set(FACE_SELECTIONS) and set(COLOR_LABELS) == set(COLOR_TRANSFERS)
assert set(GUEST_LABELS) == set(GUESTS)
assert set(LOST_LABELS) == set(ON_LOST) and set(MASK_LABELS) == set(MASK_MODES)
assert set(INTERPOLATION_LABELS) == set(INTERPOLATIONS)

_entries: dict[str, registry.ModelEntry] = {}  # last scan, for the model-changed callback


def model_family(model: str) -> families.Family | None:
    """The model family of a setting's model (None when unknown): from the last scan, else
    what its name says (a persona's prefix, a family's own file suffix)."""
    entry = _entries.get(model)
    if entry is not None:
        return entry.family
    if model.startswith("persona:"):
        return registry.PERSONA
    return families.by_suffix(model)


def visibility(model: str, faces: str, on_lost: str, label: bool) -> dict[str, bool]:
    """Which conditional controls apply to these settings."""
    entry = _entries.get(model)
    family = model_family(model)
    return {**{control: family is f for f in families.FAMILIES for control in f.controls},
            "face_id": faces == "id", "morph": bool(entry and entry.morph),
            **dict.fromkeys(ENROL_CONTROLS, faces == "enrolled"),
            "hold_ms": on_lost == "hold",
            "identity_guard": on_lost != "original",
            "label_corner": label, "label_size": label}


def status_line(status: dict | None) -> tuple[str, int]:
    """One line in plain words for the panel, and its info type (normal / warning / error)."""
    if not status:
        return "Starting...", L.OBS_TEXT_INFO_NORMAL
    private = status.get("on_lost", "original") != "original"
    shown = "the source is pixelated" if private else "the source shows unswapped"
    if status.get("covered"):
        return ("Privacy view: the source is pixelated (a hotkey asked for it; press it "
                "again to swap)", L.OBS_TEXT_INFO_WARNING)
    if status.get("problem"):
        return f"Not swapping ({shown}): {status['problem']}", L.OBS_TEXT_INFO_ERROR
    if status["state"] == "loading" and not status["model"]:
        return f"Loading {status['requested_model']}... ({shown} meanwhile)", \
            L.OBS_TEXT_INFO_NORMAL
    lat, ren = status["latency_ms"], status["render_ms"]
    where = devices.provider_words(status["provider"], status.get("threads", 1))
    verb = "Swapping" if status["state"] == "ready" else "Loading a new model, swapping"
    line = (f"{verb} {status['model']} on {where} | {status['fps']:.0f} fps | "
            f"delay typical {lat['p50']:.0f} / worst {lat['p95']:.0f} ms | "
            f"frames skipped {status['dropped']} | OBS cost typical {ren['p50']:.1f} / "
            f"worst {ren['p95']:.1f} ms")
    if status.get("last_error"):
        line += f" | last error: {status['last_error']}"
    failures = {k: n for k, n in (status.get("callback_errors") or {}).items() if n}
    if failures:  # exceptions in the per-frame callbacks: details in OBS's log
        line += " | render errors: " + ", ".join(f"{k} {n}" for k, n in failures.items())
    if status.get("device_note"):
        line += f" | {status['device_note']}"
    if status.get("warning"):
        line += f" | {status['warning']}"
    if failures or status.get("device_note") or status.get("last_error") or \
            status.get("warning"):
        return line, L.OBS_TEXT_INFO_WARNING
    return line, L.OBS_TEXT_INFO_NORMAL


def _words(line: str) -> str:
    return "".join(ch for ch in line if not ch.isdigit())


class StatusPush:
    """When a filter's open panel is rebuilt to show a new status (status thread).

    OBS cannot update one text in an open panel: obs_source_update_properties rebuilds the
    whole view, which closes an open dropdown and ends a slider drag. So the status text is
    written to the settings on every change (`written`: what a panel shows whenever it is
    built), but a rebuild is asked for only when the line's words or kind change - a new
    state, an error, a note - never for new figures alone, never twice within PUSH_MIN_S
    and never within EDIT_QUIET_S of the user's last change (a deferred one follows)."""

    def __init__(self) -> None:
        self.line = ""  # the line of the last rebuild
        self.kind = -1
        self.at = float("-inf")
        self.pushes = 0  # rebuilds asked for
        self.written = ""  # the line last written to the settings
        self.edited_at = float("-inf")  # time.monotonic() of the user's last settings change

    def due(self, line: str, kind: int, now: float | None = None,
            edited_at: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        edited_at = self.edited_at if edited_at is None else edited_at
        if kind == self.kind and _words(line) == _words(self.line):
            return False
        if now - self.at < PUSH_MIN_S or now - edited_at < EDIT_QUIET_S:
            return False
        self.line, self.kind, self.at = line, kind, now
        self.pushes += 1
        return True


def push_status(flt: FaceSwapFilter, rebuild: bool) -> None:
    """On the UI thread: write the status line and, with `rebuild`, ask OBS to rebuild the
    filter's panel if one is open (obs_source_update_properties: OBS calls build() again)."""
    with registration.live_instances() as filters:
        if flt not in filters:
            return  # destroyed since the push was queued
    line, _ = status_line(flt.last_status)
    _set_status_text(flt, line)
    if rebuild:
        L.obs_source_update_properties(flt.source)


def _set_status_text(flt: FaceSwapFilter, line: str, key: bytes = b"status") -> None:
    """An info text's text lives in the settings key of its name (how OBS shows info
    text): "status" for the status line."""
    data = L.obs_source_get_settings(flt.source)
    try:
        L.obs_data_set_string(data, key, line.encode())
    finally:
        L.obs_data_release(data)


def refresh_panels() -> None:
    """Ask OBS (on its UI thread) to rebuild the open properties of every Face Swap filter:
    how a finished background scan reaches a panel built from the older list."""
    def update() -> None:
        with registration.live_instances() as filters:
            sources = [f.source for f in filters]
        for source in sources:
            L.obs_source_update_properties(source)
    registration.queue_ui(update)


def _list(props: int, control: Control) -> int:
    return L.obs_properties_add_list(props, control.name.encode(), control.label.encode(),
                                     L.OBS_COMBO_TYPE_LIST, L.OBS_COMBO_FORMAT_STRING)


def _add_items(prop: int, items: dict[str, str]) -> None:
    for value, label in items.items():
        L.obs_property_list_add_string(prop, label.encode(), value.encode())


def _fill_models(prop: int, current: str) -> None:
    _entries.clear()
    names = []
    scanned = CATALOG.entries()
    if scanned is None:  # the first scan is still running: the built-in persona meanwhile
        from core.settings import SwapSettings

        default = SwapSettings().model
        L.obs_property_list_add_string(prop, f"{default}  (built-in persona)".encode(),
                                       default.encode())
        index = L.obs_property_list_add_string(prop, b"scanning models...", b"")
        L.obs_property_list_item_disable(prop, index, True)
        names.append(default)
    if CATALOG.error:  # the last scan failed: said here, where the models are chosen
        index = L.obs_property_list_add_string(
            prop, f"model scan failed: {CATALOG.error}"[:120].encode(), b"")
        L.obs_property_list_item_disable(prop, index, True)
    served = SERVERS.serving()  # name -> (entry, the servers that list it)
    for entry in scanned or ():
        if entry.usable and not entry.is_swapper:
            continue  # an embedder is picked with the model that uses it, never on its own
        _entries[entry.name] = entry
        also = "".join(f", on {server}" for server in served.pop(entry.name, (None, ()))[1])
        index = L.obs_property_list_add_string(
            prop, f"{entry.name}  ({entry.describe()}{also})".encode(), entry.name.encode())
        if not entry.usable:
            L.obs_property_list_item_disable(prop, index, True)
        names.append(entry.name)
    for name, (entry, servers) in served.items():  # chosen with that server as Device
        index = L.obs_property_list_add_string(
            prop, f"{name}  ({entry.describe()}, on {', '.join(servers)})".encode(),
            name.encode())
        if not entry.is_swapper:
            L.obs_property_list_item_disable(prop, index, True)
        names.append(name)
    for listed in SERVERS.listed.values():
        if isinstance(listed, str):  # that server's models are named by hand
            index = L.obs_property_list_add_string(prop, listed.encode(), b"")
            L.obs_property_list_item_disable(prop, index, True)
    if current and current not in names:
        L.obs_property_list_add_string(prop, f"{current}  (file or unknown name)".encode(),
                                       current.encode())


def _fill_person_models(prop: int) -> None:
    """"Their model": the filter's own, or any usable swap model of the last scan."""
    L.obs_property_list_add_string(prop, b"The filter's model", b"")
    for name, entry in _entries.items():
        if entry.usable and entry.is_swapper:
            L.obs_property_list_add_string(prop, name.encode(), name.encode())


def _add_enrolment(props: int, flt: FaceSwapFilter) -> None:
    """The enrol button, who is enrolled (info text), and the button that forgets them."""
    now = L.obs_properties_add_button2(props, b"enrol_now", b"Enrol the face in view now",
                                       registration.button("enrol_now"), flt.key)
    L.obs_property_set_long_description(now, tooltip_text(
        f"Look at the camera: {enrolment.ENROL_FRAMES} frames over about a second are "
        "enrolled as one more person (the hotkey \"Face Swap: enrol the face in view\" does "
        "the same).").encode())
    _set_status_text(flt, enrolment.summary(flt), b"enrolled")
    info = L.obs_properties_add_text(props, b"enrolled", b"Enrolled", L.OBS_TEXT_INFO)
    L.obs_property_text_set_info_word_wrap(info, True)
    L.obs_property_set_long_description(info, tooltip_text(
        "Who this filter swaps, each with their model, and how the last enrolment "
        "went.").encode())
    forget = L.obs_properties_add_button2(props, b"forget_people", b"Forget enrolled faces",
                                          registration.button("forget_people"), flt.key)
    L.obs_property_set_long_description(forget, tooltip_text(
        "Removes every enrolled person from this filter.").encode())


def _fill_devices(prop: int, current: str) -> None:
    listed = []
    for device in devices.list_devices():
        L.obs_property_list_add_string(prop, device.label.encode(), device.id.encode())
        listed.append(device.id)
    for server in SERVERS.devices:  # the script's "Inference servers"
        L.obs_property_list_add_string(prop, f"{server}  (inference server)".encode(),
                                       server.encode())
        listed.append(server)
    if current not in listed:
        L.obs_property_list_add_string(prop, f"{current}  (not on this machine)".encode(),
                                       current.encode())


def _add(props: int, control: Control, key: int) -> int:
    name, label = control.name.encode(), control.label.encode()
    if control.kind == "list":
        prop = _list(props, control)
        if control.items is not None:
            _add_items(prop, control.items)
    elif control.kind == "bool":
        prop = L.obs_properties_add_bool(props, name, label)
    elif control.kind == "path":
        prop = L.obs_properties_add_path(props, name, label, L.OBS_PATH_FILE, IMAGE_FILTER,
                                         None)
    elif control.kind == "int":
        low, high = control.bounds
        prop = L.obs_properties_add_int_slider(props, name, label, int(low), int(high),
                                               int(control.step))
        if control.suffix:
            L.obs_property_int_set_suffix(prop, control.suffix.encode())
    else:
        low, high = control.bounds
        prop = L.obs_properties_add_float_slider(props, name, label, low, high, control.step)
        if control.suffix:
            L.obs_property_float_set_suffix(prop, control.suffix.encode())
    L.obs_property_set_long_description(prop, tooltip_text(control.tooltip).encode())
    if control.name in TRIGGERS:
        L.obs_property_set_modified_callback2(prop, registration.modified(control.name), key)
    return prop


def _apply_visibility(props: int, shown: dict[str, bool]) -> None:
    """Show or hide controls anywhere in the panel (`props` may be one group's content)."""
    while parent := L.obs_properties_get_parent(props):
        props = parent
    for name, visible in shown.items():
        prop = L.obs_properties_get(props, name.encode())
        if prop:
            L.obs_property_set_visible(prop, visible)


TOOLTIP_WIDTH = 60  # characters per line: OBS shows a tooltip as one line otherwise


def tooltip_text(text: str) -> str:
    """A tooltip broken into lines of TOOLTIP_WIDTH characters (OBS draws a long
    description as a single line, running off the screen)."""
    return textwrap.fill(text, TOOLTIP_WIDTH)


def build(flt: FaceSwapFilter) -> int:
    """A new obs_properties_t for `flt` (libobs owns and destroys it)."""
    props = L.obs_properties_create()
    s = flt.settings
    status = L.obs_properties_add_text(props, b"status", b"Status", L.OBS_TEXT_INFO)
    L.obs_property_set_long_description(
        status, b"What the filter does now; it updates itself. The full figures are in the "
                b"script's status file (Tools > Scripts, Face Swap).")
    line, kind = status_line(flt.last_status)
    _set_status_text(flt, line)
    L.obs_property_text_set_info_type(status, kind)
    L.obs_property_text_set_info_word_wrap(status, True)  # a long error wraps, the panel keeps
    for group, (title, controls) in GROUPS.items():
        content = L.obs_properties_create()
        for control in controls:
            prop = _add(content, control, flt.key)
            if control.name == "model":
                _fill_models(prop, s.model)
                L.obs_properties_add_button2(content, b"refresh_models", b"Refresh model list",
                                             registration.button("refresh_models"), flt.key)
            elif control.name == "device":
                _fill_devices(prop, s.device)
            elif control.name == "enrol_model":
                _fill_person_models(prop)
            elif control.name == "enrol_photo":
                _add_enrolment(content, flt)
        L.obs_properties_add_group(props, group.encode(), title.encode(), L.OBS_GROUP_NORMAL,
                                   content)
    refresh = L.obs_properties_get(props, b"refresh_models")
    L.obs_property_set_long_description(
        refresh, b"Scan the models folders again (in the background) for new or changed "
                 b"files.")
    _apply_visibility(props, visibility(s.model, s.faces, s.on_lost, s.label))
    return props


def on_property(flt: FaceSwapFilter, name: str, props: int, prop: int,
                settings: int | None) -> bool:
    """Button / modified callbacks; True asks OBS to refresh the panel."""
    if name in TRIGGERS and settings:
        def get(key: str) -> str:
            return L.text(L.obs_data_get_string(settings, key.encode()))
        _apply_visibility(props, visibility(get("model"), get("faces"), get("on_lost"),
                                            bool(L.obs_data_get_bool(settings, b"label"))))
        return True
    if name == "enrol_now":
        enrolment.enrol_view(flt)
        return True
    if name == "forget_people":
        enrolment.forget(flt)
        return True
    if name == "refresh_models":  # rescan in the background; the panel is rebuilt after it
        CATALOG.refresh(then=refresh_panels)
        model = L.obs_properties_get(props, b"model")
        L.obs_property_list_clear(model)
        _fill_models(model, flt.settings.model)
        return True
    return False

"""ctypes bindings to libobs: what obspython (SWIG) cannot do or must not do.

obspython has no `obs_register_source` and rejects raw pixel pointers, so filter
registration and the gs_* frame exchange go through ctypes. We also call every libobs
function that may block (obs_enter_graphics, obs_source_update, ...) through ctypes:
a ctypes call releases the GIL, a SWIG call does not, and the graphics thread needs the
GIL to run our video_render - holding it while waiting for graphics would deadlock.

Enum values below are libobs ABI constants; tests compare them with obspython's.
"""

from __future__ import annotations

import ctypes as C
import ctypes.util
import itertools
import sys

# Struct layouts checked against the headers, and the test suite run, on OBS 29.0.2, 30.2.3
# and 32.2.2 (Linux; install/test_debian.sh); 31 only by reading its headers.
VERIFIED_MAJORS = range(29, 33)

# enum obs_source_type / output flags
OBS_SOURCE_TYPE_FILTER = 1
OBS_SOURCE_VIDEO = 1 << 0
OBS_SOURCE_ASYNC = 1 << 2
OBS_SOURCE_CUSTOM_DRAW = 1 << 3
OBS_SOURCE_ASYNC_VIDEO = OBS_SOURCE_ASYNC | OBS_SOURCE_VIDEO
OBS_DEINTERLACE_MODE_DISABLE = 0
MAX_AV_PLANES = 8
# graphics
GS_RGBA = 3
GS_ZS_NONE = 0
GS_DYNAMIC = 1 << 1
GS_CLEAR_COLOR = 1 << 0
GS_BLEND_ZERO = 0
GS_BLEND_ONE = 1
OBS_EFFECT_DEFAULT = 0
OBS_NO_DIRECT_RENDERING = 0
# properties
OBS_COMBO_TYPE_LIST = 2
OBS_COMBO_FORMAT_STRING = 3
OBS_PATH_FILE = 0
OBS_TEXT_INFO = 3
OBS_PROPERTY_INT = 2
OBS_PROPERTY_TEXT, OBS_PROPERTY_PATH = 4, 5
OBS_PROPERTY_FLOAT = 3
OBS_PROPERTY_GROUP = 12
OBS_GROUP_NORMAL = 1
OBS_TEXT_INFO_NORMAL = 0
OBS_TEXT_INFO_WARNING = 1
OBS_TEXT_INFO_ERROR = 2
# tasks and logging
OBS_TASK_UI = 0
OBS_TASK_DESTROY = 3  # the thread that destroys released sources (OBS 28+)
LOG_ERROR = 100
LOG_WARNING = 200
LOG_INFO = 300

vp = C.c_void_p
u32 = C.c_uint32
f32 = C.c_float
cstr = C.c_char_p


class SourceInfo(C.Structure):
    """The leading fields of `struct obs_source_info` (libobs/obs-source.h).

    obs_register_source_s copies `size` bytes and zero-fills the rest, so a prefix is a
    complete, valid registration for a video filter. `filter_video` (right after
    `video_render` in every version) makes libobs hand the filter each new raw frame of an
    async parent, whatever the filter's own output flags (obs-source.c filter_async_video).
    `filter_remove` (OBS 21+) is called while the filter still has its parent, before libobs
    clears it: the render callbacks use it to stop touching the parent (registration.py).
    """

    _fields_ = [
        ("id", cstr), ("type", C.c_int), ("output_flags", u32),
        ("get_name", vp), ("create", vp), ("destroy", vp),
        ("get_width", vp), ("get_height", vp), ("get_defaults", vp),
        ("get_properties", vp), ("update", vp), ("activate", vp),
        ("deactivate", vp), ("show", vp), ("hide", vp),
        ("video_tick", vp), ("video_render", vp), ("filter_video", vp),
        ("filter_audio", vp), ("enum_active_sources", vp), ("save", vp), ("load", vp),
        ("mouse_click", vp), ("mouse_move", vp), ("mouse_wheel", vp), ("focus", vp),
        ("key_click", vp), ("filter_remove", vp),
    ]


class SourceFrame(C.Structure):
    """`struct obs_source_frame` up to `trc` (libobs/obs.h, same layout in OBS 28-32): the
    raw frame an async source hands libobs, valid only during the callback it comes with."""

    _fields_ = [
        ("data", C.c_void_p * MAX_AV_PLANES), ("linesize", C.c_uint32 * MAX_AV_PLANES),
        ("width", C.c_uint32), ("height", C.c_uint32), ("timestamp", C.c_uint64),
        ("format", C.c_int), ("color_matrix", C.c_float * 16), ("full_range", C.c_bool),
        ("max_luminance", C.c_uint16), ("color_range_min", C.c_float * 3),
        ("color_range_max", C.c_float * 3), ("flip", C.c_bool), ("flags", C.c_uint8),
        ("trc", C.c_uint8),
    ]


# callback signatures (libobs typedefs)
GET_NAME = C.CFUNCTYPE(vp, vp)
CREATE = C.CFUNCTYPE(vp, vp, vp)
DESTROY = C.CFUNCTYPE(None, vp)
GET_DEFAULTS = C.CFUNCTYPE(None, vp)
GET_PROPERTIES = C.CFUNCTYPE(vp, vp)
UPDATE = C.CFUNCTYPE(None, vp, vp)
VIDEO_RENDER = C.CFUNCTYPE(None, vp, vp)
FILTER_VIDEO = C.CFUNCTYPE(vp, vp, vp)  # (data, obs_source_frame*) -> the frame to go on
BUTTON_CLICKED = C.CFUNCTYPE(C.c_bool, vp, vp, vp)  # (props, property, priv)
MODIFIED2 = C.CFUNCTYPE(C.c_bool, vp, vp, vp, vp)  # (priv, props, property, settings)
TASK = C.CFUNCTYPE(None, vp)
ENUM_ITEM = C.CFUNCTYPE(C.c_bool, vp, vp, vp)  # (scene, scene item, param) -> continue


class Vec2(C.Structure):
    _fields_ = [("x", C.c_float), ("y", C.c_float)]


OBS_BOUNDS_NONE, OBS_BOUNDS_MAX_ONLY = 0, 6  # enum obs_bounds_type
ENUM_SOURCE = C.CFUNCTYPE(None, vp, vp, vp)  # (parent, child, param)
FILTER_REMOVE = C.CFUNCTYPE(None, vp, vp)  # (data, parent)


def _candidates() -> list[str | None]:
    """Where libobs lives: already loaded in OBS's process, so the process itself first."""
    if sys.platform == "win32":
        return ["obs.dll", "obs"]
    names: list[str | None] = [None]  # dlopen(NULL): the OBS executable and what it links
    if sys.platform == "darwin":
        names += ["@rpath/libobs.framework/Versions/A/libobs", "libobs.framework/libobs",
                  "/Applications/OBS.app/Contents/Frameworks/libobs.framework/libobs"]
    else:
        names += ["libobs.so.0", *(f"libobs.so.{v}" for v in reversed(VERIFIED_MAJORS))]
    found = ctypes.util.find_library("obs")
    if found:
        names.append(found)
    return names


def find_library(names: list[str | None], symbol: str, what: str) -> C.CDLL:
    """The first of `names` (None: this process) that loads and exports `symbol`; OSError
    naming `what` and every place tried otherwise."""
    tried = []
    for name in names:
        try:
            found = C.CDLL(name)
        except OSError as exc:
            tried.append(f"{name or 'process'}: {exc}")
            continue
        if hasattr(found, symbol):
            return found
        tried.append(f"{name or 'process'}: no {symbol}")
    raise OSError(f"{what} not found; tried " + "; ".join(tried))


def load_library() -> C.CDLL:
    """libobs for this platform; OSError naming the places tried if it is not found."""
    return find_library(_candidates(), "obs_get_version", "libobs")


lib = load_library()


# The same library through PyDLL: these calls keep the GIL. The render path makes ~30
# short gs_* calls per frame; releasing the GIL around each would hand it to the busy
# worker thread 30 times and wait up to a switch interval to get it back every time.
# Calls that render other sources (they may take scene locks that a thread waiting for the
# GIL holds) and everything that can block stay on `lib`, which releases the GIL.
_gil_lib = C.PyDLL(lib._name, handle=lib._handle)


def _fn(name: str, res, *args, keep_gil: bool = False):
    f = getattr(_gil_lib if keep_gil else lib, name)
    f.restype = res
    f.argtypes = list(args)
    return f


def _gfx(name: str, res, *args):
    """A short, non-blocking call of the render path: keeps the GIL (see _gil_lib)."""
    return _fn(name, res, *args, keep_gil=True)


obs_get_version = _fn("obs_get_version", u32)
obs_get_version_string = _fn("obs_get_version_string", cstr)
obs_register_source_s = _fn("obs_register_source_s", None, vp, C.c_size_t)
obs_enter_graphics = _fn("obs_enter_graphics", None)
obs_leave_graphics = _fn("obs_leave_graphics", None)
obs_queue_task = _fn("obs_queue_task", None, C.c_int, vp, vp, C.c_bool)
obs_get_average_frame_time_ns = _fn("obs_get_average_frame_time_ns", C.c_uint64)
obs_get_video_frame_time = _gfx("obs_get_video_frame_time", C.c_uint64)
obs_get_frame_interval_ns = _gfx("obs_get_frame_interval_ns", C.c_uint64)


class VideoInfo(C.Structure):
    """The leading fields of `struct obs_video_info` (obs.h, the same in OBS 26-32)."""

    _fields_ = [("graphics_module", C.c_char_p), ("fps_num", u32), ("fps_den", u32),
                ("base_width", u32), ("base_height", u32), ("output_width", u32),
                ("output_height", u32), ("rest", C.c_uint8 * 64)]  # room for the tail


obs_get_video_info = _fn("obs_get_video_info", C.c_bool, C.POINTER(VideoInfo))

# sources
obs_filter_get_target = _gfx("obs_filter_get_target", vp, vp)
obs_filter_get_parent = _gfx("obs_filter_get_parent", vp, vp)
obs_source_get_base_width = _gfx("obs_source_get_base_width", u32, vp)
obs_source_get_base_height = _gfx("obs_source_get_base_height", u32, vp)
obs_source_video_render = _fn("obs_source_video_render", None, vp)
obs_source_default_render = _fn("obs_source_default_render", None, vp)
obs_source_get_output_flags = _gfx("obs_source_get_output_flags", u32, vp)
obs_source_get_deinterlace_mode = _gfx("obs_source_get_deinterlace_mode", C.c_int, vp)
obs_source_skip_video_filter = _fn("obs_source_skip_video_filter", None, vp)
obs_source_get_settings = _fn("obs_source_get_settings", vp, vp)
obs_source_update = _fn("obs_source_update", None, vp, vp)
obs_source_get_name = _fn("obs_source_get_name", cstr, vp)
obs_source_enabled = _fn("obs_source_enabled", C.c_bool, vp)
obs_source_enum_filters = _fn("obs_source_enum_filters", None, vp, vp, vp)
obs_source_set_enabled = _fn("obs_source_set_enabled", None, vp, C.c_bool)
obs_get_source_by_name = _fn("obs_get_source_by_name", vp, cstr)
obs_source_release = _fn("obs_source_release", None, vp)
obs_source_get_ref = _fn("obs_source_get_ref", vp, vp)  # NULL: being destroyed
obs_source_filter_count = _gfx("obs_source_filter_count", C.c_size_t, vp)
obs_source_update_properties = _fn("obs_source_update_properties", None, vp)

# scenes
obs_scene_from_source = _fn("obs_scene_from_source", vp, vp)
obs_group_from_source = _fn("obs_group_from_source", vp, vp)
obs_scene_enum_items = _fn("obs_scene_enum_items", None, vp, vp, vp)
obs_sceneitem_get_source = _fn("obs_sceneitem_get_source", vp, vp)
obs_sceneitem_visible = _fn("obs_sceneitem_visible", C.c_bool, vp)
obs_sceneitem_get_scale = _fn("obs_sceneitem_get_scale", None, vp, C.POINTER(Vec2))
obs_sceneitem_get_bounds_type = _fn("obs_sceneitem_get_bounds_type", C.c_int, vp)
obs_sceneitem_get_bounds = _fn("obs_sceneitem_get_bounds", None, vp, C.POINTER(Vec2))
obs_source_get_width = _fn("obs_source_get_width", u32, vp)
obs_source_get_height = _fn("obs_source_get_height", u32, vp)
obs_source_active = _fn("obs_source_active", C.c_bool, vp)

# settings (obs_data_t)
obs_data_create = _fn("obs_data_create", vp)
obs_data_release = _fn("obs_data_release", None, vp)
obs_data_get_string = _fn("obs_data_get_string", cstr, vp, cstr)
obs_data_get_int = _fn("obs_data_get_int", C.c_longlong, vp, cstr)
obs_data_get_double = _fn("obs_data_get_double", C.c_double, vp, cstr)
obs_data_get_bool = _fn("obs_data_get_bool", C.c_bool, vp, cstr)
obs_data_set_string = _fn("obs_data_set_string", None, vp, cstr, cstr)
obs_data_set_int = _fn("obs_data_set_int", None, vp, cstr, C.c_longlong)
obs_data_set_double = _fn("obs_data_set_double", None, vp, cstr, C.c_double)
obs_data_set_bool = _fn("obs_data_set_bool", None, vp, cstr, C.c_bool)
obs_data_set_default_string = _fn("obs_data_set_default_string", None, vp, cstr, cstr)
obs_data_set_default_int = _fn("obs_data_set_default_int", None, vp, cstr, C.c_longlong)
obs_data_set_default_double = _fn("obs_data_set_default_double", None, vp, cstr, C.c_double)
obs_data_set_default_bool = _fn("obs_data_set_default_bool", None, vp, cstr, C.c_bool)
obs_data_has_user_value = _fn("obs_data_has_user_value", C.c_bool, vp, cstr)
obs_data_get_json = _fn("obs_data_get_json", cstr, vp)  # the user values only, as JSON

# properties
obs_properties_create = _fn("obs_properties_create", vp)
obs_properties_get = _fn("obs_properties_get", vp, vp, cstr)
obs_properties_add_list = _fn("obs_properties_add_list", vp, vp, cstr, cstr, C.c_int, C.c_int)
obs_properties_add_float_slider = _fn("obs_properties_add_float_slider", vp, vp, cstr, cstr,
                                      C.c_double, C.c_double, C.c_double)
obs_properties_add_int_slider = _fn("obs_properties_add_int_slider", vp, vp, cstr, cstr,
                                    C.c_int, C.c_int, C.c_int)
obs_properties_add_int = _fn("obs_properties_add_int", vp, vp, cstr, cstr, C.c_int, C.c_int,
                             C.c_int)
obs_properties_add_bool = _fn("obs_properties_add_bool", vp, vp, cstr, cstr)
obs_properties_add_path = _fn("obs_properties_add_path", vp, vp, cstr, cstr, C.c_int, cstr, cstr)
obs_properties_add_text = _fn("obs_properties_add_text", vp, vp, cstr, cstr, C.c_int)
obs_properties_add_button2 = _fn("obs_properties_add_button2", vp, vp, cstr, cstr, vp, vp)
obs_property_list_add_string = _fn("obs_property_list_add_string", C.c_size_t, vp, cstr, cstr)
obs_source_properties = _fn("obs_source_properties", vp, vp)
obs_properties_destroy = _fn("obs_properties_destroy", None, vp)
obs_properties_first = _fn("obs_properties_first", vp, vp)
obs_property_next = _fn("obs_property_next", C.c_bool, C.POINTER(vp))
obs_property_name = _fn("obs_property_name", cstr, vp)
obs_property_visible = _fn("obs_property_visible", C.c_bool, vp)
obs_property_list_item_count = _fn("obs_property_list_item_count", C.c_size_t, vp)
obs_property_list_item_name = _fn("obs_property_list_item_name", cstr, vp, C.c_size_t)
obs_property_list_clear = _fn("obs_property_list_clear", None, vp)
obs_property_list_item_disable = _fn("obs_property_list_item_disable", None, vp, C.c_size_t,
                                     C.c_bool)
obs_property_set_modified_callback2 = _fn("obs_property_set_modified_callback2", None, vp, vp,
                                          vp)
obs_property_set_long_description = _fn("obs_property_set_long_description", None, vp, cstr)
obs_property_set_visible = _fn("obs_property_set_visible", None, vp, C.c_bool)
obs_property_text_set_info_type = _fn("obs_property_text_set_info_type", None, vp, C.c_int)
obs_property_text_set_info_word_wrap = _fn("obs_property_text_set_info_word_wrap", None, vp,
                                           C.c_bool)
obs_properties_add_group = _fn("obs_properties_add_group", vp, vp, cstr, cstr, C.c_int, vp)
obs_property_int_set_suffix = _fn("obs_property_int_set_suffix", None, vp, cstr)
obs_property_float_set_suffix = _fn("obs_property_float_set_suffix", None, vp, cstr)
obs_property_get_type = _fn("obs_property_get_type", C.c_int, vp)
obs_properties_get_parent = _fn("obs_properties_get_parent", vp, vp)
obs_property_group_content = _fn("obs_property_group_content", vp, vp)
obs_property_description = _fn("obs_property_description", cstr, vp)
obs_property_long_description = _fn("obs_property_long_description", cstr, vp)
obs_property_int_min = _fn("obs_property_int_min", C.c_int, vp)
obs_property_int_max = _fn("obs_property_int_max", C.c_int, vp)
obs_property_float_min = _fn("obs_property_float_min", C.c_double, vp)
obs_property_float_max = _fn("obs_property_float_max", C.c_double, vp)

# graphics (only inside video_render or between obs_enter_graphics / obs_leave_graphics)
obs_get_base_effect = _gfx("obs_get_base_effect", vp, C.c_int)
gs_texrender_create = _gfx("gs_texrender_create", vp, C.c_int, C.c_int)
gs_texrender_destroy = _gfx("gs_texrender_destroy", None, vp)
gs_texrender_reset = _gfx("gs_texrender_reset", None, vp)
gs_texrender_begin = _gfx("gs_texrender_begin", C.c_bool, vp, u32, u32)
gs_texrender_end = _gfx("gs_texrender_end", None, vp)
gs_texrender_get_texture = _gfx("gs_texrender_get_texture", vp, vp)
gs_clear = _gfx("gs_clear", None, u32, vp, f32, C.c_uint8)
gs_ortho = _gfx("gs_ortho", None, f32, f32, f32, f32, f32, f32)
gs_blend_state_push = _gfx("gs_blend_state_push", None)
gs_blend_state_pop = _gfx("gs_blend_state_pop", None)
gs_blend_function = _gfx("gs_blend_function", None, C.c_int, C.c_int)
gs_stagesurface_create = _gfx("gs_stagesurface_create", vp, u32, u32, C.c_int)
gs_stagesurface_destroy = _gfx("gs_stagesurface_destroy", None, vp)
gs_stage_texture = _gfx("gs_stage_texture", None, vp, vp)
gs_stagesurface_map = _gfx("gs_stagesurface_map", C.c_bool, vp, C.POINTER(C.c_void_p),
                          C.POINTER(u32))
gs_stagesurface_unmap = _gfx("gs_stagesurface_unmap", None, vp)
gs_texture_create = _gfx("gs_texture_create", vp, u32, u32, C.c_int, u32, vp, u32)
gs_texture_destroy = _gfx("gs_texture_destroy", None, vp)
gs_texture_set_image = _gfx("gs_texture_set_image", None, vp, vp, u32, C.c_bool)
gs_effect_get_param_by_name = _gfx("gs_effect_get_param_by_name", vp, vp, cstr)
gs_effect_set_texture = _gfx("gs_effect_set_texture", None, vp, vp)
gs_effect_loop = _gfx("gs_effect_loop", C.c_bool, vp, cstr)
gs_draw_sprite = _gfx("gs_draw_sprite", None, vp, u32, u32, u32)
gs_effect_create = _gfx("gs_effect_create", vp, cstr, cstr, vp)
gs_effect_set_vec2 = _gfx("gs_effect_set_vec2", None, vp, vp)
gs_effect_set_vec4 = _gfx("gs_effect_set_vec4", None, vp, vp)
# renders the filter's target into its own texture (it may render other sources: no GIL)
obs_source_process_filter_begin = _fn("obs_source_process_filter_begin", C.c_bool, vp, C.c_int,
                                      C.c_int)
obs_source_process_filter_end = _fn("obs_source_process_filter_end", None, vp, vp, u32, u32)
obs_source_process_filter_tech_end = _fn("obs_source_process_filter_tech_end", None, vp, vp,
                                         u32, u32, cstr)

_blog = lib.blog  # variadic: the fixed arguments typed, so ctypes passes the rest as varargs
_blog.argtypes = [C.c_int, C.c_char_p]
_blog.restype = None


def scene_sources(scene_source: int) -> set[int]:
    """Every source shown in a scene (nested scenes and groups included), as pointers (for
    comparison only: none is held once this returns)."""
    found: set[int] = set()
    held: list[int] = []  # a reference on each: nested scenes are read after the lock

    def visit(source: int) -> None:
        scene = obs_scene_from_source(source) or obs_group_from_source(source)
        if not scene:
            return

        def item(_scene, scene_item, _param) -> bool:
            child = obs_sceneitem_get_source(scene_item)
            if child and child not in found and obs_source_get_ref(child):
                held.append(child)
                found.add(child)
                pending.append(child)
            return True

        callback = ENUM_ITEM(item)  # alive until the call returns
        obs_scene_enum_items(scene, C.cast(callback, vp), None)

    pending = [scene_source]
    try:
        while pending:
            visit(pending.pop())
    finally:
        for source in held:
            obs_source_release(source)
    return found


def canvas_size() -> tuple[int, int]:
    """OBS's canvas (base) size: what scene items are placed and scaled in."""
    info = VideoInfo()
    return (info.base_width, info.base_height) if obs_get_video_info(C.byref(info)) else (0, 0)


def _item_scale(scene_item: int, source: int) -> float:
    """How much a scene item scales its source's shorter side (bounds included; called
    inside the scene's item enumeration, so nothing here takes a lock)."""
    if obs_sceneitem_get_bounds_type(scene_item) == OBS_BOUNDS_NONE:
        scale = Vec2()
        obs_sceneitem_get_scale(scene_item, C.byref(scale))
        return min(abs(scale.x), abs(scale.y))
    bounds = Vec2()
    obs_sceneitem_get_bounds(scene_item, C.byref(bounds))
    width, height = obs_source_get_width(source), obs_source_get_height(source)
    if not width or not height:
        return 1.0
    fit = min(bounds.x / width, bounds.y / height)
    return min(fit, 1.0) if obs_sceneitem_get_bounds_type(scene_item) == OBS_BOUNDS_MAX_ONLY \
        else fit


def shown_scales(scenes: list[int], targets: set[int]) -> dict[int, float]:
    """The smallest scale at which each of `targets` is shown in `scenes` (visible items;
    nested scenes and groups multiply); a target no scene shows is left out. UI thread: the
    scene lists come from the frontend, and each scene's items are read under its lock with
    the GIL released while waiting for it (the render thread holds that lock while it calls
    our filter's render, which takes the GIL)."""
    scales: dict[int, float] = {}

    def visit(source: int, scale: float, depth: int) -> None:
        scene = obs_scene_from_source(source) or obs_group_from_source(source)
        if not scene or depth > 8:
            return
        found: list[tuple[int, float]] = []

        def item(_scene, scene_item, _param) -> bool:
            child = obs_sceneitem_get_source(scene_item)
            if child and obs_sceneitem_visible(scene_item) and obs_source_get_ref(child):
                found.append((child, scale * _item_scale(scene_item, child)))
            return True

        callback = ENUM_ITEM(item)  # alive until the call returns
        obs_scene_enum_items(scene, C.cast(callback, vp), None)
        for child, shown in found:  # nested scenes outside this scene's lock: each held
            try:
                if child in targets:
                    scales[child] = min(shown, scales.get(child, shown))
                else:
                    visit(child, shown, depth + 1)
            finally:
                obs_source_release(child)

    for scene_source in scenes:
        visit(scene_source, 1.0, 0)
    return scales


def _collect_filter(_parent, child, param) -> None:
    _enumerations[param or 0].append(child)


_enumerations: dict[int, list[int]] = {}  # enumeration key -> filters found so far
_enum_keys = itertools.count(1)
# One callback for every enumeration, made once: a CFUNCTYPE per call costs a closure, a
# ctypes thunk and its teardown on the graphics thread. The key in `param` says whose list.
_COLLECT_FILTER = ENUM_SOURCE(_collect_filter)


def source_filters(source: int) -> list[int]:
    """The filters on `source`, in the order they apply, as pointers."""
    key = next(_enum_keys)
    found = _enumerations[key] = []
    try:
        obs_source_enum_filters(source, C.cast(_COLLECT_FILTER, vp), key)
    finally:
        del _enumerations[key]
    return found


def scripting_library() -> C.CDLL:
    """OBS's scripting library, already loaded in this process (its soname differs by
    build: libobs-scripting.so.1 in Debian's OBS 29/30, .so.0 in OBS 32)."""
    names = {"win32": ["obs-scripting.dll"], "darwin": ["libobs-scripting.dylib"]}
    process = [] if sys.platform == "win32" else [None]  # CDLL(None) is POSIX-only
    return find_library(
        [*process, *names.get(sys.platform, ["libobs-scripting.so.0", "libobs-scripting.so.1"])],
        "obs_script_reload", "OBS's scripting library")


def script_pointer(module) -> int:
    """The obs_script_t* of a loaded script module (OBS keeps it in a capsule there)."""
    get_pointer = C.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = C.c_void_p, [C.py_object, C.c_char_p]
    return get_pointer(module.__script_data__, None)


def log(level: int, message: str) -> None:
    """One line in OBS's log (thread-safe in libobs), prefixed so users can grep for it."""
    _blog(level, b"%s", C.c_char_p(f"[face_swap] {message}".encode("utf-8", "replace")))


def version() -> tuple[int, int, int]:
    """The running libobs version as (major, minor, patch)."""
    v = obs_get_version()
    return v >> 24, (v >> 16) & 0xFF, v & 0xFFFF


def version_problem() -> str:
    """'' when the running OBS is one the struct layout was verified for, else a warning."""
    major, minor, patch = version()
    if major in VERIFIED_MAJORS:
        return ""
    return (f"OBS {major}.{minor}.{patch} is outside the verified range "
            f"{VERIFIED_MAJORS.start}.x-{VERIFIED_MAJORS.stop - 1}.x: the filter may misbehave")


def text(value: bytes | None) -> str:
    """A C string from libobs as str ('' for NULL)."""
    return value.decode("utf-8", "replace") if value else ""


_os_get_config_path = _fn("os_get_config_path", C.c_int, C.c_char_p, C.c_size_t, cstr)


def config_path(name: str) -> str:
    """OBS's per-user config folder joined with `name` (~/.config/<name> on Linux)."""
    buf = C.create_string_buffer(4096)
    if _os_get_config_path(buf, len(buf), name.encode()) <= 0:
        raise OSError(f"libobs could not build a config path for {name!r}")
    return buf.value.decode("utf-8", "replace")

"""The filter's registration with libobs, kept alive for the life of the OBS process.

libobs keeps pointers to our `SourceInfo` struct and CFUNCTYPE callbacks forever and
refuses a second registration of the same id, while "Reload Scripts" re-executes the
script. So this module is imported once and never reloaded (face_swap.py skips it): it
registers once, owns the table of live filter instances, and forwards each callback to
the current `Host` (the freshly loaded script code) - or, between an unload and the next
load, passes the source through.

A Host provides: defaults(settings_ptr), make(key, source_ptr, settings_ptr) -> instance.
An instance provides: update(settings_ptr), properties() -> obs_properties_t* address,
render(), filter_video(frame_ptr) (a new raw frame of an async parent; the frame always
goes on unchanged), close(), on_property(name, props, property, settings) -> bool.
Property buttons / modified callbacks use `button(name)` / `modified(name)`: stable
callbacks that reach the instance whose key is passed as their private data.
"""

from __future__ import annotations

import atexit
import builtins
import ctypes as C
import itertools
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from core import privacy
from obs_script import cover
from obs_script import libobs as L

FILTER_ID = b"face_swap"
DISPLAY_NAME = C.create_string_buffer(b"Face Swap")
EXIT_WAIT_S = 10.0  # at most this long at OBS's exit for our threads' frames in flight
THREAD_PREFIX = "face-swap"  # every thread the engine and the script start


def wait_for_threads_at_exit(timeout: float = EXIT_WAIT_S) -> list[str]:
    """Let our threads finish before Python is finalised; the names of those still alive.

    OBS finalises its Python when it exits, after the script is unloaded and the filters
    are destroyed (which tells every thread to stop without waiting for it). A daemon thread
    that touches Python after that is ended on the spot: a worker returning from a slow
    onnxruntime call would be unwound through C++ frames, and OBS crashes (seen with a
    model taking 750 ms a frame). Exit callbacks still run with Python intact, so this one
    waits for the frame in flight, bounded."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.startswith(THREAD_PREFIX) and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    alive = [t.name for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]
    if alive:
        L.log(L.LOG_WARNING, f"still running at exit after {timeout:.0f} s: {', '.join(alive)}")
    return alive


atexit.register(wait_for_threads_at_exit)  # once: this module is never reloaded


@dataclass
class Entry:
    """One filter source as libobs knows it; `impl` is None while no script is loaded."""

    source: int
    impl: Any = None
    # on_lost is a privacy mode: with no instance to ask (no script loaded, or its render
    # failed) the source is covered (obs_script.cover) instead of passed through
    private: bool = False
    # Errors raised by the instance per callback ("video_render", "filter_video"): each
    # callback's first is logged with its traceback, the rest only counted (they repeat
    # per frame), and the counts are shown in the filter's status.
    errors: dict[str, int] = field(default_factory=dict)
    # Taken by the frame callbacks and by filter_remove: once a filter is taken off its
    # source (a user deletes it while it renders), no callback touches the parent again
    # (libobs then clears the filter's parent, and obs_source_skip_video_filter with no
    # parent crashes OBS).
    lock: threading.Lock = field(default_factory=threading.Lock)
    removed: bool = False

    def failed(self, where: str) -> None:
        """Count an exception from `where` (inside its except block); log the first."""
        count = self.errors.get(where, 0)
        self.errors[where] = count + 1
        if not count:
            _report(where)


@dataclass
class State:
    host: Any = None
    entries: dict[int, Entry] = field(default_factory=dict)
    registrations: int = 0
    loads: int = 0
    callbacks: dict[Any, Any] = field(default_factory=dict)  # CFUNCTYPEs libobs holds
    tasks: dict[int, Any] = field(default_factory=dict)  # queued UI-thread calls
    info: L.SourceInfo | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


# Shared through builtins as well: should this module ever be imported a second time (its
# sys.modules entry dropped), the old callbacks and the new code still see one state.
STATE: State = getattr(builtins, "_face_swap_filter_state", None) or State()
builtins._face_swap_filter_state = STATE
_ids = itertools.count(max(STATE.entries, default=0) + 1)
_callbacks_lock = threading.Lock()  # this module is never reloaded: one lock for the process


def _report(where: str) -> None:
    L.log(L.LOG_ERROR, f"{where} failed: {traceback.format_exc(limit=6)}")


def _impl(data: int | None):
    entry = STATE.entries.get(data or 0)
    return entry.impl if entry else None


def _get_name(_type_data):
    return C.addressof(DISPLAY_NAME)


def _private(settings) -> bool:
    """Whether the filter's on_lost hides the source where no swap is drawn (core.privacy)."""
    on_lost = L.text(L.obs_data_get_string(settings, b"on_lost"))
    return privacy.lost_view(on_lost, None, 0, face_known=False) != privacy.ORIGINAL


def _pass_or_cover(entry: Entry) -> None:
    """No instance can draw this frame: the parent as it is, or covered in privacy mode."""
    if not entry.private:
        L.obs_source_skip_video_filter(entry.source)
        return
    target = L.obs_filter_get_target(entry.source)
    if target:
        cover.draw(entry.source, L.obs_source_get_base_width(target),
                   L.obs_source_get_base_height(target))


def _create(settings, source):
    key = next(_ids)
    entry = Entry(source, private=_private(settings))
    host = STATE.host
    if host is not None:
        try:
            entry.impl = host.make(key, source, settings)
        except Exception:
            _report("create")
    with STATE.lock:
        STATE.entries[key] = entry
    return key


def _destroy(data):
    with STATE.lock:  # once this returns libobs frees the source: no poll may be using it
        entry = STATE.entries.pop(data or 0, None)
    if entry and entry.impl is not None:
        try:
            entry.impl.close()
        except Exception:
            _report("destroy")


def _get_defaults(settings):
    host = STATE.host
    if host is not None:
        try:
            host.defaults(settings)
        except Exception:
            _report("get_defaults")


def _get_properties(data):
    impl = _impl(data)
    if impl is not None:
        try:
            return impl.properties()
        except Exception:
            _report("get_properties")
    return L.obs_properties_create()


def _update(data, settings):
    entry = STATE.entries.get(data or 0)
    if entry is not None:
        entry.private = _private(settings)
    impl = entry.impl if entry else None
    if impl is not None:
        try:
            impl.update(settings)
        except Exception:
            _report("update")


def _video_render(data, _effect):
    entry = STATE.entries.get(data or 0)
    if entry is None:
        return
    with entry.lock:
        if entry.removed:
            return  # a render that began before the filter was taken off: draw nothing
        impl = entry.impl
        if impl is None:
            _pass_or_cover(entry)
            return
        try:
            impl.render()
        except Exception:
            entry.failed("video_render")
            _pass_or_cover(entry)


def _filter_video(data, frame):
    entry = STATE.entries.get(data or 0)
    if entry is None:
        return frame
    with entry.lock:
        impl = entry.impl
        if impl is not None and not entry.removed:
            try:
                impl.filter_video(frame)
            except Exception:
                entry.failed("filter_video")
    return frame  # never withheld: the parent shows it whatever happened here


def _filter_remove(data, _parent):
    """The filter is being taken off its source: wait for a frame callback in progress,
    then keep them all away from the parent, which libobs clears when this returns. (A
    filter object is never put back on a source by OBS: undo and copy make new ones.)"""
    entry = STATE.entries.get(data or 0)
    if entry is not None:
        with entry.lock:
            entry.removed = True


def callback_errors(key: int) -> dict[str, int]:
    """How many exceptions the instance `key` raised per per-frame callback (a copy)."""
    entry = STATE.entries.get(key)
    return dict(entry.errors) if entry else {}


def _on_property(name: str, key, props, prop, settings) -> bool:
    impl = _impl(key)
    if impl is None:
        return False
    try:
        return bool(impl.on_property(name, props, prop, settings))
    except Exception:
        _report(f"property {name}")
        return False


def _stable_callback(key: Any, make: Callable[[], Any]) -> int:
    """Address of the CFUNCTYPE kept under `key`, made on first use. libobs holds these
    pointers (property callbacks, queued tasks) across script reloads, so each is made once
    and never replaced or collected; the lock keeps two threads from making one twice."""
    with _callbacks_lock:
        cb = STATE.callbacks.get(key)
        if cb is None:
            cb = STATE.callbacks[key] = make()
    return C.cast(cb, C.c_void_p).value


def button(name: str) -> int:
    """Address of a stable obs_property_clicked_t that calls on_property(name, ...)."""
    return _stable_callback(("button", name), lambda: L.BUTTON_CLICKED(
        lambda props, prop, key: _on_property(name, key, props, prop, None)))


def modified(name: str) -> int:
    """Address of a stable obs_property_modified2_t that calls on_property(name, ...)."""
    return _stable_callback(("modified", name), lambda: L.MODIFIED2(
        lambda key, props, prop, settings: _on_property(name, key, props, prop, settings)))


def _run_task(param) -> None:
    fn = STATE.tasks.pop(param or 0, None)
    if fn is not None:
        try:
            fn()
        except Exception:
            _report("UI task")


def queue_ui(fn) -> None:
    """Run `fn()` soon on OBS's UI thread (obs_queue_task), through one stable callback.
    Queued from the UI thread itself, OBS runs it at once; from another thread it waits
    for the UI's event loop."""
    queue_task(L.OBS_TASK_UI, fn)


def queue_task(kind: int, fn) -> None:
    """Run `fn()` on one of OBS's task threads (L.OBS_TASK_*)."""
    task = _stable_callback("task", lambda: L.TASK(_run_task))
    key = next(_ids)
    STATE.tasks[key] = fn
    L.obs_queue_task(kind, task, key, False)


def _register() -> None:
    cbs = dict(get_name=L.GET_NAME(_get_name), create=L.CREATE(_create),
               destroy=L.DESTROY(_destroy), get_defaults=L.GET_DEFAULTS(_get_defaults),
               get_properties=L.GET_PROPERTIES(_get_properties), update=L.UPDATE(_update),
               video_render=L.VIDEO_RENDER(_video_render),
               filter_video=L.FILTER_VIDEO(_filter_video),
               filter_remove=L.FILTER_REMOVE(_filter_remove))
    info = L.SourceInfo(id=FILTER_ID, type=L.OBS_SOURCE_TYPE_FILTER,
                        output_flags=L.OBS_SOURCE_VIDEO)
    for name, fn in cbs.items():
        setattr(info, name, C.cast(fn, C.c_void_p))
        STATE.callbacks[name] = fn
    STATE.info = info
    L.obs_register_source_s(C.byref(info), C.sizeof(info))
    STATE.registrations += 1
    L.log(L.LOG_INFO, f"registered filter '{FILTER_ID.decode()}' ({C.sizeof(info)} bytes of "
                      f"obs_source_info, OBS {L.text(L.obs_get_version_string())})")


def attach(host) -> None:
    """Route callbacks to `host` (called by each script load); registers on first use."""
    with STATE.lock:
        STATE.host = host
        STATE.loads += 1
        if STATE.info is None:
            _register()
        pending = [(k, e) for k, e in STATE.entries.items() if e.impl is None]
    for key, entry in pending:  # filters that outlived a reload get fresh instances
        settings = L.obs_source_get_settings(entry.source)
        try:
            entry.impl = host.make(key, entry.source, settings)
        except Exception:
            _report("re-create after reload")
        finally:
            L.obs_data_release(settings)


def detach() -> None:
    """Close every instance and stop forwarding (script unload); sources pass through."""
    with STATE.lock:
        STATE.host = None
    # Swap the instances out while holding the graphics context: video_render runs inside
    # it, so no render can be using an instance we are closing.
    L.obs_enter_graphics()
    try:
        with STATE.lock:
            closing = [e.impl for e in STATE.entries.values() if e.impl is not None]
            for entry in STATE.entries.values():
                entry.impl = None
    finally:
        L.obs_leave_graphics()
    for impl in closing:
        try:
            impl.close()
        except Exception:
            _report("close on unload")


@contextmanager
def live_instances() -> Iterator[list[Any]]:
    """Every filter instance; libobs cannot destroy (and free) any of them inside the block.
    Keep the block short: a filter's destroy waits for it."""
    with STATE.lock:
        yield [e.impl for e in STATE.entries.values() if e.impl is not None]

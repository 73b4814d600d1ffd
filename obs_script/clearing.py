"""Every source kept alive through OBS's clearing of the scene data (exit, collection switch).

OBS 30+ clears the scene data by walking its table of scenes (obs_enum_scenes: take a
reference, remove the scene, drop the reference, then read the next pointer). When that
drop destroys a scene, OBS's destruction thread may free it before the walk reads its next
pointer; the walk then ends early and every later scene, with the sources in it, outlives
the clearing (log: "Not all sources were cleared when clearing scene data"). At exit they
are destroyed only after OBS has finalised Python, and a filter of this script among them
calls into the dead interpreter: OBS crashes (seen in 1 run in 3 on OBS 32.2 with our
filters, never on OBS 29, whose walk reads the next pointer first).

So before a clearing this module takes a reference to every scene and source: no drop in
the walk destroys anything, and the walk reaches every scene. The references go back from a
task on OBS's UI thread, which the clearing runs while it waits for the destruction queue
(OBSBasic::ClearSceneData pumps posted events until the queue is empty), so everything is
destroyed inside the clearing, while Python is alive.
"""

from __future__ import annotations

from obs_script import libobs as L
from obs_script import registration


def _references() -> list[int]:
    """A new reference to every public scene and source."""
    held: list[int] = []

    def take(_param, source) -> bool:
        ref = L.obs_source_get_ref(source)
        if ref:
            held.append(ref)
        return True

    callback = L.ENUM_PROC(take)  # alive until both calls return
    L.obs_enum_scenes(callback, None)
    L.obs_enum_sources(callback, None)
    return held


def hold_through_clearing() -> int:
    """Hold every scene and source until OBS's UI thread next runs its tasks (see above);
    how many were taken."""
    held = _references()

    def release() -> None:
        for source in held:
            L.obs_source_release(source)

    registration.queue_ui(release)
    return len(held)

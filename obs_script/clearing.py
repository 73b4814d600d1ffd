"""Keeping OBS's scene clearing (exit, scene-collection switch) from leaving sources behind.

OBS 30+ clears the scene data by walking its table of scenes (obs_enum_scenes: take a
reference, remove the scene, drop the reference, then read the next pointer). When that
drop destroys a scene, OBS's destruction thread may free it before the walk reads its next
pointer; the walk then ends early and every later scene, with the sources in it, outlives
the clearing (log: "Not all sources were cleared when clearing scene data"). At exit they
are destroyed only after OBS has finalised Python, and a filter of this script among them
calls into the dead interpreter: OBS crashes (seen in 1 run in 3 on OBS 32.2 with our
filters, never on OBS 29, whose walk reads the next pointer first).

So when OBS announces a clearing (its exit, "scripting shutdown", which comes before the
scripts unload; a scene-collection switch) this module holds the destruction thread: a task
on it waits until OBS's UI thread processes its posted events, which the clearing does only
after its walks (OBSBasic::ClearSceneData pumps them while it waits for the destruction
queue). No scene is freed during a walk, the walks reach every scene, and everything is
destroyed inside the clearing, while Python is alive. The hold is bounded (HOLD_S), so
nothing can wait on it for long. (Holding references instead needs a moment after the walks
to let them go: OBS 32 fires its "collection cleanup" event before them, and a task queued
to the UI thread from the UI thread runs at once.)
"""

from __future__ import annotations

import threading
import time

from obs_script import libobs as L
from obs_script import registration

HOLD_S = 5.0  # the longest the destruction thread waits for the UI thread


def hold_destruction() -> None:
    """Hold OBS's destruction thread until the UI thread next processes posted events."""
    released = threading.Event()

    def on_destruction_thread() -> None:
        start = time.monotonic()
        registration.queue_ui(released.set)  # from this thread: posted, run by the UI loop
        if released.wait(HOLD_S):
            L.log(L.LOG_INFO, f"scene clearing: destruction held "
                              f"{(time.monotonic() - start) * 1000:.0f} ms")
        else:
            L.log(L.LOG_WARNING, f"scene clearing: the UI thread did not answer within "
                                 f"{HOLD_S:.0f} s")

    registration.queue_task(L.OBS_TASK_DESTROY, on_destruction_thread)

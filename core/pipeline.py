"""One frame through every stage: track -> select -> swap -> merge -> on-lost -> label.

(select: settings.faces; "enrolled" asks core.identity who each face is.)

The CLI, the benchmark and the OBS worker all run this one class, so they swap the same
way and report the same per-stage timings. The input frame is never modified: it is
copied once and every stage writes into the copy, only inside the face ROI and the label.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import guard, identity, objects, privacy
from core.devices import device_note
from core.errors import FaceSwapError
from core.face import Face
from core.frame import check_frame
from core.guard import GuardState, IdentityGuard
from core.hands import HandTracker, hand_mask
from core.label import draw_label
from core.merge import merge
from core.registry import load_swapper, resolve, resolve_on_server
from core.settings import REBUILD_FIELDS, SwapSettings
from core.stills import faces_in_image
from core.swap.base import SwapOutput, Swapper
from core.target import Target
from core.track import FaceTracker, select_faces

STAGES = ("detect", "landmarks", "track", "identity", "hands", "objects", "copy", "align", "swap",
          "network", "guard", "merge", "lost", "label", "total")
NO_LIMIT = 90.0  # degrees: a pose limit this wide never stops a swap


@dataclass
class Swapping:
    """A frame between Pipeline.begin and Pipeline.finish: tracked, its swaps started."""

    frame: np.ndarray
    fmt: str
    now: float  # its timestamp (s)
    settings: SwapSettings  # as they were when it began
    tracked: list[Face]
    selected: list[Face]
    # faces="enrolled": faces not swapped that get a mosaic (smooth=False) or a blur (True),
    # and the faces in view not swapped (guests: with one in view a privacy mode does not
    # cover the whole frame)
    veiled: list[tuple[Face, bool]]
    guests: list[Face]
    keep: np.ndarray | None  # hands and objects in front of the faces (core.hands, core.objects)
    # (face id -> swap, ms per stage), or its Future while the requests are out
    swaps: Future | tuple[dict[int, SwapOutput], dict[str, float]]
    timings: dict[str, float]

    @property
    def future(self) -> Future | None:
        """The requests while they are out (None: the swaps are made)."""
        return self.swaps if isinstance(self.swaps, Future) else None


@dataclass
class _FaceState:
    """One face id over time: where it is, the swap last drawn on it, and the cross-fade."""

    face: Face  # last known position (tracked this frame, or when last seen)
    seen: float  # when it was last tracked (s)
    drawn: tuple[Face, SwapOutput] | None = None  # the last live swap and the face it fits
    swapped: float | None = None  # when that swap was made (s)
    weight: float = 1.0  # how much of the swap layer is shown (the cross-fade, 0..1)
    guard: GuardState = field(default_factory=GuardState)  # the identity guard's verdict


def build_swapper(settings: SwapSettings) -> Swapper:
    """The swapper for settings.model via the registry; FaceSwapError when unusable."""
    extra = [Path(settings.models_dir).expanduser()] if settings.models_dir else []
    if Target(settings.device).served:
        entry = resolve_on_server(settings.model, settings.device, extra_dirs=extra)
    else:
        entry = resolve(settings.model, extra_dirs=extra)
    return load_swapper(entry, settings.device, settings.threads, settings.reference)


def keeps_hands(settings: SwapSettings) -> bool:
    """Whether hands are kept in front of the swap: `keep_hands`, and in a privacy mode
    only with the identity guard, the one check of what a kept hand lets through (a false
    hand on the face leaves the real face live there)."""
    return settings.keep_hands and _guarded(settings)


def keeps_objects(settings: SwapSettings) -> bool:
    """Whether other occluders are kept in front (core.objects): `keep_objects`, and in a
    privacy mode only with the identity guard, as for hands."""
    return settings.keep_objects and _guarded(settings)


def _guarded(settings: SwapSettings) -> bool:
    return settings.on_lost == "original" or settings.identity_guard


def pose_limits(settings: SwapSettings, swapper: Swapper) -> tuple[float, float]:
    """(max yaw, max pitch) in degrees: the settings', or the model family's where 0."""
    default_yaw, default_pitch = swapper.pose_limits
    return (settings.max_yaw or default_yaw, settings.max_pitch or default_pitch)


def within(face: Face, limits: tuple[float, float]) -> bool:
    """Whether the face's head pose is inside the (yaw, pitch) limits."""
    yaw, pitch, _ = face.pose
    return (limits[0] >= NO_LIMIT or abs(yaw) <= limits[0]) and \
        (limits[1] >= NO_LIMIT or abs(pitch) <= limits[1])


class Pipeline:
    """A loaded tracker + swapper applied frame by frame.

    `timings` holds the last frame's milliseconds per stage (see STAGES); "align" is the
    swapper's own alignment time when it reports one (else it is part of "swap"), "network"
    the round trips to an inference server (core.triton; the server's compute included). `faces`
    are the faces swapped live in the last frame; `shown` says per face id what the last
    frame showed on it ("swap", or a core.privacy view) - what benchmarks count.

    Where a face is not swapped - lost, turned past a pose limit - the swap cross-fades
    over `fade_ms` into the `on_lost` view (core.privacy.lost_view) and back, never a pop.
    A privacy mode never fades its mosaic: only the swap layer above it fades (in, over the
    mosaic; the real face is never under a swap that is not fully drawn). In a privacy
    mode with `identity_guard`, a swap the recogniser still takes for the live person
    (core.guard) is not shown: the face cross-fades to its mosaic as if it were lost.

    `process` is `finish(begin(...))`; a host that wants the next frame tracked while this
    one's requests are out at a server (`overlaps`) calls the two itself.
    """

    def __init__(self, settings: SwapSettings) -> None:
        self.settings = settings
        self.target = Target(settings.device)  # a device change builds a new Pipeline
        self.swapper = build_swapper(settings)
        try:
            self.people = identity.decode(settings.people)
        except ValueError as exc:
            raise FaceSwapError(str(exc)) from None
        # each enrolled person's own model ("" = settings.model), loaded with the pipeline; one
        # that cannot be loaded is a warning, and that person gets settings.model
        self.swappers: dict[str, Swapper] = {settings.model: self.swapper}
        self.model_problems: list[str] = []
        for person in self.people:
            if person.model and person.model not in self.swappers:
                try:
                    self.swappers[person.model] = build_swapper(settings.with_changes(
                        model=person.model))
                except FaceSwapError as exc:
                    self.model_problems.append(f"{person.name}'s model: {exc}")
        self.tracker = FaceTracker(settings, device=self.target.local,
                                   threads=settings.threads)
        # the swap network's provider; a persona has none, so the landmark model's
        self.provider: str = (self.swapper.provider
                              or self.tracker.mesh.session.get_providers()[0])
        self.device_note: str = device_note(settings.device, self.provider)
        self.model_name: str = self.swapper.name
        self.timings: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self.faces: list[Face] = []  # the faces swapped live in the last frame
        self.tracked: list[Face] = []  # every face the tracker followed in the last frame
        self.shown: dict[int, str] = {}  # face id -> "swap" or the privacy view it got
        self.guests: list[Face] = []  # faces="enrolled": faces in view not swapped
        self.identities: dict[int, identity.LockState] = {}  # faces="enrolled": who is who
        self._states: dict[int, _FaceState] = {}
        self._shape: tuple[int, ...] | None = None
        self._time: float | None = None  # the last frame's timestamp (s)
        self._frame_number = 0
        # built with the pipeline (off the hot path) while the setting is on, so turning a
        # privacy mode on later does not stall a frame while its model loads
        self.identity_guard: IdentityGuard | None = \
            self._new_guard() if settings.identity_guard else None
        self.hand_tracker: HandTracker | None = self._new_hand_tracker() \
            if settings.keep_hands else None
        self.hands: list = []  # the hands in front of swapped faces in the last frame
        self.looks: dict[int, objects.Appearance] = {}  # face id -> how it looks uncovered
        self.identity_lock: identity.IdentityLock | None = identity.IdentityLock(
            self.people, self.target.local, settings.threads) \
            if self.people else None
        # a model on a server: its requests go out from this thread, one at a time
        self.overlaps = self.target.served
        self._requests = ThreadPoolExecutor(1, thread_name_prefix="face-swap-request") \
            if self.overlaps else None

    def update(self, settings: SwapSettings) -> bool:
        """Apply settings that need no reload; False (nothing applied) when a rebuild is due."""
        if any(getattr(settings, f) != getattr(self.settings, f) for f in REBUILD_FIELDS):
            return False
        self.settings = settings
        self.tracker.update(settings)
        return True

    def reset(self) -> None:
        """Forget tracked faces and the held swaps (a new video or a scene cut)."""
        self.tracker.reset()
        self.faces = []
        self.tracked = []
        self.shown = {}
        self.guests = []
        self.identities = {}
        self.hands = []
        self.looks = {}
        if self.hand_tracker is not None:
            self.hand_tracker.reset()
        self._states = {}
        self._time = None
        self._frame_number = 0

    def close(self, timeout: float = 1.0) -> None:
        """Wait (up to `timeout` s) for the identity guard's and the identity lock's checks
        and the hand search and follow job in flight, and stop the hands' follow thread, so a
        stopped engine leaves no thread running."""
        for checker in (self.identity_guard, self.identity_lock):
            if checker is not None:
                checker.wait(timeout)
        if self.hand_tracker is not None:
            self.hand_tracker.close(timeout)

    def exposed(self, face_id: int) -> bool:
        """Whether the identity guard hides this face's swap now (core.guard)."""
        state = self._states.get(face_id)
        return state is not None and guard.hides(self.settings, state.guard)

    def process_still(self, image: np.ndarray, fmt: str) -> np.ndarray:
        """The swapped copy of a still image: every face `core detect` finds (the same scan:
        the whole image, tile by tile), not the live tracker's (which follows at most
        settings.max_faces and scans one tile per detection round)."""
        check_frame(image, fmt)
        self.reset()
        faces = faces_in_image(image, fmt)
        return self.process(image, fmt, timestamp=0.0, faces=faces)

    def process(self, frame: np.ndarray, fmt: str, timestamp: float | None = None,
                faces: list[Face] | None = None) -> np.ndarray:
        """The swapped copy of `frame` (same shape and layout); `timestamp` in seconds
        (default: the monotonic clock) times the hold, the cross-fade and the smoothing.
        `faces`: found already (a still image), instead of by the tracker."""
        return self.finish(self.begin(frame, fmt, timestamp, faces))

    def begin(self, frame: np.ndarray, fmt: str, timestamp: float | None = None,
              faces: list[Face] | None = None) -> Swapping:
        """Track `frame` and start its swaps; `finish` makes the output. With `overlaps`
        (a model on an inference server) the swaps run on the request thread, so a host may
        begin the next frame - its tracking - while this frame's requests are out. Frames
        must be finished in the order they were begun."""
        start = time.perf_counter()
        check_frame(frame, fmt)
        now = time.monotonic() if timestamp is None else float(timestamp)
        settings = self.settings
        timings = dict.fromkeys(STAGES, 0.0)
        if self._shape is not None and self._shape != frame.shape:
            self.reset()  # new resolution: old tracks, held swaps and face areas are void
        self._shape = frame.shape
        self._frame_number += 1
        still = faces is not None  # found already: a still image
        if not still and keeps_hands(settings) and self.hand_tracker is not None:
            self.hand_tracker.start(frame, fmt)  # the hands followed while faces are tracked
        if faces is None:
            faces = self.tracker.process(frame, fmt, timestamp=now)
            for stage, key in (("detect", "detect"), ("landmarks", "landmarks"),
                               ("track", "smooth")):
                timings[stage] = self.tracker.timings.get(key, 0.0)
        veiled: list[tuple[Face, bool]] = []
        self.guests = []
        if settings.faces == "enrolled":
            t = time.perf_counter()
            selected, veiled = self._enrolled(frame, fmt, faces, settings)
            timings["identity"] = (time.perf_counter() - t) * 1000.0
        else:
            selected = select_faces(faces, settings, (frame.shape[1], frame.shape[0]))
        # each face's swapper, read once here: the lock's checker thread may change a verdict
        swappers = {f.id: self.swapper_for(f.id) for f in selected}
        within_limits = [f for f in selected if within(f, pose_limits(settings, swappers[f.id]))]
        keep = None
        if keeps_hands(settings):
            t = time.perf_counter()
            keep = self._hands(frame, fmt, within_limits, still)
            timings["hands"] = (time.perf_counter() - t) * 1000.0
        elif self.hand_tracker is not None:
            self.hand_tracker.reset()  # hands followed before are stale when it is back on
            self.hands = []
        if not still and keeps_objects(settings):
            t = time.perf_counter()
            keep = objects.keep_mask(frame.shape, objects.faces_covered(
                self.looks, frame, fmt, within_limits, faces, hands=bool(self.hands)), keep)
            timings["objects"] = (time.perf_counter() - t) * 1000.0
        else:
            self.looks = {}
        timings["total"] = (time.perf_counter() - start) * 1000.0  # finish adds the rest
        work = (frame, fmt, within_limits, settings, swappers)
        swaps = self._requests.submit(self._swap_all, *work) \
            if self._requests is not None and within_limits else self._swap_all(*work)
        return Swapping(frame, fmt, now, settings, faces, selected, veiled, self.guests, keep,
                        swaps, timings)

    def _hands(self, frame: np.ndarray, fmt: str, faces: list[Face], still: bool
               ) -> np.ndarray | None:
        """The silhouette of the hands in front of the faces about to be swapped (None: no
        hand); a still image is searched whole, a stream follows its hands (core.hands)."""
        if self.hand_tracker is None:  # the setting was off when the pipeline was built
            self.hand_tracker = self._new_hand_tracker()
        self.hands = self.hand_tracker.find_in_still(frame, fmt, faces) if still else \
            self.hand_tracker.process(frame, fmt, faces)
        return hand_mask(frame.shape, self.hands)

    def _new_hand_tracker(self) -> HandTracker:
        return HandTracker(self.target.local, self.settings.threads,
                           self.settings.detect_interval)

    @property
    def warning(self) -> str:
        """What a host shows beside its status while the settings cannot do what they say."""
        if self.settings.faces != "enrolled":
            return ""
        if not self.people:
            return ("nobody is enrolled yet: no face is swapped (in a privacy mode every face "
                    "is pixelated) until someone is")
        return "; ".join(self.model_problems)

    def swapper_for(self, face_id: int) -> Swapper:
        """The swapper of a face: with faces="enrolled", its person's own model; else (or
        when that model could not be loaded) settings.model's."""
        state = self.identities.get(face_id)
        if self.settings.faces == "enrolled" and state is not None and \
                state.verdict == identity.ENROLLED:
            return self.swappers.get(self.people[state.person].model, self.swapper)
        return self.swapper

    def _enrolled(self, frame: np.ndarray, fmt: str, faces: list[Face],
                  settings: SwapSettings) -> tuple[list[Face], list[tuple[Face, bool]]]:
        """faces="enrolled": (the faces of enrolled people, left to right; the others to
        veil: a face not known yet or unsure in a privacy mode gets a mosaic, a guest a blur
        when settings.guests asks for one). See core.identity."""
        if self.identity_lock is not None:  # else nobody is enrolled: nobody is known
            self.identity_lock.check(frame, fmt, faces, self.identities, self._frame_number)
        for face_id in [i for i, s in self.identities.items()
                        if self._frame_number - s.seen_frame > 10 * identity.CHECK_EVERY]:
            del self.identities[face_id]  # long gone: its id will not come back
        chosen, veiled = [], []
        private = settings.on_lost != "original"
        for face in select_faces(faces, settings):  # every face, left to right
            state = self.identities.get(face.id)
            verdict = identity.UNKNOWN if state is None else state.verdict
            if verdict == identity.ENROLLED:
                chosen.append(face)
            elif private and (state is None or not identity.shown_raw(state)):
                veiled.append((face, False))
            elif settings.guests == "blur":
                veiled.append((face, True))
        swapped = {f.id for f in chosen}
        self.guests = [f for f in faces if f.id not in swapped]
        return chosen, veiled

    def finish(self, swapping: Swapping) -> np.ndarray:
        """The output of a begun frame: waits for its swaps, then on-lost views, merge and
        label. A failed swap raises here (the host passes the frame through)."""
        start = time.perf_counter()
        frame, fmt, now, settings = swapping.frame, swapping.fmt, swapping.now, swapping.settings
        timings = swapping.timings
        swaps = swapping.swaps
        live, swap_timings = swaps.result() if isinstance(swaps, Future) else swaps
        for stage, ms in swap_timings.items():
            timings[stage] += ms
        step = 1.0 if self._time is None or settings.fade_ms <= 0 else \
            max(0.0, now - self._time) * 1000.0 / settings.fade_ms
        self._time = now
        self.tracked = swapping.tracked
        for face in swapping.selected:
            state = self._states.get(face.id)
            if state is None:
                state = self._states[face.id] = _FaceState(face, now)
            state.face, state.seen = face, now
        guarded = guard.active(settings)
        if guarded:
            timings["guard"] = self._guard(swapping, live, None)  # faces never judged
        self.faces = [f for f in swapping.selected
                      if f.id in live and not guard.hides(settings, self._states[f.id].guard)]

        t = time.perf_counter()
        out = frame.copy()
        timings["copy"] = (time.perf_counter() - t) * 1000.0
        t = time.perf_counter()
        layers = self._views(out, live, now, step, settings, swapping.guests)
        for face, smooth in swapping.veiled:
            privacy.pixelate_face(out, face.box, face.size, smooth)
        timings["lost"] = (time.perf_counter() - t) * 1000.0
        t = time.perf_counter()
        for face, swapped, weight in layers:
            merge(out, fmt, face, swapped, settings if weight >= 1.0 else
                  settings.with_changes(opacity=settings.opacity * weight), swapping.keep)
        timings["merge"] = (time.perf_counter() - t) * 1000.0
        if guarded:
            timings["guard"] += self._guard(swapping, live, out)  # the re-checks

        if settings.label:
            t = time.perf_counter()
            draw_label(out, fmt, settings.label_corner, size=settings.label_size)
            timings["label"] = (time.perf_counter() - t) * 1000.0
        # this thread's time (tracking, merge) plus the swaps'; with overlapping requests
        # the wait between begin and finish is not counted: the next frame's tracking used it
        timings["total"] += (time.perf_counter() - start) * 1000.0 + swap_timings["swap"] + \
            swap_timings["align"] + swap_timings["network"]
        self.timings = timings
        return out

    def _guard(self, swapping: Swapping, live: dict[int, SwapOutput],
               out: np.ndarray | None) -> float:
        """The identity guard's due checks on this frame's swaps (core.guard); its ms.
        Without `out` (before the merge): the faces never judged, whose verdict this frame
        waits for. With `out` (after it): the re-checks, read from the output itself where a
        face's swap is drawn in full (else the guard merges the swap in on its own)."""
        start = time.perf_counter()
        if self.identity_guard is None:  # the setting was off when the pipeline was built
            self.identity_guard = self._new_guard()
        for face in swapping.selected:
            state = self._states[face.id]
            if face.id not in live or (out is None) != (state.guard.checked_frame is None) \
                    or not guard.due(state.guard, face, self._frame_number,
                                     guard.kept_share(swapping.keep, face)):
                continue
            drawn = out if out is not None and self.shown.get(face.id) == "swap" and \
                state.weight >= 1.0 else None
            self.identity_guard.check(swapping.frame, swapping.fmt, face, live[face.id],
                                      swapping.settings, state.guard, self._frame_number,
                                      drawn, swapping.keep)
        return (time.perf_counter() - start) * 1000.0

    def _new_guard(self) -> IdentityGuard:
        return IdentityGuard(self.target.local, self.settings.threads)

    def _swap_all(self, frame: np.ndarray, fmt: str, faces: list[Face], settings: SwapSettings,
                  swappers: dict[int, Swapper]
                  ) -> tuple[dict[int, SwapOutput], dict[str, float]]:
        """Swap `faces` one after another: (face id -> swap, ms per stage: swap, align,
        network). Runs on the request thread when the model is on a server."""
        live: dict[int, SwapOutput] = {}
        timings = {"swap": 0.0, "align": 0.0, "network": 0.0}
        for face in faces:
            swapper = swappers[face.id]
            t = time.perf_counter()
            live[face.id] = swapper.swap(frame, fmt, face, settings)
            timings["swap"] += (time.perf_counter() - t) * 1000.0
            timings["align"] += swapper.timings.get("align", 0.0)
            timings["network"] += swapper.timings.get("network", 0.0)
        timings["swap"] -= timings["align"] + timings["network"]
        return live, timings

    def _views(self, out: np.ndarray, live: dict[int, SwapOutput], now: float, step: float,
               settings: SwapSettings, guests: list[Face]
               ) -> list[tuple[Face, SwapOutput, float]]:
        """Apply each face's on_lost view to `out` (mosaics now, in place) and return the
        swap layers to merge over them: (face, swap, weight of the cross-fade)."""
        layers = []
        self.shown = {}
        for face_id, state in list(self._states.items()):
            known = (now - state.seen) * 1000.0 <= privacy.FACE_MEMORY_MS
            if face_id in live:
                state.drawn = (state.face, live[face_id])
                exposed = guard.hides(settings, state.guard)
                # an exposed swap is never held: lost next, the face is pixelated
                state.swapped = None if exposed else now
                view = privacy.PIXELATE_FACE if exposed else "swap"
            else:
                lost_ms = None if state.swapped is None else (now - state.swapped) * 1000.0
                view = privacy.lost_view(settings.on_lost, lost_ms, settings.hold_ms, known)
            target = 1.0 if view in ("swap", privacy.HOLD) else 0.0
            state.weight = min(target, state.weight + step) if target > state.weight else \
                max(target, state.weight - step)
            # a privacy mode fades the swap in over the mosaic, never over the real face
            # (a face the guard released showed raw for a frame, then under the fading swap)
            if view == privacy.PIXELATE_FACE or (settings.on_lost != "original"
                                                 and target > state.weight):
                privacy.pixelate_face(out, state.face.box, state.face.size)
            if state.drawn is not None and state.weight > 0.0:
                layers.append((*state.drawn, state.weight))
            if view == privacy.COVER or (view == privacy.ORIGINAL and not known):
                if state.weight <= 0.0:  # faded out and its position no longer known
                    del self._states[face_id]
                continue
            self.shown[face_id] = view
        if settings.on_lost != "original" and not self.shown and not guests:
            privacy.cover(out)  # no face position is known: the whole frame
        return layers

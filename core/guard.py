"""The identity guard: the engine checks its own output with a face recogniser and hides a
face whose swap still looks like the person in front of the camera.

A swap can fail to hide someone without failing as a swap: a head turned far enough shows
the streamer's own profile beside the persona. So a few times a second, and at once when a
face is new or has turned further than when it was last judged, the guard cuts dlib's face
chip (core.recognise) from the input and from the output (where the output does not show the
swap in full - a face hidden or fading - from the input with the swap merged in), at the
tracked face's five points, and compares them. Closer than EXPOSED the face is exposed: the
pipeline cross-fades it to the privacy view until RELEASE_CHECKS checks in a row find it
hidden again. The check's cost is shared by the frames between checks (the "guard" stage
times the part on the frame's own thread; re-checks run on the guard's thread).
It runs in the privacy modes (see `active`): they promise that the real face is never shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from core.background import OneAtATime
from core.face import Face
from core.merge import merge
from core.recognise import SAME_PERSON, Recogniser, distance
from core.settings import SwapSettings
from core.swap.base import SwapOutput

# Closer than this the output is taken for the person: a margin over dlib's rule, because the
# check reads the tracked points, not a viewer's own, and they drift as the head turns; the
# margin grows from TURNED_FROM to TURNED_UNTIL degrees of yaw to TURNED_MARGIN.
EXPOSED = SAME_PERSON + 0.05
TURNED_FROM, TURNED_UNTIL, TURNED_MARGIN = 45.0, 60.0, 0.12
CHECK_EVERY = 10  # frames between checks of a face (3 a second at 30 fps)
CHECK_TURN_DEG = 8.0  # ... or sooner, once it has turned (yaw) or tilted (pitch) this much
CHECK_KEPT = 0.05  # ... or once this much more of its box is kept live (a hand, an object)
# further from frontal than at its last check
RELEASE_CHECKS = 2  # hidden again only after this many passing checks in a row
CHIP_MARGIN = 0.6  # the region merged for a check: face box grown by this x face size


@dataclass
class GuardState:
    """One face's guard: its last verdict and when it was judged."""

    exposed: bool = False
    checked_frame: int | None = None  # the frame number of the last check
    checked_yaw: float = 0.0  # |yaw| at the last check
    checked_pitch: float = 0.0  # |pitch| at the last check
    checked_kept: float = 0.0  # the share of its box kept live at the last check
    passes: int = 0  # passing checks in a row since the last failure
    distance: float | None = None  # the last check's recogniser distance


def active(settings: SwapSettings) -> bool:
    """Whether the guard runs: `identity_guard` in a privacy mode (on_lost other than
    "original"), where the promise is that the real face is never shown."""
    return settings.identity_guard and settings.on_lost != "original"


def hides(settings: SwapSettings, state: GuardState) -> bool:
    """Whether the guard hides a face's swap now: it runs and found the face exposed."""
    return active(settings) and state.exposed


def exposed_below(yaw: float) -> float:
    """The recogniser distance under which a swap at this yaw counts as the person."""
    turned = np.clip((abs(yaw) - TURNED_FROM) / (TURNED_UNTIL - TURNED_FROM), 0.0, 1.0)
    return EXPOSED + float(turned) * (TURNED_MARGIN - (EXPOSED - SAME_PERSON))


def due(state: GuardState, face: Face, frame: int, kept: float = 0.0) -> bool:
    """Whether the face is checked this frame: never yet, CHECK_EVERY frames since, turned
    or tilted CHECK_TURN_DEG further from frontal than at its last check (a tilt alone used
    to wait for the next periodic check: on renders tilted 30-45 degrees the swap was still
    recognised in 27 % of the frames where the guard was on), or with CHECK_KEPT more of its
    box kept live (`kept`, kept_share: a hand or an object newly in front leaves the live
    face between and around it, which must not wait for the periodic check)."""
    return state.checked_frame is None or frame - state.checked_frame >= CHECK_EVERY or \
        abs(face.pose[0]) - state.checked_yaw >= CHECK_TURN_DEG or \
        abs(face.pose[1]) - state.checked_pitch >= CHECK_TURN_DEG or \
        kept - state.checked_kept >= CHECK_KEPT


def kept_share(keep: np.ndarray | None, face: Face) -> float:
    """The share of the face's box that `keep` (core.merge's map, 255 = live) keeps live."""
    if keep is None:
        return 0.0
    height, width = keep.shape[:2]
    x0, y0 = np.maximum(np.floor(face.box[:2]), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(face.box[2:]), [width, height]).astype(int)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    return float(keep[y0:y1, x0:x1].mean()) / 255.0


def _shifted(face: Face, swap: SwapOutput, x0: int, y0: int) -> tuple[Face, SwapOutput]:
    """The face and its swap in the coordinates of a region whose corner is (x0, y0)."""
    offset = np.array([x0, y0], np.float32)
    landmarks = face.landmarks.copy()
    landmarks[:, :2] -= offset
    matrix = np.asarray(swap.matrix, np.float64).copy()
    matrix[:, 2] += matrix[:, :2] @ offset
    return (replace(face, landmarks=landmarks, box=face.box - np.tile(offset, 2)),
            replace(swap, matrix=matrix.astype(np.float32)))


class IdentityGuard:
    """Checks swaps against the live face they were drawn on (see the module docstring).

    The chips are cut on the caller's thread (about a millisecond); the recogniser runs
    there too for a face never judged (a new face, a still: its first frame waits for the
    verdict), and otherwise on a thread of its own, one check at a time, its verdict
    applying from the frame it is ready on - so a check never holds up a frame. The thread
    lives for one check (a few a second): an idle guard holds none, so a stopped engine
    leaves no thread behind."""

    def __init__(self, device: str = "cpu", threads: int = 0) -> None:
        self.recogniser = Recogniser(device, threads)
        self._checks = OneAtATime("face-swap-guard")
        self.judge_ms = 0.0  # the recogniser's time of the last check (on whichever thread)

    def check(self, frame: np.ndarray, fmt: str, face: Face, swap: SwapOutput,
              settings: SwapSettings, state: GuardState, frame_number: int,
              drawn: np.ndarray | None = None, keep: np.ndarray | None = None) -> None:
        """Start judging one face's swap (see the class docstring): the input against
        `drawn` (the output, where the swap is drawn in full) or, without it, against the
        input with the swap merged in here (fully opaque, under `keep`: the hands kept in
        front, core.hands, which show the live face between them), at the face's five points. A
        re-check while another is still running waits for a later frame."""
        first = state.checked_frame is None
        if not first and self._checks.busy():
            return
        if drawn is not None:
            points = [face.points5]
            chips = np.concatenate([self.recogniser.chips(frame, points, fmt),
                                    self.recogniser.chips(drawn, points, fmt)])
        else:
            chips = self._probe(frame, fmt, face, swap, settings, keep)
        state.checked_frame = frame_number
        state.checked_yaw, state.checked_pitch = abs(face.pose[0]), abs(face.pose[1])
        state.checked_kept = kept_share(keep, face)
        yaw = face.pose[0]
        self._checks.run(lambda: self._judge(chips, yaw, state), wait=first)

    def _probe(self, frame: np.ndarray, fmt: str, face: Face, swap: SwapOutput,
               settings: SwapSettings, keep: np.ndarray | None) -> np.ndarray:
        """(input, swapped) chips, the swap merged into a copy of the face's region."""
        margin = CHIP_MARGIN * face.size
        height, width = frame.shape[:2]
        x0, y0 = max(int(face.box[0] - margin), 0), max(int(face.box[1] - margin), 0)
        x1 = min(int(np.ceil(face.box[2] + margin)), width)
        y1 = min(int(np.ceil(face.box[3] + margin)), height)
        region = frame[y0:y1, x0:x1]
        swapped = region.copy()
        moved, moved_swap = _shifted(face, swap, x0, y0)
        merge(swapped, fmt, moved, moved_swap, settings.with_changes(opacity=1.0),
              None if keep is None else keep[y0:y1, x0:x1])
        points = [moved.points5]
        return np.concatenate([self.recogniser.chips(region, points, fmt),
                               self.recogniser.chips(swapped, points, fmt)])

    def _judge(self, chips: np.ndarray, yaw: float, state: GuardState) -> None:
        """The recogniser's verdict on a (input, swapped) chip pair, into `state`."""
        start = time.perf_counter()
        before, after = self.recogniser.descriptors_of_chips(chips)
        self.judge_ms = (time.perf_counter() - start) * 1000.0
        apart = distance(before, after)
        state.distance = apart
        if apart < exposed_below(yaw):
            state.exposed, state.passes = True, 0
        else:
            state.passes += 1
            if state.passes >= RELEASE_CHECKS or not state.exposed:
                state.exposed = False

    def wait(self, timeout: float | None = None) -> None:
        """Until the check in flight (if any) has its verdict, or `timeout` s."""
        self._checks.wait(timeout)

"""The identity lock: swap only enrolled people (the streamer, a co-host), never a guest.

Enrolling keeps dlib's 128-d face descriptor (core.recognise) of a few photos or frames of a
person - never the pictures - with a name and, optionally, a model of their own. With
settings.faces == "enrolled" every tracked face is judged a few times a second: nearer than
MATCH to an enrolled descriptor it is that person and is swapped; farther than
core.recognise.SAME_PERSON it is a guest and is left as it is (or blurred, settings.guests);
in between it is "unsure" - treated as a guest, except in a privacy mode, which promises
that an enrolled face is never shown: there an unsure face is pixelated, as is a face not
judged yet and a guest until CHANGE_CHECKS readings in a row agree (a face read once with a
hand over it is not the streamer shown raw).

The recogniser only reads faces that look at the camera (a profile is a coin toss for it:
past 75 degrees of yaw it takes different people of ../shared/data/real_turns for the same
53 % of the time), so a face is judged only within JUDGE_MAX_YAW; a track keeps its verdict
through a turn it was followed through, and a verdict changes only after CHANGE_CHECKS
checks in a row disagree with it (one blurred frame neither swaps a guest nor shows the
streamer). A face the tracker lost and found again at the same place keeps its verdict
until it can be judged, and the first reading then replaces it.

MATCH was measured on ../shared/data/identity (`python -m core bench --identity`).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.background import OneAtATime
from core.errors import InputError
from core.face import Face
from core.imageio import read_bgr
from core.recognise import DESCRIPTOR_SIZE, SAME_PERSON, Recogniser
from core.stills import faces_in_image

# Nearer than this to an enrolled descriptor: that person. On ../shared/data/identity (45
# single photos of 9 people, 4 group photos; descriptors of a chip and its mirror image, see
# core.recognise) the nearest different person is 0.557 away; enrolled from any 2 photos,
# 98.4 % of a person's other photos are nearer than 0.52.
MATCH = 0.52
UNSURE = SAME_PERSON  # from MATCH up to this, a face may still be an enrolled person
JUDGE_MAX_YAW = 40.0  # degrees: the recogniser is trusted only on faces turned less
CHECK_EVERY = 10  # frames between checks of a face (3 a second at 30 fps)
CHANGE_CHECKS = 2  # checks in a row that must disagree before a verdict changes

UNKNOWN, ENROLLED, UNSURE_FACE, GUEST = "unknown", "enrolled", "unsure", "guest"


@dataclass(frozen=True)
class Person:
    """One enrolled person: descriptors [K, 128] of K photos or frames, and their model."""

    name: str
    descriptors: np.ndarray
    model: str = ""  # "" = the filter's own model (settings.model)


def encode(people: list[Person]) -> str:
    """The text settings.people holds: JSON, descriptors as base64 float16 (no pictures)."""
    return json.dumps([{"name": p.name, "model": p.model,
                        "descriptors": base64.b64encode(
                            np.asarray(p.descriptors, np.float16).tobytes()).decode("ascii")}
                       for p in people], separators=(",", ":"))


def decode(text: str) -> list[Person]:
    """The people in settings.people's text; ValueError (one line) when it is not that."""
    if not text.strip():
        return []
    try:
        items = json.loads(text)
        people = []
        for item in items:
            raw = base64.b64decode(item["descriptors"], validate=True)
            vectors = np.frombuffer(raw, np.float16).astype(np.float32)
            if vectors.size == 0 or vectors.size % DESCRIPTOR_SIZE:
                raise ValueError("descriptor size")
            people.append(Person(str(item["name"]), vectors.reshape(-1, DESCRIPTOR_SIZE),
                                 str(item.get("model", ""))))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"enrolled people: not a list of enrolled faces ({exc})") from None
    return people


def read_people(path: str | Path) -> list[Person]:
    """People from a file written by `python -m core enrol`; InputError when unusable."""
    path = Path(path)
    try:
        return decode(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read enrolled people {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None


def with_person(people: list[Person], person: Person) -> list[Person]:
    """`people` with `person` added; someone of the same name gains its descriptors (and
    its model, where one is given)."""
    result, merged = [], False
    for p in people:
        if p.name == person.name:
            p = Person(p.name, np.concatenate([p.descriptors, person.descriptors]),
                       person.model or p.model)
            merged = True
        result.append(p)
    return result if merged else [*result, person]


def descriptor_of_photo(path: str | Path, recogniser: Recogniser) -> np.ndarray:
    """The descriptor of the one face in a photo; InputError when it has none or several
    (whose face would be enrolled?) or cannot be read."""
    image = read_bgr(path, "photo to enrol")
    faces = faces_in_image(image, "bgr")
    if not faces:
        raise InputError(f"no face found in {path}: enrol from a photo that shows your face")
    if len(faces) > 1:
        raise InputError(f"{len(faces)} faces in {path}: enrol from a photo of one person alone")
    return face_descriptor(image, "bgr", faces[0], recogniser)


def face_descriptor(frame: np.ndarray, fmt: str, face: Face, recogniser: Recogniser
                    ) -> np.ndarray:
    """The descriptor [128] of one found face; InputError when it is turned too far to be
    read (the recogniser knows faces that look at the camera)."""
    if abs(face.pose[0]) > JUDGE_MAX_YAW:
        raise InputError(f"the face is turned {abs(face.pose[0]):.0f} degrees: enrol a face "
                         f"that looks at the camera (under {JUDGE_MAX_YAW:.0f} degrees)")
    return recogniser.descriptors(frame, [face.points5], fmt, mirror=True)[0]


def nearest(people: list[Person], descriptor: np.ndarray) -> tuple[int, float]:
    """(index of the enrolled person nearest `descriptor`, distance); (-1, inf) if none."""
    best, best_distance = -1, float("inf")
    for index, person in enumerate(people):
        d = float(np.linalg.norm(person.descriptors - descriptor, axis=1).min())
        if d < best_distance:
            best, best_distance = index, d
    return best, best_distance


@dataclass
class LockState:
    """One tracked face's verdict: who it is and when it was last judged."""

    verdict: str = UNKNOWN  # UNKNOWN, ENROLLED, UNSURE_FACE or GUEST
    person: int = -1  # index into the enrolled people, when ENROLLED
    checked_frame: int | None = None
    tracked_since: int | None = None  # the track this verdict was made on
    afresh: bool = True  # the next reading is taken at once (a new face, or found again)
    against: int = 0  # checks in a row disagreeing with the verdict
    agreed: int = 0  # readings in a row that gave the verdict (a privacy mode trusts GUEST
    # only from CHANGE_CHECKS on)
    distance: float | None = None  # the last check's distance to the nearest person
    seen_frame: int = 0


def reading(people_distance: tuple[int, float]) -> tuple[str, int]:
    """A check's (verdict, person) from the nearest enrolled person and its distance."""
    person, d = people_distance
    if d < MATCH:
        return ENROLLED, person
    return (UNSURE_FACE if d < UNSURE else GUEST), -1


def judge(state: LockState, verdict: str, person: int) -> None:
    """Apply one check's reading: a face new to its track takes it at once, a judged one
    only after CHANGE_CHECKS readings in a row disagree (see the module docstring)."""
    same = (verdict, person) == (state.verdict, state.person)
    if state.afresh or same or state.against + 1 >= CHANGE_CHECKS:
        # the person first: a reader between the two sees the old verdict, or the new pair
        state.person, state.verdict = person, verdict
        state.agreed = state.agreed + 1 if same and not state.afresh else \
            (CHANGE_CHECKS if not same and not state.afresh else 1)
        state.against, state.afresh = 0, False
        return
    state.against += 1


def shown_raw(state: LockState) -> bool:
    """Whether a privacy mode may show this face as it is: a guest by CHANGE_CHECKS
    readings in a row (a verdict changed by disagreeing readings has them)."""
    return state.verdict == GUEST and state.agreed >= CHANGE_CHECKS


def due(state: LockState, face: Face, frame: int) -> bool:
    """Whether the face is judged this frame: facing the camera enough, and not judged on
    this track yet, or CHECK_EVERY frames since."""
    if abs(face.pose[0]) > JUDGE_MAX_YAW:
        return False
    return state.afresh or state.checked_frame is None or \
        frame - state.checked_frame >= CHECK_EVERY


class IdentityLock:
    """Judges tracked faces against the enrolled people (see the module docstring).

    A face not judged on its track yet is judged on the caller's thread (its frame waits:
    the first frame of a face must not swap a guest nor show the streamer); re-checks run
    on a thread of their own, their verdict applying from the frame they are ready on.
    """

    def __init__(self, people: list[Person], device: str = "cpu", threads: int = 0) -> None:
        self.people = people
        self.recogniser = Recogniser(device, threads)
        self._checks = OneAtATime("face-swap-identity")
        self.judge_ms = 0.0  # the recogniser's time of the last check (on whichever thread)

    def check(self, frame: np.ndarray, fmt: str, faces: list[Face],
              states: dict[int, LockState], frame_number: int) -> None:
        """Judge the faces that are due (see `due`), in one batch; `states` by face id
        (created here for faces new to it)."""
        now, later = [], []
        for face in faces:
            state = states.setdefault(face.id, LockState())
            state.seen_frame = frame_number
            since = face.extra.get("tracked_since")
            if state.tracked_since != since:  # found again: the next reading decides
                state.tracked_since, state.afresh, state.against = since, True, 0
                state.agreed = 0  # a guest's verdict is trusted again once read again
            if due(state, face, frame_number):
                (now if state.afresh else later).append((face, state))
        if later and self._checks.busy():
            later = []
        for batch, wait in ((now, True), (later, False)):
            if not batch:
                continue
            for _, state in batch:
                state.checked_frame = frame_number
            chips = self.recogniser.chips(frame, [f.points5 for f, _ in batch], fmt)
            tracks = [(s, s.tracked_since) for _, s in batch]
            self._checks.run(lambda c=chips, t=tracks: self._judge(c, t), wait=wait)

    def _judge(self, chips: np.ndarray, tracks: list[tuple[LockState, int | None]]) -> None:
        """The recogniser's readings of a batch of chips, into their faces' states; a
        reading of a track that has since been replaced (the face found again) is dropped."""
        start = time.perf_counter()
        descriptors = self.recogniser.descriptors_of_chips(chips, mirror=True)
        self.judge_ms = (time.perf_counter() - start) * 1000.0
        for descriptor, (state, since) in zip(descriptors, tracks, strict=True):
            if state.tracked_since != since:
                continue
            found = nearest(self.people, descriptor)
            state.distance = found[1]
            judge(state, *reading(found))

    def wait(self, timeout: float | None = None) -> None:
        """Until the check in flight (if any) has its verdict, or `timeout` s."""
        self._checks.wait(timeout)

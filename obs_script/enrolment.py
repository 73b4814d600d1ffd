"""Enrolling faces from the filter's panel, for "Faces to swap: Only enrolled people".

A photo chosen in "Enrol from a photo", or the face in view now ("Enrol the face in view
now": ENROL_FRAMES of the frames the filter hands the engine, ENROL_SPACING_S apart, so a
blink or a blurred frame does not make the whole enrolment), is turned into face
descriptors on a thread of its own (a second or two: the panel stays usable, the stream is
not touched), then written into the filter's "people" setting on the UI thread, which
rebuilds the engine with it (core.identity; only descriptors are stored, never pictures).
Each enrolment is one person, with the model chosen in "Their model" at that moment.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core import identity
from core.errors import FaceSwapError
from core.recognise import Recogniser
from core.stills import faces_in_image
from obs_script import libobs as L
from obs_script import obsdata, registration

if TYPE_CHECKING:
    from obs_script.swap_filter import FaceSwapFilter

ENROL_FRAMES = 5  # frames of the live view an enrolment reads ...
ENROL_SPACING_S = 0.2  # ... this far apart
ENROL_MIN_FACES = 3  # of which at least this many must show a face looking at the camera


class Enrolment:
    """One filter's enrolment in progress (at most one) and what the last one said."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.message = ""  # the last enrolment's outcome, shown in the panel

    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(self, flt: FaceSwapFilter, read, what: str, model: str) -> bool:
        """Run `read() -> descriptors` on its own thread, then enrol them as one person.
        False (nothing started) while another enrolment runs."""
        if self.busy():
            return False
        self.message = f"Enrolling {what}..."

        def work() -> None:
            try:
                found = read()
                apply_later(flt, found, model, what)
            except FaceSwapError as exc:
                apply_later(flt, None, model, str(exc))
            except Exception as exc:  # reported, never raised into OBS
                apply_later(flt, None, model, f"enrolment failed: {exc}")

        self.thread = threading.Thread(target=work, name="face-swap-enrol", daemon=True)
        self.thread.start()
        return True


PHOTO_KEY, MODEL_KEY = b"enrol_photo", b"enrol_model"  # panel-only keys (not SwapSettings)


def on_update(flt: FaceSwapFilter, data: int) -> None:
    """A photo set in "Enrol from a photo" (the panel, or obs-websocket) starts enrolling
    it; the key is cleared when it is done."""
    path = L.text(L.obs_data_get_string(data, PHOTO_KEY)).strip()
    if path and not flt.enrolment.busy():
        model = L.text(L.obs_data_get_string(data, MODEL_KEY))
        flt.enrolment.start(flt, lambda: from_photo(path), Path(path).name, model)


def enrol_view(flt: FaceSwapFilter) -> bool:
    """Enrol the face in view now (the panel's button, the hotkey); False while busy."""
    data = L.obs_source_get_settings(flt.source)
    try:
        model = L.text(L.obs_data_get_string(data, MODEL_KEY))
    finally:
        L.obs_data_release(data)
    return flt.enrolment.start(flt, lambda: from_view(flt), "the face in view", model)


def from_photo(path: str) -> np.ndarray:
    """[1, 128] descriptor of the one face in a photo (core.identity's errors otherwise)."""
    return identity.descriptor_of_photo(path, Recogniser())[None]


def from_view(flt: FaceSwapFilter) -> np.ndarray:
    """[K, 128] descriptors of the one face in ENROL_FRAMES frames of the live view; an
    error when a frame shows two faces or the frames do not show one person (a co-host
    must never be enrolled as you)."""
    recogniser = Recogniser()
    descriptors, problems = [], []
    for index in range(ENROL_FRAMES):
        if index:
            time.sleep(ENROL_SPACING_S)
        frame = flt.service.last_input()
        if frame is None:
            raise FaceSwapError("no frame from the source yet: show the source, then enrol")
        faces = faces_in_image(frame, "rgba")
        if len(faces) > 1:
            raise FaceSwapError(f"{len(faces)} faces in view: enrol with only the person "
                                "to enrol in view")
        if not faces:
            problems.append("no face")
            continue
        try:
            descriptors.append(identity.face_descriptor(frame, "rgba", faces[0], recogniser))
        except FaceSwapError as exc:
            problems.append(str(exc))
    if len(descriptors) < ENROL_MIN_FACES:
        why = problems[-1] if problems else "no face"
        raise FaceSwapError(f"only {len(descriptors)} of {ENROL_FRAMES} frames showed a face "
                            f"to enrol ({why}): look at the camera and try again")
    found = np.stack(descriptors)
    apart = np.linalg.norm(found[:, None] - found[None], axis=-1).max()
    if apart >= identity.UNSURE:
        raise FaceSwapError("the frames do not show one person: enrol with only the person "
                            "to enrol in view")
    return found


def apply_later(flt: FaceSwapFilter, descriptors: np.ndarray | None, model: str,
                message: str) -> None:
    """On the UI thread: add the person to the filter's settings (or only say why not)."""

    def apply() -> None:
        with registration.live_instances() as filters:
            if flt not in filters:
                return  # the filter was removed meanwhile
            changes: dict[str, str] = {"enrol_photo": ""}
            note = ""
            try:
                people = identity.decode(stored_people(flt))
            except ValueError as exc:  # settings edited by hand: say so, start afresh
                people, note = [], f" ({exc}: replaced)"
            if descriptors is None:
                outcome = f"Not enrolled: {message}"
            else:
                name = f"Person {len(people) + 1}"
                people = identity.with_person(people, identity.Person(name, descriptors,
                                                                       model))
                outcome = f"Enrolled {name} from {message}.{note}"
                changes["people"] = identity.encode(people)
            obsdata.update_source(flt.source, **changes)
            flt.enrolment.message = outcome  # after the settings: the panel lists them
            L.obs_source_update_properties(flt.source)

    registration.queue_ui(apply)


def forget(flt: FaceSwapFilter) -> None:
    """Clear every enrolled person (UI thread)."""
    obsdata.update_source(flt.source, people="")
    flt.enrolment.message = "Forgot the enrolled faces."


def stored_people(flt: FaceSwapFilter) -> str:
    """The "people" setting as the source stores it now. The filter's own copy
    (flt.settings) lags: OBS defers a video filter's update callback to its next video
    tick, so two enrolments in one tick would otherwise lose the first."""
    data = L.obs_source_get_settings(flt.source)
    try:
        return L.text(L.obs_data_get_string(data, b"people"))
    finally:
        L.obs_data_release(data)


def summary(flt: FaceSwapFilter) -> str:
    """The panel's text about who is enrolled (from the stored settings: the filter's copy
    said "Nobody is enrolled yet" under "Enrolled Person 1"), and the last outcome."""
    try:
        people = identity.decode(stored_people(flt))
    except ValueError as exc:
        return str(exc)
    if people:
        listed = "; ".join(f"{p.name} ({len(p.descriptors)} view{'s' * (len(p.descriptors) > 1)}"
                           f", {p.model or 'the filter model'})" for p in people)
        text = f"Enrolled: {listed}."
    else:
        text = ("Nobody is enrolled yet: enrol your face from a photo of you alone, or while "
                "you look at the camera.")
    return f"{text} {flt.enrolment.message}".strip()

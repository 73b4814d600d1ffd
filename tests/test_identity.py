"""The identity lock (core.identity, faces=enrolled): only enrolled people are swapped.

On real photos of real people (../shared/data/identity: 9 people alone, 4 group photos) and
on rendered head turns; judged by the real recogniser (dlib's ResNet as ONNX).
"""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core import SAMPLES_DIR, identity
from core.commands import bench_identity
from core.commands.headturn_render import make_head, render_head
from core.errors import InputError
from core.face import Face
from core.imageio import read_bgr, read_rgb
from core.pipeline import Pipeline
from core.recognise import Recogniser
from core.settings import SwapSettings
from core.stills import faces_in_image
from tests.doubles import write_doubles

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
IDENTITY = SHARED / "identity"
IMAGES = IDENTITY / "images"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def recogniser() -> Recogniser:
    return Recogniser()


def _enrol(recogniser: Recogniser, *names: str, person: str = "me", model: str = ""
           ) -> identity.Person:
    descriptors = np.stack([identity.descriptor_of_photo(IMAGES / n, recogniser) for n in names])
    return identity.Person(person, descriptors, model)


def _region(face: Face) -> tuple[slice, slice]:
    x0, y0, x1, y1 = face.box.astype(int)
    return slice(max(y0, 0), y1), slice(max(x0, 0), x1)


def test_people_are_kept_as_descriptors_only(recogniser):
    me = _enrol(recogniser, "angelina_jolie_01.jpg", "angelina_jolie_02.jpg")
    text = identity.encode([me, identity.Person("co-host", me.descriptors[:1], "persona:default")])
    assert len(text) < 2000  # 3 vectors of 128 half floats: no picture fits in that
    back = identity.decode(text)
    assert [(p.name, p.model, len(p.descriptors)) for p in back] == \
        [("me", "", 2), ("co-host", "persona:default", 1)]
    assert np.abs(back[0].descriptors - me.descriptors).max() < 1e-3
    merged = identity.with_person(back, identity.Person("me", me.descriptors[:1]))
    assert [len(p.descriptors) for p in merged] == [3, 1]
    assert identity.decode("") == []
    for bad in ('not json', '[{"name": "me"}]', '[{"name": "x", "descriptors": "AAAA"}]'):
        with pytest.raises(ValueError, match="^enrolled people: not a list of enrolled faces"):
            identity.decode(bad)


def test_enrolling_needs_one_face_that_looks_at_the_camera(recogniser, tmp_path):
    with pytest.raises(InputError, match="2 faces in .*group_01.jpg: enrol from a photo of one"):
        identity.descriptor_of_photo(IMAGES / "group_01.jpg", recogniser)
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(InputError, match="no face found in .*wall.png"):
        identity.descriptor_of_photo(blank, recogniser)
    with pytest.raises(InputError, match="cannot read photo to enrol"):
        identity.descriptor_of_photo(tmp_path / "missing.jpg", recogniser)
    turned = render_head(make_head(read_rgb(SAMPLES_DIR / "astronaut.png")), 60.0, 0.0)
    face = faces_in_image(turned.frame, "rgb")[0]
    with pytest.raises(InputError, match="turned .* degrees: enrol a face that looks at"):
        identity.face_descriptor(turned.frame, "rgb", face, recogniser)


def test_only_the_enrolled_person_of_a_group_photo_is_swapped(recogniser):
    """Angelina Jolie enrolled from two single photos; group_01: she and Brad Pitt."""
    people = identity.encode([_enrol(recogniser, "angelina_jolie_01.jpg",
                                     "angelina_jolie_02.jpg")])
    photo = read_bgr(IMAGES / "group_01.jpg")
    pipeline = Pipeline(SwapSettings(faces="enrolled", people=people, label=False))
    out = pipeline.process_still(photo, "bgr")
    verdicts = {f.id: pipeline.identities[f.id].verdict for f in pipeline.tracked}
    assert sorted(verdicts.values()) == [identity.ENROLLED, identity.GUEST]
    for face in pipeline.tracked:
        region = _region(face)
        if verdicts[face.id] == identity.ENROLLED:
            assert pipeline.shown[face.id] == "swap"
            assert np.abs(out[region].astype(int) - photo[region]).mean() > 10.0
        else:  # the guest is not touched at all
            assert face.id not in pipeline.shown
            assert np.array_equal(out[region], photo[region])
    assert pipeline.guests and pipeline.timings["identity"] > 0.0
    # guests="blur": the guest's face is blurred, hers still swapped
    pipeline = Pipeline(SwapSettings(faces="enrolled", people=people, label=False, guests="blur"))
    blurred = pipeline.process_still(photo, "bgr")
    guest = next(f for f in pipeline.tracked if verdicts[f.id] == identity.GUEST)
    region = _region(guest)
    assert np.abs(blurred[region].astype(int) - photo[region]).mean() > 5.0
    assert len(pipeline.faces) == 1


def test_guests_are_never_swapped_on_the_identity_set():
    """Each of the 9 people enrolled from 2 single photos, every other photo swapped:
    measured 32 of 32 of their own faces swapped (100 %, goal 95), 0 of 454 guest faces,
    none of their faces shown unveiled in privacy mode (dlib's descriptors of a chip and its
    mirror image; with the chip alone: 93.8 %, 2 missed)."""
    report = bench_identity.run_identity(SwapSettings(), IDENTITY)
    total = report["total"]
    assert total["guests"] >= 400 and total["own"] >= 30
    assert total["guests_swapped"] == 0
    assert report["own_swapped_pct"] >= 95.0
    assert total["own_shown_private"] == 0


def test_a_verified_face_stays_swapped_through_a_turn_and_a_guest_never_is():
    """A rendered head turning 0 -> 80 -> 0 degrees: the enrolled astronaut is swapped in
    every frame (the recogniser cannot read her past 40 degrees; the track keeps its
    verdict); Grace Hopper, not enrolled, turning the same way, in none."""
    recogniser = Recogniser()
    angles = [*range(0, 81, 5), *range(80, -1, -5)]
    heads = {name: make_head(read_rgb(SAMPLES_DIR / name)) for name in
             ("astronaut.png", "grace_hopper.jpg")}
    frontal = render_head(heads["astronaut.png"], 0.0, 0.0).frame
    face = faces_in_image(frontal, "rgb")[0]
    people = identity.encode([identity.Person(
        "me", identity.face_descriptor(frontal, "rgb", face, recogniser)[None])])
    for name, enrolled in (("astronaut.png", True), ("grace_hopper.jpg", False)):
        pipeline = Pipeline(SwapSettings(faces="enrolled", people=people, label=False,
                                         fade_ms=0))
        swapped = found = 0
        for index, yaw in enumerate(angles):
            pipeline.process(render_head(heads[name], float(yaw), 0.0).frame, "rgb",
                             timestamp=index / 30.0)
            pipeline.identity_lock.wait()
            found += bool(pipeline.tracked)
            swapped += bool(pipeline.faces)
        pipeline.close()
        assert found >= len(angles) - 2, name
        assert swapped == (found if enrolled else 0), name


def test_a_face_first_seen_turned_is_veiled_in_privacy_mode_until_it_can_be_judged():
    """The recogniser cannot tell who a face turned 60 degrees is: a privacy mode veils it
    (it may be the streamer), the original mode leaves it as it is (it may be a guest);
    once it turns to the camera it is judged and swapped. (The identity guard is off: the
    persona does not hide the astronaut from the recogniser even frontally, test_guard.)"""
    recogniser = Recogniser()
    head = make_head(read_rgb(SAMPLES_DIR / "astronaut.png"))
    frontal = render_head(head, 0.0, 0.0).frame
    descriptor = identity.face_descriptor(frontal, "rgb", faces_in_image(frontal, "rgb")[0],
                                          recogniser)
    people = identity.encode([identity.Person("me", descriptor[None])])
    turned = render_head(head, 60.0, 0.0).frame
    for mode, veiled in (("pixelate", True), ("original", False)):
        pipeline = Pipeline(SwapSettings(faces="enrolled", people=people, label=False,
                                         on_lost=mode, fade_ms=0, identity_guard=False))
        out = pipeline.process(turned, "rgb", timestamp=0.0)
        (face,) = pipeline.tracked
        assert pipeline.identities[face.id].verdict == identity.UNKNOWN
        assert pipeline.faces == []
        changed = not np.array_equal(out[_region(face)], turned[_region(face)])
        assert changed == veiled, mode
        for index, yaw in enumerate(range(55, -1, -5), start=1):
            pipeline.process(render_head(head, float(yaw), 0.0).frame, "rgb",
                             timestamp=index / 30.0)
        assert pipeline.identities[face.id].verdict == identity.ENROLLED
        assert len(pipeline.faces) == 1
        pipeline.close()


def test_a_verdict_changes_only_after_checks_in_a_row_disagree():
    state = identity.LockState()
    identity.judge(state, identity.ENROLLED, 0)  # a new face takes its first reading
    assert (state.verdict, state.person) == (identity.ENROLLED, 0)
    identity.judge(state, identity.GUEST, -1)  # one blurred frame does not unswap
    assert state.verdict == identity.ENROLLED
    identity.judge(state, identity.ENROLLED, 0)
    identity.judge(state, identity.GUEST, -1)
    assert state.verdict == identity.ENROLLED
    identity.judge(state, identity.GUEST, -1)
    assert state.verdict == identity.GUEST
    assert identity.shown_raw(state)  # a guest by 2 readings: a privacy mode shows it
    # found again (a hand waved over the face): the first reading decides at once, but a
    # privacy mode shows a guest only from the second reading in a row
    state.afresh, state.agreed = True, 0
    identity.judge(state, identity.GUEST, -1)
    assert state.verdict == identity.GUEST and not identity.shown_raw(state)
    identity.judge(state, identity.GUEST, -1)
    assert identity.shown_raw(state)
    assert identity.reading((0, identity.MATCH - 0.01)) == (identity.ENROLLED, 0)
    assert identity.reading((0, identity.MATCH + 0.01)) == (identity.UNSURE_FACE, -1)
    assert identity.reading((0, identity.UNSURE + 0.01)) == (identity.GUEST, -1)


def test_each_enrolled_person_gets_their_own_model(recogniser, tmp_path):
    """Angelina Jolie with the filter's persona, Mel Gibson with a .dfm of his own."""
    dfm = write_doubles(tmp_path)["dfm"]
    people = identity.encode([
        _enrol(recogniser, "angelina_jolie_01.jpg", "angelina_jolie_02.jpg"),
        _enrol(recogniser, "mel_gibson_01.jpg", "mel_gibson_02.jpg", person="Mel",
               model=str(dfm))])
    pipeline = Pipeline(SwapSettings(faces="enrolled", people=people, label=False))
    assert sorted(pipeline.swappers) == sorted(["persona:default", str(dfm)])
    kinds = {}
    for photo in ("group_01.jpg", "group_03.jpg"):
        pipeline.process_still(read_bgr(IMAGES / photo), "bgr")
        (face,) = pipeline.faces
        kinds[photo] = pipeline.swapper_for(face.id).name
    assert kinds["group_01.jpg"] == "persona:default"
    assert kinds["group_03.jpg"] != "persona:default"



def test_a_reading_of_a_replaced_track_is_dropped(recogniser):
    """A re-check finishing after its face was lost and found again (maybe someone else at
    the same place) must not decide for the new track."""
    image = read_bgr(IMAGES / "angelina_jolie_01.jpg")
    face = faces_in_image(image, "bgr")[0]
    lock = identity.IdentityLock([_enrol(recogniser, "angelina_jolie_02.jpg")])
    chips = lock.recogniser.chips(image, [face.points5], "bgr")
    state = identity.LockState(tracked_since=7)
    lock._judge(chips, [(state, 3)])  # read on track 3, the face is on track 7 now
    assert state.verdict == identity.UNKNOWN and state.afresh
    lock._judge(chips, [(state, 7)])
    assert state.verdict == identity.ENROLLED


def test_a_person_whose_model_cannot_be_loaded_gets_the_filter_model(recogniser):
    people = identity.encode([_enrol(recogniser, "mel_gibson_01.jpg", person="Mel",
                                     model="/nonexistent/mel.dfm")])
    pipeline = Pipeline(SwapSettings(faces="enrolled", people=people, label=False))
    assert "Mel's model" in pipeline.warning and "mel.dfm" in pipeline.warning
    pipeline.process_still(read_bgr(IMAGES / "group_03.jpg"), "bgr")
    (face,) = pipeline.faces
    assert pipeline.swapper_for(face.id) is pipeline.swapper


def test_with_nobody_enrolled_nobody_is_swapped():
    """faces=enrolled before anyone is enrolled (an OBS filter set so, about to enrol the
    face in view): nothing is swapped, a privacy mode pixelates every face, and the
    pipeline says why; the CLI refuses it."""
    photo = read_bgr(IMAGES / "group_01.jpg")
    for mode, veiled in (("original", False), ("pixelate", True)):
        pipeline = Pipeline(SwapSettings(faces="enrolled", label=False, on_lost=mode))
        out = pipeline.process_still(photo, "bgr")
        assert pipeline.faces == [] and len(pipeline.guests) == 2
        assert "nobody is enrolled yet" in pipeline.warning
        for face in pipeline.tracked:
            assert np.array_equal(out[_region(face)], photo[_region(face)]) != veiled, mode
    done = subprocess.run([sys.executable, "-m", "core", "swap", str(IMAGES / "group_01.jpg"),
                           "-o", "/tmp/unused.png", "--set", "faces=enrolled"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.startswith("error: faces=enrolled: nobody is enrolled")


def test_cli_enrols_and_swaps_only_the_enrolled(tmp_path):
    people = tmp_path / "people.json"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)

    done = cli("enrol", str(IMAGES / "mel_gibson_01.jpg"), str(IMAGES / "mel_gibson_02.jpg"),
               "--name", "me", "-o", str(people))
    assert done.returncode == 0, done.stderr
    assert "enrolled me from 2 photo(s)" in done.stdout
    assert b"jpg" not in people.read_bytes() and len(people.read_bytes()) < 2000
    out = tmp_path / "out.png"
    done = cli("swap", str(IMAGES / "group_03.jpg"), "-o", str(out), "--people", str(people))
    assert done.returncode == 0, done.stderr
    # Mel Gibson, a man beside him, and a blurred man behind his shoulder (found by the short
    # range since stills ask both detectors: core.detect kind "both")
    assert "swapped 1 face(s)" in done.stdout and "2 face(s) of people not enrolled" in done.stdout
    done = cli("swap", str(IMAGES / "group_03.jpg"), "-o", str(out), "--only",
               str(IMAGES / "group_01.jpg"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: 2 faces in {IMAGES / 'group_01.jpg'}: enrol from a photo of one person alone"]

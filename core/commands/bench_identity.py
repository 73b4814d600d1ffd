"""`python -m core bench --identity DIR`: the identity lock (faces=enrolled) on real photos.

DIR is laid out like ../shared/data/identity: `identities.json` names, per photo, the people
in it and a rough box per face. Every face of every photo is found once (the still path,
core.stills.faces_in_image) and named by its box. Then each person with enough single photos
is enrolled from their first ENROL_PHOTOS singles (core.identity) and every other photo -
the other singles of all nine people and the group photos - goes through the pipeline with
faces=enrolled: a face of the enrolled person should be swapped, any other face never.
In a privacy mode (on_lost=pixelate) the enrolled person should never be shown unswapped
and unveiled. A real clip (`--input VIDEO`) adds the live path: its person enrolled from
its first frame, then every frame tracked, judged and swapped - the share of frames with
the face swapped and the identity stage's cost per frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import identity
from core.detect import iou
from core.errors import InputError
from core.face import Face
from core.imageio import read_bgr, read_video_frames
from core.pipeline import Pipeline
from core.recognise import Recogniser
from core.settings import SwapSettings
from core.stills import faces_in_image

ENROL_PHOTOS = 2  # singles each person is enrolled from
NAMED_IOU = 0.3  # a found face is the labelled face its box overlaps this much


@dataclass
class Photo:
    name: str
    kind: str  # "single" or "group"
    image: np.ndarray  # BGR
    faces: list[Face]
    who: list[str]  # per found face: the labelled person, "" when not named


def read_set(folder: Path) -> list[Photo]:
    """Every photo of an identity set with its faces found and named."""
    index = folder / "identities.json"
    if not index.is_file():
        raise InputError(f"{folder} holds no identities.json (see ../shared/data/identity)")
    photos = []
    for name, info in sorted(json.loads(index.read_text(encoding="utf-8"))["images"].items()):
        image = read_bgr(folder / name, "identity photo")
        faces = faces_in_image(image, "bgr")
        who = []
        for face in faces:
            named = [f.get("name", "") for f in info["faces"]
                     if iou(np.asarray(f["box"], np.float32), face.box[None])[0] > NAMED_IOU]
            who.append(named[0] if named and named[0] != "unidentified" else "")
        photos.append(Photo(name, info["kind"], image, faces, who))
    return photos


def _swapped(pipeline: Pipeline, photo: Photo) -> list[str]:
    """Per face of the photo: what the pipeline showed ("swap", "veiled" or "as is")."""
    pipeline.reset()
    swapping = pipeline.begin(photo.image, "bgr", timestamp=0.0, faces=photo.faces)
    veiled = {face.id for face, _ in swapping.veiled}
    pipeline.finish(swapping)
    return ["swap" if pipeline.shown.get(f.id) == "swap" else
            "veiled" if f.id in veiled else "as is" for f in photo.faces]


def run_identity(settings: SwapSettings, folder: Path, video: Path | None = None
                 ) -> dict[str, Any]:
    """The lock's figures on an identity set (see the module docstring), as a dict."""
    photos = read_set(folder)
    recogniser = Recogniser(settings.device, settings.threads)
    singles: dict[str, list[Photo]] = {}
    for photo in photos:
        if photo.kind == "single" and len(photo.faces) == 1 and photo.who[0]:
            singles.setdefault(photo.who[0], []).append(photo)
    rows, check_ms = [], []
    for person, own in sorted(singles.items()):
        if len(own) <= ENROL_PHOTOS:
            continue
        enrolled_from = own[:ENROL_PHOTOS]
        descriptors = np.stack([identity.face_descriptor(p.image, "bgr", p.faces[0], recogniser)
                                for p in enrolled_from])
        people = identity.encode([identity.Person(person, descriptors)])
        row = {"person": person, "enrolled_from": [p.name for p in enrolled_from],
               "own": 0, "own_swapped": 0, "guests": 0, "guests_swapped": 0,
               "own_shown_private": 0, "guests_veiled_private": 0}
        for mode in ("original", "pixelate"):
            pipeline = Pipeline(settings.with_changes(faces="enrolled", people=people,
                                                      on_lost=mode, label=False))
            for photo in photos:
                if photo in enrolled_from:
                    continue
                for who, shown in zip(photo.who, _swapped(pipeline, photo), strict=True):
                    own = who == person
                    if mode == "original":
                        row["own" if own else "guests"] += 1
                        row["own_swapped" if own else "guests_swapped"] += shown == "swap"
                    elif own:
                        row["own_shown_private"] += shown == "as is"
                    else:
                        row["guests_veiled_private"] += shown == "veiled"
                check_ms.append(pipeline.identity_lock.judge_ms)
            pipeline.close()
        rows.append(row)
    total = {key: sum(r[key] for r in rows) for key in rows[0] if key not in
             ("person", "enrolled_from")} if rows else {}
    report = {"set": str(folder), "match": identity.MATCH, "enrol_photos": ENROL_PHOTOS,
              "people": rows, "total": total,
              "own_swapped_pct": round(100.0 * total["own_swapped"] / max(total["own"], 1), 1)
              if total else None,
              "check_ms_p50": round(float(np.median(check_ms)), 2) if check_ms else None,
              "check_every_frames": identity.CHECK_EVERY}
    if video is not None:
        report["clip"] = run_clip(settings, video, recogniser)
    return report


def run_clip(settings: SwapSettings, video: Path, recogniser: Recogniser) -> dict[str, Any]:
    """The live path on a real clip: its person enrolled from its first frame with a face,
    then every frame tracked and swapped; % of frames with a face found that were swapped,
    and the identity stage's ms per frame."""
    frames = read_video_frames(video)
    if not frames:
        raise InputError(f"cannot read any frame of {video}")
    descriptor = None
    for frame in frames:
        faces = faces_in_image(frame, "bgr")
        if faces:
            descriptor = identity.face_descriptor(frame, "bgr", faces[0], recogniser)
            break
    if descriptor is None:
        raise InputError(f"no face found in {video}")
    people = identity.encode([identity.Person("clip", descriptor[None])])
    pipeline = Pipeline(settings.with_changes(faces="enrolled", people=people, label=False))
    found = swapped = 0
    stage_ms = []
    for index, frame in enumerate(frames):
        pipeline.process(frame, "bgr", timestamp=index / 30.0)
        stage_ms.append(pipeline.timings["identity"])
        found += bool(pipeline.tracked)
        swapped += any(view == "swap" for view in pipeline.shown.values())
    pipeline.close()
    return {"clip": str(video), "frames": len(frames), "found": found, "swapped": swapped,
            "swapped_pct": round(100.0 * swapped / max(found, 1), 1),
            "identity_ms_mean": round(float(np.mean(stage_ms)), 2),
            "identity_ms_p50": round(float(np.median(stage_ms)), 2),
            "identity_ms_max": round(float(np.max(stage_ms)), 1)}


def print_report(report: dict[str, Any]) -> None:
    """The report as a table a person reads."""
    print(f"identity lock on {report['set']}: enrolled from {report['enrol_photos']} photos "
          f"each, match under {report['match']}")
    print(f"{'person':<20} {'own':>4} {'swapped':>8} {'guests':>7} {'g swapped':>10} "
          f"{'private: own shown':>19} {'guests veiled':>14}")
    for row in [*report["people"], {"person": "total", **report["total"]}]:
        print(f"{row['person']:<20} {row['own']:>4} {row['own_swapped']:>8} {row['guests']:>7} "
              f"{row['guests_swapped']:>10} {row['own_shown_private']:>19} "
              f"{row['guests_veiled_private']:>14}")
    every = report["check_every_frames"]
    print(f"enrolled faces swapped: {report['own_swapped_pct']} %; one check (recogniser, "
          f"p50) {report['check_ms_p50']} ms, every {every} frames per face: "
          f"{report['check_ms_p50'] / every:.2f} ms of CPU per face per frame, off the "
          f"frame's thread after a face's first check")
    clip = report.get("clip")
    if clip:
        print(f"clip {clip['clip']}: face found in {clip['found']}/{clip['frames']} frames, "
              f"swapped in {clip['swapped']} ({clip['swapped_pct']} %); identity stage "
              f"{clip['identity_ms_mean']} ms per frame mean, p50 {clip['identity_ms_p50']}, "
              f"max {clip['identity_ms_max']}")

"""`python -m core bench --occlusion DIR`: what covers the face stays in front of the swap.

DIR is laid out like ../shared/data/occlusion: `labels.json` gives per photo its face box and
its occluders (type, and for most a hand-drawn polygon). Each photo is swapped twice through
the still path, with `keep_hands` off and on, and judged by pixels: a pixel the swap drew
over is one the output changed (more than CHANGED levels).
- occluder drawn over: the share of the labelled occluders' pixels inside the face box that
  the swap changed (only occluders with a polygon: a box holds skin too), per occluder type;
  for hands also inside their outlines shrunk by the labels' own tolerance (LABEL_PX: the
  outlines are drawn by eye, about +-10 px), which leaves out the outline's doubt;
- visible face still swapped: of the face-box pixels the swap changes without hands kept,
  outside every occluder, the share still changed with them kept;
- false cut-outs: on photos with no hand, the share of the swap's pixels that keeping hands
  took away.
With a video (`--input`, e.g. the set's singer clip) the live path's "hands" stage is timed
per frame, with a hand followed and without (the frame's wait for its hands: they are
followed on a thread of their own while its faces are tracked; beside it the landmark runs'
own time, on that thread but for a hand's first frame after a search), and on the clip's
first frame with a hand held still for HELD_FRAMES frames with camera noise (NOISE levels):
a hand that does not move keeps its landmarks for a frame or two (core.hands.still). A
contact sheet shows input | hands off | on.

Objects without a hand are kept on the live path only (core.objects learns how a face looks
while nothing covers it), and the set has no clip where one comes in front of a face first
seen clear. So with `--clean-clip CLIP` (a real clip whose face nothing covers, e.g.
../shared/data/real_turns/videos/talking_turns.mp4) the set's outlined occluders other
than hands (the headset mic, the bottle, the phones, the flute, the food) are cut out and
laid over the clip's face after CLEAN_FRAMES frames, each for OBJECT_FRAMES frames (then
from the first again), placed by their photo's
labelled eyes and mouth onto the tracked face's; the clip runs with `keep_objects` off and
on, and uncovered: object pixels inside the face drawn over, false cut-outs on the
uncovered clip (the swap's pixels keeping objects took away), the "objects" stage's cost,
and a sheet (input | objects off | on).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.errors import InputError
from core.face import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, FACE_OVAL, LIPS_OUTER, Face
from core.imageio import read_bgr, read_video_frames, write_sheet
from core.pipeline import Pipeline
from core.settings import SwapSettings

CHANGED = 12  # colour levels: a pixel differing more than this was drawn over
LABEL_PX = 10  # the hand-drawn outlines' tolerance (../shared/data/occlusion/README.md)
_SHRINK = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * LABEL_PX + 1, 2 * LABEL_PX + 1))
SHEET_TILE = 160
HELD_FRAMES = 60
NOISE = 2.0  # levels of camera noise on the held frame
CLEAN_FRAMES = 18  # --clean-clip: frames of the uncovered face before the first object
OBJECT_FRAMES = 4  # ... and frames each object is shown


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > CHANGED


def _records(folder: Path) -> list[dict[str, Any]]:
    index = folder / "labels.json"
    if not index.is_file():
        raise InputError(f"{folder} holds no labels.json (see ../shared/data/occlusion)")
    return json.loads(index.read_text(encoding="utf-8"))["images"]


def run_occlusion(settings: SwapSettings, folder: Path, sheet: Path,
                  video: Path | None = None, clean: Path | None = None) -> dict[str, Any]:
    """The figures of the module docstring, as a dict."""
    records = _records(folder)
    off = Pipeline(settings.with_changes(keep_hands=False, label=False))
    on = Pipeline(settings.with_changes(keep_hands=True, label=False))
    # occluder type -> [pixels drawn over with hands kept, without, pixels]
    drawn: dict[str, list[int]] = {}
    visible = [0, 0]  # [still swapped, swapped without hands kept]
    hand_core = [0, 0]  # [drawn over, pixels] inside the hand outlines shrunk by LABEL_PX
    false_cut = [0, 0]  # [taken away, swapped] on photos with no hand
    tiles = []
    for record in records:
        image = read_bgr(folder / record["file"], "occlusion photo")
        plain, kept = off.process_still(image, "bgr"), on.process_still(image, "bgr")
        x0, y0, x1, y1 = (int(v) for v in record["face_box"])
        face = np.zeros(image.shape[:2], bool)
        face[max(y0, 0):y1, max(x0, 0):x1] = True
        swapped, still = _changed(plain, image) & face, _changed(kept, image) & face
        covered = np.zeros(image.shape[:2], np.uint8)
        for occluder in record["occluders"]:
            if occluder.get("polygon"):
                shape = np.zeros_like(covered)
                cv2.fillPoly(shape, [np.asarray(occluder["polygon"], np.int32)], 1)
                inside = shape.astype(bool) & face
                counts = drawn.setdefault(occluder["type"], [0, 0, 0])
                counts[0] += int((still & inside).sum())
                counts[1] += int((swapped & inside).sum())
                counts[2] += int(inside.sum())
                if occluder["type"] == "hand":
                    interior = cv2.erode(shape, _SHRINK).astype(bool) & face
                    hand_core[0] += int((still & interior).sum())
                    hand_core[1] += int(interior.sum())
                covered |= shape
            elif occluder.get("box"):
                bx0, by0, bx1, by1 = (int(v) for v in occluder["box"])
                covered[max(by0, 0):by1, max(bx0, 0):bx1] = 1
        clear = swapped & ~covered.astype(bool)
        visible[0] += int((still & clear).sum())
        visible[1] += int(clear.sum())
        if not record["has_hand"]:
            false_cut[0] += int((swapped & ~still).sum())
            false_cut[1] += int(swapped.sum())
        if record["has_hand"] and len(tiles) < 24:
            tiles.append(np.hstack([cv2.resize(x, (SHEET_TILE, SHEET_TILE))
                                    for x in (image, plain, kept)]))
    hands = drawn.get("hand", [0, 0, 0])
    every = [sum(c[i] for c in drawn.values()) for i in range(3)]

    report = {
        "set": str(folder), "photos": len(records),
        "hand_drawn_over_pct": _pct(hands[0], hands[2]),
        "hand_drawn_over_off_pct": _pct(hands[1], hands[2]),
        "hand_core_drawn_over_pct": _pct(*hand_core),
        "any_drawn_over_pct": _pct(every[0], every[2]),
        "any_drawn_over_off_pct": _pct(every[1], every[2]),
        "by_type": {kind: [_pct(c[0], c[2]), _pct(c[1], c[2])] for kind, c in drawn.items()},
        "visible_swapped_pct": round(100.0 * visible[0] / max(visible[1], 1), 1),
        "false_cut_pct": round(100.0 * false_cut[0] / max(false_cut[1], 1), 2),
    }
    if tiles:
        report["sheet"] = _write_tiles(sheet, tiles, 4)
    if video is not None:
        report["clip"] = run_clip(settings, video)
    if clean is not None:
        report["objects"] = run_objects(settings, folder, clean,
                                        sheet.with_name(sheet.stem + "_objects.png"))
    off.close()
    on.close()
    return report


def run_clip(settings: SwapSettings, video: Path) -> dict[str, Any]:
    """The "hands" stage per frame of a clip on the live path, with and without a hand."""
    frames = read_video_frames(video)
    if not frames:
        raise InputError(f"cannot read any frame of {video}")
    pipeline = Pipeline(settings.with_changes(keep_hands=True, label=False))
    with_hand, without, follow = [], [], []
    first_hand = None
    for index, frame in enumerate(frames):
        pipeline.process(frame, "bgr", timestamp=index / 30.0)
        (with_hand if pipeline.hands else without).append(pipeline.timings["hands"])
        if pipeline.hands:
            follow.append(pipeline.hand_tracker.follow_ms)
            if first_hand is None:
                first_hand = frame
    held = []
    if first_hand is not None:
        pipeline.reset()
        rng = np.random.default_rng(0)
        for index in range(HELD_FRAMES):
            noisy = first_hand + rng.normal(0.0, NOISE, first_hand.shape).round()
            pipeline.process(np.clip(noisy, 0, 255).astype(np.uint8), "bgr",
                             timestamp=index / 30.0)
            if pipeline.hands:
                held.append(pipeline.timings["hands"])
    pipeline.close()

    def p50(values: list[float]) -> float | None:
        return round(float(np.median(values)), 2) if values else None

    return {"clip": str(video), "frames": len(frames), "with_hand": len(with_hand),
            "hands_ms_p50_with_hand": p50(with_hand), "hands_ms_p50_without": p50(without),
            "follow_ms_p50_with_hand": p50(follow),
            "hands_ms_p50_held": p50(held), "held_frames_with_hand": len(held),
            "hands_ms_mean_held": round(float(np.mean(held)), 2) if held else None,
            "hands_ms_mean": round(float(np.mean(with_hand + without)), 2)}


def cutouts(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(type, photo, outline mask, the photo's eyes and mouth (3, 2)) of every outlined
    occluder but a hand (one held in a hand comes with what its outline holds of it)."""
    found = []
    for record in _records(folder):
        outlined = [o for o in record["occluders"] if o["type"] != "hand" and o.get("polygon")]
        if not outlined or "landmarks68_fitted" not in record:
            continue
        image = read_bgr(folder / record["file"], "occlusion photo")
        points = np.asarray(record["landmarks68_fitted"], np.float32)
        anchors = np.stack([points[36:42].mean(0), points[42:48].mean(0), points[48:60].mean(0)])
        for occluder in outlined:
            mask = np.zeros(image.shape[:2], np.uint8)
            cv2.fillPoly(mask, [np.asarray(occluder["polygon"], np.int32)], 255)
            found.append((occluder["type"], image, mask, anchors))
    return found


def _anchors(face: Face) -> np.ndarray:
    points = face.landmarks[:, :2]
    return np.stack([points[EYE_IMAGE_LEFT].mean(0), points[EYE_IMAGE_RIGHT].mean(0),
                     points[LIPS_OUTER].mean(0)]).astype(np.float32)


def lay_over(frame: np.ndarray, face: Face, cutout: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The frame with the cut-out object placed on the face (a similarity transform from its
    photo's eyes and mouth to the face's), and the object's pixels."""
    _, image, mask, anchors = cutout
    matrix = cv2.estimateAffinePartial2D(anchors, _anchors(face))[0]
    size = (frame.shape[1], frame.shape[0])
    where = cv2.warpAffine(mask, matrix, size) > 127
    out = frame.copy()
    out[where] = cv2.warpAffine(image, matrix, size)[where]
    return out, where


def run_objects(settings: SwapSettings, folder: Path, clip: Path, sheet: Path
                ) -> dict[str, Any]:
    """The --clean-clip figures of the module docstring, as a dict."""
    frames = read_video_frames(clip)
    if not frames:
        raise InputError(f"cannot read any frame of {clip}")
    objects = cutouts(folder)
    base = settings.with_changes(label=False)
    runs = {name: Pipeline(base.with_changes(keep_objects=name.endswith("on")))
            for name in ("clean_off", "clean_on", "over_off", "over_on")}
    drawn: dict[str, list[int]] = {}  # type -> [drawn over kept, not kept, pixels]
    cut = [0, 0]  # [taken away, swapped] on the uncovered clip
    cost, tiles = [], []
    for index, frame in enumerate(frames):
        now = index / 30.0
        plain = runs["clean_off"].process(frame, "bgr", timestamp=now)
        kept = runs["clean_on"].process(frame, "bgr", timestamp=now)
        cost.append(runs["clean_on"].timings["objects"])
        swapped = _changed(plain, frame)
        cut[0] += int((swapped & ~_changed(kept, frame)).sum())
        cut[1] += int(swapped.sum())
        which = (index - CLEAN_FRAMES) // OBJECT_FRAMES % max(len(objects), 1)
        face = runs["clean_off"].faces[0] if runs["clean_off"].faces else None
        shown = face is not None and index >= CLEAN_FRAMES and objects
        over, where = lay_over(frame, face, objects[which]) if shown else (frame, None)
        outs = [runs[name].process(over, "bgr", timestamp=now) for name in ("over_off", "over_on")]
        if where is None:
            continue
        oval = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillPoly(oval, [np.round(face.landmarks[FACE_OVAL, :2]).astype(np.int32)], 1)
        inside = where & oval.astype(bool)
        counts = drawn.setdefault(objects[which][0], [0, 0, 0])
        counts[0] += int((_changed(outs[1], over) & inside).sum())
        counts[1] += int((_changed(outs[0], over) & inside).sum())
        counts[2] += int(inside.sum())
        if (index - CLEAN_FRAMES) % OBJECT_FRAMES == OBJECT_FRAMES // 2 and len(tiles) < 8:
            x0, y0, x1, y1 = face.box.astype(int)
            pad = (x1 - x0) // 3
            region = (slice(max(y0 - pad, 0), y1 + pad), slice(max(x0 - pad, 0), x1 + pad))
            tiles.append(np.hstack([cv2.resize(x[region], (SHEET_TILE, SHEET_TILE))
                                    for x in (over, *outs)]))
    for run in runs.values():
        run.close()
    every = [sum(c[i] for c in drawn.values()) for i in range(3)]
    report = {
        "clip": str(clip), "frames": len(frames), "objects": len(objects),
        "drawn_over_pct": _pct(every[0], every[2]),
        "drawn_over_off_pct": _pct(every[1], every[2]),
        "by_type": {kind: [_pct(c[0], c[2]), _pct(c[1], c[2])] for kind, c in drawn.items()},
        "false_cut_pct": round(100.0 * cut[0] / max(cut[1], 1), 2),
        "objects_ms_p50": round(float(np.median(cost)), 2),
        "objects_ms_p95": round(float(np.percentile(cost, 95)), 2),
    }
    if tiles:
        report["sheet"] = _write_tiles(sheet, tiles, 2)
    return report


def _write_tiles(sheet: Path, tiles: list[np.ndarray], per_row: int) -> str:
    """The contact sheet of BGR tiles, `per_row` a row (a last row left short is dropped)."""
    rows = [np.hstack(tiles[i:i + per_row])
            for i in range(0, len(tiles) - len(tiles) % per_row, per_row)]
    return write_sheet(sheet, cv2.cvtColor(np.vstack(rows), cv2.COLOR_BGR2RGB))


def _pct(count: int, total: int) -> float:
    return round(100.0 * count / max(total, 1), 1)


def print_report(report: dict[str, Any]) -> None:
    print(f"occlusion on {report['set']} ({report['photos']} photos), keep_hands on:")
    print(f"  hand pixels inside the face drawn over: {report['hand_drawn_over_pct']} % "
          f"(goal <= 5; hands not kept: {report['hand_drawn_over_off_pct']} %; inside the "
          f"outlines less their {LABEL_PX} px tolerance: {report['hand_core_drawn_over_pct']} %); "
          "any occluder: "
          f"{report['any_drawn_over_pct']} % (goal <= 8; {report['any_drawn_over_off_pct']} %)")
    print("  by type, kept / not kept: " + ", ".join(
        f"{k} {v[0]} / {v[1]} %" for k, v in report["by_type"].items()))
    print(f"  visible face still swapped: {report['visible_swapped_pct']} % (goal >= 90); "
          f"false cut-outs on photos with no hand: {report['false_cut_pct']} % (goal <= 3)")
    if report.get("sheet"):
        print(f"  contact sheet (input | hands off | hands on): {report['sheet']}")
    clip = report.get("clip")
    if clip:
        print(f"  clip {clip['clip']}: {clip['with_hand']}/{clip['frames']} frames with a hand; "
              f"hands stage p50 {clip['hands_ms_p50_with_hand']} ms with a hand, "
              f"{clip['hands_ms_p50_without']} ms without, mean {clip['hands_ms_mean']} ms "
              f"(their landmark runs p50 {clip['follow_ms_p50_with_hand']} ms, mostly on "
              "their own thread); "
              f"a hand held still ({clip['held_frames_with_hand']}/{HELD_FRAMES} frames): "
              f"p50 {clip['hands_ms_p50_held']} ms, mean {clip['hands_ms_mean_held']} ms")
    objects = report.get("objects")
    if objects:
        print(f"  objects laid over {objects['clip']} ({objects['objects']} objects, live path, "
              f"the face learned first): object pixels inside the face drawn over "
              f"{objects['drawn_over_pct']} % with keep_objects (off: "
              f"{objects['drawn_over_off_pct']} %); by type, kept / not kept: " + ", ".join(
                  f"{k} {v[0]} / {v[1]} %" for k, v in objects["by_type"].items()))
        print(f"  false cut-outs on the uncovered clip: {objects['false_cut_pct']} %; objects "
              f"stage p50 {objects['objects_ms_p50']} ms, p95 {objects['objects_ms_p95']} ms"
              + (f"; sheet (input | off | on): {objects['sheet']}" if objects.get("sheet")
                 else ""))

"""`python -m core swap INPUT -o OUTPUT`: swap the face in an image or a video file."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core import identity
from core.commands.options import MAX_FRAME, add_tuning, tuned
from core.commands.stopping import stop_requests
from core.errors import FaceSwapError, InputError, TruncatedInput
from core.imageio import IMAGE_SUFFIXES, check_input_file, make_folder, partial_path, read_bgr
from core.pipeline import Pipeline, Swapping
from core.settings import FACE_SELECTIONS, SwapSettings

HELP = "swap the face in an image or video file (video: audio is not copied)"
VIDEO_CODECS = {".mp4": "mp4v", ".mov": "mp4v", ".m4v": "mp4v", ".mkv": "mp4v",
                ".avi": "MJPG"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = SwapSettings()
    parser.add_argument("input", type=Path, help="image or video file")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="output file; its extension picks the format (.png/.jpg, .mp4/.avi)")
    parser.add_argument("--model", default=defaults.model,
                        help="registry name (see `python -m core models`) or a model file path "
                             f"(default {defaults.model})")
    parser.add_argument("--reference", default="",
                        help="reference portrait for persona / inswapper models")
    parser.add_argument("--device", default=defaults.device, help="cpu, cuda:0, dml:0, coreml")
    parser.add_argument("--faces", default=defaults.faces, choices=FACE_SELECTIONS,
                        help="which faces to swap")
    parser.add_argument("--no-label", action="store_true",
                        help="do not draw the 'AI face swap' disclosure label")
    parser.add_argument("--allow-unswapped", action="store_true",
                        help="image: write the output even where a face could not be swapped "
                             "(else that is an error, and nothing is written)")
    add_tuning(parser)


def settings_from(args: argparse.Namespace) -> SwapSettings:
    return tuned(SwapSettings(model=args.model, reference=args.reference, device=args.device,
                              faces=args.faces, label=not args.no_label), args)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def not_swapped(pipeline: Pipeline) -> dict[int, str]:
    """Face id -> why it was not swapped, for each chosen face of the last frame that shows
    something else than its swap."""
    reasons = {}
    for face_id, view in pipeline.shown.items():
        if view == "swap":
            continue
        if pipeline.exposed(face_id):
            reasons[face_id] = ("its swap still looks like the person (the identity guard "
                                "pixelated it)")
        else:
            reasons[face_id] = "turned past the pose limits (max_yaw, max_pitch)"
    for face_id, state in pipeline.identities.items():  # faces=enrolled
        if state.verdict == identity.UNKNOWN:
            reasons[face_id] = (f"turned too far to tell whether it is an enrolled person "
                                f"(over {identity.JUDGE_MAX_YAW:.0f} degrees)")
        elif state.verdict == identity.UNSURE_FACE:
            reasons[face_id] = (f"it may be an enrolled person, but not surely (distance "
                                f"{state.distance:.2f}, enrolled under {identity.MATCH})")
    return reasons


def swap_image(pipeline: Pipeline, source: Path, output: Path,
               allow_unswapped: bool = False) -> int:
    """Swap a still image; InputError when it cannot be read, holds no face, or a chosen face
    could not be swapped (unless `allow_unswapped`: then each is a warning on stderr). The
    output appears complete or not at all (written beside it, then renamed)."""
    frame = read_bgr(source, "input image")
    if not cv2.haveImageWriter(str(output)):
        raise FaceSwapError(f"cannot write {output}: unsupported image extension")
    result = pipeline.process_still(frame, "bgr")
    settings, found = pipeline.settings, pipeline.tracked
    problems = [f"face {face_id} of {source} not swapped: {why}"
                for face_id, why in not_swapped(pipeline).items()]
    if settings.faces == "id" and found and not pipeline.shown:
        problems.append(f"no face with id {settings.face_id} in {source} (faces found: "
                        f"{', '.join(str(f.id) for f in found)})")
    elif not found:
        problems.append(f"no face found in {source}")
    if problems and not allow_unswapped:
        raise InputError("; ".join(problems))
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    partial = partial_path(output)
    try:
        if not cv2.imwrite(str(partial), result):
            raise FaceSwapError(f"cannot write output image {output}")
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return len(pipeline.faces)


def open_video(source: Path) -> tuple[cv2.VideoCapture, float, tuple[int, int], int]:
    """An opened capture, its fps, (width, height) and frame count (0 when unknown)."""
    capture = cv2.VideoCapture(str(source)) if source.is_file() else None
    if capture is None or not capture.isOpened():
        raise InputError(f"cannot read input {source} (not an image or video OpenCV can decode)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    fps = fps if 1.0 <= fps <= 240.0 else 30.0
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    count = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT)))
    return capture, fps, size, count


def swap_video(pipeline: Pipeline, source: Path, output: Path, progress: bool = True,
               on_frame: Callable[[int, np.ndarray, np.ndarray], None] | None = None
               ) -> tuple[int, int]:
    """Swap every frame of a video into `output` (no audio); returns (frames, with a face).

    `on_frame(index, before, after)` sees each BGR frame pair, e.g. to pick stills.
    """
    codec = VIDEO_CODECS.get(output.suffix.lower())
    if codec is None:
        raise FaceSwapError(f"cannot write {output}: use one of {', '.join(VIDEO_CODECS)}")
    capture, fps, size, count = open_video(source)
    if size[0] * size[1] > MAX_FRAME[0] * MAX_FRAME[1]:  # refused before any is decoded
        capture.release()
        raise InputError(f"cannot swap {source}: {size[0]}x{size[1]} frames are larger than "
                         f"{MAX_FRAME[0]}x{MAX_FRAME[1]}")
    partial = partial_path(output)
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*codec), fps, size)
    if not writer.isOpened():
        capture.release()
        raise FaceSwapError(f"cannot write output video {output}")
    frames = with_face = 0
    bar = tqdm(total=count or None, unit="frame", desc=source.name, disable=not progress,
               file=sys.stderr)
    begun: Swapping | None = None  # the frame whose swaps are out while the next is read

    def finish() -> None:
        nonlocal frames, with_face
        result = pipeline.finish(begun)
        writer.write(result)
        frames += 1
        with_face += bool(pipeline.faces)
        if on_frame is not None:
            on_frame(frames - 1, begun.frame, result)
        bar.update(1)

    try:
        with stop_requests() as stop:
            while not stop:
                ok, frame = capture.read()
                if not ok:
                    break
                # a model on a server: this frame is tracked while the last one's requests
                # are out (Pipeline.begin); locally begin does the whole swap
                swapping = pipeline.begin(frame, "bgr", timestamp=(frames + (begun is not None))
                                          / fps)
                if begun is not None:
                    finish()
                begun = swapping
            if begun is not None:
                finish()
    finally:
        bar.close()
        capture.release()
        writer.release()  # closes the file: a playable video of the frames written
        if frames == 0 or sys.exc_info()[0] is not None:
            partial.unlink(missing_ok=True)  # an error: no output rather than a broken one
    if stop and frames:
        os.replace(partial, output)
        print(f"stopped after {frames} frames: {output} holds them (a playable video)",
              file=sys.stderr)
    stop.raise_it()
    if frames == 0:
        raise InputError(f"cannot read any frame from {source}")
    os.replace(partial, output)
    if count and frames < count:
        warnings.warn(TruncatedInput(f"{source} ends early: read {frames} of the {count} "
                                     "frames its header announces"), stacklevel=2)
    return frames, with_face


def run(args: argparse.Namespace) -> int:
    source, output = args.input, args.output
    check_input_file(source, "input")
    if output.resolve() == source.resolve():
        raise FaceSwapError(f"output {output} is the input file: choose another output path")
    pipeline = Pipeline(settings_from(args))
    make_folder(output.parent)
    if pipeline.device_note:
        print(f"note: {pipeline.device_note}", file=sys.stderr)
    if is_image(source):
        faces = swap_image(pipeline, source, output, args.allow_unswapped)
        guests = f" ({len(pipeline.guests)} face(s) of people not enrolled left out)" \
            if pipeline.settings.faces == "enrolled" and pipeline.guests else ""
        print(f"swapped {faces} face(s) with {pipeline.model_name}: {output}{guests}")
        return 0
    print("note: audio is not copied (OpenCV writes video only)", file=sys.stderr)
    frames, with_face = swap_video(pipeline, source, output)
    print(f"swapped {with_face}/{frames} frames with {pipeline.model_name}: {output}")
    if with_face == 0:
        print(f"warning: no face found in any frame of {source}", file=sys.stderr)
    return 0

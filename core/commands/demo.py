"""`python -m core demo`: swap the built-in clip with the default persona, offline.

The first thing a newcomer runs: it proves the whole engine (detection, tracking, persona
warp, merge, label) on a shipped clip and leaves a video and a before/after picture.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from core import MODELS_DIR, ROOT
from core.commands.swap import swap_video
from core.errors import InputError
from core.imageio import make_folder
from core.pipeline import Pipeline
from core.settings import SwapSettings

HELP = "swap the built-in demo clip with the default persona (writes a video and a picture)"
DEMO_CLIP = MODELS_DIR / "demo" / "clip.mp4"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=ROOT / "out",
                        help="output folder; files go to OUT/demo/ (default: out/ in the repo)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda:0, dml:0, coreml")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def before_after(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Rows of before | after (BGR), captioned, for a quick look at what the demo did."""
    rows = []
    for before, after in pairs:
        row = np.hstack([before, np.full((before.shape[0], 8, 3), 255, np.uint8), after])
        for x, text in ((10, "before"), (before.shape[1] + 18, "after")):
            cv2.putText(row, text, (x, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 4,
                        cv2.LINE_AA)
            cv2.putText(row, text, (x, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2,
                        cv2.LINE_AA)
        rows.append(row)
    gap = np.full((8, rows[0].shape[1], 3), 255, np.uint8)
    return np.vstack([part for row in rows for part in (row, gap)][:-1])


def run(args: argparse.Namespace) -> int:
    if not DEMO_CLIP.is_file():
        raise InputError(f"demo clip missing: {DEMO_CLIP} (rebuild: install/make_demo_clip.py)")
    folder = args.out / "demo"
    make_folder(folder)
    video, picture = folder / "demo.mp4", folder / "before_after.png"
    pipeline = Pipeline(SwapSettings(device=args.device))

    probe = cv2.VideoCapture(str(DEMO_CLIP))
    count = int(probe.get(cv2.CAP_PROP_FRAME_COUNT)) or 75
    probe.release()
    wanted = {count // 4, (3 * count) // 4}  # one still from each half of the clip
    stills: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def keep(index: int, before: np.ndarray, after: np.ndarray) -> None:
        if index in wanted:
            stills[index] = (before.copy(), after.copy())

    frames, with_face = swap_video(pipeline, DEMO_CLIP, video, progress=not args.quiet,
                                   on_frame=keep)
    if stills:
        cv2.imwrite(str(picture), before_after([stills[i] for i in sorted(stills)]))
    print(f"demo: swapped {with_face}/{frames} frames with {pipeline.model_name} "
          f"(audio: none in the demo clip)")
    print(f"demo: video          {video}")
    print(f"demo: before/after   {picture}")
    return 0

"""`python -m core bench --headturn`: how the live path holds up when the head turns.

Each portrait becomes a turnable head (core.commands.headturn_render) and sweeps smoothly
through yaw 0 -> 80 -> -80 -> 0 and pitch 0 -> 45 -> -45 -> 0 at 30 frames a second. Every
frame goes through the live path as OBS runs it (core.pipeline.Pipeline: tracker, swapper, merge,
on_lost) and, for comparison, the still-image path (core.landmarks.faces_in_image, what
`core detect` runs). Per 15-degree bin of the turn and per axis it reports: frames, tracked
%, swapped %, landmark error against the truth (% of the face size), head-pose error
(degrees, on the swept axis), its lag (frames the pose the persona is drawn at is behind
the turn: pose_lag), flicker (frame-to-frame change of the output's face region over the
input's), the still path's landmark and pose errors, and how far FaceMesh run on
the output lies from the truth (does the swapped face look turned?), and who the output
looks like to dlib's recogniser (core.recognise), read at the true face's five points:
`identity_leak`, % of frames still the person of the input (the same-person rule), and
`persona_match`, % taken for the persona (or an inswapper's reference).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.align import similarity, whole_face_template
from core.commands.bench_photos import persona_descriptor
from core.commands.headturn_render import Head, landmark_error, make_head, render_head, sweep
from core.face import points5
from core.imageio import read_rgb, write_sheet
from core.landmarks import FaceMesh, roi_from_landmarks
from core.pipeline import Pipeline, build_swapper
from core.recognise import SAME_PERSON, Recogniser, distance
from core.settings import SwapSettings
from core.stills import faces_in_image
from core.swap.base import Swapper
from core.swap.persona import PersonaSwapper, persona_geometry

FPS = 30.0
LIMITS = {"yaw": 80.0, "pitch": 45.0}
BIN_DEG = 15.0
SHEET_ANGLES = (0.0, 30.0, 45.0, 60.0, 75.0)  # contact sheet: the yaw sweep's way up
SHEET_PX, SHEET_SPAN = 240, 1.8  # contact sheet tiles: px, and face sizes they span
REGION_MARGIN = 0.25  # flicker: the true face box grown by this x face size
MESH_PASSES = 3  # FaceMesh on the output: passes from the truth's crop, each refining


@dataclass
class _Frame:
    """What one frame of a sweep measured."""

    angle: float  # the turn applied, degrees
    tracked: bool
    swapped: bool
    landmark_error: float | None  # live path, % of face size (None: not tracked)
    signed_error: float | None  # live path: truth - its pose on the swept axis, degrees
    still_error: float | None  # still-image path
    still_pose_error: float | None
    output_error: float | None  # FaceMesh on the output vs the truth
    residual: float  # five-point alignment residual of the truth, % of the eye distance
    track_ms: float  # the tracker's landmark stage this frame (FaceMesh + head model)
    identity: float = 1.0  # recogniser distance of the output from the input
    persona: float | None = None  # ... from the persona (None: no reference face)
    change_in: float = 0.0  # mean |frame - previous frame| in the face region
    change_out: float = 0.0
    true_pose: float = 0.0  # the truth on the swept axis, degrees
    motion: float = 0.0  # how far the truth moved since the last frame, degrees

    @property
    def pose_error(self) -> float | None:
        """The live path's pose error on the swept axis, degrees (None: not tracked)."""
        return None if self.signed_error is None else abs(self.signed_error)


@dataclass
class _Sweep:
    axis: str
    frames: list[_Frame] = field(default_factory=list)


def _nearest(faces: list, truth: np.ndarray):
    """The face closest to the true face centre (None when there is none)."""
    if not faces:
        return None
    centre = truth[:, :2].mean(axis=0)
    return min(faces, key=lambda f: float(np.linalg.norm(f.landmarks[:, :2].mean(0) - centre)))


def _face_region(truth: np.ndarray, size: float, shape: tuple[int, ...]) -> tuple[slice, slice]:
    lo = np.maximum(np.floor(truth[:, :2].min(0) - REGION_MARGIN * size), 0).astype(int)
    hi = np.ceil(truth[:, :2].max(0) + REGION_MARGIN * size).astype(int)
    return slice(lo[1], min(hi[1], shape[0])), slice(lo[0], min(hi[0], shape[1]))


def _sheet_tile(frame: np.ndarray, out: np.ndarray, truth: np.ndarray,
                size: float) -> np.ndarray:
    """Input | output around the head, SHEET_PX high."""
    centre = truth[:, :2].mean(axis=0)
    half = int(SHEET_SPAN * size / 2)
    x0, y0 = (np.round(centre) - half).astype(int)
    pair = []
    for image in (frame, out):
        padded = cv2.copyMakeBorder(image, half, half, half, half, cv2.BORDER_REPLICATE)
        crop = padded[y0 + half:y0 + 3 * half, x0 + half:x0 + 3 * half]
        pair.append(cv2.resize(crop, (SHEET_PX, SHEET_PX), interpolation=cv2.INTER_AREA))
    return np.concatenate(pair, axis=1)


def five_point_residual(landmarks: np.ndarray) -> float:
    """How far the five points of a face are from the frontal whole-face template after the
    best similarity fit, in % of the template's eye distance: what a model aligned by five
    points (DFM, inswapper) sees turn away from the faces it was trained on."""
    template = whole_face_template(224)
    five = points5(landmarks)
    matrix = similarity(five, template)
    fitted = five @ matrix[:, :2].T + matrix[:, 2]
    rms = float(np.sqrt(((fitted - template) ** 2).sum(axis=1).mean()))
    return rms / float(np.linalg.norm(template[1] - template[0])) * 100.0


def _output_error(mesh: FaceMesh, out: np.ndarray, truth: np.ndarray, size: float) -> float:
    """FaceMesh on the output, started from the truth's crop: how far its face lies from
    `truth`, the face the swap meant to draw (a swap that looks turned agrees with it)."""
    landmarks = truth
    for _ in range(MESH_PASSES):
        landmarks, _ = mesh.run(out, "rgb", roi_from_landmarks(landmarks))
    return landmark_error(landmarks, truth, size)


def _meant(swapper: Swapper, truth: np.ndarray, own: np.ndarray | None) -> np.ndarray:
    """The face a swapper means to draw over the true landmarks: the persona its own face
    shape at the same pose and expression (`own`: the shape the tracker learned, as the
    swap used it); a model the live face's geometry."""
    if isinstance(swapper, PersonaSwapper):
        return persona_geometry(truth, swapper.portrait.shape, own)
    return truth


def run_sweep(head: Head, axis: str, settings: SwapSettings, step: float,
              sheet: dict[float, np.ndarray] | None = None, still: bool = True,
              output: bool = True, recogniser: Recogniser | None = None,
              persona: np.ndarray | None = None) -> _Sweep:
    """One sweep of `axis` through the live path, and (unless told not to) the still path
    and FaceMesh on the output alongside; with a recogniser, who the output looks like."""
    pipeline = Pipeline(settings)
    mesh = FaceMesh(threads=settings.threads)
    result = _Sweep(axis)
    previous: tuple[np.ndarray, np.ndarray] | None = None
    last_pose: float | None = None
    for i, angle in enumerate(sweep(LIMITS[axis], step)):
        yaw, pitch = (angle, 0.0) if axis == "yaw" else (0.0, angle)
        render = render_head(head, yaw, pitch)
        out = pipeline.process(render.frame, "rgb", timestamp=i / FPS)
        true_pose = render.yaw if axis == "yaw" else render.pitch
        size = render.face_size
        face = _nearest(pipeline.tracked, render.landmarks)
        found = _nearest(faces_in_image(render.frame, "rgb"), render.landmarks) if still \
            else None
        frame = _Frame(
            angle, face is not None, any(v == "swap" for v in pipeline.shown.values()),
            landmark_error(face.landmarks, render.landmarks, size) if face else None,
            true_pose - face.pose[0 if axis == "yaw" else 1] if face else None,
            landmark_error(found.landmarks, render.landmarks, size) if found else None,
            abs(found.pose[0 if axis == "yaw" else 1] - true_pose) if found else None,
            _output_error(mesh, out, _meant(pipeline.swapper, render.landmarks,
                                            face.extra.get("shape") if face else None), size)
            if output else None,
            five_point_residual(render.landmarks), pipeline.timings["landmarks"])
        frame.true_pose = true_pose
        frame.motion = 0.0 if last_pose is None else true_pose - last_pose
        last_pose = true_pose
        if recogniser is not None:
            five = [points5(render.landmarks)]
            before, after = recogniser.descriptors_of_chips(np.concatenate(
                [recogniser.chips(render.frame, five), recogniser.chips(out, five)]))
            frame.identity = distance(before, after)
            frame.persona = None if persona is None else distance(after, persona)
        region = _face_region(render.landmarks, size, out.shape)
        if previous is not None:
            frame.change_in = float(np.abs(render.frame[region].astype(np.int16)
                                           - previous[0][region]).mean())
            frame.change_out = float(np.abs(out[region].astype(np.int16)
                                            - previous[1][region]).mean())
        previous = (render.frame, out)
        result.frames.append(frame)
        if sheet is not None and axis == "yaw" and angle >= 0.0 and (
                i == 0 or angle > result.frames[-2].angle):  # on the way up
            for target in SHEET_ANGLES:
                if target not in sheet and angle >= target - step / 2:
                    sheet[target] = _sheet_tile(render.frame, out, render.landmarks, size)
    return result


def pose_lag(true: np.ndarray, error: np.ndarray, motion: np.ndarray) -> float | None:
    """How many frames the pose read (what the persona is drawn at) is behind the turn
    (negative: ahead), from frames' true angles, errors (true - read) and motions (true
    minus the last frame's true): the least-squares `lag` of error = a + b true + c sign(true)
    + lag motion. A pose read short of the turn is a bias with the angle (a, b, c: a bin
    holds both sides of a yaw), behind on the way out and ahead on the way back; what moves
    with the motion is the lag. (A bin's plain mean of error / motion cancels the bias only
    where it holds as many frames out as back at the same angles, not in the bin of the
    sweep's turning point.) None without frames moving both ways to tell them apart."""
    true, error, motion = (np.asarray(v, np.float64) for v in (true, error, motion))
    if len(error) < 5 or not ((motion > 1e-6).any() and (motion < -1e-6).any()):
        return None
    design = np.column_stack([np.ones_like(true), true, np.sign(true), motion])
    return float(np.linalg.lstsq(design, error, rcond=None)[0][-1])


def _lag(frames: list[_Frame]) -> float | None:
    """pose_lag of the tracked frames of a bin, rounded."""
    seen = [f for f in frames if f.signed_error is not None and f.motion != 0.0]
    lag = pose_lag(np.array([f.true_pose for f in seen]),
                   np.array([f.signed_error for f in seen]),
                   np.array([f.motion for f in seen]))
    return None if lag is None else round(lag, 2)


def _mean(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return round(float(np.mean(found)), 2) if found else None


def bins(sweeps: list[_Sweep]) -> list[dict[str, Any]]:
    """Per axis and 15-degree bin of |turn|: the report's rows."""
    rows = []
    for axis, limit in LIMITS.items():
        frames = [f for s in sweeps if s.axis == axis for f in s.frames]
        edges = np.arange(0.0, limit + BIN_DEG, BIN_DEG)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            last = hi >= limit
            inside = [f for f in frames
                      if lo <= abs(f.angle) < hi or (last and abs(f.angle) == hi)]
            if not inside:
                continue
            changes = [f for f in inside if f.change_in > 0.0]
            flicker = (sum(f.change_out for f in changes) / sum(f.change_in for f in changes)
                       if changes else None)
            rows.append({
                "axis": axis, "lo": float(lo), "hi": float(min(hi, limit)),
                "frames": len(inside),
                "tracked": round(100.0 * sum(f.tracked for f in inside) / len(inside), 1),
                "swapped": round(100.0 * sum(f.swapped for f in inside) / len(inside), 1),
                "landmark_error": _mean(f.landmark_error for f in inside),
                "pose_error_deg": _mean(f.pose_error for f in inside),
                "lag_frames": _lag(inside),
                "flicker": round(flicker, 2) if flicker is not None else None,
                "still_landmark_error": _mean(f.still_error for f in inside),
                "still_pose_error_deg": _mean(f.still_pose_error for f in inside),
                "output_landmark_error": _mean(f.output_error for f in inside),
                "five_point_residual": _mean(f.residual for f in inside),
                "track_ms_p50": round(float(np.median([f.track_ms for f in inside])), 2),
                "identity_leak": round(100.0 * sum(f.identity < SAME_PERSON for f in inside)
                                       / len(inside), 1),
                "persona_match": None if inside[0].persona is None else round(
                    100.0 * sum(f.persona < SAME_PERSON for f in inside) / len(inside), 1),
            })
    return rows


def run_headturn(settings: SwapSettings, portraits: list[Path], step: float = 2.0,
                 sheet_path: Path | None = None) -> dict[str, Any]:
    """The head-turn report for `portraits` (see the module docstring)."""
    if not 0.5 <= step <= 15.0:
        raise ValueError(f"--step must be within 0.5..15 degrees, got {step}")
    settings = settings.with_changes(label=False)
    per_portrait, every, rows = [], [], []
    recogniser = Recogniser(threads=settings.threads)
    persona = persona_descriptor(recogniser, build_swapper(settings), settings)
    for path in portraits:
        head = make_head(read_rgb(path, "portrait"), str(path))
        sheet: dict[float, np.ndarray] = {}
        sweeps = [run_sweep(head, axis, settings, step, sheet, recogniser=recogniser,
                            persona=persona) for axis in LIMITS]
        every += sweeps
        per_portrait.append({"portrait": str(path), "bins": bins(sweeps)})
        rows.append(np.concatenate([sheet[a] for a in SHEET_ANGLES if a in sheet], axis=0))
    report: dict[str, Any] = {"model": settings.model, "device": settings.device,
                              "step_deg": step, "fps": FPS, "bins": bins(every),
                              "portraits": per_portrait}
    if sheet_path is not None:
        report["contact_sheet"] = write_sheet(sheet_path, np.concatenate(rows, axis=1))
    return report


COLUMNS = (("frames", "frames", "{:>6}"), ("tracked", "tracked%", "{:>9}"),
           ("swapped", "swapped%", "{:>9}"), ("landmark_error", "lmk err%", "{:>9}"),
           ("pose_error_deg", "pose err°", "{:>10}"), ("lag_frames", "lag fr", "{:>7}"),
           ("flicker", "flicker", "{:>8}"),
           ("still_landmark_error", "still lmk%", "{:>11}"),
           ("still_pose_error_deg", "still pose°", "{:>12}"),
           ("output_landmark_error", "out lmk%", "{:>9}"),
           ("five_point_residual", "5pt res%", "{:>9}"), ("track_ms_p50", "track ms", "{:>9}"),
           ("identity_leak", "id leak%", "{:>9}"), ("persona_match", "persona%", "{:>9}"))


def print_report(report: dict[str, Any]) -> None:
    print(f"head turns: {report['model']} on {report['device']}, {report['step_deg']}° steps at "
          f"{report['fps']:.0f} fps; errors in % of the face size / degrees")
    for part in [{"portrait": "all portraits", "bins": report["bins"]}, *report["portraits"]]:
        print(f"\n{part['portrait']}")
        print(f"{'axis':<6}{'|turn|':>9}" + "".join(fmt.format(head)
                                                   for _, head, fmt in COLUMNS))
        for row in part["bins"]:
            cells = "".join(fmt.format("-" if row[key] is None else row[key])
                            for key, _, fmt in COLUMNS)
            print(f"{row['axis']:<6}{row['lo']:>4.0f}-{row['hi']:<4.0f}{cells}")
    if report.get("contact_sheet"):
        angles = ", ".join(f"{a:.0f}" for a in SHEET_ANGLES)
        print(f"\ncontact sheet (input | output at yaw {angles}): {report['contact_sheet']}")

"""Built-in persona: a reference portrait becomes the live face, with no neural swap model.

The persona has its own 3D face shape (the portrait's FaceMesh landmarks in the face's own
axes), drawn at the live face's pose and expression: the live landmarks, moved by the
difference between the persona's shape and the streamer's (the shape the tracker learned
while they looked at the camera, so what is left is their expression; a still has no such
shape and gets the persona's own expression). The portrait's texture is warped onto that
geometry (core.mesh) in 3D order: triangles the pose turns away are not drawn and far
ones are drawn first, so a turned head gets a turned face. The portrait's rim (its face
seen edge-on, with a strip of background) is replaced by the skin beside it, which a turn
stretches across the near cheek (it used to take the texture of its mirror image, which
drew torn patches of glasses and eyes there).

Why its own shape: at a head turn the profile - forehead, nose, lips, chin against the
background - is who you are. A persona drawn on the streamer's geometry kept their profile
and was recognised in 54 % of real photos at 60-75 degrees of yaw (dlib's recogniser,
../shared/data/real_turns). So where the streamer's silhouette reaches past the persona's,
it is filled from the background around it (core.fill), and the persona's own silhouette
is what the viewer sees: 29 % (README "Anonymity at head turns"). The returned mask covers
both, with optional holes for the live eyes and inner mouth (blinks and speech stay the
streamer's own). Colour transfer and feathering are core.merge's job, shared by every
swapper; the filled background is the swap's backdrop (SwapOutput.backdrop), which the
merge draws behind the colour-matched face as it is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from core import MODELS_DIR
from core.align import crop_scale, face_motion, similarity, whole_face_template
from core.errors import InputError
from core.face import (
    EYE_IMAGE_LEFT,
    EYE_IMAGE_RIGHT,
    FACE_OVAL,
    LIPS_INNER,
    Face,
    face_shape,
    mirror_indices,
)
from core.fill import fill_by_reflection, fill_from_around
from core.frame import check_frame, to_rgb
from core.imageio import read_rgb
from core.lru import LruCache
from core.mesh import (
    MeshWarp,
    mesh_depth,
    mesh_points,
    select_points,
    triangulate,
)
from core.modelfiles import file_version
from core.pose import face_axes
from core.settings import SwapSettings
from core.swap.base import NO_POSE_LIMITS, FaceFinder, Family, SwapOutput

if TYPE_CHECKING:
    from core.swap.families import ModelEntry

PERSONAS_DIR = MODELS_DIR / "personas"
DEFAULT_PERSONA = PERSONAS_DIR / "default.png"
CROP_SIZE = 256
MESH_POINTS = 150  # landmark subset per mesh (plus an outer ring): ~330 triangles
# The streamer's silhouette (silhouette_points, silhouette_margins): their landmarks' hull,
# reached PROFILE_REACH x the face size towards where the nose points (a turned face's nose,
# lips and chin stand out past FaceMesh's points on that side), grown by WHOLE_MARGINS x the
# face size, its upper part (above the nose tip: hairline, temples, ears) by UPPER_MARGINS
# (FaceMesh's outer points sit a little inside the real edge, the more so the more the head
# turns). What is left of a profile is what gives a turned face away
# (../shared/data/real_turns, recognised at 60-75 degrees when the whole hull grew alike:
# 29.2 % with 0.06 at every angle, 16.7 % grown to 0.18 by 45 degrees, 20.8 % to 0.24; now
# 12.5), but the whole hull grown drew the collar up under the chin (a white bib) and hair
# over the forehead: on a real clip turned 30-50 degrees 13-38 % of the neck under the chin
# changed, now 3-8 % (0-1.7 near frontal), the photos' figures unchanged (README "Anonymity
# at head turns")
WHOLE_MARGINS = ((15.0, 0.02), (45.0, 0.06), (75.0, 0.18))
UPPER_MARGINS = ((15.0, 0.06), (45.0, 0.18))
PROFILE_REACH = 0.25
NOSE_TIP = 1  # FaceMesh landmark
OUTLINE_MARGIN = 0.6  # SwapOutput.outline: the mask may reach this x the face size past the
# live face oval (a profile's nose tip and the merge's feather lie that far out)
RIM = 0.04  # the portrait's face rim replaced by the skin beside it (_skin_to_the_edge)
EDGE_INSET = 0.02  # the persona's face is drawn this x the face size inside its outline
EDGE_SIGMA = 1.0  # px: its edge over the filled background, anti-aliased
MIRROR_SEAM = 1.0  # px: the mirrored fill fades into the smooth one where it finds nothing


def _loop(contour: list[int]) -> list[int]:
    """FaceMesh eye lists run lower lid corner-to-corner, then upper lid: make one loop."""
    return contour[:9] + contour[9:][::-1]


EYE_LOOPS = (_loop(EYE_IMAGE_LEFT), _loop(EYE_IMAGE_RIGHT))




@dataclass(frozen=True)
class Portrait:
    """A reference face prepared once: texture in crop space, mesh vertices and triangles."""

    warp: MeshWarp
    subset: np.ndarray  # landmark indices that are mesh vertices (before the outer ring)
    shape: np.ndarray  # (468, 3) the persona's own 3D face shape (core.face.face_shape)


PORTRAITS_CACHED = 8  # prepared portraits kept (by file version): re-saves do not pile up
_cache: LruCache[Portrait] = LruCache(PORTRAITS_CACHED)


def prepare_portrait(find_face: FaceFinder, image_rgb: np.ndarray, size: int = CROP_SIZE,
                     points: int = MESH_POINTS, source: str = "image") -> Portrait:
    """Landmarks (`find_face`: core.stills.landmarks_for_image), aligned texture and mesh of
    a portrait (InputError when it has no face)."""
    face = find_face(image_rgb)
    if face is None:
        raise InputError(f"no face found in reference portrait {source}")
    # Crop at twice the size, then area-downscale: portraits are often much larger than 256 px.
    matrix = similarity(face.points5, whole_face_template(2 * size))
    big = cv2.warpAffine(image_rgb, matrix, (2 * size, 2 * size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    texture = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    crop_points = (face.landmarks[:, :2] @ matrix[:, :2].T + matrix[:, 2]) * 0.5
    crop_points -= 0.25  # pixel centres: x_small = (x_big + 0.5) / 2 - 0.5
    texture = _skin_to_the_edge(texture, crop_points)
    mirror = mirror_indices()
    chosen = select_points(crop_points, points)
    subset = np.unique(np.concatenate([chosen, mirror[chosen]]))  # both halves alike
    vertices = mesh_points(crop_points, subset)
    triangles = triangulate(vertices)
    shape = face_shape(face.landmarks)
    if shape is None:
        raise InputError(f"no usable face shape in reference portrait {source}")
    # only the face's triangles: the outer ring's (the portrait's surroundings) would never
    # show, the persona's backdrop being the live surroundings
    triangles = triangles[(triangles < len(subset)).all(axis=1)]
    return Portrait(warp=MeshWarp(texture, vertices, triangles),
                    subset=subset, shape=shape)


def _skin_to_the_edge(texture: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The portrait's texture with its face's rim (RIM x the face width inside the oval)
    and everything outside replaced by the skin next to it (core.fill). A frontal
    portrait's rim is its face seen edge-on, with a strip of background: a turned head
    shows that rim stretched across the near cheek, and it was drawn as pale seams."""
    oval = np.round(points[FACE_OVAL] * 16).astype(np.int32)
    inside = np.zeros(texture.shape[:2], np.uint8)
    cv2.fillPoly(inside, [oval], 255, cv2.LINE_AA, 4)
    rim = max(round(RIM * float(np.ptp(points[FACE_OVAL, 0]))), 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rim + 1, 2 * rim + 1))
    return fill_from_around(texture, cv2.bitwise_not(cv2.erode(inside, kernel)))


def load_portrait(find_face: FaceFinder, reference: str = "", size: int = CROP_SIZE,
                  points: int = MESH_POINTS) -> Portrait:
    """The prepared portrait for a path ("" = default persona), cached per file version."""
    path = Path(reference).expanduser() if reference else DEFAULT_PERSONA
    try:
        key = (*file_version(path), size, points)
    except OSError:
        raise InputError(f"cannot read reference portrait {path}") from None
    portrait = _cache.get(key)
    if portrait is None:
        image = read_rgb(path, "reference portrait")
        portrait = prepare_portrait(find_face, image, size, points, source=str(path))
        _cache.put(key, portrait)
    return portrait


def persona_geometry(landmarks: np.ndarray, persona: np.ndarray,
                     own: np.ndarray | None = None) -> np.ndarray:
    """(468, 3) live landmarks moved to the persona's face shape at the same pose: each
    point shifted by (persona - own) in the face's own axes, at the face's size. `own` is
    the streamer's shape (core.face.face_shape space; the tracker's learned one, so their
    expression is kept); None: this frame's own shape (the persona's expression)."""
    points = np.asarray(landmarks, np.float64)
    axes = face_axes(points)
    if own is None:
        own = face_shape(points)
    if axes is None or own is None:
        return np.asarray(landmarks, np.float32)
    width = float(np.ptp(((points - points.mean(axis=0)) @ axes.T)[FACE_OVAL, 0]))
    return (points + width * ((persona - own) @ axes)).astype(np.float32)


class PersonaSwapper:
    """Swapper protocol for the built-in persona; `reference` "" means the default persona."""

    provider = ""  # no onnxruntime model: pure OpenCV on the CPU
    pose_limits = NO_POSE_LIMITS  # a 3D-ordered warp: it turns with the head

    def __init__(self, find_face: FaceFinder, reference: str = "", size: int = CROP_SIZE,
                 points: int = MESH_POINTS) -> None:
        self.reference = reference
        self.path = Path(reference) if reference else None
        self.size = size
        self.name = f"persona:{Path(reference).stem}" if reference else "persona:default"
        self.portrait = load_portrait(find_face, reference, size, points)
        self.template = whole_face_template(size)
        self.timings: dict[str, float] = {"align": 0.0, "warp": 0.0, "fill": 0.0}  # ms

    def swap(self, frame: np.ndarray, fmt: str, face: Face, settings: SwapSettings) -> SwapOutput:
        """The persona drawn at `face`'s pose over the background filled where the live
        face was, in crop space."""
        check_frame(frame, fmt)
        start = time.perf_counter()
        shaped = persona_geometry(face.landmarks, self.portrait.shape, face.extra.get("shape"))
        motion = face_motion(face, settings)  # face_scale / offset move the persona itself
        if motion is not None:
            shaped[:, :2] = shaped[:, :2] @ motion[:2, :2].T + motion[:2, 2]
            shaped[:, 2] *= settings.face_scale
        margins = silhouette_margins(face.pose[0])
        whole, upper = silhouette_points(face)
        matrix = self._framed(similarity(face.points5, self.template), face, whole, shaped,
                              settings, max(margins))
        own = _to_crop(face.landmarks, matrix)
        own_outline = (_to_crop(whole, matrix), _to_crop(upper, matrix))
        drawn = _to_crop(shaped, matrix)
        vertices = mesh_points(drawn, self.portrait.subset)
        depth = mesh_depth(shaped * crop_scale(matrix), self.portrait.subset)
        aligned = time.perf_counter()
        crop, shown = self.portrait.warp.render(vertices, self.size, depth)
        persona = shown >= 0
        warped = time.perf_counter()
        face_px = face.size * crop_scale(matrix)
        silhouette = _silhouette(own_outline, margins, face_px, 0.0, self.size)
        persona_u8 = persona.view(np.uint8) * np.uint8(255)
        backdrop, coverage = self._background(frame, fmt, matrix, persona_u8,
                                              cv2.max(silhouette, persona_u8), face_px)
        mask = self.mask(own, own_outline, drawn, face_px, settings, margins)
        self.timings = {"align": (aligned - start) * 1000.0,
                        "warp": (warped - aligned) * 1000.0,
                        "fill": (time.perf_counter() - warped) * 1000.0}
        outline = OUTLINE_MARGIN + _reach(settings)
        return SwapOutput(crop=crop, matrix=matrix, mask=mask, outline=outline,
                          backdrop=backdrop, coverage=coverage)

    def _framed(self, matrix: np.ndarray, face: Face, silhouette: np.ndarray,
                shaped: np.ndarray, settings: SwapSettings, margin: float) -> np.ndarray:
        """The frame -> crop matrix zoomed out until the live face's silhouette and the
        persona's face, with the mask's reach past them and the feather's zeroed border
        (twice the blur), lie inside the crop: the 5-point framing crops a turned face's
        profile and back (its five points bunch up), and the merge's mask is 0 at the
        crop's border."""
        scale = crop_scale(matrix)
        seen = _to_crop(np.concatenate([silhouette, shaped[:, :2]]), matrix)
        reach = (margin + _reach(settings) + max(settings.blur, 0.0) / 100.0) \
            * face.size * scale + 1.0
        low, high = seen.min(axis=0) - reach, seen.max(axis=0) + reach
        if low.min() >= 0.0 and high.max() <= self.size:
            return matrix
        zoom = min(1.0, self.size / float((high - low).max()))
        shift = self.size / 2.0 - zoom * (low + high) / 2.0
        matrix = np.asarray(matrix, np.float64)
        return np.hstack([zoom * matrix[:, :2],
                          (zoom * matrix[:, 2] + shift)[:, None]]).astype(np.float32)

    def _background(self, frame: np.ndarray, fmt: str, matrix: np.ndarray,
                    persona: np.ndarray, hole: np.ndarray, face_px: float
                    ) -> tuple[np.ndarray, np.ndarray]:
        """What the persona's face (`persona`, uint8) is drawn over: the live crop, the
        streamer's silhouette outside the persona's face (`hole`) filled from around it,
        and the persona's coverage over it (its face less EDGE_INSET of its rim,
        anti-aliased). The fill is the hair and background outside the silhouette mirrored
        in across its edge (core.fill.fill_by_reflection): they go on up to the persona's
        face with their own texture. A smooth fill (from the live surroundings and the live
        face under the persona's, at a quarter of the size) drew a pale, soft band there, a
        helmet round every face; it is still what a pixel takes where the mirror finds
        nothing outside (the crop's border)."""
        seen = to_rgb(cv2.warpAffine(frame, np.asarray(matrix, np.float32),
                                     (self.size, self.size), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_REPLICATE), fmt)
        inset = max(round(EDGE_INSET * face_px), 1)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inset + 1, 2 * inset + 1))
        core = cv2.erode(persona, kernel)
        gap = cv2.subtract(hole, core)
        quarter = self.size // 4
        small = fill_from_around(
            cv2.resize(seen, (quarter, quarter), interpolation=cv2.INTER_AREA),
            cv2.resize(gap, (quarter, quarter), interpolation=cv2.INTER_AREA))
        smooth = cv2.resize(small, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        mirrored, share = fill_by_reflection(seen, gap, cv2.bitwise_not(hole))
        # fade the mirror into the smooth fill where it found nothing, not at the gap's own
        # edges (a blur normalised within the gap)
        inside = cv2.GaussianBlur((gap > 0).astype(np.float32), (0, 0), MIRROR_SEAM)
        share = cv2.GaussianBlur(share, (0, 0), MIRROR_SEAM) / np.maximum(inside, 1e-6)
        filled = cv2.blendLinear(mirrored, smooth, share, np.float32(1.0) - share)
        cv2.copyTo(filled, gap, seen)
        coverage = cv2.GaussianBlur(core, (0, 0), EDGE_SIGMA).astype(np.float32) \
            * np.float32(1.0 / 255.0)
        return seen, coverage

    def mask(self, own: np.ndarray, outline: tuple[np.ndarray, np.ndarray], drawn: np.ndarray,
             face_px: float, settings: SwapSettings, margins: tuple[float, float]) -> np.ndarray:
        """The streamer's silhouette (_silhouette: `outline`, `margins` past it) and
        the persona's face, grown by the merge's erosion and its feather (_reach) so that
        both stay opaque after them; minus the eyes / inner mouth where the live ones are
        kept: where the live and the persona's outlines of them overlap (a still's persona
        keeps its own mouth: closed, it keeps none)."""
        reach = _reach(settings) * face_px
        mask = cv2.max(_silhouette(outline, margins, face_px, reach, self.size),
                       _grown_hull(drawn, reach, self.size))
        holes = []
        if settings.keep_eyes:
            holes += list(EYE_LOOPS)
        if settings.keep_mouth:
            holes.append(LIPS_INNER)
        for loop in holes:
            kept = np.zeros_like(mask)
            cv2.fillPoly(kept, [np.round(own[loop] * 16).astype(np.int32)], 255,
                         cv2.LINE_AA, 4)
            persona_loop = np.zeros_like(mask)
            cv2.fillPoly(persona_loop, [np.round(drawn[loop] * 16).astype(np.int32)],
                         255, cv2.LINE_AA, 4)
            mask = cv2.subtract(mask, cv2.min(kept, persona_loop))
        return mask.astype(np.float32) * np.float32(1.0 / 255.0)


def silhouette_margins(yaw: float) -> tuple[float, float]:
    """How far past the streamer's outline their silhouette is filled, x the face size, at
    a turn of `yaw` degrees: (the whole outline, its upper part), WHOLE_MARGINS and
    UPPER_MARGINS ((degrees, margin) points, linear between them)."""
    def at(margins: tuple[tuple[float, float], ...]) -> float:
        degrees, values = zip(*margins, strict=True)
        return float(np.interp(abs(yaw), degrees, values))
    return at(WHOLE_MARGINS), at(UPPER_MARGINS)


def silhouette_points(face: Face) -> tuple[np.ndarray, np.ndarray]:
    """The streamer's outline before its margins, frame px: (the whole, its upper part).
    The whole is their landmarks and the same moved PROFILE_REACH x the face size along
    where the nose points (its image direction, as long as the turn's sine): a turned
    face's profile - nose, lips, chin - stands out past FaceMesh's points on that side
    only. The direction is the face's own axes' (core.pose.face_axes), whose chin-to-forehead
    line leans back 8.5 degrees, so it also reaches a little down past the chin: from the
    pose (no lean) one more real photo at 45-60 degrees was recognised (README "Anonymity at
    head turns"). The upper part is the landmarks above the nose tip (hairline, temples,
    ears)."""
    points = np.asarray(face.landmarks, np.float64)
    axes = face_axes(face.landmarks)
    if axes is None:
        return points[:, :2], points[:, :2]
    reach = -axes[2, :2] * PROFILE_REACH * face.size
    upper = points[(points - points[NOSE_TIP]) @ axes[1] < 0.0, :2]
    return np.concatenate([points[:, :2], points[:, :2] + reach]), upper


def _silhouette(outline: tuple[np.ndarray, np.ndarray], margins: tuple[float, float],
                face_px: float, grow: float, size: int) -> np.ndarray:
    """(size, size) uint8: the silhouette of silhouette_points' crop-space `outline`, each
    part's hull grown by its margin (silhouette_margins, x `face_px`) and `grow` px more."""
    return cv2.max(_grown_hull(outline[0], margins[0] * face_px + grow, size),
                   _grown_hull(outline[1], margins[1] * face_px + grow, size))


def _grown_hull(points: np.ndarray, radius: float, size: int) -> np.ndarray:
    """(size, size) uint8: the convex hull of `points` grown by `radius` px in every
    direction (the hull and a line of twice that width round it: exactly the grown hull,
    without a distance transform; unsmoothed edges, 0.02 ms: the merge feathers them)."""
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    out = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(out, hull, 255, cv2.LINE_8)
    width = 2 * round(radius)
    if width > 0:
        cv2.polylines(out, [hull], True, 255, width, cv2.LINE_8)
    return out


def _reach(settings: SwapSettings) -> float:
    """How far (x the face size) the mask must reach past what it covers to stay opaque there
    after the merge's erosion and its feather (a Gaussian of that radius)."""
    return (max(settings.erode, 0.0) + max(settings.blur, 0.0)) / 100.0


def _to_crop(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(N, 2) crop-space points of frame landmarks."""
    return np.asarray(landmarks, np.float64)[:, :2] @ np.asarray(matrix)[:, :2].T \
        + np.asarray(matrix)[:, 2]


def _describe(entry: ModelEntry) -> str:
    return "built-in persona" + (f" ({entry.path.name})" if entry.path else "")


def _load(entry: ModelEntry, device: str, threads: int, reference: str,
          find_face: FaceFinder) -> PersonaSwapper:
    return PersonaSwapper(find_face, reference or (str(entry.path) if entry.path else ""))


FAMILY = Family("persona", "a persona", _describe, _load,
                controls=("keep_eyes", "keep_mouth"))

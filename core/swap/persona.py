"""Built-in persona: a reference portrait becomes the live face, with no neural swap model.

The portrait's FaceMesh landmarks and the live face's landmarks, both in one aligned crop
space, are the vertices of a fixed triangle mesh; the portrait's texture is warped onto the
live geometry (core.swap.mesh) in 3D order: with the live landmarks' depth, triangles the
head's pose turns away are not drawn and far ones are drawn first, so a turned head gets a
turned face, not a folded frontal one. A triangle the portrait itself shows badly (seen
nearly edge-on) takes its texture from its mirror image on the other side of the portrait.
The returned mask is the face oval grown past its outline (see PersonaSwapper.mask) with optional
holes for the live eyes and inner mouth, so blinks and speech stay the streamer's own.
Colour transfer and feathering are core.merge's job, shared by every swapper.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core import MODELS_DIR
from core.align import similarity, whole_face_template
from core.errors import InputError
from core.face import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, FACE_OVAL, LIPS_INNER, Face, mirror_indices
from core.frame import check_frame
from core.imageio import read_rgb
from core.lru import LruCache
from core.merge import crop_scale, grow
from core.modelfiles import file_version
from core.settings import SwapSettings
from core.stills import landmarks_for_image
from core.swap.base import SwapOutput
from core.swap.mesh import (
    MeshWarp,
    mesh_depth,
    mesh_points,
    mirror_sources,
    mirror_vertices,
    select_points,
    triangulate,
)

PERSONAS_DIR = MODELS_DIR / "personas"
DEFAULT_PERSONA = PERSONAS_DIR / "default.png"
CROP_SIZE = 256
MESH_POINTS = 150  # landmark subset per mesh (plus an outer ring): ~330 triangles
OUTLINE_MARGIN = 0.25  # the mask reaches this x the face size past the live face oval


def _loop(contour: list[int]) -> list[int]:
    """FaceMesh eye lists run lower lid corner-to-corner, then upper lid: make one loop."""
    return contour[:9] + contour[9:][::-1]


EYE_LOOPS = (_loop(EYE_IMAGE_LEFT), _loop(EYE_IMAGE_RIGHT))




@dataclass(frozen=True)
class Portrait:
    """A reference face prepared once: texture in crop space, mesh vertices and triangles."""

    warp: MeshWarp
    subset: np.ndarray  # landmark indices that are mesh vertices (before the outer ring)


PORTRAITS_CACHED = 8  # prepared portraits kept (by file version): re-saves do not pile up
_cache: LruCache[Portrait] = LruCache(PORTRAITS_CACHED)


def prepare_portrait(image_rgb: np.ndarray, size: int = CROP_SIZE,
                     points: int = MESH_POINTS, source: str = "image") -> Portrait:
    """Landmarks, aligned texture and mesh of a portrait (InputError when it has no face)."""
    face = landmarks_for_image(image_rgb)
    if face is None:
        raise InputError(f"no face found in reference portrait {source}")
    # Crop at twice the size, then area-downscale: portraits are often much larger than 256 px.
    matrix = similarity(face.points5, whole_face_template(2 * size))
    big = cv2.warpAffine(image_rgb, matrix, (2 * size, 2 * size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    texture = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    crop_points = (face.landmarks[:, :2] @ matrix[:, :2].T + matrix[:, 2]) * 0.5
    crop_points -= 0.25  # pixel centres: x_small = (x_big + 0.5) / 2 - 0.5
    mirror = mirror_indices()
    chosen = select_points(crop_points, points)
    subset = np.unique(np.concatenate([chosen, mirror[chosen]]))  # symmetric: mirrors exist
    vertices = mesh_points(crop_points, subset)
    triangles = triangulate(vertices)
    depth = mesh_depth(face.landmarks * 0.5 * crop_scale(matrix), subset)
    # where the portrait shows a triangle badly, its mirror image's texture instead
    sources = mirror_sources(vertices, depth, triangles, mirror_vertices(mirror, subset))
    return Portrait(warp=MeshWarp(texture, vertices, triangles, sources=sources),
                    subset=subset)


def load_portrait(reference: str = "", size: int = CROP_SIZE,
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
        portrait = prepare_portrait(image, size, points, source=str(path))
        _cache.put(key, portrait)
    return portrait


class PersonaSwapper:
    """Swapper protocol for the built-in persona; `reference` "" means the default persona."""

    provider = ""  # no onnxruntime model: pure OpenCV on the CPU
    pose_limits = (90.0, 90.0)  # a 3D-ordered warp: it turns with the head (no limit)

    def __init__(self, reference: str = "", size: int = CROP_SIZE,
                 points: int = MESH_POINTS) -> None:
        self.reference = reference
        self.path = Path(reference) if reference else None
        self.size = size
        self.name = f"persona:{Path(reference).stem}" if reference else "persona:default"
        self.portrait = load_portrait(reference, size, points)
        self.template = whole_face_template(size)
        self.timings: dict[str, float] = {"align": 0.0, "warp": 0.0}  # last swap, ms

    def swap(self, frame: np.ndarray, fmt: str, face: Face, settings: SwapSettings) -> SwapOutput:
        """The portrait warped onto `face` in crop space; `frame` is only checked, never read."""
        check_frame(frame, fmt)
        start = time.perf_counter()
        matrix = similarity(face.points5, self.template)
        live = face.landmarks[:, :2] @ matrix[:, :2].T + matrix[:, 2]
        vertices = mesh_points(live, self.portrait.subset)
        depth = mesh_depth(face.landmarks * crop_scale(matrix), self.portrait.subset)
        aligned = time.perf_counter()
        crop, shown = self.portrait.warp.render(vertices, self.size, depth)
        mask = self.mask(live, shown >= 0, face.size * crop_scale(matrix), settings)
        self.timings = {"align": (aligned - start) * 1000.0,
                        "warp": (time.perf_counter() - aligned) * 1000.0}
        return SwapOutput(crop=crop, matrix=matrix, mask=mask, outline=OUTLINE_MARGIN)

    def mask(self, live: np.ndarray, drawn: np.ndarray, face_px: float,
             settings: SwapSettings) -> np.ndarray:
        """The face oval grown by OUTLINE_MARGIN x the face size (in crop space, where the
        mesh was drawn), minus the live eyes / inner mouth when they are kept.

        Grown because the outline is who you are: a jaw line, cheek or profile left at the
        edge after the merge's erosion and feathering kept the streamer recognisable at
        turns (dlib's recogniser on ../shared/data/real_turns: the same person in 79 % of
        photos at 45-60 degrees of yaw without the margin, 4-7 % with it); the persona's
        outer ring, drawn beyond the oval, fills the margin.
        """
        mask = np.zeros((self.size, self.size), np.uint8)
        fixed = np.round(live * 16).astype(np.int32)  # 4 sub-pixel bits
        cv2.fillPoly(mask, [fixed[FACE_OVAL]], 255, cv2.LINE_AA, 4)
        radius = round(OUTLINE_MARGIN * face_px)
        mask = grow(mask, radius)
        # a quarter as far above the forehead: the full margin drew the persona's hair there
        # as a dark band across the forehead
        mask[:max(int(np.floor(live[FACE_OVAL, 1].min())) - radius // 4, 0)] = 0
        mask[~drawn] = 0
        holes = []
        if settings.keep_eyes:
            holes += [fixed[loop] for loop in EYE_LOOPS]
        if settings.keep_mouth:
            holes.append(fixed[LIPS_INNER])
        if holes:
            cv2.fillPoly(mask, holes, 0, cv2.LINE_AA, 4)
        return mask.astype(np.float32) * np.float32(1.0 / 255.0)

"""Objects in front of a face (a mic, a cup, a phone): where the live face stops looking
like itself, its live pixels stay in front of the swap.

Hands have a model (core.hands); other occluders have none that is small and permissively
licensed, and one colour rule for a whole face cuts shadows, beards and make-up (tried: see
README "Hands in front"). But a stream shows the same face for minutes, so the engine learns
how each tracked face looks, point by point on its own surface - the frame warped into
FaceMesh's texture layout (UV_SIDE px), where a point of the skin keeps its place however
the head turns - as a running mean and spread per pixel while nothing covers it. A frame
whose face departs from that (by more than DEVIATION levels and SPREADS of that pixel's own
spread, after the frame's overall light is matched) in a blob of at least MIN_BLOB of the
face seen is taken to have something in front of it there; those pixels are mapped back
into the frame and kept live (core.merge, `keep`), like a hand's.

What it cannot do: judge a point before it has been seen LEARN_FRAMES times uncovered (an
object there from the start is learned as the face: the singer's mic), nor a still image,
nor pixels outside the face's mesh, nor an object of the face's own colour (CHROMA: what
was learned and has gone uncovers skin, which must stay swapped). What differs for
ABSORB_FRAMES becomes the face (a new shadow must not show the real face for ever); where
CHANGED of the face differs at once, the face itself has changed and is learned afresh.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from core.face import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, LIPS_INNER, Face
from core.frame import to_rgb
from core.mesh import MeshWarp, signed_areas, triangulate
from core.modelfiles import face_mesh_uv

UV_SIDE = 64  # px: the side of the face's texture layout the appearance is learned in
SEEN_COS = 0.5  # a triangle seen at less than this cosine to the camera is not judged
LEARN_FRAMES = 15  # frames a point is seen uncovered before it is judged
LEARN_RATE = 0.05  # weight of one frame in the running mean and spread (once learned)
ABSORB_FRAMES = 300  # frames (10 s at 30 fps) after which what stays different is the face
DEVIATION = 40.0  # levels (0-255, the largest channel difference) a covered point differs by
SPREADS = 4.0  # ... and this many of its own learned spreads (blinks, speech, shine vary)
SPREAD_FLOOR = 6.0  # levels: the least spread a point is credited with
MIN_BLOB = 0.015  # share of the face seen that a covered region must reach
CHANGED = 0.3  # share of the learned points differing at which the face itself has changed
CHROMA = 8.0  # Lab a/b levels off the face's own skin colour a kept point must be
GROW = 1.5  # the kept region grows this many texture pixels' size into the frame
_EXCLUDED = (EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, LIPS_INNER)  # vary most: never judged
_EDGE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))


@dataclass(frozen=True)
class _Layout:
    points: np.ndarray  # (468, 2) texture px
    triangles: np.ndarray  # (T, 3)
    orientation: np.ndarray  # (T,) each triangle's sign as seen from the front
    shown: np.ndarray  # (UV_SIDE, UV_SIDE) triangle per pixel, -1 outside
    judged: np.ndarray  # (UV_SIDE, UV_SIDE) bool: inside the face, not an eye or the mouth


@functools.cache
def _layout() -> _Layout:
    uv = face_mesh_uv()
    points = ((uv - uv.min(0)) / np.ptp(uv, axis=0) * (UV_SIDE - 1)).astype(np.float32)
    triangles = triangulate(points)
    blank = np.zeros((UV_SIDE, UV_SIDE, 1), np.uint8)
    shown = MeshWarp(blank, points, triangles, map_scale=1.0).render(points, UV_SIDE)[1]
    judged = (shown >= 0).astype(np.uint8)
    for contour in _EXCLUDED:
        cv2.fillPoly(judged, [np.round(points[contour]).astype(np.int32)], 0)
    judged = judged.astype(bool)
    return _Layout(points, triangles, np.sign(signed_areas(points[triangles])), shown, judged)


class Appearance:
    """One tracked face's learned look; `covered` once per frame."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Nothing learned: the look is learned afresh from the next frames."""
        self.mean = np.zeros((UV_SIDE, UV_SIDE, 3), np.float32)
        self.var = np.zeros((UV_SIDE, UV_SIDE), np.float32)
        self.seen = np.zeros((UV_SIDE, UV_SIDE), np.float32)  # frames seen uncovered
        self.differs = np.zeros((UV_SIDE, UV_SIDE), np.float32)  # frames in a row covered

    def covered(self, frame: np.ndarray, fmt: str, landmarks: np.ndarray,
                learn: bool = True) -> tuple[int, int, np.ndarray] | None:
        """Where something covers this face in `frame`: (x0, y0, a uint8 map of the face's
        box there, 255 = keep live; see keep_mask), or None when nothing does. `learn`: fold
        the uncovered points into the learned look (not while a hand is in front: it would
        be learned as the face)."""
        layout = _layout()
        points = np.asarray(landmarks, np.float64)
        height, width = frame.shape[:2]
        x0, y0 = np.maximum(np.floor(points[:, :2].min(0)) - 2, 0).astype(int)
        x1, y1 = np.minimum(np.ceil(points[:, :2].max(0)) + 3, [width, height]).astype(int)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        crop = np.ascontiguousarray(to_rgb(frame[y0:y1, x0:x1], fmt))
        local = (points[:, :2] - [x0, y0]).astype(np.float32)
        coords = MeshWarp(crop, local, layout.triangles, map_scale=1.0).coordinates(
            layout.shown, layout.points)
        texture = cv2.remap(crop, coords, None, cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        # the silhouette's edge (background, the far cheek at a grazing angle) is not judged
        seen = cv2.erode((layout.judged & _facing(points, layout)[layout.shown]).view(np.uint8),
                         _EDGE).view(bool)
        learned = seen & (self.seen >= LEARN_FRAMES)
        covered = differs = np.zeros((UV_SIDE, UV_SIDE), bool)
        if learned.sum() >= 50:
            gain = np.median(texture[learned], axis=0) / \
                np.maximum(np.median(self.mean[learned], axis=0), 1.0)
            texture_matched = texture / np.clip(gain, 0.5, 2.0)
            deviation = np.abs(texture_matched - self.mean).max(axis=2)
            spread = np.maximum(np.sqrt(self.var), SPREAD_FLOOR)
            differs = learned & (deviation > DEVIATION) & (deviation > SPREADS * spread)
            if differs.sum() > CHANGED * learned.sum():
                # not an object: another face in the same place (a cut in the source), or
                # this one changed - learned afresh, nothing kept meanwhile (not learned
                # afresh while a hand is in front: two hands over a face differ as much)
                if learn:
                    self.forget()
                return None
            # what differs from the learned look but has the face's own skin colour is the
            # face (something learned that has gone: a mic put down uncovers a chin)
            least = MIN_BLOB * seen.sum()
            if differs.sum() >= least:
                covered = _blobs(differs & _off_skin(texture, learned & ~differs), least)
            texture = texture_matched
        self.differs = np.where(differs, self.differs + 1, 0)
        if learn:  # what differs is not learned (an object would be): unless it lasts
            self._learn(texture, seen & (~differs | (self.differs >= ABSORB_FRAMES)))
        if not covered.any():
            return None
        return _to_frame(covered, coords, (y1 - y0, x1 - x0), x0, y0)

    def _learn(self, texture: np.ndarray, where: np.ndarray) -> None:
        """Running mean and spread (of the largest channel's difference from the mean so
        far); a point's first sight only sets its mean."""
        first = where & (self.seen == 0)
        self.seen += where
        # whole-array arithmetic, rate 0 where nothing is learned (cheaper than indexing)
        rate = np.where(where & ~first, np.maximum(1.0 / np.maximum(self.seen, 1.0),
                                                   LEARN_RATE), 0.0).astype(np.float32)
        rate[first] = 1.0
        step = texture - self.mean
        self.mean += rate[..., None] * step
        largest = np.abs(step).max(axis=2)
        self.var += np.where(first, 0.0, rate) * (largest * largest - self.var)


def _facing(points: np.ndarray, layout: _Layout) -> np.ndarray:
    """Per triangle: seen from the front side at SEEN_COS or more."""
    corners = points[layout.triangles]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    cosine = np.abs(normal[:, 2]) / np.maximum(np.linalg.norm(normal, axis=1), 1e-9)
    front = np.sign(signed_areas(corners[:, :, :2])) == layout.orientation
    return front & (cosine >= SEEN_COS)


def _off_skin(texture: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Points whose Lab chroma (a, b) is more than CHROMA levels off the median of `skin`'s."""
    lab = cv2.cvtColor(np.clip(texture, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB)
    chroma = lab[..., 1:].astype(np.float32)
    if skin.sum() < 20:
        return np.ones(skin.shape, bool)
    return np.linalg.norm(chroma - np.median(chroma[skin], axis=0), axis=2) > CHROMA


def _blobs(differs: np.ndarray, least: float) -> np.ndarray:
    """The regions of `differs` of at least `least` pixels (no speckle)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(differs.astype(np.uint8),
                                                               connectivity=8)
    big = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= max(least, 1.0))
    big = big[big > 0]
    return np.isin(labels, big) if big.size else np.zeros_like(differs)


def _to_frame(covered: np.ndarray, coords: np.ndarray, size: tuple[int, int],
              x0: int, y0: int) -> tuple[int, int, np.ndarray]:
    """The covered texture pixels splatted back where they came from in the face's box,
    grown by GROW texture pixels and feathered: (x0, y0, uint8 mask of the box)."""
    height, width = size
    mask = np.zeros((height, width), np.uint8)
    xy = np.round(coords[covered]).astype(int)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
    mask[xy[inside, 1], xy[inside, 0]] = 255
    pixel = max(width, height) / UV_SIDE
    radius = max(1, int(round(GROW * pixel)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    mask = cv2.dilate(mask, kernel)
    soft = radius | 1
    return x0, y0, cv2.GaussianBlur(mask, (soft, soft), 0)


def keep_mask(shape: tuple[int, ...], parts: list[tuple[int, int, np.ndarray]],
              keep: np.ndarray | None) -> np.ndarray | None:
    """`keep` (core.hands.hand_mask's frame-sized map, or None) with each face's covered
    part added; None when there is neither."""
    if not parts:
        return keep
    if keep is None:
        keep = np.zeros(shape[:2], np.uint8)
    for x0, y0, part in parts:
        region = keep[y0:y0 + part.shape[0], x0:x0 + part.shape[1]]
        np.maximum(region, part, out=region)
    return keep


def faces_covered(models: dict[int, Appearance], frame: np.ndarray, fmt: str,
                  faces: list[Face], tracked: list[Face], hands: bool
                  ) -> list[tuple[int, int, np.ndarray]]:
    """Each of `faces`' covered part (Appearance.covered), its model made on first sight and
    dropped once the face is no longer `tracked` (a face turned past a pose limit keeps
    what was learned); nothing is learned while `hands` are in front."""
    for gone in set(models) - {f.id for f in tracked}:
        del models[gone]
    parts = []
    for face in faces:
        part = models.setdefault(face.id, Appearance()).covered(
            frame, fmt, face.landmarks, learn=not hands)
        if part is not None:
            parts.append(part)
    return parts

"""Piecewise-affine mesh warp: move a texture's landmarks onto another face's landmarks.

Why not a neural model: the built-in persona must run on any laptop CPU. A triangle mesh over
FaceMesh points, warped triangle by triangle, follows expression and pose well enough for a
disclosed "persona" and costs about a millisecond for a 256 px crop.

How it stays fast: the per-pixel source coordinates are evaluated on a half-resolution grid
(the warp is continuous across shared triangle edges, so a bilinear upsample of the map is
almost exact), the triangle index map is rasterised with one cv2 call per triangle, and the
texture is sampled once with cv2.remap.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.face import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, FACE_OVAL, LIPS_INNER, LIPS_OUTER

# Contours that must be mesh vertices so that eyes, lips and the face outline line up exactly.
_CONTOURS = sorted(set(FACE_OVAL + EYE_IMAGE_LEFT + EYE_IMAGE_RIGHT + LIPS_OUTER + LIPS_INNER))
_RING_SCALE = 1.3  # outer ring = face oval scaled about its centre (the persona draws it but
# shows only the face inside it: its backdrop is the live surroundings, core.swap.persona)
_RING_DEPTH = 0.15  # ... set this many face widths behind the oval (drawn under the face)
_SHIFT = 4  # sub-pixel bits for cv2.fillConvexPoly
GRAZING = 0.35  # a texture triangle seen at less than this cosine takes its mirror's texture


def select_points(landmarks: np.ndarray, count: int = 150) -> np.ndarray:
    """Indices of a `count`-point subset of the 468 landmarks: all contours, then the points
    farthest from those already chosen (even coverage of cheeks, nose and forehead)."""
    xy = np.asarray(landmarks, np.float64)[:, :2]
    if xy.shape[0] != 468:
        raise ValueError(f"expected 468 FaceMesh landmarks, got {xy.shape[0]}")
    chosen = list(_CONTOURS)
    dist = np.min(np.linalg.norm(xy[:, None, :] - xy[None, chosen, :], axis=2), axis=1)
    while len(chosen) < count:
        best = int(np.argmax(dist))
        if dist[best] <= 0.0:
            break
        chosen.append(best)
        dist = np.minimum(dist, np.linalg.norm(xy - xy[best], axis=1))
    return np.array(chosen, np.int64)


def mesh_points(landmarks: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Mesh vertices: the chosen landmarks plus an outer ring around the face oval (K, 2)."""
    xy = np.asarray(landmarks, np.float32)[:, :2]
    oval = xy[FACE_OVAL]
    centre = oval.mean(axis=0)
    ring = centre + _RING_SCALE * (oval - centre)
    return np.concatenate([xy[subset], ring]).astype(np.float32)


def mesh_depth(landmarks: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Depth (larger = farther) of mesh_points' vertices from (468, 3) landmarks (K,)."""
    z = np.asarray(landmarks, np.float32)[:, 2]
    width = float(np.ptp(np.asarray(landmarks, np.float32)[FACE_OVAL, 0]))
    return np.concatenate([z[subset], z[FACE_OVAL] + _RING_DEPTH * width]).astype(np.float32)


def mirror_sources(vertices: np.ndarray, depth: np.ndarray, triangles: np.ndarray,
                   mirror: np.ndarray, orientation: np.ndarray | None = None) -> np.ndarray:
    """Where each triangle samples its texture, (T, 3, 2): at its own vertices, or - where
    the texture shows it at less than GRAZING (the cosine of its normal to the camera; 0
    for one turned away, whose orientation is not `orientation`'s) and its mirror image shows
    better - at its mirror image's, a face being near enough symmetric. vertices (K, 2) in
    texture px, depth (K,) in the same unit, mirror (K,) each vertex's mirror vertex."""
    corners = np.column_stack([vertices, depth])[triangles]
    normal = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    seen = np.abs(normal[:, 2]) / np.maximum(np.linalg.norm(normal, axis=1), 1e-9)
    if orientation is not None:
        seen[np.sign(signed_areas(vertices[triangles])) != orientation] = 0.0
    mirrored = mirror[triangles]
    mirror_seen = seen[_triangle_lookup(triangles, mirrored)]
    use_mirror = (seen < GRAZING) & (mirror_seen > seen)
    sources = np.asarray(vertices, np.float32)[triangles]
    sources[use_mirror] = np.asarray(vertices, np.float32)[mirrored[use_mirror]]
    return sources


def _triangle_lookup(triangles: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """For each wanted vertex triple, the index of the triangle with those vertices (any
    order), or of the triangle itself when the mesh has no such triangle."""
    index = {tuple(sorted(t)): i for i, t in enumerate(triangles.tolist())}
    return np.array([index.get(tuple(sorted(w)), i) for i, w in enumerate(wanted.tolist())])


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles over `points` as (T, 3) vertex indices (OpenCV Subdiv2D)."""
    points = np.asarray(points, np.float32)
    lo = points.min(axis=0) - 10.0
    hi = points.max(axis=0) + 10.0
    subdiv = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]) + 1,
                           int(hi[1] - lo[1]) + 1))
    index_of: dict[tuple[float, float], int] = {}
    for i, (x, y) in enumerate(points):
        subdiv.insert((float(x), float(y)))
        index_of.setdefault((float(x), float(y)), i)
    triangles = []
    for tri in subdiv.getTriangleList().reshape(-1, 3, 2):
        # Triangles touching Subdiv2D's virtual outer vertices have unknown coordinates.
        ids = [index_of.get((float(x), float(y)), -1) for x, y in tri]
        if -1 not in ids and len(set(ids)) == 3:
            triangles.append(ids)
    if not triangles:
        raise ValueError("cannot triangulate: landmarks are degenerate")
    return np.array(triangles, np.int32)


SourceEdges = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, np.ndarray]]


def _src_edges(src_tri: np.ndarray) -> SourceEdges:
    """The source triangles' edge components ((e1x, e2x, e1y, e2y), each (T,)) and first
    vertices ((x, y), each (T,)), float64: what _affines needs of a texture's fixed
    triangles (MeshWarp works them out once)."""
    s = np.asarray(src_tri, np.float64)
    e1, e2 = s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]
    return (tuple(np.ascontiguousarray(v) for v in (e1[:, 0], e2[:, 0], e1[:, 1], e2[:, 1])),
            (np.ascontiguousarray(s[:, 0, 0]), np.ascontiguousarray(s[:, 0, 1])))


def _affines(dst_tri: np.ndarray, src: SourceEdges, fallback: np.ndarray) -> np.ndarray:
    """Per-triangle 2x3 affines mapping dst triangle vertices onto src ones (given as their
    _src_edges), then `fallback` (2x3): (T + 1, 2, 3) float32.

    A collapsed dst triangle (e.g. a closed eyelid) has no affine: it gets `fallback` too.
    Closed form (src edges times the inverse of the dst edges), written out element by
    element on (T,) arrays: a batched solve, or batched 2x2 matrix products, cost several
    times more, and the mesh is drawn many times a frame (the head model: about ten).
    """
    d = dst_tri.astype(np.float64)
    x0, y0 = d[:, 0, 0], d[:, 0, 1]
    e1x, e1y = d[:, 1, 0] - x0, d[:, 1, 1] - y0  # dst edges
    e2x, e2y = d[:, 2, 0] - x0, d[:, 2, 1] - y0
    det = e1x * e2y - e1y * e2x
    flat = np.abs(det) < 1e-6
    det[flat] = 1.0
    inv = 1.0 / det
    i00, i01, i10, i11 = e2y * inv, -e2x * inv, -e1y * inv, e1x * inv  # [e1 e2]^-1
    (s00, s01, s10, s11), (fx, fy) = src
    a, b = s00 * i00 + s01 * i10, s00 * i01 + s01 * i11  # src edges @ inverse
    c, e = s10 * i00 + s11 * i10, s10 * i01 + s11 * i11
    affine = np.empty((len(d) + 1, 2, 3), np.float64)
    affine[:-1, 0, 0], affine[:-1, 0, 1], affine[:-1, 0, 2] = a, b, fx - a * x0 - b * y0
    affine[:-1, 1, 0], affine[:-1, 1, 1], affine[:-1, 1, 2] = c, e, fy - c * x0 - e * y0
    affine[:-1][flat] = fallback
    affine[-1] = fallback
    return affine.astype(np.float32)


def signed_areas(triangles_xy: np.ndarray) -> np.ndarray:
    """Twice the signed area of each (T, 3, 2) triangle: its sign is its orientation."""
    a, b, c = triangles_xy[:, 0], triangles_xy[:, 1], triangles_xy[:, 2]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def draw_order(dst_tri: np.ndarray, orientation: np.ndarray, depth_tri: np.ndarray
               ) -> np.ndarray:
    """Indices of the triangles a depth-aware warp draws, in drawing order: those facing the
    camera (their orientation is that of the texture's mesh), farthest first (painter's
    algorithm), so a triangle hidden by the head's own pose is never drawn over one that
    is seen. depth_tri: (T, 3) vertex depths, larger = farther."""
    facing = np.flatnonzero(signed_areas(dst_tri) * orientation > 0.0)
    far_first = np.argsort(-depth_tri[facing].mean(axis=1), kind="stable")
    return facing[far_first]


class MeshWarp:
    """A texture and its mesh (vertices + fixed triangles), warped onto new vertex positions.

    `sources` (T, 3, 2), optional: where each triangle samples the texture, when that is not
    at its own vertices (a head model bootstrapped from a turned frame takes a triangle that
    frame shows badly from its mirror image on the other side of the face).
    """

    def __init__(self, texture: np.ndarray, points: np.ndarray, triangles: np.ndarray,
                 map_scale: float = 0.5, sources: np.ndarray | None = None) -> None:
        if texture.ndim != 3 or texture.dtype != np.uint8:
            raise ValueError(f"texture must be HxWxC uint8, got {texture.shape} {texture.dtype}")
        if not 0.0 < map_scale <= 1.0:
            raise ValueError(f"map_scale must be in (0, 1], got {map_scale}")
        self.texture = texture
        self.points = np.asarray(points, np.float32)
        self.triangles = np.asarray(triangles, np.int32)
        self.map_scale = map_scale
        self._src = _src_edges(self.points[self.triangles] if sources is None else sources)
        # each triangle's orientation in the texture: the same sign when seen, not when its
        # back is turned to the camera
        self.orientation = np.sign(signed_areas(self.points[self.triangles]))

    def _affines(self, dst_points: np.ndarray) -> np.ndarray:
        """Per-triangle affines dst -> texture, then the fallback (all vertices' fit)."""
        if dst_points.shape != self.points.shape:
            raise ValueError(f"expected {self.points.shape} points, got {dst_points.shape}")
        # Pixels outside the mesh follow the least-squares affine of all vertices (normal
        # equations: a 3x3 solve, where lstsq's SVD cost a tenth of a millisecond a draw)
        design = np.hstack([dst_points, np.ones((dst_points.shape[0], 1), np.float32)])
        design, target = design.astype(np.float64), self.points.astype(np.float64)
        try:
            fit = np.linalg.solve(design.T @ design, design.T @ target).T
        except np.linalg.LinAlgError:  # degenerate vertices (all on a line): least norm
            fit = np.linalg.lstsq(design, target, rcond=None)[0].T
        return _affines(dst_points[self.triangles], self._src, fit)

    def _raster(self, dst_points: np.ndarray, size: int, depth: np.ndarray | None
                ) -> tuple[int, float, np.ndarray, np.ndarray]:
        """(low-res side, scale, per-triangle affines + fallback, triangle index map)."""
        affine = self._affines(dst_points)
        low = max(8, int(round(size * self.map_scale)))
        scale = low / size
        dst_tri = dst_points[self.triangles]
        index = np.full((low, low), len(affine) - 1, np.uint16)
        order = range(len(dst_tri)) if depth is None else \
            draw_order(dst_tri, self.orientation, np.asarray(depth, np.float32)[self.triangles])
        # Low-res pixel centre j sits at full-res (j + 0.5) / scale - 0.5 (cv2.resize convention).
        raster = np.round((dst_tri + 0.5) * scale * (1 << _SHIFT) - (1 << (_SHIFT - 1)))
        raster = raster.astype(np.int32)
        order = np.asarray(order, np.int64)
        # one cv2 call per triangle (the head model draws ~800 small ones three or four
        # times a frame), the triangles listed and indexed once outside the loop: the same
        # map, 2.4 -> 1.95 ms for 900 small random triangles on a 96 px map (microbenchmark)
        fill = cv2.fillConvexPoly
        for corners, t in zip(list(raster[order]), order.tolist(), strict=True):
            fill(index, corners, t, cv2.LINE_8, _SHIFT)
        return low, scale, affine, index

    @staticmethod
    def _map(low: int, scale: float, affine: np.ndarray, index: np.ndarray,
             size: int) -> np.ndarray:
        grid = (np.arange(low, dtype=np.float32) + 0.5) / scale - 0.5
        xs, ys = grid[None, :], grid[:, None]
        c = np.take(affine.reshape(-1, 6), index, axis=0)  # (low, low, 6), contiguous rows
        map_x = c[..., 0] * xs
        map_x += c[..., 1] * ys
        map_x += c[..., 2]
        map_y = c[..., 3] * xs
        map_y += c[..., 4] * ys
        map_y += c[..., 5]
        low_map = cv2.merge([map_x, map_y])
        if low == size:
            return low_map
        return cv2.resize(low_map, (size, size), interpolation=cv2.INTER_LINEAR)

    def rerender(self, shown: np.ndarray, dst_points: np.ndarray) -> np.ndarray:
        """render()'s image for new vertex positions close to those `shown` came from,
        keeping its triangle map (no rasterising: several times cheaper; right while the
        vertices move a pixel or two)."""
        return cv2.remap(self.texture, self.coordinates(shown, dst_points), None,
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def coordinates(self, shown: np.ndarray, dst_points: np.ndarray) -> np.ndarray:
        """Where each pixel of a render with triangle map `shown` samples the texture for
        vertices at `dst_points`: (size, size, 2) float32 texture px (rerender's map; also
        the way back from a render to its texture, core.objects)."""
        if self.map_scale != 1.0:
            raise ValueError("a render's map is reused only at full resolution (map_scale 1)")
        size = shown.shape[0]
        affine = self._affines(np.asarray(dst_points, np.float32))
        index = shown.astype(np.uint16)
        index[shown < 0] = len(affine) - 1
        return self._map(size, 1.0, affine, index, size)

    def warp(self, dst_points: np.ndarray, size: int,
             depth: np.ndarray | None = None) -> np.ndarray:
        """The texture warped so that its mesh vertices land on `dst_points`; size x size."""
        return self.render(dst_points, size, depth)[0]

    def render(self, dst_points: np.ndarray, size: int, depth: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """warp()'s image and which triangle each pixel shows ((size, size) int32, -1 for
        none; with `depth` only triangles seen: the visible silhouette), at the map's
        resolution."""
        low, scale, affine, index = self._raster(np.asarray(dst_points, np.float32), size,
                                                 depth)
        coords = self._map(low, scale, affine, index, size)
        image = cv2.remap(self.texture, coords, None, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
        shown = index.astype(np.int32)
        shown[shown == len(affine) - 1] = -1
        if low != size:
            shown = cv2.resize(shown, (size, size), interpolation=cv2.INTER_NEAREST)
        return image, shown
